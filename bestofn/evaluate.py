"""Accuracy of every selection method over a set of scored questions, side by side."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .confidence import confidence_filtered, confidence_weighted, confidences, has_confidence
from .records import Item, Selection
from .select import (
    STRICT,
    SelectionRules,
    aggregate_all,
    best_of_n,
    label_of,
    majority_vote,
    selection_correct,
    solution_correct,
    weighted_vote,
)

PRM_METHODS: dict[str, tuple[str, str]] = {
    "prm_min": ("best", "min"), "prm_final": ("best", "final"),
    "prm_mean": ("best", "mean"), "prm_prod": ("best", "prod"),
    "weighted_min": ("vote", "min"), "weighted_final": ("vote", "final"),
    "weighted_mean": ("vote", "mean"), "weighted_prod": ("vote", "prod"),
}
"""Method name → (best-of-N or weighted vote, step aggregation)."""

ORM_METHODS: dict[str, str] = {"orm_best": "best", "orm_weighted": "vote"}
"""Outcome-reward methods: best-of-N by the raw reward; vote weighted by `orm_weights`."""

TABLE_KEYS = ["majority", "prm_min", "prm_final", "weighted_min", "weighted_final", "orm_best",
              "orm_weighted", "confidence_weighted", "confidence_filtered", "oracle", "single"]
"""The headline methods, in the order the table prints them."""

LABELS = {
    "majority": "Majority vote", "prm_min": "PRM best-of-N (min)",
    "prm_final": "PRM best-of-N (final)", "prm_mean": "PRM best-of-N (mean)",
    "prm_prod": "PRM best-of-N (prod)", "weighted_min": "PRM-weighted vote (min)",
    "weighted_final": "PRM-weighted vote (final)", "weighted_mean": "PRM-weighted vote (mean)",
    "weighted_prod": "PRM-weighted vote (prod)", "orm_best": "ORM best-of-N",
    "orm_weighted": "ORM-weighted vote (softmax)", "oracle": "Oracle (any correct)",
    "single": "Single solution (mean)",
    "confidence_weighted": "Confidence-weighted vote",
    "confidence_filtered": "Confidence top-10% vote",
}


def select_all(item: Item, *, seed: int = 0,
               rules: SelectionRules = STRICT) -> dict[str, Selection]:
    """Every applicable selection on one question (PRM/ORM methods only when so scored)."""
    kw = {"seed": seed, "key": item.question.id, "rules": rules}
    answers = rules.answers(item.solutions)
    out = {"majority": majority_vote(answers, **kw)}  # type: ignore[arg-type]
    if item.prm is not None:
        for name, (kind, how) in PRM_METHODS.items():
            fn: Callable[..., Selection] = best_of_n if kind == "best" else weighted_vote
            out[name] = fn(answers, aggregate_all(item.prm, how), method=name, **kw)
    if has_confidence(item.solutions):
        confs = confidences(item.solutions)
        out["confidence_weighted"] = confidence_weighted(answers, confs, **kw)  # type: ignore[arg-type]
        out["confidence_filtered"] = confidence_filtered(answers, confs, **kw)  # type: ignore[arg-type]
    if item.orm is not None:
        out["orm_best"] = best_of_n(answers, item.orm, method="orm_best", **kw)
        out["orm_weighted"] = weighted_vote(answers, orm_weights(item.orm),
                                            method="orm_weighted", **kw)
    return out


def orm_weights(scores: Sequence[float | None]) -> list[float | None]:
    """Softmax (temperature 1) over one question's scored solutions; None stays None.

    Reward-model outputs are unbounded logits and often negative, so summing them raw would
    let a wrong answer win by having fewer (negative) votes; the softmax turns them into
    positive weights that sum to 1, under which the vote is each answer's share of the mass.
    """
    got = [s for s in scores if s is not None]
    if not got:
        return list(scores)
    top = max(got)
    total = math.fsum(math.exp(s - top) for s in got)
    return [None if s is None else math.exp(s - top) / total for s in scores]


@dataclass
class Evaluation:
    """Accuracies (fractions in [0, 1]) keyed by method, over `n_questions` with a gold answer."""

    accuracy: dict[str, float]
    n_questions: int
    n_solutions: int
    n_unscored: int = 0
    n_no_answer: int = 0
    n_orm_unscored: int = 0
    n_unlabelled: int | None = None
    """Under label grading: solutions without a correctness label (graded by the gold answer)."""
    per_question: list[dict[str, bool]] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, float | int]:
        out = {**self.accuracy, "n_questions": self.n_questions,
               "n_solutions": self.n_solutions, "n_unscored": self.n_unscored,
               "n_no_answer": self.n_no_answer, "n_orm_unscored": self.n_orm_unscored}
        return out if self.n_unlabelled is None else {**out, "n_unlabelled": self.n_unlabelled}


def question_outcomes(item: Item, *, seed: int = 0,
                      rules: SelectionRules = STRICT) -> dict[str, float]:
    """Correctness (0/1) of each method on one question, plus its single-solution accuracy."""
    gold, sols = item.question.answer, item.solutions
    out: dict[str, float] = {m: float(selection_correct(s, sols, gold, rules))
                             for m, s in select_all(item, seed=seed, rules=rules).items()}
    right = [solution_correct(s, gold, rules) for s in sols]
    out["oracle"] = float(any(right))
    out["single"] = sum(right) / len(sols) if sols else 0.0
    return out


def method_order(rows: Sequence[dict[str, float]]) -> list[str]:
    """Methods present for every question: the table's order first, then any others."""
    if not rows:
        return []
    known = [*TABLE_KEYS, *PRM_METHODS, *ORM_METHODS]
    extra = [m for m in rows[0] if m not in known]
    return [m for m in dict.fromkeys([*known, *extra]) if all(m in r for r in rows)]


def graded(items: Sequence[Item]) -> list[Item]:
    """The questions with a gold answer: the ones every accuracy is computed over."""
    return [it for it in items if it.question.answer is not None]


def evaluate(items: Sequence[Item], *, seed: int = 0,
             rules: SelectionRules = STRICT) -> Evaluation:
    """Mean correctness of every method over the questions that have a gold answer."""
    graded_items = graded(items)
    rows = [question_outcomes(it, seed=seed, rules=rules) for it in graded_items]
    acc = {m: sum(r[m] for r in rows) / len(rows) for m in method_order(rows)}
    return Evaluation(
        accuracy=acc, n_questions=len(graded_items),
        n_solutions=sum(len(it.solutions) for it in graded_items),
        n_unscored=sum(sum(not s.scored for s in it.prm) for it in graded_items if it.prm),
        n_no_answer=sum(a is None for it in graded_items for a in it.answers),
        n_orm_unscored=sum(s is None for it in graded_items for s in it.orm or []),
        n_unlabelled=None if rules.grade != "label" else sum(
            label_of(s) is None for it in graded_items for s in it.solutions),
        per_question=rows)


def format_table(ev: Evaluation) -> str:
    """A fixed-width accuracy table (percent), headline methods first."""
    lines = [f"{'method':<28} {'accuracy':>9}", "-" * 38]
    for m, v in ev.accuracy.items():
        lines.append(f"{LABELS.get(m, m):<28} {100 * v:>8.2f}%")
    lines.append("-" * 38)
    lines.append(f"questions {ev.n_questions}, solutions {ev.n_solutions}, "
                 f"unscored {ev.n_unscored}, no answer {ev.n_no_answer}")
    if ev.n_unlabelled:
        lines.append(f"{ev.n_unlabelled} solutions have no correctness label (`score`): "
                     "graded by the gold answer")
    return "\n".join(lines)
