"""Med-PRM's validity filter and top-up: its settings and its per-round seeds.

Med-PRM's published sampler draws ceil(1.25 N) solutions per question, keeps those with 3 to 9
steps, draws 3x the shortfall once more for questions still short of N, and keeps the first N
valid ones. `ValidityConfig` holds the bounds, the oversampling, the top-up factor and the
number of top-up rounds; the fixed-N job (`bestofn.execution.fixed.FixedJob`) does the
drawing on the scheduler loop, over any policy backend. After the last round a question may
be left with fewer than N solutions (never a loop without end), unless `fill_invalid` fills
it up with rejected ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bestofn.config import SamplingConfig
from bestofn.text.records import Solution

from .base import question_seed


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
