"""Incremental step scoring of partial solutions with the run's PRM.

A partial solution is scored as the text of its finished steps (the next step's header cut
off), marked as the full-solution scorer marks it (`steps.mark_steps`), so P(+) at its newest
marker is the number the full-solution scorer gives that step (the PRM is causal and the
prompt up to that marker is the same tokens). Candidates whose scored text did not change
since their last scoring (children of one parent, finished candidates) are not sent again.
Every question waiting for scores goes to the PRM in one `score_requests` call: prm-vllm
reads each prompt's cached prefix (system prompt, documents, question and the steps scored
before) from its engine's cache and computes only the rest. The requests are marked
`Request.partial` (here and in `execution.scoring.score_pairs`, the jobs' path): prm-hf then
computes each prompt in segments (the question's prefix, one per step) kept in its key/value
cache, so a candidate scored again costs only its new step, and it frees the segments of the
question's candidates not in the request (pruned ones). Full-solution scoring (best-of-N) is
never marked and keeps prm-hf's row-batched path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bestofn.scorers.batch import Request, score_requests
from bestofn.text.records import Question, Solution

from .stepwise import Candidate

Probs = tuple[float, ...] | None


def partial_solution(text: str) -> Solution:
    """The `Solution` a PRM scores for a partial (or finished) text (marked as any solution)."""
    return replace(Solution.from_text(text), answer=None)


def to_score(cands: Sequence[Candidate]) -> list[Candidate]:
    """The candidates whose scoring text changed since they were last scored and has a step."""
    return [c for c in cands if c.scoring_text != c.scored_text
            and partial_solution(c.scoring_text).marked]


@dataclass
class ScoreWork:
    """One question's candidates to score (their texts taken when the work was made)."""

    question: Question
    cands: list[Candidate]
    texts: list[str]

    @classmethod
    def of(cls, question: Question, cands: Sequence[Candidate]) -> ScoreWork:
        return cls(question, list(cands), [c.scoring_text for c in cands])

    def solutions(self) -> list[Solution]:
        return [partial_solution(t) for t in self.texts]

    def apply(self, probs: Sequence[Probs]) -> None:
        for c, t, p in zip(self.cands, self.texts, probs, strict=True):
            c.scored_text, c.probs = t, p


def score_candidates(prm: Any, cands: Sequence[Candidate],
                     docs: dict[str, list[str] | None]) -> int:
    """Score (in this thread, one PRM call) every candidate that needs it; returns the PRM
    tokens computed. `docs` maps a question id to the documents its PRM prompt carries."""
    by: dict[str, list[Candidate]] = {}
    for c in to_score(cands):
        by.setdefault(c.question.id, []).append(c)
    work = [ScoreWork.of(cs[0].question, cs) for cs in by.values()]
    if not work:
        return 0
    got = score_requests(prm, [Request(w.question, w.solutions(), docs.get(w.question.id),
                                       partial=True) for w in work])
    for w, scores in zip(work, got.results, strict=True):
        w.apply([tuple(s.probs) if s.probs else None for s in scores])
    return got.tokens.computed_tokens
