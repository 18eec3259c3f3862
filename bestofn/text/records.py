"""The records that flow between stages: questions, solutions, step scores, selections.

Plain dataclasses with `to_dict`/`from_dict` so every stage can write JSONL and a resumed run
reads back exactly what it wrote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Document:
    """A retrieved passage; `score` is the retriever's similarity (None for given documents)."""

    text: str
    id: str = ""
    title: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str) -> Document:
        if isinstance(d, str):
            return cls(text=d)
        return cls(text=d["text"], id=str(d.get("id", "")), title=d.get("title", ""),
                   score=d.get("score"))


@dataclass
class Question:
    """One question. `options` maps letters to option text and is empty for open questions.

    `options_in_stem` is set when the stem already contains the rendered options (Med-PRM's
    published files store the question that way), so `text()` must not append them again.
    """

    id: str
    stem: str
    options: dict[str, str] = field(default_factory=dict)
    answer: str | None = None
    source: str = ""
    documents: list[Document] | None = None
    options_in_stem: bool = False

    def text(self) -> str:
        """The question as the policy and the PRM read it: stem, blank line, `(A) text` lines."""
        if not self.options or self.options_in_stem:
            return self.stem
        lines = "\n".join(f"({k}) {v}" for k, v in self.options.items())
        return f"{self.stem}\n\n{lines}"

    def document_texts(self, use: bool = True) -> list[str] | None:
        """Its attached passages as a PRM prompt takes them ([] without any); None when `use`
        is off (a PRM without documents)."""
        return [d.text for d in self.documents or []] if use else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["documents"] = None if self.documents is None else [x.to_dict() for x in self.documents]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Question:
        docs = d.get("documents")
        return cls(
            id=str(d["id"]), stem=d["stem"], options=dict(d.get("options") or {}),
            answer=d.get("answer"), source=d.get("source", ""),
            documents=None if docs is None else [Document.from_dict(x) for x in docs],
            options_in_stem=bool(d.get("options_in_stem", False)),
        )


@dataclass
class Solution:
    """One sampled solution. `marked` is the PRM input (steps each ending with the step tag)."""

    text: str
    marked: str
    answer: str | None
    steps: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_text(cls, text: str, options: dict[str, str] | None = None,
                  labels: Sequence[str] | None = None, *, think: bool = False,
                  **meta: Any) -> Solution:
        """The one text → Solution: raw policy output with its steps marked and its answer
        extracted. `think` strips a `<think>` block before the steps are split and marked
        (`text` keeps the raw output; the answer is read from the raw output)."""
        from .answers import extract_answer
        from .steps import mark_steps, split_steps, strip_think

        body = strip_think(text) if think else text
        return cls(text=text, marked=mark_steps(body), steps=split_steps(body),
                   answer=extract_answer(text, options, labels=labels), meta=dict(meta))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Solution:
        return cls(text=d["text"], marked=d["marked"], answer=d.get("answer"),
                   steps=list(d.get("steps") or []), meta=dict(d.get("meta") or {}))


AGGREGATIONS = ("min", "final", "mean", "prod")


def aggregate_steps(probs: Sequence[float], how: str) -> float:
    """min | final | mean | prod of a solution's (non-empty) step probabilities: the one step
    aggregation, of finished solutions (`StepScores.aggregate`) and of a search's partial ones
    (`search.strategies.Live.key`)."""
    assert probs, "no step probabilities to aggregate"
    if how == "min":
        return min(probs)
    if how == "final":
        return probs[-1]
    if how == "mean":
        return math.fsum(probs) / len(probs)
    if how == "prod":
        return math.prod(probs)
    raise ValueError(f"unknown aggregation {how!r}; known: {', '.join(AGGREGATIONS)}")


@dataclass(frozen=True)
class StepScores:
    """Per-step P(+) of one solution. Empty `probs` means unscored, and `reason` says why.

    Aggregates are computed from `probs` on demand and never stored twice.
    """

    probs: tuple[float, ...] = ()
    reason: str | None = None
    note: str | None = None
    """How scored probabilities were obtained when it matters (a judge that fell back to its
    parsed verdicts); None for the PRMs."""

    def __post_init__(self) -> None:
        assert bool(self.probs) != bool(self.reason), (
            f"StepScores needs probs or a reason, not both/neither: {self.probs!r} {self.reason!r}")

    @property
    def scored(self) -> bool:
        return bool(self.probs)

    def aggregate(self, how: str) -> float | None:
        """min | final | mean | prod of the step probabilities; None when unscored."""
        return aggregate_steps(self.probs, how) if self.probs else None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"probs": list(self.probs), "reason": self.reason}
        return d if self.note is None else {**d, "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepScores:
        return cls(probs=tuple(d.get("probs") or ()), reason=d.get("reason"),
                   note=d.get("note"))

    @classmethod
    def unscored(cls, reason: str) -> StepScores:
        return cls(probs=(), reason=reason)


@dataclass(frozen=True)
class SolutionScore:
    """What the verifiers computed for one solution (the library returns it; files store the
    same numbers as `StepScores` and ORM floats).

    `step_probs` are the PRM's per-step P(+) (empty: no PRM, or unscored with `prm_reason`);
    `aggregate` is their aggregate under `aggregation` (the selection method's, e.g. `min`
    for `prm_min`); `orm` is the outcome reward (None: no ORM, or unscored with `orm_reason`).
    """

    answer: str | None
    step_probs: tuple[float, ...] = ()
    aggregation: str | None = None
    aggregate: float | None = None
    prm_reason: str | None = None
    orm: float | None = None
    orm_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "step_probs": list(self.step_probs)}


@dataclass
class Selection:
    """The outcome of one selection method on one question.

    `weights` maps each candidate answer to its vote weight (count, summed score, or the best
    score for best-of-N); `index` is the chosen solution for best-of-N methods (None for votes).
    `reason` explains an empty choice (no scored solution, no extracted answer). `scores` holds
    every solution's scores, in solution order, when the library computed them (None when the
    selection was made from a file's stored scores).
    """

    answer: str | None
    method: str
    weights: dict[str, float] = field(default_factory=dict)
    index: int | None = None
    tied: list[str] = field(default_factory=list)
    reason: str | None = None
    scores: list[SolutionScore] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form; `scores` appears only when present, so records written before it read
        the same."""
        d = {k: v for k, v in asdict(self).items() if k != "scores"}
        if self.scores is not None:
            d["scores"] = [s.to_dict() for s in self.scores]
        return d


@dataclass
class Item:
    """A question with its N solutions and whatever verifiers scored them.

    `prm` and `orm` run parallel to `solutions` when present. `raw` keeps the record as it was
    read (a Med-PRM item), so that writing it back preserves every field the project ignores.
    """

    question: Question
    solutions: list[Solution]
    prm: list[StepScores] | None = None
    orm: list[float | None] | None = None
    raw: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    compute: dict[str, int] | None = field(default=None, compare=False)
    """What the question cost (`evaluation.ledger.Compute`), when a run recorded it."""
    search: dict[str, Any] | None = field(default=None, compare=False)
    """What a search run did for the question (`bestofn.search`: candidates per step)."""

    def __post_init__(self) -> None:
        for name in ("prm", "orm"):
            got = getattr(self, name)
            if got is not None and len(got) != len(self.solutions):
                raise ValueError(f"question {self.question.id}: {len(got)} {name} scores for "
                                 f"{len(self.solutions)} solutions")

    @property
    def answers(self) -> list[str | None]:
        return [s.answer for s in self.solutions]

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question.to_dict(),
                "solutions": [s.to_dict() for s in self.solutions],
                "prm": None if self.prm is None else [s.to_dict() for s in self.prm],
                "orm": self.orm, **({"compute": self.compute} if self.compute else {}),
                **({"search": self.search} if self.search else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Item:
        prm = d.get("prm")
        return cls(question=Question.from_dict(d["question"]),
                   solutions=[Solution.from_dict(s) for s in d["solutions"]],
                   prm=None if prm is None else [StepScores.from_dict(s) for s in prm],
                   orm=d.get("orm"), compute=d.get("compute"), search=d.get("search"))
