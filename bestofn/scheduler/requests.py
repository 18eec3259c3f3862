"""The records a stream passes back: which sample finished, and with what."""

from __future__ import annotations

from dataclasses import dataclass

from bestofn.records import Solution


@dataclass(frozen=True, order=True)
class SampleKey:
    """Sample `index` of question `question` (the unit a stream submits and aborts)."""

    question: str
    index: int


@dataclass
class Finished:
    """A sample that ran to its end; `tokens` is what the engine generated for it."""

    key: SampleKey
    solution: Solution
    tokens: int


@dataclass
class SampleError:
    """A sample the engine could not produce: the error its request raised."""

    key: SampleKey
    error: Exception
