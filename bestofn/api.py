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

from .evaluate import ORM_METHODS, PRM_METHODS, select_all
from .records import Item, Question, Selection, Solution
from .scorers import Scorer, make_scorer

METHODS = ("majority", *PRM_METHODS, *ORM_METHODS)


@lru_cache(maxsize=4)
def _cached_scorer(backend: str, model: str, options: tuple[tuple[str, Any], ...]) -> Scorer:
    return make_scorer(backend, model=model, **dict(options))


class Reranker:
    """Holds the verifiers and picks answers; reuse one object for many questions.

    `prm`/`orm` are model names/paths (loaded once, with `backend`/`orm_backend`) or ready
    scorers. PRM methods need `prm`, ORM methods (`orm_best`, `orm_weighted`) need `orm`;
    `majority` needs neither.
    """

    def __init__(self, prm: str | Scorer | None = None, *, orm: str | Scorer | None = None,
                 method: str = "prm_min", backend: str = "prm-hf", orm_backend: str = "orm-hf",
                 seed: int = 0, **scorer_options: Any) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
        needs = "orm" if method in ORM_METHODS else "prm" if method != "majority" else None
        if needs and {"prm": prm, "orm": orm}[needs] is None:
            raise ValueError(f"method {method!r} needs a verifier: pass {needs}=MODEL")
        self.method, self.seed = method, seed
        opts = tuple(sorted(scorer_options.items()))
        self.prm = (_cached_scorer(backend, prm, opts) if isinstance(prm, str) else prm
                    ) if needs == "prm" else None
        self.orm = (_cached_scorer(orm_backend, orm, opts) if isinstance(orm, str) else orm
                    ) if needs == "orm" else None

    def select(self, question: Question, solutions: Sequence[Solution],
               documents: Sequence[str] | None = None) -> Selection:
        return self.pick(self.score(question, solutions, documents))

    def score(self, question: Question, solutions: Sequence[Solution],
              documents: Sequence[str] | None = None) -> Item:
        """The solutions with this reranker's verifier scores (what `select` picks from)."""
        docs = documents if documents is not None else [d.text for d in question.documents or []]
        prm = self.prm.score(question, docs, solutions) if self.prm is not None else None
        orm = self.orm.score(question, docs, solutions) if self.orm is not None else None
        return Item(question, list(solutions), prm=prm, orm=orm)  # type: ignore[arg-type]

    def pick(self, item: Item) -> Selection:
        """This reranker's method applied to a scored item."""
        return select_all(item, seed=self.seed)[self.method]


def best_of_n(question: Question | str, solutions: Sequence[str | Solution], *,
              prm: str | Scorer | None = None, orm: str | Scorer | None = None,
              method: str = "prm_min",
              options: dict[str, str] | None = None, documents: Sequence[str] | None = None,
              seed: int = 0, **scorer_options: Any) -> Selection:
    """Pick one answer among `solutions` (raw texts are marked and their answers extracted)."""
    q = question if isinstance(question, Question) else Question(
        id="q", stem=question, options=dict(options or {}))
    sols = [s if isinstance(s, Solution) else Solution.from_text(s, q.options or None)
            for s in solutions]
    if not sols:
        raise ValueError("best_of_n needs at least one solution")
    return Reranker(prm, orm=orm, method=method, seed=seed,
                    **scorer_options).select(q, sols, documents)
