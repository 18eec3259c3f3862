"""Step-level verifier metrics: ProcessBench's first-error F1, step AUROC, Brier, ECE.

ProcessBench (Zheng et al. 2024; `code/run_eval_prm_*.py` in QwenLM/ProcessBench): a solution's
predicted first error is the first step whose score is below the threshold (-1 when none is);
a prediction matches when it equals the labelled first error (-1 for a correct solution).
`acc1` is the mean match over the erroneous solutions and `acc2` over the correct ones, both
multiplied by 100 as in their code, and the F1 is `2 * acc1 * acc2 / (acc1 + acc2)` on those
percentages (so it is in [0, 100]; the harmonic mean of the fractions, times 100). Where
`acc1 + acc2 == 0` their numpy division gives NaN; here it is 0 (the limit of the harmonic
mean). With no erroneous or no correct solution it is undefined (None).

Every metric takes optional per-record weights so that the bootstrap (records drawn with
replacement, `bestofn.evaluation.intervals.draws`) is a weighted evaluation: a record drawn c times
counts c times, exactly as if it were repeated.

A solution matches at threshold t iff lo < t <= hi, with (lo, hi] = (-inf, min of all scores]
for a correct solution and (score[L], min(score[:L])] for first error L (hi = +inf when L = 0):
no earlier step below t, step L below t. `best_threshold` uses these intervals to evaluate every
distinct threshold at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ECE_BINS = 10


def match_interval(scores: Sequence[float], first_error: int) -> tuple[float, float]:
    """(lo, hi]: the thresholds at which the prediction equals `first_error`."""
    assert scores and -1 <= first_error < len(scores), (len(scores), first_error)
    if first_error == -1:
        return -np.inf, float(min(scores))
    before = scores[:first_error]
    return float(scores[first_error]), float(min(before)) if before else np.inf


@dataclass(frozen=True)
class ProcessBench:
    """ProcessBench's three numbers, in percent as their code prints them (None: undefined)."""

    acc_erroneous: float | None
    acc_correct: float | None
    f1: float | None


def processbench(match: np.ndarray, erroneous: np.ndarray,
                 weights: np.ndarray | None = None) -> ProcessBench:
    """acc1 (erroneous), acc2 (correct) and their harmonic mean, all x100 (each accuracy in
    percent also when the other class is empty and the F1 is undefined)."""
    w = np.ones(len(match)) if weights is None else np.asarray(weights, dtype=np.float64)
    m = np.asarray(match, dtype=np.float64)
    e = np.asarray(erroneous, dtype=bool)
    acc1 = _percent(_wmean(m[e], w[e]))
    acc2 = _percent(_wmean(m[~e], w[~e]))
    if acc1 is None or acc2 is None:
        return ProcessBench(acc1, acc2, None)
    f1 = 0.0 if acc1 + acc2 == 0 else 2 * acc1 * acc2 / (acc1 + acc2)
    return ProcessBench(acc1, acc2, f1)


def _percent(x: float | None) -> float | None:
    return None if x is None else 100 * x


def _wmean(v: np.ndarray, w: np.ndarray) -> float | None:
    total = w.sum()
    return None if total == 0 else float((v * w).sum() / total)


def matches(lo: np.ndarray, hi: np.ndarray, threshold: float) -> np.ndarray:
    return (lo < threshold) & (threshold <= hi)


def best_threshold(lo: np.ndarray, hi: np.ndarray, erroneous: np.ndarray,
                   candidates: np.ndarray) -> tuple[float | None, float | None]:
    """The threshold of highest ProcessBench F1 and that F1 (first, i.e. smallest, on a tie).

    `candidates` should be every distinct step score plus one value above the largest: the
    predictions change only when the threshold passes a score, and `score < t` with t equal
    to a score s flags every score below s, so these values reach every distinct outcome.
    """
    e = np.asarray(erroneous, dtype=bool)
    t = np.unique(np.asarray(candidates, dtype=np.float64))
    if not e.any() or e.all() or not len(t):
        return None, None
    acc = []
    for group in (e, ~e):
        glo, ghi = lo[group], hi[group]
        ok = glo < ghi  # an empty interval never matches
        slo, shi = np.sort(glo[ok]), np.sort(ghi[ok])
        # #{lo < t <= hi} = #{lo < t} - #{hi < t}, since hi < t implies lo < t when lo < hi.
        n = np.searchsorted(slo, t, "left") - np.searchsorted(shi, t, "left")
        acc.append(100 * n / group.sum())
    a1, a2 = acc
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(a1 + a2 == 0, 0.0, 2 * a1 * a2 / (a1 + a2))
    k = int(np.argmax(f1))
    return float(t[k]), float(f1[k])


def threshold_candidates(all_scores: np.ndarray) -> np.ndarray:
    s = np.unique(np.asarray(all_scores, dtype=np.float64))
    return np.append(s, np.nextafter(s[-1], np.inf)) if len(s) else s


def auroc(scores: np.ndarray, labels: np.ndarray,
          weights: np.ndarray | None = None) -> float | None:
    """P(score of a positive > score of a negative) + half the ties (weighted Mann-Whitney);
    None without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    wp, wn = w[y].sum(), w[~y].sum()
    if wp == 0 or wn == 0:
        return None
    uniq, inv = np.unique(s, return_inverse=True)
    pos = np.bincount(inv, weights=w * y, minlength=len(uniq))
    neg = np.bincount(inv, weights=w * ~y, minlength=len(uniq))
    neg_below = np.cumsum(neg) - neg
    return float((pos * (neg_below + 0.5 * neg)).sum() / (wp * wn))


def brier(scores: np.ndarray, targets: np.ndarray,
          weights: np.ndarray | None = None) -> float | None:
    """Weighted mean squared difference between score and target (soft or hard label)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    return _wmean((s - y) ** 2, w)


def ece(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None,
        bins: int = ECE_BINS) -> float | None:
    """Expected calibration error: equal-width bins over [0, 1] (a score of 1 falls in the
    last); sum over bins of (bin mass / total) * |mean score - mean target|."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total == 0:
        return None
    b = np.clip((s * bins).astype(int), 0, bins - 1)
    mass = np.bincount(b, weights=w, minlength=bins)
    ssum = np.bincount(b, weights=w * s, minlength=bins)
    ysum = np.bincount(b, weights=w * y, minlength=bins)
    nz = mass > 0
    return float((np.abs(ssum[nz] - ysum[nz])).sum() / total)
