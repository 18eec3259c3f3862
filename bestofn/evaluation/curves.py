"""Accuracy-vs-N curves: every method when only N of each question's solutions are available.

For each N, every question keeps a random subset of N of its solutions (without replacement, in
their original order, the PRM/ORM scores alongside), every method is run on that subset, and
this is repeated `draws` times. A curve point is the mean over draws of the across-question
accuracy; its interval is the percentile interval of the per-draw across-question accuracies
(the spread due to which solutions were drawn, not due to which questions were asked). A
question with fewer than N solutions uses all of them. The array path is
`bestofn.evaluation.subsets`;
methods or rules it does not cover go through `evaluate.question_outcomes` on sub-items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from tqdm import tqdm

from ..config import ReportOptions
from ..console import progress_file
from ..text.records import Item
from .evaluate import graded, method_order, question_outcomes
from .intervals import CI_LEVEL, Estimate
from .select import STRICT, SelectionRules
from .subsets import SubsetEvaluator

ROW_BUDGET = 2_000_000
"""Subset cells (questions x draws x N) processed at once; bounds memory on large runs."""


def curve_ns(n_max: int) -> list[int]:
    """1, 2, 4, … up to `n_max`, and `n_max` itself when it is not a power of two."""
    ns = [1 << k for k in range(max(n_max, 1).bit_length()) if 1 << k <= n_max]
    return ns + [n_max] if n_max > 0 and ns[-1] != n_max else ns


@dataclass
class Curves:
    """Accuracy-vs-N: per method, one value per N in `ns` (fractions in [0, 1])."""

    ns: list[int]
    mean: dict[str, list[float]]
    lo: dict[str, list[float | None]]
    hi: dict[str, list[float | None]]
    draws: int
    exhaustive: bool = False
    level: float = CI_LEVEL
    n_short: list[int] = field(default_factory=list)
    """Per N, how many questions had fewer than N solutions (and used all of theirs)."""

    def point(self, method: str, n: int) -> Estimate:
        j = self.ns.index(n)
        return Estimate(self.mean[method][j], self.lo[method][j], self.hi[method][j])


def accuracy_curves(items: Sequence[Item], *, ns: Sequence[int] | None = None,
                    draws: int = ReportOptions.draws,
                    seed: int = 0, level: float = CI_LEVEL, exhaustive: bool = False,
                    max_subsets: int = 20_000, vectorised: bool = True,
                    methods: Sequence[str] | None = None, progress: bool = False,
                    rules: SelectionRules = STRICT) -> Curves:
    """Accuracy of every method when only N of each question's solutions are available.

    `seed` seeds both the subset draws and the selection tie-breaks (as in `evaluate`).
    `exhaustive` enumerates every subset instead of drawing (exact means, no interval; refused
    when a question has more than `max_subsets` subsets). `vectorised=False` runs
    `question_outcomes` on every sub-item (the reference the fast path is tested against).
    `methods` (default: every method `question_outcomes` gives for all questions) must be
    methods it gives.
    """
    qs = graded(items)
    if methods is None:
        methods = method_order([question_outcomes(it, seed=seed, rules=rules) for it in qs])
    methods = list(methods)
    ns = list(curve_ns(max((len(it.solutions) for it in qs), default=0)) if ns is None else ns)
    per_q = {n: {m: [np.empty(0)] * len(qs) for m in methods} for n in ns}
    bar = tqdm(total=len(qs), desc="accuracy vs N", unit="q", disable=not progress,
               file=progress_file())
    for chunk in _chunks(qs, ns, draws, exhaustive, max_subsets):
        fast = SubsetEvaluator([qs[i] for i in chunk], seed, rules) if vectorised else None
        for n in ns:
            got = _chunk_outcomes([qs[i] for i in chunk], methods, fast,
                                  _subsets(qs, chunk, n, draws, seed, exhaustive), seed, rules)
            for m in methods:
                for j, i in enumerate(chunk):
                    per_q[n][m][i] = got[m][j]
        bar.update(len(chunk))
    bar.close()
    out = Curves(ns, {m: [] for m in methods}, {m: [] for m in methods},
                 {m: [] for m in methods}, draws=draws, exhaustive=exhaustive, level=level,
                 n_short=[sum(len(it.solutions) < n for it in qs) for n in ns])
    for n in ns:
        for m in methods:
            est = _summarise(per_q[n][m], exhaustive, level)
            out.mean[m].append(est.mean)
            out.lo[m].append(est.lo)
            out.hi[m].append(est.hi)
    return out


def prefix_outcomes(items: Sequence[Item], ks: Sequence[int], methods: Sequence[str], *,
                    seed: int = 0, rules: SelectionRules = STRICT) -> dict[int, np.ndarray]:
    """Per k, the correctness (graded questions x `methods`) when every question keeps its
    first k solutions (all of them when it has fewer): a fixed-N run of k samples, as the
    samples were drawn. The subset path of the curves, with one subset per question."""
    qs = graded(items)
    out = {k: np.zeros((len(qs), len(methods))) for k in ks}
    for chunk in _chunks(qs, list(ks), 1, False, 0):
        part = [qs[i] for i in chunk]
        fast = SubsetEvaluator(part, seed, rules)
        size = len(part[0].solutions)
        for k in ks:
            first = np.arange(min(k, size), dtype=np.int64)
            pos = np.broadcast_to(first, (len(chunk), 1, len(first)))
            got = _chunk_outcomes(part, list(methods), fast, pos, seed, rules)
            for j, m in enumerate(methods):
                out[k][chunk, j] = got[m][:, 0]
    return out


def _summarise(per_q: list[np.ndarray], exhaustive: bool, level: float) -> Estimate:
    """Sampled: per_q is one (draws,) row per question; exhaustive: one row of all subsets."""
    if not per_q:
        return Estimate(0.0, None, None)
    if exhaustive:
        return Estimate(float(np.mean([r.mean() for r in per_q])), None, None)
    per_draw = np.stack(per_q).mean(axis=0)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(per_draw, [tail, 100 - tail])
    return Estimate(float(per_draw.mean()), float(lo), float(hi))


def _chunks(qs: list[Item], ns: list[int], draws: int, exhaustive: bool,
            max_subsets: int) -> list[list[int]]:
    """Indices of questions with the same solution count, in pieces within ROW_BUDGET."""
    by_size: dict[int, list[int]] = {}
    for i, it in enumerate(qs):
        by_size.setdefault(len(it.solutions), []).append(i)
    out = []
    for size, idx in sorted(by_size.items()):
        cells = max((_count(size, min(n, size), max_subsets) if exhaustive else draws)
                    * min(n, size) for n in ns) if ns else 1
        step = max(1, ROW_BUDGET // max(1, cells))
        out += [idx[i:i + step] for i in range(0, len(idx), step)]
    return out


def _subsets(qs: list[Item], chunk: list[int], n: int, draws: int, seed: int,
             exhaustive: bool) -> np.ndarray:
    """(questions, subsets, k) solution positions, k = min(n, solutions), each row sorted."""
    size = len(qs[chunk[0]].solutions)
    k = min(n, size)
    if exhaustive:
        every = np.array(list(combinations(range(size), k)), dtype=np.int64)
        return np.broadcast_to(every.reshape(-1, k), (len(chunk), math.comb(size, k), k))
    return np.stack([_draw(size, k, draws, (seed % 2**64, n, i)) for i in chunk])


def _draw(size: int, k: int, draws: int, key: tuple[int, ...]) -> np.ndarray:
    """`draws` uniform k-subsets of range(size), each sorted: (draws, k)."""
    rng = np.random.default_rng(key)
    return np.sort(rng.random((draws, size)).argsort(axis=1)[:, :k], axis=1)


def _count(size: int, k: int, max_subsets: int) -> int:
    count = math.comb(size, k)
    if count > max_subsets:
        raise ValueError(f"exhaustive curve: C({size}, {k}) = {count} subsets exceeds "
                         f"max_subsets={max_subsets}; draw subsets instead")
    return count


def _chunk_outcomes(qs: list[Item], methods: list[str], fast: SubsetEvaluator | None,
                    pos: np.ndarray, seed: int,
                    rules: SelectionRules) -> dict[str, np.ndarray]:
    """Correctness (questions x subsets) per method; pos is (questions, subsets, k)."""
    vec = [m for m in methods if fast is not None and fast.supports(m)]
    out = fast.evaluate(vec, pos) if fast is not None and vec else {}
    rest = [m for m in methods if m not in out]
    if rest:
        slow = _object_outcomes(qs, pos, seed, rules)
        out.update({m: slow[m] for m in rest})
    return out


def sub_item(item: Item, positions: Sequence[int]) -> Item:
    """The item restricted to the given solutions, scores kept in parallel."""
    p = [int(i) for i in positions]
    return Item(item.question, [item.solutions[i] for i in p],
                prm=None if item.prm is None else [item.prm[i] for i in p],
                orm=None if item.orm is None else [item.orm[i] for i in p])


def _object_outcomes(qs: list[Item], pos: np.ndarray, seed: int,
                     rules: SelectionRules) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for g, it in enumerate(qs):
        for d, subset in enumerate(pos[g]):
            for m, v in question_outcomes(sub_item(it, subset), seed=seed, rules=rules).items():
                out.setdefault(m, np.zeros(pos.shape[:2]))[g, d] = v
    return out
