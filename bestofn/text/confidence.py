"""Confidence from the policy's own token log-probabilities (DeepConf, Fu et al. 2025).

As in facebookresearch/deepconf (`helper.py`, `analysis_offline.py`):
- token confidence: minus the mean of the log-probabilities the engine returned for that
  position (the top k, plus the sampled token when it is not among them: what vLLM's
  `logprobs=k` returns);
- group confidence: the mean token confidence over each sliding window of `window` tokens
  (stride 1; default 2048, DeepConf's); a trace shorter than the window has one group, its mean;
- per-solution summaries (stored in `Solution.meta["confidence"]`, never the tokens):
  `mean` (all tokens), `lowest_group` (the smallest group confidence: DeepConf's online
  measure), `bottom10_group` (the mean of the lowest 10% of group confidences, at least one:
  their offline "bottom-10"), `tail` (the mean over the last 2048 tokens).
Unlike their code, nothing is rounded to 3 decimals.

Selection (`confidence_weighted`, `confidence_filtered`) uses `SELECT_SUMMARY` (lowest group):
- `confidence_weighted`: each solution votes its confidence for its answer;
- `confidence_filtered`: DeepConf's offline filter: keep the solutions whose confidence is at
  least the (1 - keep) percentile (numpy's linear percentile, ties kept) of the question's
  confidences, `keep` = 10% (their DeepConf-low, the filter of their offline analysis), then
  the confidence-weighted vote among them, as theirs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .records import Solution

DEFAULT_WINDOW = 2048
TAIL_TOKENS = 2048
BOTTOM_FRACTION = 0.1
KEEP_FRACTION = 0.1
SELECT_SUMMARY = "lowest_group"
META_KEY = "confidence"
SUMMARIES = ("mean", "lowest_group", "bottom10_group", "tail")


def token_confidences(position_logprobs: Sequence[Sequence[float]]) -> list[float]:
    """-mean of each position's returned log-probabilities (positions with none are skipped,
    as in DeepConf)."""
    return [-math.fsum(lp) / len(lp) for lp in position_logprobs if len(lp)]


def group_confidences(confs: Sequence[float], window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Mean confidence of every window of `window` consecutive tokens (one window, the whole
    trace, when it is shorter)."""
    c = np.asarray(confs, dtype=np.float64)
    if not len(c):
        return c
    if len(c) < window:
        return np.array([c.mean()])
    s = np.concatenate([[0.0], np.cumsum(c)])
    return (s[window:] - s[:-window]) / window


@dataclass(frozen=True)
class Confidence:
    """One solution's confidence summaries (higher = more confident)."""

    mean: float
    lowest_group: float
    bottom10_group: float
    tail: float
    tokens: int
    window: int
    k: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Confidence:
        return cls(**{k: d[k] for k in ("mean", "lowest_group", "bottom10_group", "tail",
                                         "tokens", "window")}, k=d.get("k"))


def summarize(position_logprobs: Sequence[Sequence[float]], *, window: int = DEFAULT_WINDOW,
              k: int | None = None) -> Confidence | None:
    """The summaries of one trace's per-position log-probabilities (None: no token)."""
    confs = token_confidences(position_logprobs)
    if not confs:
        return None
    groups = group_confidences(confs, window)
    n_bottom = max(1, int(len(groups) * BOTTOM_FRACTION))
    bottom = np.partition(groups, n_bottom - 1)[:n_bottom]
    return Confidence(mean=float(np.mean(confs)), lowest_group=float(groups.min()),
                      bottom10_group=float(bottom.mean()),
                      tail=float(np.mean(confs[-TAIL_TOKENS:])), tokens=len(confs),
                      window=window, k=k)


def meta_of(position_logprobs: Sequence[Sequence[float]], *, window: int,
            k: int | None) -> dict[str, Any]:
    """`{"confidence": {...}}` for a solution's meta (empty when there is no token)."""
    c = summarize(position_logprobs, window=window, k=k)
    return {} if c is None else {META_KEY: c.to_dict()}


def solution_confidence(sol: Solution, summary: str = SELECT_SUMMARY) -> float | None:
    d = sol.meta.get(META_KEY)
    if not isinstance(d, dict) or summary not in d:
        return None
    return float(d[summary])


def confidences(sols: Sequence[Solution], summary: str = SELECT_SUMMARY) -> list[float | None]:
    return [solution_confidence(s, summary) for s in sols]


def has_confidence(sols: Sequence[Solution]) -> bool:
    return any(isinstance(s.meta.get(META_KEY), dict) for s in sols)


def keep_top(confs: Sequence[float | None], keep: float = KEEP_FRACTION) -> list[float | None]:
    """The confidences at or above the (1 - keep) percentile; the others become None."""
    got = [c for c in confs if c is not None]
    if not got:
        return list(confs)
    bar = float(np.percentile(got, 100 * (1 - keep)))
    return [c if c is not None and c >= bar else None for c in confs]
