"""A stream over any `Policy` (hf, replay): pending samples run one question's group at a time.

Nothing runs between polls, so an abort only drops samples not yet started (0 tokens); the
samples equal those of a fixed run because every policy numbers its seeds per sample index.
A policy call that raises comes back as a `SampleError` for each of its samples.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.records import Question

from .requests import Finished, SampleError, SampleKey, StepRequest


class OrderedStream:
    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.queue: list[tuple[Question, int, SamplingConfig]] = []

    def submit(self, requests: Sequence[tuple[Question, int]], params: SamplingConfig) -> None:
        self.queue += [(q, k, params) for q, k in requests]

    def submit_steps(self, requests: Sequence[StepRequest], params: SamplingConfig) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot continue from token ids: "
                                  "search needs the in-process vllm policy backend")

    def poll(self, timeout: float) -> list[Finished | SampleError]:
        deadline = time.monotonic() + timeout
        out: list[Finished | SampleError] = []
        while self.queue and (not out or time.monotonic() < deadline):
            q, first, params = self.queue[0]
            run = 1
            while (run < len(self.queue) and self.queue[run][0].id == q.id
                   and self.queue[run][1] == first + run and self.queue[run][2] == params):
                run += 1
            del self.queue[:run]
            try:
                sols = self.policy.sample([q], run, params, start=first)[0]
            except Exception as e:  # noqa: BLE001 - the question's failure, not the stream's
                out += [SampleError(SampleKey(q.id, first + j), e) for j in range(run)]
                continue
            assert len(sols) <= run, f"question {q.id}: asked for {run} samples, got {len(sols)}"
            out += [Finished(SampleKey(q.id, first + j), s, int(s.meta.get("tokens") or 0))
                    for j, s in enumerate(sols)]
        return out

    def abort(self, keys: Sequence[SampleKey]) -> int:
        drop = set(keys)
        self.queue = [r for r in self.queue if SampleKey(r[0].id, r[1]) not in drop]
        return 0

    def pending(self) -> int:
        return len(self.queue)

    def close(self) -> None:
        pass
