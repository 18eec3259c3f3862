"""Every selection method on many solution subsets at once, as array operations.

It computes exactly what `evaluate.question_outcomes` would on each sub-item under the strict
rules, ties included: votes are summed left to right in solution order (the same float
additions as `select.weighted_vote`), answers are coded in sorted string order so "the k-th of
the sorted tied answers" is "the k-th tied code", tied best-of-N solutions are taken in subset
order, and the draw among k tied candidates is `SelectionRules.tie_index`, the one `select`
uses. The ORM softmax uses `math.exp` and `math.fsum` like `select.orm_weights`. Other rule
sets are not vectorised (`supports` says no, and the curves fall back to `question_outcomes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..text.records import Item
from .select import BOUNDS, METHODS, STRICT, Method, SelectionRules, is_correct


class SubsetEvaluator:
    """Every method on many solution subsets of a few questions at once, as array operations.

    Built once per chunk of questions that have the same number of solutions; `outcomes(m,
    pos)` takes subsets as (questions, subsets, k) solution positions and returns the
    correctness of method `m` on each, equal to `question_outcomes(sub_item(...))[m]`.
    """

    def __init__(self, qs: list[Item], seed: int, rules: SelectionRules = STRICT) -> None:
        sizes = {len(it.solutions) for it in qs}
        assert len(sizes) == 1, f"one solution count per chunk, got {sorted(sizes)}"
        self.qs, self.seed, self.rules, self.size = qs, seed, rules, sizes.pop()
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
        if self.rules != STRICT:
            return False
        if method in BOUNDS:
            return True
        m = METHODS.get(method)
        if m is None or m.rule == "majority":
            return m is not None
        return all(m.scores(it) is not None for it in self.qs)

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
        m = METHODS[method]
        if m.rule == "majority":
            return self._majority(codes, rows)
        if m.rule == "best":
            return self._best(method, codes, ok, rows, self._scored(m)[rows[:, None], p])
        scores = self._softmax(m, rows, p) if m.softmax else self._scored(m)[rows[:, None], p]
        return self._vote(method, codes, rows, scores)

    def _scored(self, m: Method) -> np.ndarray:
        """Per-solution score under `m` (NaN = unscored): a PRM aggregate, the ORM reward."""
        if m.score_key not in self._scores:
            vals = [[_nan(s) for s in m.scores(it) or []] for it in self.qs]
            self._scores[m.score_key] = np.array(vals, dtype=np.float64).reshape(
                len(self.qs), self.size)
        return self._scores[m.score_key]

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

    def _softmax(self, m: Method, rows: np.ndarray, p: np.ndarray) -> np.ndarray:
        """`select.orm_weights` on each subset: exp(s - max) / fsum, NaN where unscored."""
        s = self._scored(m)[rows[:, None], p]
        scored = ~np.isnan(s)
        top = np.where(scored, s, -np.inf).argmax(axis=1)
        e = np.where(scored, self._exp(m)[rows[:, None], p[np.arange(len(p)), top][:, None], p],
                     0.0)
        total = np.array([math.fsum(r) for r in e.tolist()])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(scored, e / total[:, None], np.nan)

    def _exp(self, m: Method) -> np.ndarray:
        """exp(s_j - s_t) for every pair of a question's solutions: (questions, t, j).

        Only rows where t is a subset's maximum are read, so s_j > s_t (which could overflow)
        and unscored pairs (NaN compares false) are stored as 0.
        """
        key = f"{m.score_key}:exp"
        if key not in self._scores:
            s = self._scored(m).tolist()
            self._scores[key] = np.array(
                [[[math.exp(x - t) if x <= t else 0.0 for x in row] for t in row] for row in s],
                dtype=np.float64).reshape(len(s), self.size, self.size)
        return self._scores[key]

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
            self._ties[key] = self.rules.tie_index(k, self.seed, qid, method)
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
    return math.nan if x is None else float(x)
