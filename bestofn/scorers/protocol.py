"""The Scorer protocol: what every verifier backend implements and every caller relies on.

A scorer takes a batch of `Request`s (one per question: its solutions and the documents for a
PRM prompt) and returns a `ScoredBatch`: for each request one result per solution, in order,
and the token counts of the call. A result is `StepScores` for a PRM and `ORMResult` for an
ORM; either carries `reason` (why the solution was left unscored; None when scored).

Callers go through `bestofn.scorers.batch.score_requests`, the one batch-scoring function,
which checks the shape of what came back. A backend batches across questions as it can
(prm-vllm sends every question's prompts in one engine call; an ORM scores every question's
conversations together; prm-hf reuses one question's shared prefix at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

from ..text.records import Question, Solution


@dataclass(frozen=True)
class Request:
    """One question to score: its solutions and the documents for the PRM prompt (an ORM
    reads no documents)."""

    question: Question
    solutions: Sequence[Solution]
    documents: list[str] | None = None
    partial: bool = False
    """The solutions are a search's live partial solutions of this question, each to be scored
    again after its next step (`search.scoring`). A backend with a per-prefix cache may then
    compute only what is new since the question's last partial request, and forget what it
    holds for the question's other solutions (pruned ones); prm-hf does (its segment cache),
    the others score it as any request. A full-solution request (best-of-N) leaves it False."""


@dataclass
class TokenCounts:
    """What a scoring call cost, in prompts and tokens. Counts add up (`+=`), so a caller keeps
    a running total over calls.

    - `prompt_tokens`: tokens of every prompt built, scored or not (what a serving API bills).
    - `computed_tokens`: tokens the model ran a forward pass over (padding excluded).
    - `cached_tokens`: tokens of scored prompts that were not computed because they were read
      from a cache: vLLM's prefix cache (`num_cached_tokens`), prm-hf's shared question prefix
      (encoded once, its keys and values reused by every solution), and duplicate prompts
      (scored once). A prompt re-run with cache reads off counts as computed again.
    """

    solutions: int = 0
    """Solutions asked to score."""
    unscored: int = 0
    """Solutions left unscored (each with a reason)."""
    prompt_tokens: int = 0
    computed_tokens: int = 0
    cached_tokens: int = 0

    def __iadd__(self, other: TokenCounts) -> TokenCounts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def __add__(self, other: TokenCounts) -> TokenCounts:
        out = TokenCounts(**vars(self))
        out += other
        return out


@dataclass(frozen=True)
class ScoredBatch:
    """One result per solution for each request, and what the call cost."""

    results: list[list[Any]]
    """`StepScores` (PRM) or `ORMResult` (ORM) per solution, request by request."""
    tokens: TokenCounts
    request_tokens: list[int] | None = None
    """The tokens computed for each request, where the backend computes each apart (prm-hf:
    one question at a time), so a question's cost does not depend on what it was scored with.
    None where requests share work (vLLM's prefix cache): callers then share the call's
    computed tokens by solution count."""


@runtime_checkable
class Scorer(Protocol):
    """A verifier: `kind` is "prm" or "orm"; `score_batch` scores several questions at once."""

    kind: str

    def score_batch(self, requests: Sequence[Request]) -> ScoredBatch: ...
