"""The server's synchronous work: sample, retrieve, score and select. Every call runs on the
batcher's one worker thread, because the engines are not thread-safe and are loaded once.

Selection goes through `bestofn.api.Reranker` (`score` then `pick`, which is what
`Reranker.select` and `best_of_n` do), so the endpoint answers what the library answers for the
same question, solutions, method and seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..api import Reranker
from ..records import Item, Question, Selection, Solution
from ..select import get_method


@dataclass
class Reranked:
    """One question's outcome: the scored item, the selection, the solutions best first."""

    item: Item
    selection: Selection
    ranking: list[int]
    scored_tokens: int
    """PRM prompt tokens (every prompt built, scored or not)."""
    scored: dict[str, int]
    """Solutions scored, by verifier kind ("prm", "orm")."""

    def own_scores(self) -> list[float | None]:
        return own_scores(self.item, self.selection.method)


def own_scores(item: Item, method: str) -> list[float | None]:
    """Each solution's score under `method` (PRM aggregate, ORM reward; None for votes)."""
    scores = get_method(method).scores(item)
    return scores if scores is not None else [None] * len(item.solutions)


def rank(item: Item, sel: Selection) -> list[int]:
    """Solution indices best first: the chosen solution, then the chosen answer's other
    solutions, then by answer weight and own score (lower index first on ties)."""
    answers, own = item.answers, own_scores(item, sel.method)
    low = -math.inf

    def key(i: int) -> tuple[Any, ...]:
        a = answers[i]
        weight = sel.weights.get(a, low) if a is not None else low
        mine = own[i] if own[i] is not None else low
        return (i == sel.index, a is not None and a == sel.answer, weight, mine, -i)

    return sorted(range(len(answers)), key=key, reverse=True)


class Engine:
    """The policy, the verifiers and an optional retriever, loaded once."""

    def __init__(self, policy: Any, reranker: Reranker, retriever: Any = None,
                 k: int = 5) -> None:
        self.policy, self.retriever, self.k = policy, retriever, k
        self.prm, self.orm = reranker.prm, reranker.orm
        self.method, self.seed = reranker.method, reranker.seed

    def reranker(self, method: str, seed: int) -> Reranker:
        """A reranker over the loaded verifiers; ValueError when `method` needs one that is
        not loaded."""
        return Reranker(self.prm, orm=self.orm, method=method, seed=seed)

    def sample(self, questions: list[Question], n: int,
               params: Any) -> list[list[Solution] | Exception]:
        """N solutions per question in one policy call; if that call fails, each question is
        retried alone so one bad question does not fail the others."""
        try:
            out: list[list[Solution] | Exception] = list(self.policy.sample(questions, n, params))
            assert len(out) == len(questions), f"{len(questions)} questions, {len(out)} lists"
            return out
        except Exception:
            if len(questions) == 1:
                raise
        return [self._one(q, n, params) for q in questions]

    def _one(self, q: Question, n: int, params: Any) -> list[Solution] | Exception:
        try:
            [sols] = self.policy.sample([q], n, params)
            return sols
        except Exception as e:
            return e

    def documents(self, questions: list[Question]) -> list[list[str]]:
        """Top-k passages per question from the index (one search call for the batch)."""
        from retrieval import question_query

        found = self.retriever.search([question_query(q) for q in questions], self.k)
        return [[d.text for d in docs] for docs in found]

    def rerank(self, question: Question, solutions: list[Solution],
               documents: list[str] | None, method: str, seed: int) -> Reranked:
        rr = self.reranker(method, seed)
        item = rr.scored_item(question, solutions, documents if documents is not None else [])
        sel = rr.pick(item)
        scored = {s.kind: rr.tokens[s.kind].solutions for s in (self.prm, self.orm)
                  if s is not None}
        return Reranked(item, sel, rank(item, sel), rr.tokens["prm"].prompt_tokens, scored)
