"""Accuracy of every selection method over a set of scored questions, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..text.records import Item
from .select import (
    METHODS,
    STRICT,
    SelectionRules,
    label,
    label_of,
    select_all,
    selection_correct,
    solution_correct,
    table_keys,
)

__all__ = ["Evaluation", "evaluate", "format_table", "graded", "method_order",
           "question_outcomes", "select_all"]


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
    known = [*table_keys(), *METHODS]
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
        lines.append(f"{label(m):<28} {100 * v:>8.2f}%")
    lines.append("-" * 38)
    lines.append(f"questions {ev.n_questions}, solutions {ev.n_solutions}, "
                 f"unscored {ev.n_unscored}, no answer {ev.n_no_answer}")
    if ev.n_unlabelled:
        lines.append(f"{ev.n_unlabelled} solutions have no correctness label (`score`): "
                     "graded by the gold answer")
    return "\n".join(lines)
