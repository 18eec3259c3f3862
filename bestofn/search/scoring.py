"""Incremental step scoring of partial solutions with the run's PRM.

A partial solution is scored as the text of its finished steps (the next step's header cut
off), marked as the full-solution scorer marks it (`steps.mark_steps`), so P(+) at its newest
marker is the number the full-solution scorer gives that step (the PRM is causal and the
prompt up to that marker is the same tokens). Every live candidate of every question goes to
the PRM in one `score_requests` call; candidates whose scored text did not change since their
last scoring (e.g. children of one parent) are not sent again. prm-hf computes each
question's prompt prefix (system prompt, documents, question) once per call and reuses its
key/values for every candidate; prm-vllm reads prefixes from its engine's cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bestofn.batch_scoring import Request, score_requests
from bestofn.records import Question, Solution

from .stepwise import Candidate


def partial_solution(text: str) -> Solution:
    """The `Solution` a PRM scores for a partial (or finished) text (marked as any solution)."""
    return replace(Solution.from_text(text), answer=None)


def score_candidates(prm: Any, cands: Sequence[Candidate],
                     docs: dict[str, list[str] | None]) -> int:
    """Set `probs` of every candidate whose scoring text changed; returns the PRM tokens
    computed. `docs` maps a question id to the documents its PRM prompt carries."""
    todo: dict[str, tuple[Question, list[Candidate]]] = {}
    for c in cands:
        t = c.scoring_text
        if t == c.scored_text or not partial_solution(t).marked:
            continue
        todo.setdefault(c.question.id, (c.question, []))[1].append(c)
    if not todo:
        return 0
    got = score_requests(prm, [Request(q, [partial_solution(c.scoring_text) for c in cs],
                                       docs.get(q.id)) for q, cs in todo.values()])
    for (_, cs), scores in zip(todo.values(), got.results, strict=True):
        for c, s in zip(cs, scores, strict=True):
            c.scored_text = c.scoring_text
            c.probs = tuple(s.probs) if s.probs else None
    return got.tokens.computed_tokens
