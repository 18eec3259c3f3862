"""Search strategies: which partial solutions continue after a step, and how many ways.

A strategy sees one question's live (unfinished) candidates after every step, each with its
latest step score, and returns how many children each gets (0: pruned). Child 0 keeps its
parent's lineage (so its seeds are the parent's next ones); children 1.. get new lineages.
`STRATEGIES` maps a name to its class and `parse_strategy("beam:width=4")` builds one, as the
stopping rules do (`bestofn.adaptive.rules`). Degenerate settings (`beam:width=1`,
`dvts:width=1`, `reject:alpha=0`, `particles:resample=off`) give every live candidate one
child: plain step-wise sampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import ClassVar, Protocol

from ..specs import parse_spec
from ..text.records import aggregate_steps


@dataclass(frozen=True)
class Live:
    """What a strategy knows of one live candidate."""

    group: int
    """Its subtree (the index of its first-step ancestor // width for DVTS; else that index)."""
    scores: tuple[float, ...] | None
    """P(+) of its scored steps so far (None: not scored yet)."""

    def key(self, agg: str) -> float:
        return aggregate_steps(self.scores, agg) if self.scores else float("-inf")


SEARCH_AGGREGATIONS = ("final", "min")
"""How a strategy ranks partial solutions: by the latest step's score or the lowest so far."""


def _check_agg(s: Beam | DVTS | Reject) -> bool:
    """The strategy's `agg` is known; `last`, its former spelling, reads as `final`."""
    if s.agg == "last":
        object.__setattr__(s, "agg", "final")
    return s.agg in SEARCH_AGGREGATIONS


class Strategy(Protocol):
    name: str
    keeps_finished: ClassVar[bool]
    """Finished candidates stay in the pool `plan` sees (and can be copied or dropped)."""

    def groups(self, n: int) -> int:
        """How the N first-step candidates are grouped (candidate i is in group i // size)."""

    def plan(self, live: Sequence[Live], step: int) -> list[int]:
        """Children per live candidate after step `step` (0-based); 0 prunes it."""


def _top(live: Sequence[Live], idx: Sequence[int], keep: int, agg: str) -> list[int]:
    """The `keep` best of `idx` by score (ties: earlier first)."""
    return sorted(idx, key=lambda i: (-live[i].key(agg), i))[:keep]


@dataclass(frozen=True)
class Beam:
    """Keep the best ceil(live/width) partial solutions, expand each `width` ways (the live
    count never grows; finished candidates leave the beam)."""

    width: int = 4
    agg: str = "final"
    name = "beam"
    keeps_finished = False

    def __post_init__(self) -> None:
        if not _check_agg(self) or self.width < 1:
            raise ValueError(f"beam: width must be >= 1 and agg final|min, got {self}")

    def groups(self, n: int) -> int:
        return 1

    def plan(self, live: Sequence[Live], step: int) -> list[int]:
        out = [0] * len(live)
        left = len(live)
        for i in _top(live, range(len(live)), math.ceil(len(live) / self.width), self.agg):
            out[i] = min(self.width, left)
            left -= out[i]
        return out


@dataclass(frozen=True)
class DVTS:
    """Diverse verifier tree search: N/width independent subtrees; each keeps its best live
    candidate at every step and expands it to the subtree's live count."""

    width: int = 4
    agg: str = "final"
    name = "dvts"
    keeps_finished = False

    def __post_init__(self) -> None:
        if not _check_agg(self) or self.width < 1:
            raise ValueError(f"dvts: width must be >= 1 and agg final|min, got {self}")

    def groups(self, n: int) -> int:
        return self.width

    def plan(self, live: Sequence[Live], step: int) -> list[int]:
        out = [0] * len(live)
        by: dict[int, list[int]] = {}
        for i, c in enumerate(live):
            by.setdefault(c.group, []).append(i)
        for idx in by.values():
            [best] = _top(live, idx, 1, self.agg)
            out[best] = len(idx)
        return out


@dataclass(frozen=True)
class Reject:
    """Speculative rejection: after every `every` steps drop the fraction `alpha` of the live
    candidates with the lowest partial score (unscored ones are kept; one always survives)."""

    alpha: float = 0.5
    every: int = 1
    agg: str = "final"
    name = "reject"
    keeps_finished = False

    def __post_init__(self) -> None:
        if not _check_agg(self) or not 0 <= self.alpha < 1 or self.every < 1:
            raise ValueError(f"reject: need 0 <= alpha < 1, every >= 1, agg final|min; "
                             f"got {self}")

    def groups(self, n: int) -> int:
        return 1

    def plan(self, live: Sequence[Live], step: int) -> list[int]:
        out = [1] * len(live)
        if (step + 1) % self.every:
            return out
        scored = [i for i, c in enumerate(live) if c.scores]
        drop = min(math.floor(self.alpha * len(live)), len(live) - 1, len(scored))
        for i in sorted(scored, key=lambda i: (live[i].key(self.agg), -i))[:drop]:
            out[i] = 0
        return out


@dataclass(frozen=True)
class Particles:
    """Particle filtering (its_hub's): after every step the whole pool (finished particles
    stay in it) is resampled, as many as there are, with probabilities the softmax of the
    logit of each particle's latest step score (p / (1 - p), normalised); the draw is seeded
    by `seed`, the step and the scores. A finished particle drawn k times is k copies of one
    finished solution (a weight in the vote); the search ends when none is live.
    `resample=off` keeps every particle."""

    resample: str = "on"
    seed: int = 0
    name = "particles"
    keeps_finished = True

    def __post_init__(self) -> None:
        if self.resample not in ("on", "off"):
            raise ValueError(f"particles: resample must be on|off, got {self.resample!r}")

    def groups(self, n: int) -> int:
        return 1

    def plan(self, live: Sequence[Live], step: int) -> list[int]:
        import random

        if self.resample == "off" or len(live) < 2:
            return [1] * len(live)
        eps = 1e-6
        w = [1.0 if not c.scores else
             min(max(c.scores[-1], eps), 1 - eps) / (1 - min(max(c.scores[-1], eps), 1 - eps))
             for c in live]
        rng = random.Random(f"{self.seed}:{step}:{[c.scores for c in live]}")
        out = [0] * len(live)
        for i in rng.choices(range(len(live)), weights=w, k=len(live)):
            out[i] += 1
        return out


STRATEGIES: dict[str, type] = {"beam": Beam, "dvts": DVTS, "reject": Reject,
                               "particles": Particles}

def parse_strategy(spec: str) -> Strategy:
    """`"beam"`, `"beam:width=4,agg=min"`, `"reject:alpha=0.5,every=2"` → a strategy."""
    name, params = parse_spec(spec, STRATEGIES, "search strategy", "search")
    return STRATEGIES[name](**params)  # type: ignore[no-any-return]


def format_strategy(s: Strategy) -> str:
    """The spec `parse_strategy` reads back to an equal strategy."""
    return f"{s.name}:" + ",".join(f"{f.name}={getattr(s, f.name)}"
                                   for f in fields(s))  # type: ignore[arg-type]
