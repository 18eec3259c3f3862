"""Offline evaluation of a stopping rule on stored samples.

Each graded question's solutions are replayed in file order (the order they were sampled), or,
with `draws=D`, in D seeded permutations (`random.Random(f"{seed}:{question_id}:{d}")`, so a
question's orders depend only on the seed, its id and the draw, not on the other questions).
The rule sees growing prefixes and stops where it says (or when the question runs out of
samples); every selection method is then computed on the stopped prefix by the project's own
`evaluate.question_outcomes`, on `Item(question, solutions[:k], prm=prm[:k], orm=orm[:k])`.
Outcomes are cached per (question, draw, k): a curve over a rule's parameter and the fixed-N
curve mostly revisit the same prefixes.

Accuracy is the mean over questions of the per-question correctness averaged over draws; the
bootstrap interval resamples questions (`bootstrap_interval`), as the report does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..adaptive.rules import Bounds, Drawn, Fixed, format_rule
from ..text.confidence import has_confidence, solution_confidence
from ..text.records import Item
from .evaluate import method_order, question_outcomes
from .intervals import CI_LEVEL, Estimate, bootstrap_interval
from .select import aggregate_all

HEADLINE = ("majority", "weighted_min", "prm_min")
"""The methods `to_json` names `adaptive_<method>` (the PRM ones only when scored)."""


class MissingScores(ValueError):
    """A rule needs per-sample inputs (PRM scores, confidences) that the items lack."""


@dataclass
class AdaptiveResult:
    """One rule replayed over a set of questions.

    `correct` is (questions x methods): each question's correctness averaged over the draws;
    `stops` is (questions x draws): where the rule stopped; `tokens` the same shape, or None
    when the solutions do not all record their token count (`meta["tokens"]`).
    """

    rule: str
    methods: list[str]
    correct: np.ndarray
    stops: np.ndarray
    available: np.ndarray
    n_max: int
    draws: int
    seed: int
    question_ids: list[str]
    tokens: np.ndarray | None = None
    level: float = CI_LEVEL
    _ci: dict[str, Estimate] = field(default_factory=dict, repr=False)

    @property
    def accuracy(self) -> dict[str, float]:
        return {m: float(self.correct[:, j].mean()) for j, m in enumerate(self.methods)}

    @property
    def mean_samples(self) -> float:
        return float(self.stops.mean())

    @property
    def mean_tokens(self) -> float | None:
        return None if self.tokens is None else float(self.tokens.mean())

    @property
    def exhausted(self) -> int:
        """Stops (over questions and draws) forced by a question running out of samples
        before the rule or its `max_n` said stop."""
        cap = np.minimum(self.available, self.n_max)[:, None]
        return int(((self.stops == cap) & (cap < self.n_max)).sum())

    def intervals(self, *, b: int = 1000) -> dict[str, Estimate]:
        """Each method's accuracy with its percentile bootstrap interval over questions."""
        if not self._ci and len(self.correct):
            lo, hi = bootstrap_interval(self.correct, b=b, seed=self.seed, level=self.level)
            self._ci.update({m: Estimate(float(self.correct[:, j].mean()), float(lo[j]),
                                         float(hi[j])) for j, m in enumerate(self.methods)})
        return dict(self._ci)

    def to_json(self) -> dict[str, Any]:
        acc = self.accuracy
        out: dict[str, Any] = {"adaptive_rule": self.rule}
        out.update({f"adaptive_{m}": acc[m] for m in HEADLINE if m in acc})
        out.update(adaptive_mean_samples=self.mean_samples, adaptive_n_max=self.n_max,
                   adaptive_draws=self.draws, adaptive_n_questions=len(self.question_ids))
        if self.tokens is not None:
            out["adaptive_mean_tokens"] = self.mean_tokens
        return out


class Replayer:
    """The graded questions of a file, ready to replay any rule; outcomes are cached."""

    def __init__(self, items: Sequence[Item], *, draws: int | None = None, seed: int = 0,
                 aggregate: str = "min") -> None:
        if draws is not None and draws < 1:
            raise ValueError(f"draws must be >= 1, got {draws}")
        self.items = [it for it in items if it.question.answer is not None]
        if not self.items:
            raise ValueError("no question with a gold answer to evaluate")
        self.draws, self.seed, self.aggregate = draws, seed, aggregate
        self.orders = [self._orders(it) for it in self.items]
        self.scores = [None if it.prm is None else aggregate_all(it.prm, aggregate)
                       for it in self.items]
        self._cache: dict[tuple[int, int, int], dict[str, float]] = {}

    def _orders(self, item: Item) -> list[list[int]]:
        n = len(item.solutions)
        if self.draws is None:
            return [list(range(n))]
        return [random.Random(f"{self.seed}:{item.question.id}:{d}").sample(range(n), n)
                for d in range(self.draws)]

    @property
    def has_scores(self) -> bool:
        return all(it.prm is not None for it in self.items)

    @property
    def n_solutions(self) -> int:
        return max(len(it.solutions) for it in self.items)

    def check(self, rule: Bounds) -> None:
        if "scores" in rule.needs:
            missing = [it.question.id for it in self.items if it.prm is None]
            if missing:
                raise MissingScores(
                    f"rule {rule.name!r} needs PRM step scores, but {len(missing)} of "
                    f"{len(self.items)} questions have none (e.g. {missing[0]!r}); score the "
                    "file first (bestofn score --prm MODEL) or use a vote-based rule")
        if "confidences" in rule.needs:
            missing = [it.question.id for it in self.items if not has_confidence(it.solutions)]
            if missing:
                raise MissingScores(
                    f"rule {rule.name!r} needs per-sample confidences, but {len(missing)} of "
                    f"{len(self.items)} questions have none (e.g. {missing[0]!r}); sample with "
                    "--logprobs K")

    def drawn(self, qi: int, order: Sequence[int]) -> Drawn:
        it = self.items[qi]
        answers = [it.solutions[i].answer for i in order]
        agg = self.scores[qi]
        scores = None if agg is None else [agg[i] for i in order]
        confs = [solution_confidence(it.solutions[i]) for i in order]
        return Drawn(answers, scores, confs)

    def outcomes(self, qi: int, d: int, k: int) -> dict[str, float]:
        """`question_outcomes` of the first k samples of draw d (cached)."""
        key = (qi, d, k)
        if key not in self._cache:
            it, order = self.items[qi], self.orders[qi][d][:k]
            sub = Item(it.question, [it.solutions[i] for i in order],
                       prm=None if it.prm is None else [it.prm[i] for i in order],
                       orm=None if it.orm is None else [it.orm[i] for i in order])
            self._cache[key] = question_outcomes(sub, seed=self.seed)
        return self._cache[key]

    def stop_point(self, rule: Bounds, full: Drawn, round_size: int = 1) -> int:
        """Where `rule` stops on `full`, asked after every sample (`round_size` 1) or, as an
        online run drawing rounds of R does, only after samples R, 2R, … (and at the cap)."""
        if round_size == 1:
            return rule.first_stop(full)
        cap = min(len(full), rule.max_n)
        return next((k for k in range(round_size, cap, round_size)
                     if rule.stop(full.prefix(k))), cap)

    def run(self, rule: Bounds, *, round_size: int = 1) -> AdaptiveResult:
        """Replay `rule` (asked every `round_size` samples) over every question and draw."""
        if round_size < 1:
            raise ValueError(f"round_size must be >= 1, got {round_size}")
        self.check(rule)
        n_draws = len(self.orders[0])
        stops = np.zeros((len(self.items), n_draws), dtype=np.int64)
        tokens = np.zeros(stops.shape, dtype=np.float64)
        counted = True
        rows: list[dict[str, float]] = []
        for qi, it in enumerate(self.items):
            per_draw = []
            for d, order in enumerate(self.orders[qi]):
                k = self.stop_point(rule, self.drawn(qi, order), round_size)
                stops[qi, d] = k
                toks = [it.solutions[i].meta.get("tokens") for i in order[:k]]
                counted = counted and all(isinstance(t, int) for t in toks)
                tokens[qi, d] = sum(t for t in toks if isinstance(t, int))
                per_draw.append(self.outcomes(qi, d, k))
            rows.append({m: sum(r[m] for r in per_draw) / n_draws for m in per_draw[0]})
        methods = method_order(rows)
        correct = np.array([[r[m] for m in methods] for r in rows], dtype=np.float64)
        return AdaptiveResult(
            rule=format_rule(rule), methods=methods,
            correct=correct.reshape(len(rows), len(methods)), stops=stops,
            available=np.array([len(it.solutions) for it in self.items]),
            n_max=min(rule.max_n, self.n_solutions), draws=n_draws, seed=self.seed,
            question_ids=[it.question.id for it in self.items],
            tokens=tokens if counted else None)


def replay(items: Sequence[Item], rule: Bounds, *, draws: int | None = None, seed: int = 0,
           aggregate: str = "min", round_size: int = 1) -> AdaptiveResult:
    """Replay `rule` over the graded questions of `items` (file order, or `draws` seeded
    permutations) and evaluate every selection method where it stopped. `round_size` R asks
    the rule only after every R samples, as an online run in rounds of R does."""
    return Replayer(items, draws=draws, seed=seed, aggregate=aggregate).run(
        rule, round_size=round_size)


@dataclass
class CurvePoint:
    """One operating point: a rule at one parameter value (or fixed N)."""

    label: str
    value: float
    result: AdaptiveResult


def rule_curve(replayer: Replayer, rule: Bounds, param: str,
               values: Sequence[float]) -> list[CurvePoint]:
    """Accuracy vs mean samples for `rule` with `param` set to each of `values`."""
    return [CurvePoint(rule.name, v, replayer.run(replace(rule, **{param: v})))
            for v in values]


def fixed_curve(replayer: Replayer, ns: Sequence[int]) -> list[CurvePoint]:
    """Accuracy vs N for fixed N: the first N samples in replay order."""
    return [CurvePoint("fixed", n, replayer.run(Fixed(max_n=n))) for n in ns]
