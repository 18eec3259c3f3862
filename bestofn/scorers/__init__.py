"""Verifiers: process reward models (per-step P(+)) and outcome reward models (one scalar).

Add a backend by writing a class that implements the `Scorer` protocol (`kind` and
`score_batch(requests) -> ScoredBatch`, see `protocol`) and registering it in `SCORERS` under
a name. Callers score through `bestofn.scorers.batch.score_requests`.
"""

from __future__ import annotations

from ..registry import Registry
from .protocol import Request, ScoredBatch, Scorer, TokenCounts

SCORERS = Registry("scorer")
SCORERS.register("prm-hf", "bestofn.scorers.prm_hf:HFPRMScorer")
SCORERS.register("orm-hf", "bestofn.scorers.orm_hf:HFORMScorer")
SCORERS.register("orm-vllm", "bestofn.scorers.orm_vllm:VLLMORMScorer")
SCORERS.register("prm-vllm", "bestofn.scorers.prm_vllm:VLLMPRMScorer")
SCORERS.register("prm-judge", "bestofn.scorers.prm_judge:JudgePRMScorer")


def make_scorer(name: str, /, **kwargs: object) -> Scorer:
    """Build a registered scorer: `make_scorer("prm-hf", model="smollm2")`."""
    return SCORERS.create(name, **kwargs)


__all__ = ["SCORERS", "Request", "ScoredBatch", "Scorer", "TokenCounts", "make_scorer"]
