"""The one batch-scoring function every caller goes through (`run`, `score`, the library, the
server, the Ray scorer actors), and the per-solution record the library reports.

A scorer implements the `Scorer` protocol (`bestofn.scorers.protocol`): `score_batch` takes
several questions' `Request`s and returns one result per solution (`StepScores` for a PRM,
`ORMResult` for an ORM, each with the reason for an unscored solution) and the call's
`TokenCounts`. `score_requests` checks what came back, so a backend that loses or adds a
result fails loudly at the call rather than misaligning scores with solutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..text.records import Solution, SolutionScore, StepScores
from .orm_prompt import ORMResult
from .protocol import Request, ScoredBatch, Scorer, TokenCounts

__all__ = ["Request", "ScoredBatch", "TokenCounts", "score_requests", "solution_scores"]


def score_requests(scorer: Scorer, requests: Sequence[Request],
                   total: TokenCounts | None = None) -> ScoredBatch:
    """Every request's results, in solution order, and the call's token counts (added to
    `total` when given: a running count over calls)."""
    if not requests:
        return ScoredBatch([], TokenCounts())
    out = scorer.score_batch(requests)
    assert len(out.results) == len(requests), (
        f"{scorer.kind}: {len(requests)} questions, {len(out.results)} result lists")
    for r, got in zip(requests, out.results, strict=True):
        assert len(got) == len(r.solutions), (
            f"question {r.question.id}: {len(r.solutions)} solutions, {len(got)} "
            f"{scorer.kind.upper()} results")
    if total is not None:
        total += out.tokens
    return out


def orm_values(results: Sequence[ORMResult]) -> list[float | None]:
    """The rewards of one question's ORM results (None where unscored)."""
    return [r.score for r in results]


def solution_scores(solutions: Sequence[Solution], prm: Sequence[StepScores] | None,
                    orm: Sequence[ORMResult] | None, aggregation: str) -> list[SolutionScore]:
    """One `SolutionScore` per solution from what each verifier returned (None: not used)."""
    out = []
    for i, sol in enumerate(solutions):
        steps = prm[i] if prm is not None else None
        o: Any = orm[i] if orm is not None else None
        out.append(SolutionScore(
            answer=sol.answer,
            step_probs=steps.probs if steps else (),
            aggregation=aggregation if steps else None,
            aggregate=steps.aggregate(aggregation) if steps else None,
            prm_reason=steps.reason if steps else None,
            orm=o.score if o is not None else None,
            orm_reason=o.reason if o is not None else None))
    return out
