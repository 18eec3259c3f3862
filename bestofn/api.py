"""The library entry point: a best-of-N answer for one question.

    from bestofn import best_of_n
    sel = best_of_n("Which drug …?", ["Step 1: … the answer is (B)", …],
                    options={"A": "…", "B": "…"}, prm="smollm2", method="prm_min")
    sel.answer, sel.index, sel.weights
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from .evaluate import PRM_METHODS, select_all
from .records import Item, Question, Selection, Solution
from .scorers import Scorer, make_scorer

METHODS = ("majority", *PRM_METHODS)


@lru_cache(maxsize=4)
def _cached_scorer(backend: str, model: str, options: tuple[tuple[str, Any], ...]) -> Scorer:
    return make_scorer(backend, model=model, **dict(options))


class Reranker:
    """Holds a verifier and picks answers; reuse one object for many questions.

    `prm` is a model name/path (loaded once with `backend`) or a ready `Scorer`; `None` allows
    only `majority`.
    """

    def __init__(self, prm: str | Scorer | None = None, *, method: str = "prm_min",
                 backend: str = "prm-hf", seed: int = 0, **scorer_options: Any) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
        if prm is None and method != "majority":
            raise ValueError(f"method {method!r} needs a verifier: pass prm=MODEL")
        self.method, self.seed = method, seed
        self.scorer = (_cached_scorer(backend, prm, tuple(sorted(scorer_options.items())))
                       if isinstance(prm, str) else prm)

    def select(self, question: Question, solutions: Sequence[Solution],
               documents: Sequence[str] | None = None) -> Selection:
        prm = None
        if self.scorer is not None and self.method != "majority":
            docs = documents if documents is not None else [
                d.text for d in question.documents or []]
            prm = self.scorer.score(question, docs, solutions)
        item = Item(question, list(solutions), prm=prm)  # type: ignore[arg-type]
        return select_all(item, seed=self.seed)[self.method]


def best_of_n(question: Question | str, solutions: Sequence[str | Solution], *,
              prm: str | Scorer | None = None, method: str = "prm_min",
              options: dict[str, str] | None = None, documents: Sequence[str] | None = None,
              seed: int = 0, **scorer_options: Any) -> Selection:
    """Pick one answer among `solutions` (raw texts are marked and their answers extracted)."""
    q = question if isinstance(question, Question) else Question(
        id="q", stem=question, options=dict(options or {}))
    sols = [s if isinstance(s, Solution) else Solution.from_text(s, q.options or None)
            for s in solutions]
    if not sols:
        raise ValueError("best_of_n needs at least one solution")
    return Reranker(prm, method=method, seed=seed, **scorer_options).select(q, sols, documents)
