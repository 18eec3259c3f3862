"""A run's questions as jobs of its kind (fixed N, adaptive, search) on the one loop: the only
place that knows every job kind (`bestofn.execution` knows the loop and the fixed job it is
built around; `jobs.adaptive` and `bestofn.search` hold the other two)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from policies.validity import ValidityConfig

from ..config import RunConfig
from ..evaluation.ledger import StageClock
from ..execution.fixed import FixedJob
from ..execution.jobs import budget, run_jobs
from ..execution.scoring import ScoringSide
from ..search.job import search_jobs
from ..search.strategies import parse_strategy
from ..text.records import Question
from .adaptive import adaptive_jobs


def run_jobs_for(cfg: RunConfig, workers: Any, todo: list[Question], out: Path,
                 clock: StageClock, known: Collection[str] | None = None) -> Iterator[Any]:
    """Each question of a run as the job of its kind on `workers`; its outcome (an `Item`,
    or a `driver.Failed`) as soon as it settles."""

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
        return adaptive_jobs(cfg, todo, out, side, known)
    if kind == "search":
        tokenizer, preset, model = workers.policy_info()
        return search_jobs(todo, parse_strategy(cfg.strategy.search),  # type: ignore[arg-type]
                           cfg.n,  # type: ignore[arg-type]
                           cfg.sampling(), tokenizer, preset, model, side)
    validity, p, v = None, cfg.policy, cfg.verifiers
    if p.max_steps:
        validity = ValidityConfig(min_steps=p.min_steps or 1, max_steps=p.max_steps,
                                  fill_invalid=True)
    return (FixedJob(q, cfg.n, cfg.seed, side, validity, bool(v.prm.model), bool(v.orm.model))
            for q in todo)
