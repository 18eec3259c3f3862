"""What every policy backend shares: the `Policy` protocol, round checks, per-question seeds."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bestofn.config import SamplingConfig
from bestofn.text.records import Question, Solution


@runtime_checkable
class Policy(Protocol):
    def sample(self, questions: Sequence[Question], n: int, params: SamplingConfig,
               start: int = 0) -> list[list[Solution]]: ...


def check_round(n: int, start: int) -> None:
    """A round asks for n >= 1 samples from sample index `start` >= 0."""
    if n < 1 or start < 0:
        raise ValueError(f"a policy round needs n >= 1 and start >= 0, got n={n}, "
                         f"start={start}")


def question_seed(seed: int, *parts: object) -> int:
    """A stable per-question seed, so a question's samples do not depend on batch order."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
