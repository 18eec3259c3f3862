"""Med-PRM's validity filter and top-up, over any policy backend.

Med-PRM's published sampler draws ceil(1.25 N) solutions per question, keeps those with 3 to 9
steps, draws 3x the shortfall once more for questions still short of N, and keeps the first N
valid ones. `ValidPolicy` does the same with the bounds, the oversampling, the top-up factor
and the number of top-up rounds as settings; after the last round a question may be left with
fewer than N solutions (never a loop without end), and the caller counts those, unless
`fill_invalid` fills it up with rejected ones. Every solution gets `meta["valid"]` and
`meta["round"]`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bestofn.config import SamplingConfig
from bestofn.records import Question, Solution

from .base import Policy, question_seed


@dataclass(frozen=True)
class ValidityConfig:
    """Which solutions count and how hard to try for N of them (defaults: Med-PRM's)."""

    min_steps: int = 3
    max_steps: int = 9
    oversample: float = 1.25
    """The first draw is ceil(oversample * N) per question."""
    topup_factor: int = 3
    """A top-up round draws this many times the shortfall."""
    max_rounds: int = 1
    """Top-up rounds after the first draw (Med-PRM: 1)."""
    fill_invalid: bool = False
    """Fill a question still short after the last round with rejected solutions (in draw
    order), so every question has N; Med-PRM leaves it short. Small models that rarely write
    `Step N:` need this."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"step bounds [{self.min_steps}, {self.max_steps}] need "
                             "1 <= min_steps <= max_steps")
        if self.oversample < 1 or self.topup_factor < 1 or self.max_rounds < 0:
            raise ValueError(f"bad validity config {self}: need oversample >= 1, "
                             "topup_factor >= 1, max_rounds >= 0")

    def valid(self, solution: Solution) -> bool:
        return self.min_steps <= len(solution.steps) <= self.max_steps


def round_seed(seed: int, round_: int) -> int:
    """The run seed of a draw round: round 0 samples with the run's seed; a top-up round gets
    its own derived seed, so it draws new solutions while staying reproducible."""
    return seed if round_ == 0 else question_seed(seed, "topup", round_)


def round_params(params: SamplingConfig, round_: int) -> SamplingConfig:
    return replace(params, seed=round_seed(params.seed, round_))


class ValidPolicy:
    """A policy whose solutions all pass the step-count filter, N per question when it can.

    A question's solutions depend only on that question (its own shortfall decides its
    top-ups), not on which other questions share the call. `drawn` and `kept` count solutions
    over the policy's lifetime.
    """

    def __init__(self, policy: Policy, config: ValidityConfig | None = None) -> None:
        self.policy, self.config = policy, config or ValidityConfig()
        self.drawn = self.kept = 0

    def sample(self, questions: Sequence[Question], n: int, params: SamplingConfig,
               start: int = 0) -> list[list[Solution]]:
        if start != 0:
            raise ValueError(
                f"the validity filter (ValidPolicy) cannot serve rounds (start={start}): it "
                "draws 1.25 N and tops up per question, so its k-th kept solution is not a "
                "fixed sample index; sample rounds without the filter (--no-filter)")
        cfg = self.config
        kept: list[list[Solution]] = [[] for _ in questions]
        rejected: list[list[Solution]] = [[] for _ in questions]
        draw = dict.fromkeys(range(len(questions)), math.ceil(cfg.oversample * n))
        for round_ in range(cfg.max_rounds + 1):
            self._draw_round(questions, draw, kept, rejected, round_params(params, round_),
                             round_)
            draw = {i: (n - len(k)) * cfg.topup_factor for i, k in enumerate(kept) if len(k) < n}
            if not draw:
                break
        if cfg.fill_invalid:
            return [(k + r)[:n] for k, r in zip(kept, rejected, strict=True)]
        return [k[:n] for k in kept]

    def _draw_round(self, questions: Sequence[Question], draw: dict[int, int],
                    kept: list[list[Solution]], rejected: list[list[Solution]],
                    params: SamplingConfig, round_: int) -> None:
        """One round: questions needing the same count share one backend call."""
        by_count: dict[int, list[int]] = defaultdict(list)
        for i, count in draw.items():
            by_count[count].append(i)
        for count, idx in sorted(by_count.items()):
            got = self.policy.sample([questions[i] for i in idx], count, params)
            assert len(got) == len(idx), f"expected {len(idx)} solution lists, got {len(got)}"
            for i, sols in zip(idx, got, strict=True):
                self.drawn += len(sols)
                for s in sols:
                    s.meta.update(round=round_, valid=self.config.valid(s))
                    (kept if s.meta["valid"] else rejected)[i].append(s)
                    self.kept += s.meta["valid"]
