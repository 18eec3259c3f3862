"""Selection rules against direct computations on random inputs."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from bestofn.evaluation.select import best_of_n, is_correct, majority_vote, oracle, weighted_vote
from bestofn.text.records import StepScores


def random_case(rng: random.Random, n: int):
    answers = [rng.choice(["A", "B", "C", None]) for _ in range(n)]
    scores = [rng.choice([None, round(rng.random(), 1)]) for _ in range(n)]
    return answers, scores


@pytest.mark.parametrize("seed", range(40))
def test_methods_match_direct_computation(seed):
    rng = random.Random(seed)
    answers, scores = random_case(rng, rng.randint(1, 12))
    counts = Counter(a for a in answers if a is not None)
    maj = majority_vote(answers, seed=seed, key="q")
    if counts:
        assert counts[maj.answer] == max(counts.values())
        assert maj.weights == {a: float(c) for a, c in counts.items()}
    else:
        assert maj.answer is None and maj.reason
    sums: dict[str, float] = {}
    for a, s in zip(answers, scores, strict=True):
        if a is not None and s is not None:
            sums[a] = sums.get(a, 0.0) + s
    wv = weighted_vote(answers, scores, seed=seed, key="q")
    assert (wv.answer is None) == (not sums)
    if sums:
        assert sums[wv.answer] == max(sums.values())
    bon = best_of_n(answers, scores, seed=seed, key="q")
    valid = [(s, a) for a, s in zip(answers, scores, strict=True) if a and s is not None]
    if valid:
        assert scores[bon.index] == max(s for s, _ in valid)
        assert answers[bon.index] == bon.answer is not None
    else:
        assert bon.answer is None and bon.index is None


def test_no_answer_never_wins_and_unscored_is_left_out():
    answers = [None, None, None, "B"]
    assert majority_vote(answers).answer == "B"
    assert weighted_vote(answers, [0.9, 0.9, 0.9, 0.1]).answer == "B"
    assert best_of_n(answers, [0.9, 0.9, 0.9, 0.1]).answer == "B"
    assert best_of_n(["A", "B"], [None, 0.2]).answer == "B"
    assert weighted_vote(["A", "B"], [None, 0.2]).answer == "B"
    sel = best_of_n(["A", "B"], [None, None])
    assert sel.answer is None and "no scored solution" in sel.reason


def test_ties_are_broken_by_a_seeded_draw():
    answers = ["A", "B", "C", "D"]
    picks = {majority_vote(answers, seed=s, key="q").answer for s in range(60)}
    assert picks == set(answers), "every tied candidate must be reachable"
    for s in range(5):
        a = majority_vote(answers, seed=s, key="q")
        b = majority_vote(list(reversed(answers)), seed=s, key="q")
        assert a.answer == b.answer, "the draw does not depend on list order"
        assert a.tied == sorted(answers)
    idx = {best_of_n(answers, [0.5] * 4, seed=s, key="q").index for s in range(60)}
    assert idx == {0, 1, 2, 3}
    assert best_of_n(answers, [0.5] * 4, seed=3, key="q") == best_of_n(
        answers, [0.5] * 4, seed=3, key="q")


@pytest.mark.parametrize("seed", range(20))
def test_aggregations_match_numpy_float64(seed):
    rng = np.random.default_rng(seed)
    p = rng.random(int(rng.integers(1, 12)))
    s = StepScores(tuple(p.tolist()))
    assert s.aggregate("min") == p.min()
    assert s.aggregate("final") == p[-1]
    assert math.isclose(s.aggregate("mean"), p.mean(), rel_tol=1e-12)
    assert math.isclose(s.aggregate("prod"), np.prod(p), rel_tol=1e-12)
    with pytest.raises(ValueError, match="unknown aggregation"):
        s.aggregate("max")


def test_unscored_needs_a_reason():
    assert StepScores.unscored("no marker").aggregate("min") is None
    with pytest.raises(AssertionError):
        StepScores(())


def test_oracle_and_correctness():
    assert oracle(["A", None, "C"], "C") and not oracle(["A", None], "C")
    assert not oracle(["A"], None)
    assert is_correct(" multiple  Sclerosis", "Multiple sclerosis")
    assert not is_correct(None, "A")


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one score per solution"):
        best_of_n(["A", "B"], [0.1])
