"""The scheduler loop: keep the stream full across questions, route finished samples, abort.

A `Job` is one question's policy: which sample indices to start when there is room (a sample
of the question, or a continuation from token ids: a search step), what to do with a finished
one, when the question is settled, and what to record for what was
thrown away. Jobs are admitted in order (earlier questions start first) and settle in any
order; a settled job's running samples are aborted at once and the job is yielded to the
caller, which writes it. `Side` is work that runs beside the stream (scoring): the loop pumps
it after every poll, so a job can wait for scores without holding the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from bestofn.config import SamplingConfig
from bestofn.text.records import Question

from ..evaluation.ledger import StageClock
from .requests import Finished, SampleError, SampleKey, SampleRequest, StepOutput, StepRequest
from .streams import SampleStream


@dataclass(frozen=True)
class Budget:
    """Samples in flight: `in_flight` over all questions, `per_question` for one question;
    `open_questions` bounds the questions admitted at once (default: `in_flight`). The counts
    have no defaults here: `jobs.budget` makes a budget from `EngineOptions`, where they are
    declared."""

    in_flight: int
    per_question: int
    open_questions: int | None = None
    poll_s: float = 0.25
    """Longest a poll runs the engine before the loop looks at the side work again."""
    fill: bool = True
    """When no question waits to be admitted, room left under `in_flight` goes to the open
    questions past `per_question` (one sample each in turn), so a run with fewer questions
    than the engine holds keeps it full; off, `per_question` is a hard cap."""

    def __post_init__(self) -> None:
        if min(self.in_flight, self.per_question, self.open_questions or 1) < 1:
            raise ValueError(f"a scheduler budget needs counts >= 1, got {self}")


class EngineFailure(RuntimeError):
    """An engine failed as a whole (not one question's request): the policy's stream or the
    scoring beside it raised. `engine` names it."""

    def __init__(self, engine: str, error: BaseException, resume: str | None = None) -> None:
        text = str(error).strip().splitlines()
        hint = (f"; the finished questions are kept in {resume}: the same command resumes the "
                "run" if resume else "")
        super().__init__(f"the {engine} failed: {type(error).__name__}: "
                         f"{text[-1] if text else ''}{hint}")
        self.engine, self.error = engine, error


class Job(Protocol):
    question: Question

    def next_indices(self, room: int) -> list[int]:
        """Sample indices to start now, at most `room`."""

    def request(self, index: int) -> SampleRequest | StepRequest | None:
        """What `index` runs: None for sample `index` of the question under the run's seed,
        a `SampleRequest` for a sample under another seed, or a continuation from token ids
        (a search step)."""

    def finished(self, f: Finished | StepOutput) -> None: ...

    def fail(self, stage: str, error: Exception) -> None:
        """A sample of it could not be produced (`SampleError`): it settles as failed."""

    def settled(self) -> bool: ...

    def aborted(self, keys: list[SampleKey], tokens: int) -> None:
        """Samples still running when the job settled were stopped; they had `tokens`."""


class Side(Protocol):
    def busy(self) -> bool:
        """Work submitted and not yet delivered."""

    def pump(self, wait: float) -> None:
        """Deliver finished side work to its jobs, waiting up to `wait` seconds for some."""

    def close(self) -> None:
        """Stop its worker once the work submitted is done."""


class Scheduler:
    def __init__(self, stream: SampleStream, params: SamplingConfig, budget: Budget,
                 side: Side | None = None, clock: StageClock | None = None) -> None:
        """`clock`: time the engine calls (submit, poll) as `sample_s` (the caller times the
        side's work itself)."""
        self.stream, self.params, self.budget, self.side = stream, params, budget, side
        self.clock = clock or StageClock()

    def run(self, jobs: Iterable[Job]) -> Iterator[Job]:
        """Settled jobs, in the order they settle."""
        todo = iter(jobs)
        open_: list[Job] = []
        running: dict[str, set[int]] = {}
        limit = self.budget.open_questions or self.budget.in_flight
        exhausted = False
        while True:
            while (not exhausted and len(open_) < limit
                   and self._total(running) < self.budget.in_flight):
                job = next(todo, None)
                if job is None:
                    exhausted = True
                else:
                    open_.append(job)
                    running[job.question.id] = set()
            yield from self._settle(open_, running)
            if exhausted and not open_:
                return
            self._start(open_, running, fill=self.budget.fill and (
                exhausted or len(open_) >= limit))
            if self._total(running):
                with self.clock.stage("sample_s"), _failing(f"policy engine ({self._name()})"):
                    done = self.stream.poll(self.budget.poll_s)
                    if not done and not self.stream.pending():
                        raise RuntimeError(f"{self._total(running)} requests are running and "
                                           "the stream holds none of them")
                self._route(done, open_, running)
                if self.side is not None:
                    with _failing("scoring"):
                        self.side.pump(0.0)
            elif self.side is not None and self.side.busy():
                with _failing("scoring"):
                    self.side.pump(self.budget.poll_s)
            elif not any(j.settled() for j in open_) and (exhausted or len(open_) >= limit):
                ids = ", ".join(j.question.id for j in open_[:5])
                raise RuntimeError(f"scheduler stalled: questions {ids} are open with nothing "
                                   "running and nothing to start")

    def _name(self) -> str:
        return type(self.stream).__name__

    @staticmethod
    def _total(running: dict[str, set[int]]) -> int:
        return sum(len(r) for r in running.values())

    def _start(self, open_: list[Job], running: dict[str, set[int]], fill: bool) -> None:
        batch: list[SampleRequest] = []
        steps: list[StepRequest] = []
        free = self.budget.in_flight - self._total(running)

        def take(job: Job, room: int) -> int:
            if room <= 0 or job.settled():
                return 0
            got = job.next_indices(room)
            assert len(got) <= room, f"question {job.question.id}: {len(got)} > room {room}"
            running[job.question.id].update(got)
            for k in got:
                req = job.request(k)
                if req is None:
                    req = SampleRequest(SampleKey(job.question.id, k), job.question, k,
                                        self.params.seed)
                (steps if isinstance(req, StepRequest) else batch).append(req)
            return len(got)

        for job in open_:
            if free <= 0:
                break
            free -= take(job, min(self.budget.per_question - len(running[job.question.id]),
                                  free))
        while fill and free > 0:
            more = 0
            for job in open_:
                if free - more <= 0:
                    break
                more += take(job, 1)
            if not more:
                break
            free -= more
        with self.clock.stage("sample_s"), _failing(f"policy engine ({self._name()})"):
            self.stream.submit(batch, self.params)
            if steps:
                self.stream.submit_steps(steps, self.params)

    @staticmethod
    def _route(done: list[Finished | StepOutput | SampleError], open_: list[Job],
               running: dict[str, set[int]]) -> None:
        by_id = {j.question.id: j for j in open_}
        for f in done:
            running[f.key.question].discard(f.key.index)
            if isinstance(f, SampleError):
                by_id[f.key.question].fail("solve", f.error)
            else:
                by_id[f.key.question].finished(f)

    def _settle(self, open_: list[Job], running: dict[str, set[int]]) -> Iterator[Job]:
        for job in [j for j in open_ if j.settled()]:
            keys = [SampleKey(job.question.id, k) for k in sorted(running.pop(job.question.id))]
            job.aborted(keys, self.stream.abort(keys) if keys else 0)
            open_.remove(job)
            yield job


@contextmanager
def _failing(engine: str) -> Iterator[None]:
    """An error out of an engine call is the engine's (`EngineFailure`), not a question's:
    those come back as `SampleError`s and scoring failures, routed to their jobs."""
    try:
        yield
    except EngineFailure:
        raise
    except NotImplementedError:
        raise
    except Exception as e:
        raise EngineFailure(engine, e) from e
