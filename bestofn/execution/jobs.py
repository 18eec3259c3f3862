"""Every execution is jobs on one scheduler loop: fixed N, adaptive and search; in-process or
on Ray; for `run`, `serve` and the library.

- `budget` is the one place a `Budget` is made from `EngineOptions` (the defaults live there).
- `run_jobs` is the one place the loop (`scheduler.Scheduler`) is built.
- `placement.open_execution` picks the workers (the one "local or Ray?" branch) and hands
  the run driver (`bestofn.execution.driver`) its `Execution`, whose questions become jobs of
  the run's kind in `bestofn.jobs.kinds.run_jobs_for` (the loop knows no job kind but the
  fixed one it is built around).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from bestofn.config import EngineOptions, SamplingConfig
from bestofn.text.records import Question

from ..evaluation.ledger import StageClock
from .scheduler import Budget, Job, Scheduler, Side
from .streams import SampleStream

KINDS = ("fixed", "adaptive", "search")


def budget(engine: EngineOptions, kind: str, n: int) -> Budget:
    """What may run at once for jobs of `kind` with N samples (or candidates) per question:
    `engine.samples_in_flight` over all questions; per question, all of a fixed question's
    draw (its samples run together, as one `n` request would: earlier questions first), an
    adaptive question's
    `engine.question_in_flight` (what it may draw past its stopping point), a search's whole
    width, over `samples_in_flight // n` open questions."""
    assert kind in KINDS, f"unknown job kind {kind!r}; known: {KINDS}"
    total = engine.samples_in_flight
    if kind == "fixed":
        return Budget(total, total)
    if kind == "adaptive":
        return Budget(total, min(engine.question_in_flight, n))
    return Budget(total, total, open_questions=max(1, total // n))


def run_jobs(stream: SampleStream, params: SamplingConfig, jobs: Iterable[Job],
             limits: Budget, side: Side | None = None,
             clock: StageClock | None = None) -> Iterator[Job]:
    """Settled jobs in the order they settle; the side is closed at the end."""
    try:
        yield from Scheduler(stream, params, limits, side, clock).run(jobs)
    finally:
        if side is not None:
            side.close()


def fixed_samples(stream: SampleStream, questions: Iterable[Question], n: int,
                  params: SamplingConfig, validity: Any = None,
                  engine: EngineOptions | None = None) -> Iterator[Any]:
    """N samples of each question as fixed jobs (`fixed.FixedJob`, unscored; with Med-PRM's
    step filter `validity` when given), each job as soon as its question settles."""
    from .fixed import FixedJob

    jobs = (FixedJob(q, n, params.seed, validity=validity) for q in questions)
    yield from run_jobs(stream, params, jobs, budget(engine or EngineOptions(), "fixed", n))
