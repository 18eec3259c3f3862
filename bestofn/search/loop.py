"""Many questions' searches as jobs on the one scheduler loop (`execution.jobs`).

Every question's step requests go to the policy engine's one stream, so the engine batches
the steps of all open questions, and a question that is being scored leaves the engine to the
others; its scoring runs beside the engine (`execution.scoring.ScoringSide`), which scores
every question waiting in one PRM call. A question is handed back as soon as its search ends
(questions finish independently), as an `Item` whose solutions are its finished candidates
scored with the same PRM, so the run's usual selection methods (`bestofn.evaluation.select`) pick
the
answer. `Item.search` records what the search did: per step the candidates live, kept,
pruned and finished; tokens generated; PRM tokens computed. The same jobs run on the Ray
actors (`run --search` without `--no-ray`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from bestofn.config import EngineOptions, SamplingConfig
from bestofn.evaluation.ledger import StageClock
from bestofn.execution.driver import Failed
from bestofn.text.records import Item, Question

from .job import search_jobs
from .stepwise import MEDPRM_STEPS, StepFormat
from .strategies import Strategy


def search_items(policy: Any, prm: Any, questions: Sequence[Question], n: int,
                 params: SamplingConfig, strategy: Strategy, *, use_docs: bool = False,
                 fmt: StepFormat = MEDPRM_STEPS, clock: StageClock | None = None,
                 in_flight: int | None = None) -> Iterator[Item | Failed]:
    """Search N candidates per question in this process; items are yielded as their
    questions finish (a question whose scoring raised on its own is a `driver.Failed`; the
    others go on). The PRM prompt carries each question's attached documents when
    `use_docs`. At most `in_flight` step requests run at once (default:
    `EngineOptions.samples_in_flight`), over `in_flight // n` open questions."""
    from bestofn.execution.jobs import budget, run_jobs
    from bestofn.execution.scoring import ScoringSide, Verifiers
    from bestofn.execution.workers import LocalWorkers

    clock = clock or StageClock()
    engine = EngineOptions() if in_flight is None else EngineOptions(samples_in_flight=in_flight)
    workers = LocalWorkers(policy, Verifiers(prm), use_docs)
    tokenizer, preset, model = workers.policy_info()
    side = ScoringSide(lambda work: workers.score(work, prm_only=True), clock)
    jobs = search_jobs(questions, strategy, n, params, tokenizer, preset, model, side, fmt)
    try:
        for job in run_jobs(workers.stream, params, jobs, budget(engine, "search", n), side,
                            clock):
            yield job.outcome()  # type: ignore[attr-defined]
    finally:
        workers.close()


def with_documents(questions: Sequence[Question],
                   texts: Sequence[list[str] | None]) -> list[Question]:
    """Copies of `questions` carrying the given passages (None: left as they are)."""
    from bestofn.text.records import Document

    return [q if t is None else replace(q, documents=[Document(x) for x in t])
            for q, t in zip(questions, texts, strict=True)]


def outcomes_in_order(policy: Any, prm: Any, questions: Sequence[Question],
                      *args: Any, **kwargs: Any) -> list[Item | Failed]:
    """`search_items`' outcomes in question order (what the library and `serve` return)."""
    got = {o.question_id if isinstance(o, Failed) else o.question.id: o
           for o in search_items(policy, prm, questions, *args, **kwargs)}
    return [got[q.id] for q in questions]
