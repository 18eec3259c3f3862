"""The server's synchronous work: sample, retrieve, score and select. Every call runs on the
batcher's one worker thread, because the engines are not thread-safe and are loaded once.

Selection goes through `bestofn.api.Reranker` (`score` then `pick`, which is what
`Reranker.select` and `best_of_n` do), so the endpoint answers what the library answers for the
same question, solutions, method and seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..api import Reranker
from ..evaluate import PRM_METHODS
from ..records import Item, Question, Selection, Solution
from ..scorers.prm_prompt import PromptedPRM


class CountingScorer:
    """A scorer that also counts the prompt tokens it reads (PRM scorers built on
    `PromptedPRM`: the same `encode` then `score_encoded` that `PromptedPRM.score` runs)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.kind, self.tokens = inner, inner.kind, 0
        self.solutions = 0
        self._split = (isinstance(inner, PromptedPRM)
                       and type(inner).score is PromptedPRM.score)  # type: ignore[comparison-overlap]

    def score(self, question: Question, documents: Sequence[str] | None,
              solutions: Sequence[Solution]) -> list[Any]:
        self.solutions += len(solutions)
        if not self._split:
            return self.inner.score(question, documents, solutions)
        encoded = self.inner.encode(question, documents, solutions)
        self.tokens += sum(len(e.input_ids) for e in encoded)
        return self.inner.score_encoded(encoded)


@dataclass
class Reranked:
    """One question's outcome: the scored item, the selection, the solutions best first."""

    item: Item
    selection: Selection
    ranking: list[int]
    scored_tokens: int
    scored: dict[str, int]
    """Solutions scored, by verifier kind ("prm", "orm")."""

    def own_scores(self) -> list[float | None]:
        return own_scores(self.item, self.selection.method)


def own_scores(item: Item, method: str) -> list[float | None]:
    """Each solution's score under `method` (PRM aggregate, ORM reward; None for votes)."""
    if method in PRM_METHODS and item.prm is not None:
        how = PRM_METHODS[method][1]
        return [s.aggregate(how) for s in item.prm]
    if method.startswith("orm") and item.orm is not None:
        return list(item.orm)
    return [None] * len(item.solutions)


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
    """The policy, the verifiers (token-counting) and an optional retriever, loaded once."""

    def __init__(self, policy: Any, reranker: Reranker, retriever: Any = None,
                 k: int = 5) -> None:
        self.policy, self.retriever, self.k = policy, retriever, k
        self.prm = CountingScorer(reranker.prm) if reranker.prm is not None else None
        self.orm = CountingScorer(reranker.orm) if reranker.orm is not None else None
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
        scorers = [s for s in (self.prm, self.orm) if s is not None]
        before = [(s.tokens, s.solutions) for s in scorers]
        rr = self.reranker(method, seed)
        item = rr.scored_item(question, solutions, documents if documents is not None else [])
        sel = rr.pick(item)
        tokens, scored = 0, {}
        for s, (t, k) in zip(scorers, before, strict=True):
            tokens += s.tokens - t
            scored[s.kind] = s.solutions - k
        return Reranked(item, sel, rank(item, sel), tokens, scored)
