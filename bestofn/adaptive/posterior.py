"""Posterior probabilities that the current leader stays the leader, computed deterministically.

`beta_leader_prob` (integer counts, exact), `beta_upper_tail` (any positive parameters, the
regularised incomplete beta by its continued fraction) and `dirichlet_leader_prob` (every
observed answer, a one-dimensional integral) back the `beta`, `prm` and `dirichlet` rules.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def top_two(weights: dict[str, float]) -> tuple[float, float]:
    """The largest and second-largest values (0 when missing)."""
    if not weights:
        return 0.0, 0.0
    if len(weights) == 1:
        return next(iter(weights.values())), 0.0
    a, b = sorted(weights.values(), reverse=True)[:2]
    return a, b


@lru_cache(maxsize=65536)
def beta_leader_prob(a: int, b: int) -> float:
    """P(p > 1/2) for p ~ Beta(a + 1, b + 1), exactly, for integer counts a, b >= 0.

    The Beta(a + 1, b + 1) CDF at x is P(Binomial(a + b + 1, x) >= a + 1), so at x = 1/2 the
    upper tail is P(Binomial(n, 1/2) <= a) = sum_{j=0}^{a} C(n, j) / 2^n with n = a + b + 1
    (integer arithmetic, then one division).
    """
    n = a + b + 1
    return sum(math.comb(n, j) for j in range(a + 1)) / 2**n


def beta_upper_tail(alpha: float, beta: float, x: float = 0.5) -> float:
    """P(X > x) for X ~ Beta(alpha, beta), alpha, beta > 0: 1 - I_x(alpha, beta).

    The regularised incomplete beta by its continued fraction (modified Lentz), evaluated on
    the side where it converges fast (x < (alpha + 1) / (alpha + beta + 2)), with the symmetry
    I_x(a, b) = 1 - I_{1-x}(b, a) on the other side.
    """
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"Beta parameters must be > 0, got {alpha}, {beta}")
    if x <= 0:
        return 1.0
    if x >= 1:
        return 0.0
    log_front = (math.lgamma(alpha + beta) - math.lgamma(alpha) - math.lgamma(beta)
                 + alpha * math.log(x) + beta * math.log1p(-x))
    if x < (alpha + 1) / (alpha + beta + 2):
        return 1.0 - math.exp(log_front) * _betacf(alpha, beta, x) / alpha
    return math.exp(log_front) * _betacf(beta, alpha, 1 - x) / beta


def _betacf(a: float, b: float, x: float, iters: int = 300, tol: float = 1e-15) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, iters + 1):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < tol:
            break
    return h


@lru_cache(maxsize=65536)
def dirichlet_leader_prob(counts: tuple[int, ...], grid: int = 4001) -> float:
    """P(p_1 > p_i for every i > 1) for p ~ Dirichlet(counts + 1), `counts[0]` the leader's.

    With p_i = G_i / sum(G), G_i ~ Gamma(counts_i + 1) independent, this is P(G_1 > max G_i)
    = integral of f_1(x) prod_{i>1} F_i(x) dx, one dimension whatever the number of answers.
    The shapes are integers, so F_i(x) = 1 - e^-x sum_{j < k_i} x^j / j! exactly; the integral
    is Simpson's rule on [0, X], X far in the leader's tail (deterministic, error < 1e-7).
    """
    a = counts[0] + 1
    hi = a + 14 * math.sqrt(a) + 40
    x = np.linspace(0.0, hi, grid)
    x[0] = 1e-300
    logx = np.log(x)
    f1 = np.exp((a - 1) * logx - x - math.lgamma(a))
    prod = np.ones_like(x)
    for c in counts[1:]:
        j = np.arange(c + 1)[:, None]
        terms = np.exp(j * logx[None, :] - x[None, :] - np.array(
            [math.lgamma(v + 1) for v in range(c + 1)])[:, None])
        prod *= np.clip(1.0 - terms.sum(axis=0), 0.0, 1.0)
    y = f1 * prod
    h = hi / (grid - 1)
    return float(h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum()))


