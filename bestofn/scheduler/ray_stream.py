"""A `SampleStream` over the Ray policy actors: each actor runs its own engine's stream.

A question's samples all go to one actor (the one with the fewest running samples when the
question's first sample is submitted), so its prompt's prefix stays in that engine's cache.
Each actor with running samples always has one `stream_poll` call in flight, so its engine
keeps stepping while the driver routes results; an abort waits for that actor's current poll
(at most `poll_s`) and then runs before its next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.records import Question, Solution

from .requests import Finished, SampleError, SampleKey, StepRequest


class RayStream:
    def __init__(self, ray: Any, actors: list[Any], poll_s: float = 0.25) -> None:
        assert actors, "a Ray stream needs at least one policy actor"
        self.ray, self.actors, self.poll_s = ray, actors, poll_s
        self.home: dict[str, int] = {}
        self.running: list[set[SampleKey]] = [set() for _ in actors]
        self.polls: dict[Any, int] = {}
        self.early: list[Finished | SampleError] = []
        """Finished samples collected while an abort drained a poll, for the next `poll`."""

    def submit(self, requests: Sequence[tuple[Question, int]], params: SamplingConfig) -> None:
        """`params` must be the run's sampling settings: the actors sample with their own."""
        per: dict[int, list[tuple[dict[str, Any], int]]] = {}
        for q, k in requests:
            if q.id not in self.home:
                self.home[q.id] = min(range(len(self.actors)), key=lambda i: len(self.running[i]))
            a = self.home[q.id]
            self.running[a].add(SampleKey(q.id, k))
            per.setdefault(a, []).append((q.to_dict(), k))
        for a, reqs in per.items():
            self.actors[a].stream_submit.remote(reqs)

    def submit_steps(self, requests: Sequence[StepRequest], params: SamplingConfig) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot continue from token ids: "
                                  "search needs the in-process vllm policy backend")

    def poll(self, timeout: float) -> list[Finished | SampleError]:
        if self.early:
            out, self.early = self.early, []
            return out
        busy = set(self.polls.values())
        for a, run in enumerate(self.running):
            if run and a not in busy:
                self.polls[self.actors[a].stream_poll.remote(self.poll_s)] = a
        if not self.polls:
            return []
        ready, rest = self.ray.wait(list(self.polls), num_returns=1, timeout=timeout)
        if rest:
            ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        return [f for ref in ready for f in self._collect(ref)]

    def _collect(self, ref: Any) -> list[Finished | SampleError]:
        a = self.polls.pop(ref)
        out: list[Finished | SampleError] = []
        for d in self.ray.get(ref):
            key = SampleKey(d["question"], d["index"])
            self.running[a].discard(key)
            out.append(SampleError(key, d["error"]) if "error" in d else
                       Finished(key, Solution.from_dict(d["solution"]), d["tokens"]))
        return out

    def abort(self, keys: Sequence[SampleKey]) -> int:
        """Stop `keys`; samples among them that finished in a poll not yet collected are
        dropped here and their tokens counted as thrown away."""
        drop = {k for k in keys if k.question in self.home}
        homes = {self.home[k.question] for k in drop}
        tokens = 0
        for ref in [r for r, a in self.polls.items() if a in homes]:
            for f in self._collect(ref):
                if f.key in drop:
                    tokens += f.tokens if isinstance(f, Finished) else 0
                else:
                    self.early.append(f)
        per: dict[int, list[tuple[str, int]]] = {}
        for key in drop:
            a = self.home[key.question]
            if key in self.running[a]:
                self.running[a].discard(key)
                per.setdefault(a, []).append((key.question, key.index))
        refs = [self.actors[a].stream_abort.remote(ks) for a, ks in per.items()]
        return tokens + sum(self.ray.get(refs))

    def pending(self) -> int:
        return sum(len(r) for r in self.running)

    def close(self) -> None:
        self.abort([k for run in self.running for k in run])
