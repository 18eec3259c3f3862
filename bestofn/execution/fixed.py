"""A fixed-N question as a scheduler job, with Med-PRM's validity filter as job logic.

Without a filter the job requests samples 0..N-1 (sample k with the question's seed + k: the
k-th child of a batched `n` request) and keeps them all. With one (`ValidityConfig`) it draws
as Med-PRM's sampler does: ceil(oversample x N) samples, the ones with min..max steps kept;
while a question is short and top-up rounds are left, a round draws `topup_factor` times the
shortfall under the round's own seed (`policies.validity.round_seed`); the first N valid ones
are kept (filled up with rejected ones, in draw order, when `fill_invalid`). Each solution
gets `meta["round"]` and `meta["valid"]`.
When its solutions are in, the job hands them to the scoring side (all N in one request) and
settles when the scores are back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bestofn.text.records import Item, Question, Solution

from ..evaluation.ledger import Compute
from .requests import Finished, SampleKey, SampleRequest
from .scoring import Scores


@dataclass
class FixedJob:
    question: Question
    n: int
    seed: int
    scoring: Any = None
    """The `scoring.ScoringSide` its solutions go to (None: no verifier)."""
    validity: Any = None
    """A `policies.validity.ValidityConfig`, or None to keep every sample."""
    has_prm: bool = False
    has_orm: bool = False
    draws: list[tuple[int, int]] = field(default_factory=list)
    """(round, sample number) of each job index."""
    todo: list[int] = field(default_factory=list)
    samples: dict[int, Solution] = field(default_factory=dict)
    round: int = 0
    kept: list[Solution] | None = None
    scores: list[Scores] | None = None
    compute: Compute = field(default_factory=Compute)
    error: tuple[str, Exception] | None = None

    def __post_init__(self) -> None:
        first = self.n if self.validity is None else math.ceil(self.validity.oversample * self.n)
        self._draw(first)

    def _draw(self, count: int) -> None:
        for k in range(count):
            self.todo.append(len(self.draws))
            self.draws.append((self.round, k))

    def next_indices(self, room: int) -> list[int]:
        if self.settled():
            return []
        out, self.todo = self.todo[:room], self.todo[room:]
        return out

    def request(self, index: int) -> SampleRequest | None:
        round_, k = self.draws[index]
        if round_ == 0:
            return None
        from policies.validity import round_seed

        return SampleRequest(SampleKey(self.question.id, index), self.question, k,
                             round_seed(self.seed, round_))

    def finished(self, f: Finished) -> None:
        if self.error is not None:
            return
        self.samples[f.key.index] = f.solution
        self.compute.tokens_generated += f.tokens
        if self.todo or len(self.samples) < len(self.draws):
            return
        if self.validity is not None:
            for i, s in self.samples.items():
                s.meta.update(round=self.draws[i][0], valid=self.validity.valid(s))
            short = self.n - len(self._valid())
            if short > 0 and self.round < self.validity.max_rounds:
                self.round += 1
                self._draw(short * self.validity.topup_factor)
                return
        self._keep()

    def _valid(self) -> list[Solution]:
        return [self.samples[i] for i in sorted(self.samples) if self.samples[i].meta["valid"]]

    def _keep(self) -> None:
        ordered = [self.samples[i] for i in sorted(self.samples)]
        if self.validity is None:
            kept = ordered
        else:
            rejected = [s for s in ordered if not s.meta["valid"]]
            kept = (self._valid() + (rejected if self.validity.fill_invalid else []))[:self.n]
        self.kept = kept
        kept_ids = {id(s) for s in kept}
        thrown = [s for s in ordered if id(s) not in kept_ids]
        self.compute.samples_drawn = len(kept)
        self.compute.samples_aborted = len(thrown)
        self.compute.tokens_aborted = sum(int(s.meta.get("tokens") or 0) for s in thrown)
        if self.scoring is None:
            self.scores = [(None, None)] * len(kept)
        else:
            self.scoring.submit(self, None, kept)

    def scored(self, tag: Any, scores: list[Scores], prm_tokens: int) -> None:
        if self.error is None:
            self.scores = scores
            self.compute.prm_tokens_computed += prm_tokens

    def score_failed(self, tag: Any, error: Exception) -> None:
        self.fail("verify", error)

    def fail(self, stage: str, error: Exception) -> None:
        if self.error is None and self.scores is None:
            self.error = (stage, error)

    def settled(self) -> bool:
        return self.scores is not None or self.error is not None

    def aborted(self, keys: list[SampleKey], tokens: int) -> None:
        self.compute.tokens_generated += tokens
        self.compute.tokens_aborted += tokens

    def outcome(self) -> Item | Any:
        from bestofn.execution.driver import failed

        if self.error is not None:
            return failed(self.question, *self.error)
        assert self.kept is not None and self.scores is not None
        return Item(self.question, self.kept,
                    prm=[p for p, _ in self.scores] if self.has_prm else None,  # type: ignore[misc]
                    orm=[o for _, o in self.scores] if self.has_orm else None,
                    compute=self.compute.to_dict())
