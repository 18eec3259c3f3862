"""The library entry point: best-of-N answers, with every score the verifiers computed.

    from bestofn import best_of_n
    sel = best_of_n("Which drug …?", ["Step 1: … the answer is (B)", …],
                    options={"A": "…", "B": "…"}, prm="smollm2", method="prm_min")
    sel.answer, sel.index, sel.weights, sel.scores[0].step_probs

A `Reranker` loads its verifiers once; `select` picks one question's answer, `score` only
scores, `select_many` handles many questions in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from .config import RerankOptions, RunConfig, default_of
from .evaluation.select import get_method, select_all
from .scorers import Scorer
from .scorers.batch import Request, TokenCounts, orm_values, score_requests, solution_scores
from .text.records import Item, Question, Selection, Solution, SolutionScore

DEFAULT_AGGREGATION = "min"
"""The step aggregate reported when the method uses none (majority, ORM methods)."""

SolutionLike = str | Solution
ItemLike = (Item | tuple[Question, Sequence[SolutionLike]]
            | tuple[Question, Sequence[SolutionLike], Sequence[str] | None])


@lru_cache(maxsize=4)
def _cached_scorer(backend: str, model: str, options: tuple[tuple[str, Any], ...]) -> Scorer:
    from .execution.engines import build_scorer

    return build_scorer(backend, model, dict(options))


def _scorer(model: str | Scorer | None, backend: str, options: Mapping[str, Any]
            ) -> Scorer | None:
    if model is None or not isinstance(model, str):
        return model
    return _cached_scorer(backend, model, tuple(sorted(options.items())))


class Reranker:
    """Holds the verifiers and picks answers; reuse one object for many questions.

    `prm`/`orm` are model names/paths (loaded once, with `backend`/`orm_backend`) or ready
    scorers. Every verifier given is run and reported on the `Selection`; `method` alone
    decides the pick. PRM methods need `prm`, ORM methods (`orm_best`, `orm_weighted`) need
    `orm`, `majority` neither. `scorer_options` go to every scorer built from a name;
    `prm_options`/`orm_options` to one of them only (e.g. `doc_reserve` is a PRM option).
    """

    def __init__(self, prm: str | Scorer | None = None, *, orm: str | Scorer | None = None,
                 method: str = default_of(RerankOptions, "method"),
                 backend: str = default_of(RunConfig, "prm_backend"),
                 orm_backend: str = default_of(RunConfig, "orm_backend"),
                 seed: int = default_of(RerankOptions, "seed"),
                 prm_options: Mapping[str, Any] | None = None,
                 orm_options: Mapping[str, Any] | None = None, **scorer_options: Any) -> None:
        m = get_method(method)
        if m.needs and {"prm": prm, "orm": orm}[m.needs] is None:
            raise ValueError(f"method {method!r} needs a verifier: pass {m.needs}=MODEL")
        self.method, self.seed = method, seed
        self.aggregation = m.aggregation or DEFAULT_AGGREGATION
        self.prm = _scorer(prm, backend, {**scorer_options, **(prm_options or {})})
        self.orm = _scorer(orm, orm_backend, {**scorer_options, **(orm_options or {})})
        self.tokens = {"prm": TokenCounts(), "orm": TokenCounts()}
        """What this reranker's scoring cost so far, by verifier kind."""

    def score(self, question: Question, solutions: Sequence[SolutionLike],
              documents: Sequence[str] | None = None) -> list[SolutionScore]:
        """Every solution's scores, in order, without selecting."""
        return self._run([_request(question, solutions, documents)])[0][1]

    def select(self, question: Question, solutions: Sequence[SolutionLike],
               documents: Sequence[str] | None = None) -> Selection:
        """The method's pick, with every solution's scores on `Selection.scores`."""
        return self.select_many([(question, solutions, documents)])[0]

    def select_many(self, items: Iterable[ItemLike]) -> list[Selection]:
        """`select` for many questions in one call: each verifier scores them all together
        (one engine call where the backend batches across questions). `items` are `Item`s
        or `(question, solutions[, documents])` tuples."""
        requests = [_as_request(x, i) for i, x in enumerate(items)]
        return [replace(self.pick(item), scores=scores) for item, scores in self._run(requests)]

    def scored_item(self, question: Question, solutions: Sequence[SolutionLike],
                    documents: Sequence[str] | None = None) -> Item:
        """The solutions with this reranker's verifier scores: what `pick` chooses from."""
        return self._run([_request(question, solutions, documents)])[0][0]

    def pick(self, item: Item) -> Selection:
        """This reranker's method on a scored item (the choice `select` makes)."""
        return select_all(item, seed=self.seed)[self.method]

    def _run(self, requests: Sequence[Request]) -> list[tuple[Item, list[SolutionScore]]]:
        prm = (score_requests(self.prm, requests, self.tokens["prm"]).results
               if self.prm is not None else None)
        orm = (score_requests(self.orm, requests, self.tokens["orm"]).results
               if self.orm is not None else None)
        out = []
        for i, r in enumerate(requests):
            p, o = (prm[i] if prm else None), (orm[i] if orm else None)
            item = Item(r.question, list(r.solutions), prm=p,
                        orm=orm_values(o) if o is not None else None)
            out.append((item, solution_scores(r.solutions, p, o, self.aggregation)))
        return out


def _request(question: Question, solutions: Sequence[SolutionLike],
             documents: Sequence[str] | None = None) -> Request:
    """Raw texts become solutions (steps marked, answer extracted); documents default to the
    question's own."""
    if not isinstance(question, Question):
        raise TypeError(f"question: expected a bestofn.Question, got {type(question).__name__}")
    sols = [s if isinstance(s, Solution) else Solution.from_text(s, question.options or None)
            for s in solutions]
    docs = list(documents) if documents is not None else question.document_texts()
    return Request(question, sols, docs)


def _as_request(x: ItemLike, i: int) -> Request:
    if isinstance(x, Item):
        return _request(x.question, x.solutions, None)
    if isinstance(x, tuple) and len(x) in (2, 3):
        return _request(*x)
    raise TypeError(f"items[{i}]: expected an Item or (question, solutions[, documents]), "
                    f"got {type(x).__name__}")


def best_of_n(question: Question | str, solutions: Sequence[SolutionLike], *,
              prm: str | Scorer | None = None, orm: str | Scorer | None = None,
              method: str = default_of(RerankOptions, "method"),
              options: dict[str, str] | None = None, documents: Sequence[str] | None = None,
              seed: int = default_of(RerankOptions, "seed"), **scorer_options: Any) -> Selection:
    """Pick one answer among `solutions` (raw texts are marked and their answers extracted);
    `Selection.scores` holds every solution's scores."""
    q = question if isinstance(question, Question) else Question(
        id="q", stem=question, options=dict(options or {}))
    if not solutions:
        raise ValueError("best_of_n needs at least one solution")
    return Reranker(prm, orm=orm, method=method, seed=seed,
                    **scorer_options).select(q, solutions, documents)
