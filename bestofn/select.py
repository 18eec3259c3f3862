"""Picking one answer from N scored solutions: best-of-N, weighted vote, majority vote, oracle.

Rules that hold for every method:
- A solution with no extracted answer never wins: it casts no vote and is never picked.
- A solution with no score (no marker, too long) is left out of score-based methods.
- Ties (equal weight, equal score) are broken by a seeded draw among the tied candidates,
  `random.Random(f"{seed}:{key}")` with `key` the question id and method, so a run is
  reproducible and no position in the list is favoured.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .records import Selection, StepScores


def _tie_break(tied: list[str], seed: int, key: str) -> str:
    return tied[0] if len(tied) == 1 else random.Random(f"{seed}:{key}").choice(sorted(tied))


def _pick(weights: dict[str, float], method: str, seed: int, key: str) -> Selection:
    if not weights:
        return Selection(None, method, reason="no solution with an extracted answer")
    top = max(weights.values())
    tied = [a for a, w in weights.items() if w == top]
    return Selection(_tie_break(tied, seed, f"{key}:{method}"), method, dict(weights),
                     tied=sorted(tied) if len(tied) > 1 else [])


def majority_vote(answers: Sequence[str | None], *, seed: int = 0, key: str = "") -> Selection:
    """The most frequent extracted answer."""
    weights: dict[str, float] = {}
    for a in answers:
        if a is not None:
            weights[a] = weights.get(a, 0.0) + 1.0
    return _pick(weights, "majority", seed, key)


def weighted_vote(answers: Sequence[str | None], scores: Sequence[float | None], *,
                  method: str = "weighted", seed: int = 0, key: str = "") -> Selection:
    """The answer with the largest sum of solution scores (unscored solutions add nothing)."""
    _check(answers, scores)
    weights: dict[str, float] = {}
    for a, s in zip(answers, scores, strict=True):
        if a is not None and s is not None:
            weights[a] = weights.get(a, 0.0) + s
    sel = _pick(weights, method, seed, key)
    if sel.answer is None and any(a is not None for a in answers):
        sel.reason = "no scored solution with an extracted answer"
    return sel


def best_of_n(answers: Sequence[str | None], scores: Sequence[float | None], *,
              method: str = "best", seed: int = 0, key: str = "") -> Selection:
    """The answer of the highest-scoring solution among scored solutions with an answer."""
    _check(answers, scores)
    cand = [i for i, (a, s) in enumerate(zip(answers, scores, strict=True))
            if a is not None and s is not None]
    if not cand:
        return Selection(None, method, reason="no scored solution with an extracted answer")
    top = max(scores[i] for i in cand)  # type: ignore[type-var]
    tied_idx = [i for i in cand if scores[i] == top]
    index = tied_idx[0] if len(tied_idx) == 1 else random.Random(
        f"{seed}:{key}:{method}").choice(tied_idx)
    weights: dict[str, float] = {}
    for i in cand:
        a = answers[i]
        weights[a] = max(weights.get(a, float("-inf")), scores[i])  # type: ignore[index,arg-type]
    tied = sorted({answers[i] for i in tied_idx})  # type: ignore[misc]
    return Selection(answers[index], method, weights, index=index,
                     tied=tied if len(tied_idx) > 1 else [])


def oracle(answers: Sequence[str | None], gold: str | None) -> bool:
    """Whether any solution's answer is correct (the ceiling of every reranker)."""
    return gold is not None and any(is_correct(a, gold) for a in answers)


def is_correct(answer: str | None, gold: str | None) -> bool:
    """Case- and whitespace-insensitive equality (letters, labels and open answers alike)."""
    if answer is None or gold is None:
        return False
    return " ".join(answer.split()).casefold() == " ".join(gold.split()).casefold()


def aggregate_all(scores: Sequence[StepScores], how: str) -> list[float | None]:
    """One aggregate (min | final | mean | prod) per solution, None for unscored ones."""
    return [s.aggregate(how) for s in scores]


def _check(answers: Sequence[object], scores: Sequence[object]) -> None:
    if len(answers) != len(scores):
        raise ValueError(f"expected one score per solution: {len(answers)} answers, "
                         f"{len(scores)} scores")
