"""Bootstrap intervals and accuracy-vs-N curves against direct computations."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from bestofn.evaluation.curves import accuracy_curves, curve_ns, prefix_outcomes, sub_item
from bestofn.evaluation.evaluate import evaluate, question_outcomes
from bestofn.evaluation.intervals import accuracy_intervals, bootstrap_interval, outcome_matrix
from bestofn.evaluation.subsets import SubsetEvaluator
from bestofn.testing.items import random_items
from bestofn.text.records import Item


def make_items(seed: int, q: int, n: int | tuple[int, int], *, ties: bool) -> list[Item]:
    """Random answers (some missing, some lower-case variants), PRM and ORM scores; with
    `ties` the scores come from a few values (equal scores and vote sums occur)."""
    return random_items(seed, q, n, none_rate=0.15, variants=["b"], unscored_rate=0.15,
                        ties=ties, orm=True, orm_none_rate=0.1)


@pytest.mark.parametrize("ties", [False, True])
def test_prefix_outcomes_equal_question_outcomes_on_the_first_k(ties):
    """Every method (the array path and the object path) on each question's first k
    solutions, all of them when it has fewer."""
    items = make_items(5, 30, (2, 7), ties=ties)
    methods, _ = outcome_matrix(items, seed=4)
    got = prefix_outcomes(items, [1, 3, 7, 9], methods, seed=4)
    for k, table in got.items():
        want = [[question_outcomes(sub_item(it, range(min(k, len(it.solutions)))),
                                   seed=4)[m] for m in methods] for it in items]
        assert table.tolist() == want, k


def test_curve_ns():
    assert curve_ns(64) == [1, 2, 4, 8, 16, 32, 64]
    assert curve_ns(5) == [1, 2, 4, 5]
    assert curve_ns(1) == [1]
    assert curve_ns(0) == []


@pytest.mark.parametrize("seed", [0, 7])
def test_bootstrap_equals_explicit_loop(seed):
    values = np.random.default_rng(100 + seed).random((23, 3)).round(2)
    values[:, 0] = values[:, 0] > 0.5
    b = 300
    lo, hi = bootstrap_interval(values, b=b, seed=seed)
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(b):
        idx = rng.integers(0, 23, size=23)
        means.append([math.fsum(values[i, m] for i in idx) / 23 for m in range(3)])
    for m in range(3):
        col = sorted(row[m] for row in means)

        def pct(p: float, col: list[float] = col) -> float:  # numpy's default "linear"
            x = p / 100 * (b - 1)
            j = math.floor(x)
            return col[j] + (x - j) * (col[min(j + 1, b - 1)] - col[j])

        assert lo[m] == pytest.approx(pct(2.5), abs=1e-12)
        assert hi[m] == pytest.approx(pct(97.5), abs=1e-12)


def test_accuracy_intervals_bracket_evaluate():
    items = make_items(1, 40, 8, ties=True)
    ev = evaluate(items, seed=3)
    ci = accuracy_intervals(items, seed=3, b=200)
    assert list(ci) == list(ev.accuracy) and "orm_weighted" in ci
    for m, est in ci.items():
        assert est.mean == pytest.approx(ev.accuracy[m], abs=1e-12)
        assert est.lo <= est.mean <= est.hi and est.hi - est.lo > 0
    assert accuracy_intervals(items, seed=3, b=200) == ci
    assert accuracy_intervals(items, seed=4, b=200) != ci


def test_outcome_matrix_skips_ungraded():
    items = make_items(2, 5, 4, ties=False)
    items[2].question.answer = None
    methods, m = outcome_matrix(items)
    assert m.shape == (4, len(methods)) and "oracle" in methods


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_equals_object_path_per_subset(seed, ties):
    """Each subset's outcome, every method, ties included: equal to question_outcomes."""
    items = make_items(seed, 6, 9, ties=ties)
    rng = np.random.default_rng(seed)
    for k in (1, 3, 6, 9):
        pos = np.stack([np.sort(np.stack([rng.permutation(9)[:k] for _ in range(40)]), axis=1)
                        for _ in items])
        fast = SubsetEvaluator(items, seed)
        methods = list(question_outcomes(items[0], seed=seed))
        assert all(fast.supports(m) for m in methods) and len(methods) == 13
        got = {m: fast.outcomes(m, pos) for m in methods}
        for g, it in enumerate(items):
            for d in range(40):
                ref = question_outcomes(sub_item(it, pos[g, d]), seed=seed)
                assert {m: got[m][g, d] for m in ref} == ref, (k, g, d)


def test_vectorised_curves_equal_object_curves():
    items = make_items(5, 10, (3, 8), ties=True)
    kw = dict(ns=[1, 2, 4, 8], draws=15, seed=2)
    fast, slow = accuracy_curves(items, **kw), accuracy_curves(items, vectorised=False, **kw)
    assert fast == slow
    assert fast.n_short == [0, 0, sum(len(it.solutions) < 4 for it in items),
                            sum(len(it.solutions) < 8 for it in items)]


def brute_force_mean(items: list[Item], k: int, seed: int) -> dict[str, float]:
    """Mean over questions of the mean over all C(n, k) subsets of each question."""
    per_q = []
    for it in items:
        subs = [question_outcomes(sub_item(it, c), seed=seed)
                for c in combinations(range(len(it.solutions)), k)]
        per_q.append({m: sum(s[m] for s in subs) / len(subs) for m in subs[0]})
    return {m: sum(r[m] for r in per_q) / len(per_q) for m in per_q[0]}


@pytest.mark.parametrize("ties", [True, False])
def test_subsampling_converges_to_exhaustive_enumeration(ties):
    items = make_items(11, 3, 5, ties=ties)
    ref = brute_force_mean(items, 2, seed=4)
    exact = accuracy_curves(items, ns=[2], seed=4, exhaustive=True)
    sampled = accuracy_curves(items, ns=[2], draws=4000, seed=4)
    assert set(exact.mean) == set(ref)
    for m, v in ref.items():
        assert exact.mean[m][0] == pytest.approx(v, abs=1e-12)
        assert exact.lo[m] == [None]
        # 3 questions x 4000 draws: standard error <= sqrt(0.25 / 12000) = 0.0046
        assert sampled.mean[m][0] == pytest.approx(v, abs=0.025), m
        assert sampled.lo[m][0] <= sampled.mean[m][0] <= sampled.hi[m][0]


def test_full_n_point_is_the_evaluate_accuracy():
    items = make_items(3, 12, 6, ties=True)
    curves = accuracy_curves(items, seed=9, draws=10)
    assert curves.ns == [1, 2, 4, 6]
    acc = evaluate(items, seed=9).accuracy
    for m, v in acc.items():
        p = curves.point(m, 6)
        assert p.mean == pytest.approx(v, abs=1e-12) and p.lo == p.hi == pytest.approx(v)
    # N=1: every method returns the single drawn solution's answer when it is scored
    assert curves.point("oracle", 1).mean == pytest.approx(curves.point("single", 1).mean)


def test_exhaustive_oracle_grows_with_n_and_refuses_large():
    items = make_items(4, 5, 6, ties=False)
    c = accuracy_curves(items, ns=[1, 2, 3, 4, 5, 6], exhaustive=True)
    oracle = c.mean["oracle"]
    assert all(oracle[i] <= oracle[i + 1] + 1e-12 for i in range(5)) and oracle[5] > oracle[0]
    assert c.mean["single"] == pytest.approx([c.mean["single"][0]] * 6)
    with pytest.raises(ValueError, match="C\\(6, 3\\) = 20 subsets"):
        accuracy_curves(items, ns=[3], exhaustive=True, max_subsets=10)


def test_curves_deterministic_and_seeded():
    items = make_items(6, 8, 8, ties=True)
    a = accuracy_curves(items, draws=30, seed=1)
    assert accuracy_curves(items, draws=30, seed=1) == a
    assert accuracy_curves(items, draws=30, seed=2) != a


def test_unknown_method_falls_back_to_object_path(monkeypatch):
    import bestofn.evaluation.curves as stats

    def with_extra(item: Item, *, seed: int = 0, rules=None) -> dict[str, float]:
        out = question_outcomes(item, seed=seed)
        out["first_correct"] = float(item.solutions[0].answer == item.question.answer)
        return out

    monkeypatch.setattr(stats, "question_outcomes", with_extra)
    items = make_items(8, 4, 4, ties=False)
    c = stats.accuracy_curves(items, ns=[4], draws=3)
    assert c.mean["first_correct"][0] == pytest.approx(
        sum(it.solutions[0].answer == it.question.answer for it in items) / 4)
