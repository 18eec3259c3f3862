"""The one scoring path of every job: (question, solutions) pairs in; PRM step scores, ORM
rewards and PRM tokens per question out; and the side that runs it beside the engine.

`score_pairs` is what the in-process side calls and what the Ray scorer actors run, so a
fixed, adaptive or search job is scored the same way wherever it runs. `ScoringSide` queues
each job's finished solutions and scores everything waiting in one call (one `Request` per
job: the engine batches across questions), on the worker thread of a `side.BatchSide`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bestofn.scorers.batch import Request, orm_values, score_requests
from bestofn.scorers.protocol import TokenCounts
from bestofn.text.records import Question, Solution, StepScores

from ..evaluation.ledger import StageClock, split_by_size
from .side import BatchSide

Scores = tuple[StepScores | None, float | None]
"""One solution's PRM step scores and ORM reward (None where that verifier is not used)."""


@dataclass(frozen=True)
class Scored:
    """One question's results: per solution (PRM, ORM), and the PRM tokens computed for it
    (the backend's count for it, or its share by solution count where the backend shares work
    between questions: `ScoredBatch.request_tokens`)."""

    scores: list[Scores]
    prm_tokens: int


@dataclass
class Verifiers:
    """The run's verifiers: a PRM, an ORM, both or neither (majority vote only)."""

    prm: Any = None
    orm: Any = None
    tokens: dict[str, TokenCounts] = field(
        default_factory=lambda: {"prm": TokenCounts(), "orm": TokenCounts()})
    """What scoring cost so far, by verifier kind."""

    def __bool__(self) -> bool:
        return self.prm is not None or self.orm is not None


def score_pairs(v: Verifiers, work: Sequence[tuple[Question, Sequence[Solution]]],
                use_docs: bool, prm_only: bool = False) -> list[Scored]:
    """Every question's scores, each verifier called once for all of them (`prm_only`: a
    search's partial solutions: the PRM alone, its requests marked `Request.partial`, which
    prm-hf scores incrementally from its segment cache). The PRM prompt carries a question's
    attached documents when `use_docs`."""
    requests = [Request(q, sols, q.document_texts(use_docs), partial=prm_only)
                for q, sols in work]
    scored = score_requests(v.prm, requests, v.tokens["prm"]) if v.prm else None
    prm = scored.results if scored else None
    orm = (score_requests(v.orm, requests, v.tokens["orm"]).results
           if v.orm and not prm_only else None)
    shares = (scored.request_tokens if scored and scored.request_tokens is not None
              else split_by_size(scored.tokens.computed_tokens if scored else 0,
                                 [len(sols) for _, sols in work]))
    out = []
    for i, (_, sols) in enumerate(work):
        p: list[Any] = prm[i] if prm is not None else [None] * len(sols)
        o: list[Any] = orm_values(orm[i]) if orm is not None else [None] * len(sols)
        out.append(Scored(list(zip(p, o, strict=True)), shares[i]))
    return out


class ScoredJob(Protocol):
    question: Question

    def scored(self, tag: Any, scores: list[Scores], prm_tokens: int) -> None: ...

    def score_failed(self, tag: Any, error: Exception) -> None: ...


Item = tuple[ScoredJob, Any, list[Solution]]


class ScoringSide:
    """A `scheduler.Side`: `submit(job, tag, solutions)`; the job's `scored(tag, scores,
    tokens)` runs on the scheduler's thread when they are back, or `score_failed(tag, error)`
    when its question's scoring raised (a batch that raises is scored again question by
    question, so one bad question fails only itself)."""

    def __init__(self, score: Callable[[list[tuple[Question, list[Solution]]]], list[Scored]],
                 clock: StageClock) -> None:
        self.score = score
        self.side: BatchSide[Item, tuple[list[Scores], int] | Exception] = BatchSide(
            self._work, self._deliver, clock, name="bestofn-scoring")

    def submit(self, job: ScoredJob, tag: Any, solutions: list[Solution]) -> None:
        self.side.submit((job, tag, solutions))

    def busy(self) -> bool:
        return self.side.busy()

    def pump(self, wait: float) -> None:
        self.side.pump(wait)

    def close(self) -> None:
        self.side.close()

    @staticmethod
    def _deliver(item: Item, got: tuple[list[Scores], int] | Exception) -> None:
        job, tag, _ = item
        if isinstance(got, Exception):
            job.score_failed(tag, got)
        else:
            job.scored(tag, *got)

    def _work(self, batch: list[Item]) -> list[tuple[list[Scores], int] | Exception]:
        from bestofn.execution.driver import one_by_one

        groups: dict[int, list[int]] = {}
        for i, (job, _, _) in enumerate(batch):
            groups.setdefault(id(job), []).append(i)
        work = [(batch[g[0]][0].question, [s for i in g for s in batch[i][2]])
                for g in groups.values()]
        results = one_by_one(self.score, work)
        out: list[Any] = [None] * len(batch)
        for g, got in zip(groups.values(), results, strict=True):
            if isinstance(got, Exception):
                for i in g:
                    out[i] = got
                continue
            sizes = [len(batch[i][2]) for i in g]
            at = 0
            for i, size, t in zip(g, sizes, split_by_size(got.prm_tokens, sizes), strict=True):
                out[i] = (got.scores[at:at + size], t)
                at += size
        return out
