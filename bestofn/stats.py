"""Uncertainty of the accuracy table: bootstrap intervals over questions, accuracy-vs-N curves.

Bootstrap: the questions are resampled with replacement `b` times (a seeded numpy Generator, one
`integers(0, Q, size=Q)` draw per resample) and each method's accuracy is recomputed from the
per-question correctness of `evaluate.question_outcomes`; the interval is the percentile
interval of those means.

Curves: for each N, every question keeps a random subset of N of its solutions (without
replacement, in their original order, the PRM/ORM scores alongside), every method is run on
that subset, and this is repeated `draws` times. A curve point is the mean over draws of the
across-question accuracy; its interval is the percentile interval of the per-draw
across-question accuracies (the spread due to which solutions were drawn, not due to which
questions were asked). A question with fewer than N solutions uses all of them.

The vectorised path computes exactly what `question_outcomes` would on each sub-item, ties
included: votes are summed left to right in solution order (the same float additions as
`select.weighted_vote`), answers are coded in sorted string order so "the k-th of the sorted
tied answers" is "the k-th tied code", tied best-of-N solutions are taken in subset order, and
the draw among k tied candidates is `random.Random(f"{seed}:{question_id}:{method}")
.choice(range(k))`, which depends only on k, exactly as `select` draws. The ORM softmax uses
`math.exp` and `math.fsum` like `evaluate.orm_weights`. Methods it does not know (a method added
to `evaluate` later) are computed on sub-items through `question_outcomes` instead.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from tqdm import tqdm

from .evaluate import ORM_METHODS, PRM_METHODS, TABLE_KEYS, question_outcomes
from .records import Item
from .select import is_correct

CI_LEVEL = 0.95
ROW_BUDGET = 2_000_000
"""Subset cells (questions x draws x N) processed at once; bounds memory on large runs."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval (None where no interval is defined)."""

    mean: float
    lo: float | None
    hi: float | None


def graded(items: Sequence[Item]) -> list[Item]:
    """The questions with a gold answer: the ones every accuracy is computed over."""
    return [it for it in items if it.question.answer is not None]


def method_order(rows: Sequence[dict[str, float]]) -> list[str]:
    """Methods present for every question: the table's order first, then any others."""
    if not rows:
        return []
    known = [*TABLE_KEYS, *PRM_METHODS, *ORM_METHODS]
    extra = [m for m in rows[0] if m not in known]
    return [m for m in dict.fromkeys([*known, *extra]) if all(m in r for r in rows)]


def outcome_matrix(items: Sequence[Item], *, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Methods and the (questions x methods) correctness of the graded questions."""
    return matrix_from_rows([question_outcomes(it, seed=seed) for it in graded(items)])


def matrix_from_rows(rows: Sequence[dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """`question_outcomes` rows (e.g. `Evaluation.per_question`) as methods and a matrix."""
    methods = method_order(rows)
    m = np.array([[r[k] for k in methods] for r in rows], dtype=np.float64)
    return methods, m.reshape(len(rows), len(methods))


def bootstrap_interval(values: np.ndarray, *, b: int = 1000, seed: int = 0,
                       level: float = CI_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the column means of `values` (questions x methods)."""
    v = np.asarray(values, dtype=np.float64)
    assert v.ndim in (1, 2) and len(v) > 0 and b > 0, (v.shape, b)
    rng = np.random.default_rng(seed % 2**64)
    q = len(v)
    means = np.empty((b, *v.shape[1:]))
    for i in range(b):
        means[i] = v[rng.integers(0, q, size=q)].mean(axis=0)
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
                       level: float = CI_LEVEL) -> dict[str, Estimate]:
    """Every method's accuracy over the graded questions with its bootstrap interval."""
    methods, m = outcome_matrix(items, seed=seed)
    return intervals(methods, m, seed=seed, b=b, level=level)


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


def accuracy_curves(items: Sequence[Item], *, ns: Sequence[int] | None = None, draws: int = 200,
                    seed: int = 0, level: float = CI_LEVEL, exhaustive: bool = False,
                    max_subsets: int = 20_000, vectorised: bool = True,
                    methods: Sequence[str] | None = None, progress: bool = False) -> Curves:
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
        methods = method_order([question_outcomes(it, seed=seed) for it in qs])
    methods = list(methods)
    ns = list(curve_ns(max((len(it.solutions) for it in qs), default=0)) if ns is None else ns)
    per_q = {n: {m: [np.empty(0)] * len(qs) for m in methods} for n in ns}
    bar = tqdm(total=len(qs), desc="accuracy vs N", unit="q", disable=not progress)
    for chunk in _chunks(qs, ns, draws, exhaustive, max_subsets):
        fast = SubsetEvaluator([qs[i] for i in chunk], seed) if vectorised else None
        for n in ns:
            got = _chunk_outcomes([qs[i] for i in chunk], methods, fast,
                                  _subsets(qs, chunk, n, draws, seed, exhaustive), seed)
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
                    pos: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Correctness (questions x subsets) per method; pos is (questions, subsets, k)."""
    vec = [m for m in methods if fast is not None and fast.supports(m)]
    out = fast.evaluate(vec, pos) if fast is not None and vec else {}
    rest = [m for m in methods if m not in out]
    if rest:
        slow = _object_outcomes(qs, pos, seed)
        out.update({m: slow[m] for m in rest})
    return out


def sub_item(item: Item, positions: Sequence[int]) -> Item:
    """The item restricted to the given solutions, scores kept in parallel."""
    p = [int(i) for i in positions]
    return Item(item.question, [item.solutions[i] for i in p],
                prm=None if item.prm is None else [item.prm[i] for i in p],
                orm=None if item.orm is None else [item.orm[i] for i in p])


def _object_outcomes(qs: list[Item], pos: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for g, it in enumerate(qs):
        for d, subset in enumerate(pos[g]):
            for m, v in question_outcomes(sub_item(it, subset), seed=seed).items():
                out.setdefault(m, np.zeros(pos.shape[:2]))[g, d] = v
    return out


class SubsetEvaluator:
    """Every method on many solution subsets of a few questions at once, as array operations.

    Built once per chunk of questions that have the same number of solutions; `outcomes(m,
    pos)` takes subsets as (questions, subsets, k) solution positions and returns the
    correctness of method `m` on each, equal to `question_outcomes(sub_item(...))[m]`.
    """

    def __init__(self, qs: list[Item], seed: int) -> None:
        sizes = {len(it.solutions) for it in qs}
        assert len(sizes) == 1, f"one solution count per chunk, got {sorted(sizes)}"
        self.qs, self.seed, self.size = qs, seed, sizes.pop()
        codes, code_ok = zip(*(_answer_codes(it) for it in qs), strict=True)
        self.codes = np.array(codes, dtype=np.int64).reshape(len(qs), self.size)
        width = max((len(c) for c in code_ok), default=0) or 1
        self.code_ok = np.zeros((len(qs), width), dtype=bool)
        for g, ok in enumerate(code_ok):
            self.code_ok[g, :len(ok)] = ok
        gold = [it.question.answer for it in qs]
        self.sol_ok = np.array([[is_correct(s.answer, g) for s in it.solutions]
                                for it, g in zip(qs, gold, strict=True)],
                               dtype=bool).reshape(len(qs), self.size)
        self._scores: dict[str, np.ndarray] = {}
        self._ties: dict[tuple[int, str, int], int] = {}

    def supports(self, method: str) -> bool:
        if method in ("majority", "oracle", "single"):
            return True
        if method in PRM_METHODS:
            return all(it.prm is not None for it in self.qs)
        return method in ORM_METHODS and all(it.orm is not None for it in self.qs)

    def outcomes(self, method: str, pos: np.ndarray) -> np.ndarray:
        return self.evaluate([method], pos)[method]

    def evaluate(self, methods: Sequence[str], pos: np.ndarray) -> dict[str, np.ndarray]:
        """Correctness (questions x subsets) of each method on subsets (questions, subsets, k)."""
        g, d, k = pos.shape
        rows = np.repeat(np.arange(g), d)
        p = pos.reshape(g * d, k)
        codes = self.codes[rows[:, None], p]
        ok = self.sol_ok[rows[:, None], p]
        return {m: self._one(m, rows, p, codes, ok).reshape(g, d) for m in methods}

    def _one(self, method: str, rows: np.ndarray, p: np.ndarray, codes: np.ndarray,
             ok: np.ndarray) -> np.ndarray:
        if method == "oracle":
            return ok.any(axis=1).astype(np.float64)
        if method == "single":
            return ok.sum(axis=1) / p.shape[1] if p.shape[1] else np.zeros(len(rows))
        if method == "majority":
            return self._majority(codes, rows)
        if method in PRM_METHODS:
            kind, how = PRM_METHODS[method]
            return self._by_kind(method, kind, codes, ok, rows,
                                 self._scored(how)[rows[:, None], p])
        if ORM_METHODS[method] == "best":
            return self._best(method, codes, ok, rows, self._scored("orm")[rows[:, None], p])
        return self._vote(method, codes, rows, self._softmax(rows, p))

    def _by_kind(self, method: str, kind: str, codes: np.ndarray, ok: np.ndarray,
                 rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if kind == "best":
            return self._best(method, codes, ok, rows, scores)
        return self._vote(method, codes, rows, scores)

    def _scored(self, how: str) -> np.ndarray:
        """Per-solution score (NaN = unscored): a PRM aggregate, or the ORM reward."""
        if how not in self._scores:
            if how == "orm":
                vals = [[math.nan if s is None else float(s) for s in it.orm or []]
                        for it in self.qs]
            else:
                vals = [[_nan(s.aggregate(how)) for s in it.prm or []] for it in self.qs]
            self._scores[how] = np.array(vals, dtype=np.float64).reshape(len(self.qs), self.size)
        return self._scores[how]

    def _majority(self, codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        width = self.code_ok.shape[1] + 1
        flat = (np.arange(len(codes))[:, None] * width + codes + 1).ravel()
        counts = np.bincount(flat, minlength=len(codes) * width).reshape(len(codes), width)
        weights = counts[:, 1:].astype(np.float64)
        return self._pick_vote("majority", weights, weights > 0, rows)

    def _vote(self, method: str, codes: np.ndarray, rows: np.ndarray,
              scores: np.ndarray) -> np.ndarray:
        """Sum per answer, added in solution order like `select.weighted_vote`."""
        valid = (codes >= 0) & ~np.isnan(scores)
        r, width = len(codes), self.code_ok.shape[1]
        cells = np.arange(r)[:, None] * width + np.where(valid, codes, 0)
        add = np.where(valid, scores, 0.0)
        weights = np.zeros(r * width)
        for j in range(codes.shape[1]):
            weights[cells[:, j]] += add[:, j]
        present = np.bincount(cells[valid], minlength=r * width) > 0
        weights, present = weights.reshape(r, width), present.reshape(r, width)
        return self._pick_vote(method, weights, present, rows)

    def _pick_vote(self, method: str, weights: np.ndarray, present: np.ndarray,
                   rows: np.ndarray) -> np.ndarray:
        top = np.where(present, weights, -np.inf).max(axis=1, initial=-np.inf)
        tied = present & (weights == top[:, None])
        k = tied.sum(axis=1)
        code = _nth_true(tied, self._tie_index(method, rows, k))
        return ((k > 0) & self.code_ok[rows, code]).astype(np.float64)

    def _best(self, method: str, codes: np.ndarray, ok: np.ndarray, rows: np.ndarray,
              scores: np.ndarray) -> np.ndarray:
        valid = (codes >= 0) & ~np.isnan(scores)
        top = np.where(valid, scores, -np.inf).max(axis=1, initial=-np.inf)
        tied = valid & (scores == top[:, None])
        k = tied.sum(axis=1)
        j = _nth_true(tied, self._tie_index(method, rows, k))
        return ((k > 0) & ok[np.arange(len(ok)), j]).astype(np.float64)

    def _softmax(self, rows: np.ndarray, p: np.ndarray) -> np.ndarray:
        """`evaluate.orm_weights` on each subset: exp(s - max) / fsum, NaN where unscored."""
        s = self._scored("orm")[rows[:, None], p]
        scored = ~np.isnan(s)
        top = np.where(scored, s, -np.inf).argmax(axis=1)
        e = np.where(scored, self._exp()[rows[:, None], p[np.arange(len(p)), top][:, None], p],
                     0.0)
        total = np.array([math.fsum(r) for r in e.tolist()])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(scored, e / total[:, None], np.nan)

    def _exp(self) -> np.ndarray:
        """exp(s_j - s_t) for every pair of a question's solutions: (questions, t, j).

        Only rows where t is a subset's maximum are read, so s_j > s_t (which could overflow)
        and unscored pairs (NaN compares false) are stored as 0.
        """
        if "orm_exp" not in self._scores:
            s = self._scored("orm").tolist()
            self._scores["orm_exp"] = np.array(
                [[[math.exp(x - t) if x <= t else 0.0 for x in row] for t in row] for row in s],
                dtype=np.float64).reshape(len(s), self.size, self.size)
        return self._scores["orm_exp"]

    def _tie_index(self, method: str, rows: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Which of k tied candidates `select` draws: choice(range(k)) under its seed."""
        out = np.zeros(len(k), dtype=np.int64)
        need = np.flatnonzero(k > 1)
        if len(need):
            pairs, inverse = np.unique(np.stack([rows[need], k[need]], axis=1), axis=0,
                                       return_inverse=True)
            picks = np.array([self._tie(int(g), method, int(n)) for g, n in pairs])
            out[need] = picks[inverse.ravel()]
        return out

    def _tie(self, g: int, method: str, k: int) -> int:
        key = (g, method, k)
        if key not in self._ties:
            qid = self.qs[g].question.id
            self._ties[key] = random.Random(f"{self.seed}:{qid}:{method}").choice(range(k))
        return self._ties[key]


def _answer_codes(item: Item) -> tuple[list[int], list[bool]]:
    """Answers as codes in sorted string order (-1: none), and which codes are correct."""
    distinct = sorted({a for a in item.answers if a is not None})
    code = {a: i for i, a in enumerate(distinct)}
    gold = item.question.answer
    return ([-1 if a is None else code[a] for a in item.answers],
            [is_correct(a, gold) for a in distinct])


def _nth_true(mask: np.ndarray, nth: np.ndarray) -> np.ndarray:
    """Column of the nth (0-based) True of each row; 0 for rows with fewer."""
    hit = mask & (np.cumsum(mask, axis=1) == (nth + 1)[:, None])
    return hit.argmax(axis=1)


def _nan(x: float | None) -> float:
    return math.nan if x is None else x
