"""A stream over any `Policy` (hf, replay): pending samples run one question's group at a time.

Nothing runs between polls, so an abort only drops samples not yet started (0 tokens); the
samples equal those of a fixed run because every policy numbers its seeds per sample index.
A policy call that raises comes back as a `SampleError` for each of its samples.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bestofn.config import SamplingConfig

from .requests import Finished, SampleError, SampleKey, SampleRequest, StepRequest


class OrderedStream:
    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.queue: list[tuple[SampleRequest, SamplingConfig]] = []

    def submit(self, requests: Sequence[SampleRequest], params: SamplingConfig) -> None:
        self.queue += [(r, replace(params, seed=r.seed)) for r in requests]

    def submit_steps(self, requests: Sequence[StepRequest], params: SamplingConfig) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot continue from token ids: "
                                  "search needs the in-process vllm policy backend")

    def poll(self, timeout: float) -> list[Finished | SampleError]:
        deadline = time.monotonic() + timeout
        out: list[Finished | SampleError] = []
        while self.queue and (not out or time.monotonic() < deadline):
            head, params = self.queue[0]
            run = 1
            while (run < len(self.queue) and self.queue[run][0].question.id == head.question.id
                   and self.queue[run][0].k == head.k + run and self.queue[run][1] == params):
                run += 1
            keys = [r.key for r, _ in self.queue[:run]]
            del self.queue[:run]
            try:
                sols = self.policy.sample([head.question], run, params, start=head.k)[0]
            except Exception as e:  # noqa: BLE001 - the question's failure, not the stream's
                out += [SampleError(key, e) for key in keys]
                continue
            assert len(sols) <= run, (f"question {head.question.id}: asked for {run} samples, "
                                      f"got {len(sols)}")
            out += [Finished(key, s, int(s.meta.get("tokens") or 0))
                    for key, s in zip(keys, sols, strict=False)]
            if len(sols) < run:
                short = IndexError(f"question {head.question.id}: the policy has {len(sols)} "
                                   f"of samples {head.k}..{head.k + run - 1} (a replay file "
                                   "holds fewer than asked)")
                out += [SampleError(key, short) for key in keys[len(sols):]]
        return out

    def abort(self, keys: Sequence[SampleKey]) -> int:
        drop = set(keys)
        self.queue = [r for r in self.queue if r[0].key not in drop]
        return 0

    def pending(self) -> int:
        return len(self.queue)

    def close(self) -> None:
        pass
