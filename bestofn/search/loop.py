"""The search on the streaming scheduler: one `SearchJob` per question, one shared stream.

Every question's step requests go to the policy engine's one stream (`scheduler.VLLMStream`),
so the engine batches the steps of all open questions, and a question that is being scored
leaves the engine to the others; its scoring runs beside the engine in one worker thread
(`scheduler.side.BatchSide`), which scores every question waiting in one PRM call. A question
is handed back as soon as its search ends (questions finish independently), as an `Item`
whose solutions are its finished candidates scored with the same PRM, so the run's usual
selection methods (`bestofn.select`) pick the answer. `Item.search` records what the search
did: per step the candidates live, kept, pruned and finished; tokens generated; PRM tokens
computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.driver import Failed, one_by_one
from bestofn.records import Item, Question
from bestofn.scheduler import Budget, Scheduler, StageClock, make_stream
from bestofn.scheduler.side import BatchSide

from .job import SearchJob
from .scoring import Probs, ScoreWork, score_work
from .stepwise import MEDPRM_STEPS, StepFormat, prompt_ids
from .strategies import Strategy

DEFAULT_IN_FLIGHT = 64


def search_items(policy: Any, prm: Any, questions: Sequence[Question], n: int,
                 params: SamplingConfig, strategy: Strategy, *,
                 docs: dict[str, list[str] | None] | None = None,
                 fmt: StepFormat = MEDPRM_STEPS, clock: StageClock | None = None,
                 in_flight: int = DEFAULT_IN_FLIGHT) -> Iterator[Item | Failed]:
    """Search N candidates per question; items are yielded as their questions finish (a
    question whose scoring raised on its own is a `driver.Failed`; the others go on).

    At most `in_flight` step requests run at once, and `in_flight // n` questions (at least
    one) are open at once."""
    if not hasattr(policy, "llm"):
        raise ValueError("search needs the vllm policy backend (step-wise generation "
                         f"continues from token ids); got {type(policy).__name__}")
    clock = clock or StageClock()
    docs = docs or {}
    tokenizer = policy.llm.get_tokenizer()
    stream = make_stream(policy)
    def deliver(it: tuple[SearchJob, ScoreWork],
                result: tuple[list[Probs], int] | Exception) -> None:
        if isinstance(result, Exception):
            it[0].scoring_failed(result)
        else:
            it[0].scored(it[1], *result)

    side: BatchSide[tuple[SearchJob, ScoreWork], tuple[list[Probs], int] | Exception] = (
        BatchSide(lambda batch: one_by_one(lambda b: score_work(prm, [w for _, w in b]), batch),
                  deliver, clock, name="bestofn-search-scoring"))
    jobs = (SearchJob(q, strategy, n, params, fmt, prompt_ids(tokenizer, policy.preset, q),
                      tokenizer, side, docs.get(q.id)) for q in questions)
    budget = Budget(in_flight=max(in_flight, 1), per_question=max(in_flight, 1),
                    open_questions=max(1, in_flight // n))
    sched = Scheduler(stream, params, budget, side, clock=clock)
    try:
        for job in sched.run(jobs):
            yield job.outcome(policy.model_name, policy.preset)  # type: ignore[attr-defined]
    finally:
        side.close()
        stream.close()


def outcomes_in_order(policy: Any, prm: Any, questions: Sequence[Question],
                      *args: Any, **kwargs: Any) -> list[Item | Failed]:
    """`search_items`' outcomes in question order (what the library and `serve` return)."""
    got = {o.question_id if isinstance(o, Failed) else o.question.id: o
           for o in search_items(policy, prm, questions, *args, **kwargs)}
    return [got[q.id] for q in questions]
