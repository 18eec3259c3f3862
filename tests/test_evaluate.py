"""Accuracy table against a direct computation."""

from __future__ import annotations

import pytest

from bestofn.evaluation.evaluate import evaluate, format_table
from bestofn.testing.items import random_items
from bestofn.text.records import Item, Question, Solution


@pytest.mark.parametrize("seed", range(5))
def test_accuracies_equal_direct_computation(seed):
    items = random_items(seed, 30, (1, 8), none_rate=0.2, steps=(1, 4))
    ev = evaluate(items, seed=seed)
    assert ev.n_questions == 30
    single = sum(sum(s.answer == it.question.answer for s in it.solutions) / len(it.solutions)
                 for it in items) / 30
    assert ev.accuracy["single"] == pytest.approx(single)
    orc = sum(any(s.answer == it.question.answer for s in it.solutions) for it in items) / 30
    assert ev.accuracy["oracle"] == pytest.approx(orc)
    # a best-of-N pick is never right where no solution is: oracle bounds every method
    for m, v in ev.accuracy.items():
        assert 0 <= v <= ev.accuracy["oracle"] + 1e-12 or m == "single"
    for how in ("min", "final"):
        best = vote = 0
        for it in items:  # continuous random scores: no ties, so the answer is unique
            cands = [(sc.aggregate(how), s.answer)
                     for s, sc in zip(it.solutions, it.prm, strict=True)
                     if sc.scored and s.answer is not None]
            if cands:
                best += max(cands)[1] == it.question.answer
                sums: dict[str, float] = {}
                for v, a in cands:
                    sums[a] = sums.get(a, 0.0) + v
                vote += max(sums, key=sums.get) == it.question.answer
        assert ev.accuracy[f"prm_{how}"] == pytest.approx(best / 30)
        assert ev.accuracy[f"weighted_{how}"] == pytest.approx(vote / 30)
    assert set(ev.to_json()) >= {"majority", "prm_min", "prm_final", "weighted_min",
                                 "weighted_final", "oracle", "single", "n_questions"}
    assert "Majority vote" in format_table(ev)


def test_questions_without_gold_are_not_graded():
    q = Question("1", "open", answer=None)
    items = [Item(q, [Solution("t", "t ки", "flu")])]
    assert evaluate(items).n_questions == 0
