"""Uncertainty of the accuracy table: percentile bootstrap intervals over questions.

The questions are resampled with replacement `b` times (a seeded numpy Generator, one
`integers(0, Q, size=Q)` draw per resample) and each column's mean is recomputed; the interval
is the percentile interval of those means. Used by the report, the adaptive-compute tables and
`prefs` (one definition of the draw).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..text.records import Item
from .evaluate import graded, method_order, question_outcomes
from .select import STRICT, SelectionRules

CI_LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval (None where no interval is defined)."""

    mean: float
    lo: float | None
    hi: float | None


def outcome_matrix(items: Sequence[Item], *, seed: int = 0,
                   rules: SelectionRules = STRICT) -> tuple[list[str], np.ndarray]:
    """Methods and the (questions x methods) correctness of the graded questions."""
    return matrix_from_rows([question_outcomes(it, seed=seed, rules=rules)
                             for it in graded(items)])


def matrix_from_rows(rows: Sequence[dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """`question_outcomes` rows (e.g. `Evaluation.per_question`) as methods and a matrix."""
    methods = method_order(rows)
    m = np.array([[r[k] for k in methods] for r in rows], dtype=np.float64)
    return methods, m.reshape(len(rows), len(methods))


def draws(q: int, *, b: int = 1000, seed: int = 0) -> Iterator[np.ndarray]:
    """The `b` resamples of `q` rows: one seeded `integers(0, q, size=q)` draw each."""
    rng = np.random.default_rng(seed % 2**64)
    for _ in range(b):
        yield rng.integers(0, q, size=q)


def bootstrap_interval(values: np.ndarray, *, b: int = 1000, seed: int = 0,
                       level: float = CI_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the column means of `values` (questions x methods)."""
    v = np.asarray(values, dtype=np.float64)
    assert v.ndim in (1, 2) and len(v) > 0 and b > 0, (v.shape, b)
    means = np.empty((b, *v.shape[1:]))
    for i, idx in enumerate(draws(len(v), b=b, seed=seed)):
        means[i] = v[idx].mean(axis=0)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail], axis=0)
    return lo, hi


def intervals(methods: Sequence[str], matrix: np.ndarray, *, seed: int = 0, b: int = 1000,
              level: float = CI_LEVEL) -> dict[str, Estimate]:
    """Mean and bootstrap interval of each column of a (questions x methods) matrix."""
    if not len(methods) or not len(matrix):
        return {}
    lo, hi = bootstrap_interval(matrix, b=b, seed=seed, level=level)
    mean = matrix.mean(axis=0)
    return {k: Estimate(float(mean[j]), float(lo[j]), float(hi[j]))
            for j, k in enumerate(methods)}


def accuracy_intervals(items: Sequence[Item], *, seed: int = 0, b: int = 1000,
                       level: float = CI_LEVEL,
                       rules: SelectionRules = STRICT) -> dict[str, Estimate]:
    """Every method's accuracy over the graded questions with its bootstrap interval."""
    methods, m = outcome_matrix(items, seed=seed, rules=rules)
    return intervals(methods, m, seed=seed, b=b, level=level)
