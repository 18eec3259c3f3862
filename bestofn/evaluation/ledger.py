"""What a question's answer cost: samples and tokens kept or thrown away, PRM tokens computed.

One `Compute` per question goes into its `results.jsonl` line; `report.json` sums them into
the object `compute`, beside the run's stage seconds from `StageClock`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

from bestofn.text.records import Solution

COUNT_KEYS = ("samples_drawn", "samples_aborted", "tokens_generated", "tokens_aborted",
              "prm_tokens_computed")
STAGE_KEYS = ("startup_s", "sample_s", "score_s", "select_s")


@dataclass
class Compute:
    """`samples_drawn` are the samples kept; `samples_aborted` were started and thrown away
    (stopped mid-generation, or finished past the point where the question settled).
    `tokens_generated` counts every token the policy generated for the question, kept or not;
    `tokens_aborted` is the thrown-away part of it. `prm_tokens_computed` are the tokens the
    verifiers computed (not those read from a prefix cache)."""

    samples_drawn: int = 0
    samples_aborted: int = 0
    tokens_generated: int = 0
    tokens_aborted: int = 0
    prm_tokens_computed: int = 0

    def add(self, other: Compute) -> Compute:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Compute:
        d = d or {}
        return cls(**{k: int(d.get(k) or 0) for k in COUNT_KEYS})

    @classmethod
    def kept(cls, solutions: Sequence[Solution], prm_tokens: int = 0) -> Compute:
        """What a fixed-N question cost: every sample drawn is kept."""
        return cls(samples_drawn=len(solutions), prm_tokens_computed=prm_tokens,
                   tokens_generated=sum(int(s.meta.get("tokens") or 0) for s in solutions))

    @classmethod
    def of_item(cls, item: Any) -> Compute:
        """An item's recorded compute, or what its solutions show (results written before
        compute was recorded: every sample kept, PRM tokens unknown and counted 0)."""
        return cls.from_dict(item.compute) if item.compute else cls.kept(item.solutions)

    @classmethod
    def total(cls, parts: Iterable[Compute]) -> Compute:
        out = cls()
        for p in parts:
            out.add(p)
        return out


def compute_json(items: Iterable[Any], seconds: dict[str, float] | None) -> dict[str, Any]:
    """report.json's `compute`: the items' counts summed, and the run's stage seconds (None
    where the report was not written by a run that measured them)."""
    total = Compute.total(Compute.of_item(it) for it in items).to_dict()
    return {**total, **{k: None if seconds is None else seconds.get(k) for k in STAGE_KEYS}}


class StageClock:
    """Wall seconds spent in each stage of this process (`with clock.stage("sample_s")`).

    Stages may overlap (scoring runs while the engine samples), so their sum can exceed the
    run's wall time; each says how long that stage was busy."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGE_KEYS, 0.0)
        self.startup_parts: dict[str, float] = {}
        """Seconds from the start-up's beginning until each of its parts was ready."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        assert name in self.seconds, f"unknown stage {name!r}; known: {STAGE_KEYS}"
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def add(self, name: str, seconds: float) -> None:
        assert name in self.seconds, f"unknown stage {name!r}; known: {STAGE_KEYS}"
        self.seconds[name] += seconds

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}

    def merged(self, earlier: dict[str, Any] | None) -> dict[str, float]:
        """This session's seconds added to those of earlier sessions of the same run."""
        old = earlier or {}
        return {k: round(v + float(old.get(k) or 0.0), 3) for k, v in self.seconds.items()}


def split_by_size(total: int, sizes: list[int]) -> list[int]:
    """`total` shared over groups in proportion to their sizes, as integers that add up to it
    (a verifier call's tokens spread over the questions or samples it scored)."""
    n = sum(sizes) or 1
    out = [total * s // n for s in sizes]
    if out:
        out[0] += total - sum(out)
    return out
