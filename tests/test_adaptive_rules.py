"""Stopping rules against direct computations on hand-made answer streams, the Beta tail against
independent references, and the spec parser's errors."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from bestofn.adaptive import RULES, Drawn, format_rule, make_rule, parse_rule
from bestofn.adaptive.posterior import (
    beta_leader_prob,
    beta_upper_tail,
    dirichlet_leader_prob,
    top_two,
)
from bestofn.adaptive.rules import ESC, PRM, Beta, Dirichlet, Fixed


def first_stop(rule, answers, scores=None) -> int:
    """The first k at which the rule stops (k = len(answers) if never)."""
    for k in range(1, len(answers) + 1):
        part = None if scores is None else scores[:k]
        if rule.stop(Drawn(answers[:k], part, part)):  # scores double as confidences
            return k
    return len(answers)


# ---- the Beta tail ---------------------------------------------------------------------------

def test_beta_leader_prob_known_values():
    # Beta(2, 1): density 2x, P(X > 1/2) = 3/4; Beta(k + 1, 1): 1 - 2^-(k+1).
    assert beta_leader_prob(1, 0) == 0.75
    for k in range(8):
        assert beta_leader_prob(k, 0) == 1 - 0.5 ** (k + 1)
    # symmetric counts: exactly one half
    for k in range(10):
        assert beta_leader_prob(k, k) == 0.5


def test_beta_leader_prob_matches_a_direct_integral_and_monte_carlo():
    """A midpoint-rule integral of the Beta density (the published code integrates
    x^a (1-x)^b with quadrature) and 400k Monte Carlo draws, on random counts."""
    rng = random.Random(0)
    gen = np.random.default_rng(0)
    x = (np.arange(50_000) + 0.5) / 50_000
    for _ in range(12):
        a = rng.randint(0, 40)
        b = rng.randint(0, a)
        logf = a * np.log(x) + b * np.log1p(-x)
        f = np.exp(logf - logf.max())
        want = f[x > 0.5].sum() / f.sum()
        assert beta_leader_prob(a, b) == pytest.approx(want, abs=1e-6)
        mc = (gen.beta(a + 1, b + 1, size=200_000) > 0.5).mean()
        assert abs(beta_leader_prob(a, b) - mc) < 6e-3


def test_beta_upper_tail_matches_scipy_and_the_integer_formula():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(1)
    for _ in range(100):
        a, b = rng.uniform(0.05, 80), rng.uniform(0.05, 80)
        x = rng.uniform(0.01, 0.99)
        assert beta_upper_tail(a, b, x) == pytest.approx(scipy_stats.beta.sf(x, a, b),
                                                         abs=1e-10)
    for a in range(30):
        for b in range(a + 1):
            assert beta_upper_tail(a + 1, b + 1) == pytest.approx(beta_leader_prob(a, b),
                                                                  abs=1e-12)
    with pytest.raises(ValueError, match="must be > 0"):
        beta_upper_tail(0, 1)


def test_dirichlet_leader_prob_matches_monte_carlo_and_reduces_to_beta():
    gen = np.random.default_rng(2)
    rng = random.Random(2)
    for _ in range(8):
        counts = sorted((rng.randint(0, 25) for _ in range(rng.randint(3, 5))), reverse=True)
        counts[0] = max(counts[0], 1)
        d = gen.dirichlet(np.array(counts) + 1.0, size=200_000)
        mc = (d[:, 0] > d[:, 1:].max(axis=1)).mean()
        assert abs(dirichlet_leader_prob(tuple(counts)) - mc) < 6e-3, counts
    for a in range(12):
        for b in range(a + 1):
            assert dirichlet_leader_prob((a, b)) == pytest.approx(beta_leader_prob(a, b),
                                                                  abs=1e-7)
    assert dirichlet_leader_prob((1, 1, 1)) == pytest.approx(1 / 3, abs=1e-7)


def test_dirichlet_rule_is_beta_below_three_answers_and_stricter_above():
    assert first_stop(Dirichlet(), list("AAAAAAAA")) == first_stop(Beta(), list("AAAAAAAA"))
    stream = list("ABCAAAAAAAAAAAAAAAA")
    assert first_stop(Dirichlet(), stream) >= first_stop(Beta(), stream)
    probs = [dirichlet_leader_prob((k - 2, 1, 1)) for k in range(4, 19)]
    want = next(k for k, p in zip(range(4, 19), probs, strict=True) if p >= 0.95)
    assert first_stop(Dirichlet(), stream) == want


# ---- rules on hand-made streams ----------------------------------------------------------------

def direct_beta(answers, eps, min_n, max_n) -> int:
    """Adaptive-Consistency written out: the integral of x^a (1-x)^b over [1/2, 1] divided by
    the integral over [0, 1], both in closed form by expanding (1-x)^b."""
    def integral(a, b, lo):
        return sum(math.comb(b, j) * (-1) ** j * (1 - lo ** (a + j + 1)) / (a + j + 1)
                   for j in range(b + 1))
    for k in range(1, len(answers) + 1):
        if k >= max_n:
            return k
        if k < min_n:
            continue
        c = Counter(a for a in answers[:k] if a is not None).most_common(2)
        if not c:
            continue
        a, b = c[0][1], c[1][1] if len(c) > 1 else 0
        if integral(a, b, 0.5) / integral(a, b, 0.0) >= 1 - eps:
            return k
    return len(answers)


def test_beta_stops_after_four_agreeing_answers_at_the_default():
    rule = Beta()
    assert (rule.eps, rule.min_n, rule.max_n) == (0.05, 1, 64)
    assert first_stop(rule, list("AAAAAAAA")) == 4  # 1 - 2^-5 = 0.969 >= 0.95; 3: 0.9375
    assert first_stop(rule, list("ABAAAAAAAAAA")) == 7  # counts (6, 1): 0.965 >= 0.95


@pytest.mark.parametrize("seed", range(6))
def test_beta_matches_the_direct_computation_on_random_streams(seed):
    rng = random.Random(seed)
    for _ in range(40):
        n = rng.randint(1, 40)
        probs = [rng.random() for _ in range(4)]
        answers = rng.choices(["A", "B", "C", None], weights=probs, k=n)
        eps = rng.choice([0.2, 0.05, 0.01])
        min_n, max_n = rng.randint(1, 5), rng.randint(5, 40)
        rule = Beta(eps=eps, min_n=min_n, max_n=max_n)
        assert first_stop(rule, answers) == direct_beta(answers, eps, min_n, max_n)


def test_none_answers_never_vote_but_count_as_drawn():
    assert first_stop(Beta(), [None, None, "A", "A", "A", "A", "B"]) == 6
    assert first_stop(Beta(), [None] * 10) == 10  # never settled
    assert first_stop(Beta(max_n=5), [None] * 10) == 5  # but max_n stops it
    assert first_stop(ESC(w=2), [None, None, "A", "A"]) == 4


def test_ties_do_not_settle():
    assert not Beta(eps=0.49).stop(Drawn(list("AABB")))  # P = 1/2 < 0.51
    assert Beta(eps=0.5).stop(Drawn(list("AABB")))  # P = 1/2 >= 0.5
    assert not ESC(w=2).stop(Drawn(list("AB")))


def test_min_n_and_max_n_bound_every_rule():
    for name in RULES:
        rule = make_rule(name, min_n=6, max_n=9)
        scores = [1.0] * 20
        k = first_stop(rule, list("A" * 20), scores)
        assert 6 <= k <= 9, (name, k)
        assert first_stop(rule, list("ABCDABCDABCDABCD"), [0.5] * 16) <= 9
    assert first_stop(Fixed(max_n=7), list("A" * 20)) == 7


def test_esc_decides_per_window():
    rule = ESC()
    assert rule.w == 5
    assert first_stop(rule, list("AAAAA" + "BBBBB")) == 5
    # seven agreeing answers (3..9) straddling two windows do not stop; the third window does
    assert first_stop(rule, list("ABAAA" + "AAAAB" + "CCCCC")) == 15
    assert first_stop(ESC(w=3, max_n=7), list("ABCABCABC")) == 7


def test_esc_against_a_direct_loop_over_windows():
    rng = random.Random(3)
    for _ in range(200):
        w = rng.randint(1, 6)
        answers = rng.choices(["A", "B", None], weights=[6, 1, 1], k=rng.randint(1, 30))
        want = len(answers)
        for start in range(0, len(answers) - w + 1, w):
            win = answers[start:start + w]
            if win[0] is not None and len(set(win)) == 1:
                want = start + w
                break
        assert first_stop(ESC(w=w), answers) == want


def direct_prm(answers, scores, eps, max_n) -> int:
    for k in range(1, len(answers) + 1):
        if k >= max_n:
            return k
        w: dict[str, float] = {}
        for a, s in zip(answers[:k], scores[:k], strict=True):
            if a is not None and s is not None:
                w[a] = w.get(a, 0) + s
        top = sorted(w.values(), reverse=True) + [0.0, 0.0]
        if top[0] - top[1] > max_n - k:
            return k
        n = sum(1 for a, s in zip(answers[:k], scores[:k], strict=True)
                if a is not None and s is not None)
        total = sum(w.values())
        if eps > 0 and total > 0:
            c1, c2 = top[0] * n / total, top[1] * n / total
            x = (np.arange(100_000) + 0.5) / 100_000
            logf = c1 * np.log(x) + c2 * np.log1p(-x)
            f = np.exp(logf - logf.max())
            if f[x > 0.5].sum() / f.sum() >= 1 - eps + 1e-6:
                return k
    return len(answers)


def test_prm_safe_rule_never_stops_while_the_leader_can_be_overturned():
    rule = PRM(eps=0, max_n=8)
    # After 5 full-score votes for A: margin 5 > 3 remaining.
    assert first_stop(rule, list("AAAAAAAA"), [1.0] * 8) == 5
    # A margin of exactly the remaining samples could still be tied: no stop before.
    assert not rule.stop(Drawn(list("AAAA"), [1.0] * 4))
    # Low scores make votes light: at 0.5 each, k = 6 is the first with 0.5 k > 8 - k.
    assert first_stop(rule, list("AAAAAAAA"), [0.5] * 8) == 6
    assert first_stop(rule, list("AAAAAAAA"), [0.1] * 8) == 8  # 0.7 > 1 fails at k = 7


@pytest.mark.parametrize("seed", range(4))
def test_prm_matches_the_direct_computation_on_random_streams(seed):
    rng = random.Random(seed)
    for _ in range(25):
        n = rng.randint(1, 24)
        answers = rng.choices(["A", "B", "C", None], weights=[5, 2, 1, 1], k=n)
        scores = [None if rng.random() < 0.1 else rng.random() for _ in range(n)]
        eps, max_n = rng.choice([0.0, 0.05, 0.2]), rng.randint(4, 24)
        got = first_stop(PRM(eps=eps, max_n=max_n), answers, scores)
        assert got == direct_prm(answers, scores, eps, max_n)


def test_prm_needs_scores_and_is_scale_free():
    with pytest.raises(ValueError, match="needs per-sample verifier scores"):
        PRM().stop(Drawn(list("AAAA")))
    answers = list("AABAAABAAAAA")
    s = [0.9, 0.8, 0.3, 0.7, 0.9, 0.6, 0.2, 0.8, 0.9, 0.7, 0.8, 0.9]
    a = first_stop(PRM(eps=0.05), answers, s)
    b = first_stop(PRM(eps=0.05), answers, [x / 3 for x in s])
    assert a == b < len(answers)


def test_top_two():
    assert top_two({}) == (0.0, 0.0)
    assert top_two({"A": 2.0}) == (2.0, 0.0)
    assert top_two({"A": 1.0, "B": 3.0, "C": 2.0}) == (3.0, 2.0)


# ---- specs -------------------------------------------------------------------------------------

def test_parse_rule_round_trips_and_defaults():
    r = parse_rule("beta:eps=0.01,min_n=4,max_n=64")
    assert r == Beta(eps=0.01, min_n=4, max_n=64)
    assert parse_rule(format_rule(r)) == r
    assert parse_rule("esc") == ESC()
    assert parse_rule(" prm : eps=0 ") == PRM(eps=0.0)
    assert parse_rule("esc:w=8,max_n=40") == ESC(w=8, max_n=40)


@pytest.mark.parametrize(("spec", "msg"), [
    ("majority",
     "unknown stopping rule 'majority'.*known: beta, confidence, dirichlet, esc, fixed, prm"),
    ("beta:epsilon=0.1", "unknown parameter 'epsilon'; known: min_n, max_n, eps"),
    ("beta:eps=abc", "parameter 'eps' must be a number, got 'abc'"),
    ("esc:w=2.5", "parameter 'w' must be an integer, got '2.5'"),
    ("beta:min_n=8,max_n=4", r"max_n \(4\) < min_n \(8\)"),
    ("beta:eps=1.5", "eps must be in"),
    ("esc:w=0", "w must be >= 1"),
    ("beta:min_n=0", "min_n must be >= 1"),
    ("esc:w", "expected key=value"),
])
def test_bad_specs_are_refused_with_the_problem_named(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_rule(spec)


def test_make_rule_errors():
    with pytest.raises(ValueError, match="unknown stopping rule 'nope'"):
        make_rule("nope")
    with pytest.raises(ValueError, match="unknown parameter"):
        make_rule("esc", eps=0.1)


@pytest.mark.parametrize("spec", ["beta", "beta:eps=0.2,min_n=3,max_n=12", "esc", "dirichlet",
                                  "esc:w=3,min_n=4", "prm", "prm:eps=0,max_n=10",
                                  "prm:eps=0.3,min_n=2", "fixed:max_n=6"])
def test_incremental_first_stop_equals_asking_prefix_by_prefix(spec):
    rule = parse_rule(spec)
    rng = random.Random(spec)
    for _ in range(150):
        n = rng.randint(0, 30)
        answers = rng.choices(["A", "B", "C", None], weights=[6, 2, 1, 1], k=n)
        scores = [None if rng.random() < 0.1 else rng.random() for _ in range(n)]
        drawn = Drawn(answers, scores)
        assert rule.first_stop(drawn) == first_stop(rule, answers, scores), (answers, scores)
