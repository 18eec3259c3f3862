"""Verifiers: process reward models (per-step P(+)) and outcome reward models (one scalar).

Add a backend by writing a class with `score(question, documents, solutions)` and registering
it in `SCORERS` under a name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..records import Question, Solution, StepScores
from ..registry import Registry


@runtime_checkable
class Scorer(Protocol):
    """Scores one question's solutions: `StepScores` for a PRM, a float (or None) for an ORM."""

    kind: str  # "prm" or "orm"

    def score(self, question: Question, documents: Sequence[str] | None,
              solutions: Sequence[Solution]) -> list[StepScores] | list[float | None]: ...


SCORERS = Registry("scorer")
SCORERS.register("prm-hf", "bestofn.scorers.prm_hf:HFPRMScorer")
SCORERS.register("orm-hf", "bestofn.scorers.orm_hf:HFORMScorer")
SCORERS.register("orm-vllm", "bestofn.scorers.orm_vllm:VLLMORMScorer")
SCORERS.register("prm-vllm", "bestofn.scorers.prm_vllm:VLLMPRMScorer")
SCORERS.register("prm-judge", "bestofn.scorers.prm_judge:JudgePRMScorer")


def make_scorer(name: str, /, **kwargs: object) -> Scorer:
    """Build a registered scorer: `make_scorer("prm-hf", model="smollm2")`."""
    return SCORERS.create(name, **kwargs)


__all__ = ["SCORERS", "Scorer", "make_scorer"]
