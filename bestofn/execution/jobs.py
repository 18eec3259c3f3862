"""Every execution is jobs on one scheduler loop: fixed N, adaptive and search; in-process or
on Ray; for `run`, `serve` and the library.

- `budget` is the one place a `Budget` is made from `EngineOptions` (the defaults live there).
- `run_jobs` is the one place the loop (`scheduler.Scheduler`) is built.
- `run_jobs_for` turns a run's questions into jobs of its kind on `Workers` (the policy's
  stream, the scoring function, the documents stage: `workers.LocalWorkers` in this process,
  `ray_workers.RayWorkers` on the actors) and yields each question's outcome as it settles.
- `placement.open_execution` picks the workers (the one "local or Ray?" branch) and hands
  the run driver (`bestofn.execution.driver`) its `Execution`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from bestofn.config import EngineOptions, RunConfig, SamplingConfig
from bestofn.records import Question

from .ledger import StageClock
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


def run_jobs_for(cfg: RunConfig, workers: Any, todo: list[Question], out: Path,
                 clock: StageClock, known: Collection[str] | None = None) -> Iterator[Any]:
    """Each question of a run as the job of its kind on `workers`; its outcome (an `Item`,
    or a `driver.Failed`) as soon as it settles."""
    from .scoring import ScoringSide

    kind = cfg.strategy.kind
    side = (ScoringSide(lambda work: workers.score(work, prm_only=kind == "search"), clock)
            if cfg.verifiers.any else None)
    jobs = _jobs(kind, cfg, workers, todo, out, side, known)
    for job in run_jobs(workers.stream, cfg.sampling(), jobs, budget(cfg.engine, kind, cfg.n),
                        side, clock):
        yield job.outcome()  # type: ignore[attr-defined]


def _jobs(kind: str, cfg: RunConfig, workers: Any, todo: list[Question], out: Path,
          side: Any, known: Collection[str] | None) -> Iterable[Any]:
    if kind == "adaptive":
        from bestofn.adaptive.stream import adaptive_jobs

        return adaptive_jobs(cfg, todo, out, side, known)
    if kind == "search":
        from bestofn.search.job import search_jobs
        from bestofn.search.strategies import parse_strategy

        tokenizer, preset, model = workers.policy_info()
        return search_jobs(todo, parse_strategy(cfg.strategy.search),  # type: ignore[arg-type]
                           cfg.n,  # type: ignore[arg-type]
                           cfg.sampling(), tokenizer, preset, model, side)
    from .fixed import FixedJob

    validity, p, v = None, cfg.policy, cfg.verifiers
    if p.max_steps:
        from policies.validity import ValidityConfig

        validity = ValidityConfig(min_steps=p.min_steps or 1, max_steps=p.max_steps,
                                  fill_invalid=True)
    return (FixedJob(q, cfg.n, cfg.seed, side, validity, bool(v.prm.model), bool(v.orm.model))
            for q in todo)
