"""Stopping rules: when the samples drawn so far for one question have settled its answer.

A rule is pure: `stop(drawn)` looks at the answers (and, for verifier-aware rules, the per-sample
verifier scores) of the samples drawn so far for ONE question, in draw order, and says whether
to stop drawing. Every rule has `min_n` and `max_n`: it never stops before `min_n` samples and
always stops at `max_n` (`Bounds.stop` applies both around the rule's own `settled` test). A
sample with no extracted answer (`None`) never votes but counts as drawn.

Rules (`RULES`, `parse_rule("beta:eps=0.01,max_n=32")`; `fixed:max_n=N` is fixed N as a rule):

- `esc`: Early-Stopping Self-Consistency (Li et al., ICLR 2024). Samples are drawn in
  consecutive, non-overlapping windows of `w` (default 5, the paper's window; its Figure 1
  splits a budget of 20 into windows of 5 and stops at the first window whose answers are all
  the same, i.e. whose answer distribution has zero entropy). The decision is per window: the
  rule is asked after every sample but only says stop after a full window (k a multiple of
  `w`) whose `w` answers are identical and not None.
- `beta`: Adaptive-Consistency (Aggarwal et al., EMNLP 2023; `BetaStoppingCriteria` in
  Pranjal2041/AdaptiveConsistency). With v1 >= v2 the counts of the two most frequent answers,
  stop when P(p > 1/2 | p ~ Beta(v1 + 1, v2 + 1)) >= 1 - eps, the posterior probability that
  the leader stays ahead of the runner-up. With more than two answers this top-two Beta is the
  paper's tractable stand-in for the Dirichlet over all answers (their Dirichlet variant needs
  a Monte Carlo integral and is not the one they ship as default). Default eps = 0.05 (their
  default `conf_thresh` 0.95). For integer counts the probability is computed exactly: P(Beta(
  a + 1, b + 1) > 1/2) = P(Binomial(a + b + 1, 1/2) >= a + 1), a finite sum of binomial
  coefficients (no quadrature, no sampling).
- `dirichlet`: Adaptive-Consistency's Dirichlet criterion: P(the leader has the largest
  probability | p ~ Dirichlet(counts + 1) over every observed answer) >= 1 - eps; with fewer
  than three answers it is `beta`, as in their code. Their code integrates by Monte Carlo;
  here it is a deterministic one-dimensional integral (`posterior.dirichlet_leader_prob`).
- `prm`: verifier-aware, for PRM-weighted vote (and reported for PRM best-of-N). Each sample
  with an answer and a score s in [0, 1] votes s for its answer (as `select.weighted_vote`).
  W1 >= W2 are the leader's and the runner-up's summed scores after k samples.
  * Safe: with r = max_n - k samples still allowed, each able to add at most 1 (a PRM score is
    a probability) to one answer, the leader cannot be overturned when W1 - W2 > r; the
    weighted vote at max_n is then the one already in hand, whatever the rest would say.
  * Probabilistic (eps > 0): the summed scores, rescaled so that they add up to the number of
    scored samples with an answer (c_a = W_a / mean score: an answer whose samples the
    verifier likes more than average gets more than one vote per sample, and the rule does not
    depend on the scale of the scores, exactly like the weighted vote itself), are treated as
    Adaptive-Consistency's counts: stop when P(Beta(c1 + 1, c2 + 1) > 1/2) >= 1 - eps. The
    regularised incomplete beta for these non-integer counts is a continued fraction
    (`beta_upper_tail`). Stop when either test holds; eps = 0 is the safe rule alone.
  Default eps = 0.05, the same confidence level as `beta`.
- `confidence`: DeepConf's online rule (Fu et al. 2025, facebookresearch/deepconf
  `deepconf-online.py`), with the trace-level part made a pure rule. Each sample's confidence
  is its lowest group confidence (`bestofn.text.confidence`; sample with `--logprobs K`). The first
  `warmup` samples (default 16, theirs) set the bar: the (1 - keep) percentile of their
  confidences (keep = 0.9: DeepConf-high, the 10th percentile; keep = 0.1: DeepConf-low, the
  90th). Samples below the bar are discarded (theirs stops them mid-generation; here they
  are drawn whole and left out of the vote), the others vote their confidence, and the rule
  stops when the leader's share of the vote reaches `tau` (default 0.95, theirs). It never
  stops before `warmup` samples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from ..specs import parse_spec
from ..text.confidence import solution_confidence
from ..text.records import Solution, StepScores
from .posterior import beta_leader_prob, beta_upper_tail, dirichlet_leader_prob, top_two

DEFAULT_MAX_N = 64
"""A question never draws more than this many samples unless the rule says otherwise."""


@dataclass(frozen=True)
class Drawn:
    """What one question has drawn so far, in draw order. `scores` (a verifier aggregate per
    sample, e.g. PRM min, None for unscored) and `confidences` run parallel to `answers`."""

    answers: Sequence[str | None]
    scores: Sequence[float | None] | None = None
    confidences: Sequence[float | None] | None = None

    def __len__(self) -> int:
        return len(self.answers)

    def prefix(self, k: int) -> Drawn:
        """The first k samples."""
        return Drawn(self.answers[:k], None if self.scores is None else self.scores[:k],
                     None if self.confidences is None else self.confidences[:k])


@runtime_checkable
class StoppingRule(Protocol):
    """Stop or not, given one question's samples so far. `needs` names the per-sample inputs
    beyond the answers that the rule reads ("scores", "confidences")."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]
    min_n: int
    max_n: int

    def stop(self, drawn: Drawn) -> bool: ...


@dataclass(frozen=True)
class Bounds:
    """`min_n` <= samples <= `max_n`, shared by every rule; subclasses define `settled`."""

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    min_n: int = 1
    max_n: int = DEFAULT_MAX_N

    def __post_init__(self) -> None:
        if self.min_n < 1:
            raise ValueError(f"rule {self.name!r}: min_n must be >= 1, got {self.min_n}")
        if self.max_n < self.min_n:
            raise ValueError(f"rule {self.name!r}: max_n ({self.max_n}) < min_n ({self.min_n})")

    def stop(self, drawn: Drawn) -> bool:
        k = len(drawn)
        if k >= self.max_n:
            return True
        if k < self.min_n:
            return False
        return self.settled(drawn)

    def settled(self, drawn: Drawn) -> bool:
        raise NotImplementedError

    def first_stop(self, full: Drawn) -> int:
        """The first k at which `stop` holds on the first k samples of `full`, or len(full)
        when none does. Asking prefix by prefix costs O(n^2); rules override this with one
        incremental pass that gives the same k (tests hold them to this loop)."""
        for k in range(1, len(full) + 1):
            if self.stop(full.prefix(k)):
                return k
        return len(full)

    def _cap(self, full: Drawn) -> int:
        return min(len(full), self.max_n)


@dataclass(frozen=True)
class ESC(Bounds):
    """Early-Stopping Self-Consistency: stop after a window of `w` identical answers."""

    name: ClassVar[str] = "esc"
    w: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.w < 1:
            raise ValueError(f"rule 'esc': w must be >= 1, got {self.w}")

    def settled(self, drawn: Drawn) -> bool:
        k = len(drawn)
        if k % self.w:
            return False
        window = drawn.answers[k - self.w:]
        return window[0] is not None and all(a == window[0] for a in window)

    def first_stop(self, full: Drawn) -> int:
        cap = self._cap(full)
        first = max(self.w, -(-self.min_n // self.w) * self.w)
        for k in range(first, cap, self.w):
            if self.settled(full.prefix(k)):
                return k
        return cap


@dataclass(frozen=True)
class Beta(Bounds):
    """Adaptive-Consistency: stop when P(leader stays ahead of the runner-up) >= 1 - eps."""

    name: ClassVar[str] = "beta"
    eps: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.eps < 1:
            raise ValueError(f"rule 'beta': eps must be in (0, 1), got {self.eps}")

    def settled(self, drawn: Drawn) -> bool:
        counts = Counter(a for a in drawn.answers if a is not None)
        if not counts:
            return False
        (_, a), *rest = counts.most_common(2)
        return beta_leader_prob(a, rest[0][1] if rest else 0) >= 1 - self.eps

    def first_stop(self, full: Drawn) -> int:
        cap = self._cap(full)
        counts: dict[str, int] = {}
        for k, a in enumerate(full.answers[:cap - 1], 1):
            if a is not None:
                counts[a] = counts.get(a, 0) + 1
            if k >= self.min_n and counts:
                v1, v2 = top_two(counts)
                if beta_leader_prob(int(v1), int(v2)) >= 1 - self.eps:
                    return k
        return cap


@dataclass(frozen=True)
class Dirichlet(Bounds):
    """Adaptive-Consistency's Dirichlet criterion over every observed answer, computed exactly
    (their code: Monte Carlo); with fewer than three answers it is the Beta rule, as theirs."""

    name: ClassVar[str] = "dirichlet"
    eps: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.eps < 1:
            raise ValueError(f"rule 'dirichlet': eps must be in (0, 1), got {self.eps}")

    def settled(self, drawn: Drawn) -> bool:
        counts = sorted(Counter(a for a in drawn.answers if a is not None).values(),
                        reverse=True)
        if not counts:
            return False
        if len(counts) < 3:
            return beta_leader_prob(counts[0], counts[1] if len(counts) > 1 else 0) >= 1 - self.eps
        return dirichlet_leader_prob(tuple(counts)) >= 1 - self.eps


@dataclass(frozen=True)
class PRM(Bounds):
    """Verifier-weighted vote settled: safe margin bound, or score-weighted Beta (eps > 0)."""

    name: ClassVar[str] = "prm"
    needs: ClassVar[frozenset[str]] = frozenset({"scores"})
    eps: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.eps < 1:
            raise ValueError(f"rule 'prm': eps must be in [0, 1), got {self.eps}")

    def settled(self, drawn: Drawn) -> bool:
        if drawn.scores is None:
            raise ValueError("rule 'prm' needs per-sample verifier scores (PRM); none given")
        weights: dict[str, float] = {}
        n_scored = 0
        for a, s in zip(drawn.answers, drawn.scores, strict=True):
            if a is not None and s is not None:
                weights[a] = weights.get(a, 0.0) + s
                n_scored += 1
        return self._settled(weights, n_scored, len(drawn))

    def _settled(self, weights: dict[str, float], n_scored: int, k: int) -> bool:
        w1, w2 = top_two(weights)
        if w1 - w2 > self.max_n - k:
            return True
        total = math.fsum(weights.values())
        if self.eps == 0 or total <= 0:
            return False
        scale = n_scored / total
        return beta_upper_tail(w1 * scale + 1, w2 * scale + 1) >= 1 - self.eps

    def first_stop(self, full: Drawn) -> int:
        if full.scores is None:
            raise ValueError("rule 'prm' needs per-sample verifier scores (PRM); none given")
        cap = self._cap(full)
        weights: dict[str, float] = {}
        n_scored = 0
        for k in range(1, cap):
            a, s = full.answers[k - 1], full.scores[k - 1]
            if a is not None and s is not None:
                weights[a] = weights.get(a, 0.0) + s
                n_scored += 1
            if k >= self.min_n and self._settled(weights, n_scored, k):
                return k
        return cap


@dataclass(frozen=True)
class Confidence(Bounds):
    """DeepConf online (Fu et al. 2025, `deepconf-online.py`): a warm-up, a confidence bar,
    then stop at consensus among the traces above the bar."""

    name: ClassVar[str] = "confidence"
    needs: ClassVar[frozenset[str]] = frozenset({"confidences"})
    warmup: int = 16
    keep: float = 0.9
    tau: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.warmup < 1 or not 0 < self.keep <= 1 or not 0 < self.tau <= 1:
            raise ValueError(f"rule 'confidence': need warmup >= 1, keep in (0, 1] and tau in "
                             f"(0, 1], got warmup={self.warmup}, keep={self.keep}, "
                             f"tau={self.tau}")

    def bar(self, warm: Sequence[float | None]) -> float | None:
        """The (1 - keep) percentile of the warm-up samples' confidences."""
        got = [c for c in warm if c is not None]
        return float(np.percentile(got, 100 * (1 - self.keep))) if got else None

    def settled(self, drawn: Drawn) -> bool:
        if drawn.confidences is None:
            raise ValueError("rule 'confidence' needs per-sample confidences (sample with "
                             "--logprobs K); none given")
        if len(drawn) < self.warmup:
            return False
        bar = self.bar(drawn.confidences[:self.warmup])
        if bar is None:
            return False
        weights: dict[str, float] = {}
        for a, c in zip(drawn.answers, drawn.confidences, strict=True):
            if a is not None and c is not None and c >= bar:
                weights[a] = weights.get(a, 0.0) + c
        total = math.fsum(weights.values())
        return total > 0 and max(weights.values()) / total >= self.tau


@dataclass(frozen=True)
class Fixed(Bounds):
    """Never settled: exactly `max_n` samples (fixed N as a rule, for side-by-side figures)."""

    name: ClassVar[str] = "fixed"

    def settled(self, drawn: Drawn) -> bool:
        return False

    def first_stop(self, full: Drawn) -> int:
        return self._cap(full)


RULES: dict[str, type[Bounds]] = {r.name: r for r in (ESC, Beta, Dirichlet, PRM, Confidence,
                                                       Fixed)}
"""Rule name → class; every parameter is a dataclass field (`min_n`, `max_n` and the rule's)."""

def make_rule(name: str, /, **params: object) -> Bounds:
    """A rule by name with keyword parameters; unknown names and parameters are refused."""
    if name not in RULES:
        raise ValueError(f"unknown stopping rule {name!r}; known: {', '.join(sorted(RULES))}")
    cls = RULES[name]
    known = rule_params(name)
    bad = sorted(set(params) - set(known))
    if bad:
        raise ValueError(f"rule {name!r}: unknown parameter(s) {', '.join(bad)}; "
                         f"known: {', '.join(known)}")
    return cls(**params)  # type: ignore[arg-type]


def rule_params(name: str) -> dict[str, object]:
    """A rule's parameters and their defaults."""
    return {f.name: f.default for f in fields(RULES[name])}


def parse_rule(spec: str) -> Bounds:
    """`"beta"`, `"beta:eps=0.01,min_n=4,max_n=64"` → a rule. Errors name the bad part."""
    name, params = parse_spec(spec, RULES, "stopping rule", "rule")
    return make_rule(name, **params)


def format_rule(rule: Bounds) -> str:
    """The spec `parse_rule` reads back to an equal rule."""
    params = ",".join(f"{f.name}={getattr(rule, f.name)}" for f in fields(rule))
    return f"{rule.name}:{params}"


SCORE_AGGREGATE = "min"
"""The PRM aggregate a verifier-aware rule reads (the `weighted_min` vote's)."""


def drawn_of(solutions: Sequence[Solution], prm: Sequence[StepScores | None] | None) -> Drawn:
    """What a stopping rule reads of a question's first samples: answers, PRM aggregates
    (None without a PRM), confidences."""
    scores = (None if not prm or all(p is None for p in prm) else
              [None if p is None else p.aggregate(SCORE_AGGREGATE) for p in prm])
    return Drawn([s.answer for s in solutions], scores,
                 [solution_confidence(s) for s in solutions])
