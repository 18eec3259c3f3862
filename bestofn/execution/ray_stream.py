"""A `SampleStream` over the Ray policy actors: each actor runs its own engine's stream.

A question's requests all go to one actor (the one with the fewest running requests when the
question's first request is submitted), so its prompt's prefix stays in that engine's cache.
Each actor with running requests always has one `stream_poll` call in flight, so its engine
keeps stepping while the driver routes results; an abort waits for that actor's current poll
(at most `poll_s`) and then runs before its next one. Sample and step requests (a search's
continuations from token ids) go the same way.

A policy actor that dies (its process killed, its node lost) is restarted by Ray
(`ExecConfig.actor_restarts`), with none of the requests it was running. Every poll answers
with the actor's incarnation, so the stream sees a restart, or a poll that failed because the
actor was down, and sends that actor's running requests again: each carries its own seed, so
they give the same texts, and the run goes on as if nothing happened. An actor that stays
down through more than `restarts` such resends in a row stops the run with Ray's error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bestofn.config import SamplingConfig

from .requests import Finished, SampleError, SampleKey, SampleRequest, StepOutput, StepRequest

Request = SampleRequest | StepRequest
Done = Finished | StepOutput | SampleError


class RayStream:
    def __init__(self, ray: Any, actors: list[Any], poll_s: float = 0.25,
                 restarts: int = 3, incarnations: list[str] | None = None) -> None:
        """`incarnations`: each actor's when it was last seen (its `where()`), so that a
        restart before its first poll is seen too."""
        assert actors, "a Ray stream needs at least one policy actor"
        self.ray, self.actors, self.poll_s, self.restarts = ray, actors, poll_s, restarts
        self.home: dict[str, int] = {}
        self.running: list[dict[SampleKey, Request]] = [{} for _ in actors]
        self.incarnation: list[str | None] = list(incarnations or [None] * len(actors))
        self.lost: list[int] = [0 for _ in actors]
        self.polls: dict[Any, int] = {}
        self.early: list[Done] = []
        """Finished requests collected while an abort drained a poll, for the next `poll`."""
        self.resent = 0
        """Requests sent again to a restarted actor (over the stream's life)."""

    def submit(self, requests: Sequence[SampleRequest], params: SamplingConfig) -> None:
        """`params` must be the run's sampling settings: the actors sample with their own."""
        self._send(list(requests))

    def submit_steps(self, requests: Sequence[StepRequest], params: SamplingConfig) -> None:
        self._send(list(requests))

    def _send(self, requests: list[Request]) -> None:
        per: dict[int, list[Request]] = {}
        for r in requests:
            q = r.key.question
            if q not in self.home:
                self.home[q] = min(range(len(self.actors)), key=lambda i: len(self.running[i]))
            a = self.home[q]
            self.running[a][r.key] = r
            per.setdefault(a, []).append(r)
        for a, reqs in per.items():
            self._to_actor(a, reqs)

    def _to_actor(self, a: int, reqs: list[Request]) -> None:
        samples = [r for r in reqs if isinstance(r, SampleRequest)]
        steps = [r for r in reqs if isinstance(r, StepRequest)]
        if samples:
            self.actors[a].stream_submit.remote(samples)
        if steps:
            self.actors[a].stream_submit_steps.remote(steps)

    def poll(self, timeout: float) -> list[Done]:
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

    def _collect(self, ref: Any) -> list[Done]:
        a = self.polls.pop(ref)
        try:
            incarnation, done = self.ray.get(ref)
        except self._actor_errors() as e:
            self._resend(a, e)
            return []
        if self.incarnation[a] not in (None, incarnation):
            self._resend(a, None)
        self.incarnation[a], self.lost[a] = incarnation, 0
        out: list[Done] = []
        for f in done:
            if self.running[a].pop(f.key, None) is not None:
                out.append(f)
        return out

    def _actor_errors(self) -> tuple[type[BaseException], ...]:
        exc = self.ray.exceptions
        return tuple(getattr(exc, n) for n in ("RayActorError", "ActorDiedError",
                                                "ActorUnavailableError") if hasattr(exc, n))

    def _resend(self, a: int, error: BaseException | None) -> None:
        """Actor `a` restarted (or is down): its running requests again, same seeds."""
        if error is not None:
            self.lost[a] += 1
            if self.lost[a] > self.restarts + 1:
                raise error
        reqs = list(self.running[a].values())
        self.resent += len(reqs)
        if reqs:
            self._to_actor(a, reqs)

    def abort(self, keys: Sequence[SampleKey]) -> int:
        """Stop `keys`; requests among them that finished in a poll not yet collected are
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
        per: dict[int, list[SampleKey]] = {}
        for key in drop:
            a = self.home[key.question]
            if self.running[a].pop(key, None) is not None:
                per.setdefault(a, []).append(key)
        refs = [self.actors[a].stream_abort.remote(ks) for a, ks in per.items()]
        return tokens + sum(self.ray.get(refs))

    def pending(self) -> int:
        return sum(len(r) for r in self.running)

    def close(self) -> None:
        self.abort([k for run in self.running for k in run])
