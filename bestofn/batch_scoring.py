"""Scoring many questions' solutions with one verifier, as the library's `Reranker` does.

A scorer's `score` takes one question. PRMs score several through `score_many` (prm-vllm sends
every question's prompts to its engine in one call, question by question so each prefix stays
cached; the transformers PRM encodes one question's shared prefix at a time). ORMs, whose
inputs are independent conversations, set `batches_questions = True` and get every question's
conversations in one call. Either way the model is loaded once, and each question's scores
are what `bestofn score` computes for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .records import Question, Solution, SolutionScore, StepScores
from .scorers import Scorer
from .scorers.orm_prompt import solution_conversation

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One question to score: its solutions and the documents for the PRM prompt."""

    question: Question
    solutions: Sequence[Solution]
    documents: list[str] | None = None


@dataclass(frozen=True)
class ORMScores:
    """One question's outcome rewards and, for the unscored, why."""

    scores: list[float | None]
    reasons: list[str | None]


def _split(flat: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    assert len(flat) == sum(sizes), f"expected {sum(sizes)} scores, got {len(flat)}"
    out, start = [], 0
    for n in sizes:
        out.append(list(flat[start:start + n]))
        start += n
    return out


def prm_scores(scorer: Scorer, requests: Sequence[Request]) -> list[list[StepScores]]:
    """Step scores for every request, one list per request in solution order."""
    many = getattr(scorer, "score_many", None)
    if many is not None:  # every Med-PRM backend: prm-vllm sends all questions in one call
        return [list(s) for s in many([(r.question, r.documents, r.solutions)
                                       for r in requests])]
    return [list(scorer.score(r.question, r.documents, r.solutions))  # type: ignore[arg-type]
            for r in requests]


def orm_scores(scorer: Scorer, requests: Sequence[Request]) -> list[ORMScores]:
    """Outcome rewards for every request (documents are not shown to an ORM, as in `score`)."""
    if getattr(scorer, "batches_questions", False):
        s: Any = scorer
        convs = [solution_conversation(r.question, x, s.prompt)
                 for r in requests for x in r.solutions]
        results = _split(s.score_conversations(convs), [len(r.solutions) for r in requests])
        return [ORMScores([x.score for x in rs], [x.reason for x in rs]) for rs in results]
    from .score_orm import score_with_reasons

    return [ORMScores(*map(list, score_with_reasons(scorer, r.question, r.solutions)))
            for r in requests]


def solution_scores(solutions: Sequence[Solution], prm: Sequence[StepScores] | None,
                    orm: ORMScores | None, aggregation: str) -> list[SolutionScore]:
    """One `SolutionScore` per solution from what each verifier returned (None: not used)."""
    out = []
    for i, sol in enumerate(solutions):
        steps = prm[i] if prm is not None else None
        out.append(SolutionScore(
            answer=sol.answer,
            step_probs=steps.probs if steps else (),
            aggregation=aggregation if steps else None,
            aggregate=steps.aggregate(aggregation) if steps else None,
            prm_reason=steps.reason if steps else None,
            orm=orm.scores[i] if orm else None,
            orm_reason=orm.reasons[i] if orm else None))
    return out
