"""One question's search as a `execution.Job`: steps run as requests on the shared stream.

A question alternates between generating (each live candidate's next step is one
`StepRequest`, started when the scheduler has room) and scoring (when all its step requests
are back, the candidates whose text changed go to the scoring side, beside the engine). When
the scores arrive the strategy plans the next step: finished candidates leave the live set
(or stay in the pool, for strategies that keep them), pruned ones are dropped, kept ones are
copied. Questions never wait for each other: one question scores while others generate.
Request indices are the job's own numbering (one per candidate-step); a candidate's seed
comes from its lineage and step only, so the result never depends on timing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.evaluation.ledger import Compute
from bestofn.execution.driver import Failed, failed
from bestofn.execution.requests import SampleKey, StepOutput, StepRequest
from bestofn.execution.scoring import Scores
from bestofn.text.records import Item, Question, StepScores

from .scoring import ScoreWork, to_score
from .stepwise import MEDPRM_STEPS, Candidate, StepFormat, prompt_ids
from .strategies import Live, Strategy, format_strategy


@dataclass
class SearchJob:
    question: Question
    strategy: Strategy
    n: int
    params: SamplingConfig
    fmt: StepFormat
    prompt: tuple[int, ...]
    tokenizer: Any
    scoring: Any
    """The `execution.scoring.ScoringSide` that scores its candidates and calls `scored`."""
    model: str = ""
    preset: Any = None
    """The policy's name and preset (what its finished candidates' records carry)."""
    live: list[Candidate] = field(default_factory=list)
    ended: list[Candidate] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    slots: dict[int, Candidate] = field(default_factory=dict)
    running: int = 0
    in_scoring: bool = False
    step: int = 0
    next_slot: int = 0
    compute: Compute = field(default_factory=Compute)
    log: list[dict[str, int]] = field(default_factory=list)
    error: tuple[str, Exception] | None = None
    """(stage, error) of a step or a scoring that failed: the question settles as failed."""

    def __post_init__(self) -> None:
        size = self.strategy.groups(self.n)
        self.live = [Candidate(self.question, str(i), i // size) for i in range(self.n)]
        self._queue(self.live)

    def _queue(self, cands: list[Candidate]) -> None:
        for c in cands:
            self.slots[self.next_slot] = c
            self.waiting.append(self.next_slot)
            self.next_slot += 1

    def next_indices(self, room: int) -> list[int]:
        out, self.waiting = self.waiting[:room], self.waiting[room:]
        self.running += len(out)
        return out

    def request(self, index: int) -> StepRequest:
        from policies import question_seed

        c = self.slots[index]
        return StepRequest(SampleKey(self.question.id, index), self.prompt + tuple(c.ids),
                           seed=question_seed(self.params.seed, self.question.id, c.lineage,
                                              c.steps),
                           max_tokens=self.params.max_tokens - len(c.ids),
                           stop=self.fmt.stops, min_tokens=self.fmt.min_tokens)

    def finished(self, out: StepOutput) -> None:
        if self.error is not None:
            return
        c = self.slots.pop(out.key.index)
        c.accept(out.token_ids, out.stop_reason, out.finish_reason, self.tokenizer,
                 self.params.max_tokens, self.fmt)
        self.compute.tokens_generated += len(out.token_ids)
        self.running -= 1
        if not self.running and not self.waiting:
            todo = to_score(self.live)
            if todo:
                self.in_scoring = True
                work = ScoreWork.of(self.question, todo)
                self.scoring.submit(self, work, work.solutions())
            else:
                self._plan()

    def scored(self, work: ScoreWork, scores: list[Scores], tokens: int) -> None:
        self.in_scoring = False
        if self.error is not None:
            return
        work.apply([tuple(p.probs) if p is not None and p.probs else None for p, _ in scores])
        self.compute.prm_tokens_computed += tokens
        self._plan()

    def _plan(self) -> None:
        done = [c for c in self.live if c.done]
        self.ended += done
        live = [c for c in self.live if not c.done]
        pool = self.ended + live if self.strategy.keeps_finished else live
        plan = (self.strategy.plan([Live(c.group, c.probs) for c in pool], self.step)
                if live else [1] * len(pool))
        kids = [c if j == 0 else c.child(f"{c.lineage}.{self.step}.{j}")
                for c, k in zip(pool, plan, strict=True) for j in range(k)]
        if self.strategy.keeps_finished:
            self.ended = [c for c in kids if c.done]
        self.live = [c for c in kids if not c.done]
        was_live = [k for k, c in zip(plan, pool, strict=True) if not c.done]
        pruned = sum(k == 0 for k in was_live)
        self.compute.samples_aborted += pruned
        self.log.append({"step": self.step, "live": len(was_live) + len(done),
                         "finished": len(done), "kept": len(was_live) - pruned,
                         "pruned": pruned, "next": len(self.live)})
        self.step += 1
        self._queue(self.live)

    def score_failed(self, work: ScoreWork, error: Exception) -> None:
        """Its scoring raised (alone, after the batch it was in raised)."""
        self.in_scoring = False
        self.fail("verify", error)

    def fail(self, stage: str, error: Exception) -> None:
        if self.error is None:
            self.error = (stage, error)

    def settled(self) -> bool:
        if self.error is not None:
            return not self.in_scoring
        return not self.live and not self.running and not self.in_scoring

    def aborted(self, keys: list[SampleKey], tokens: int) -> None:
        self.compute.tokens_aborted += tokens

    def outcome(self) -> Item | Failed:
        """The question's item, or its failure (`driver.Failed`) when a step or a scoring
        raised for it."""
        if self.error is not None:
            return failed(self.question, *self.error)
        return self.item()

    def item(self) -> Item:
        from policies import question_seed

        sols, prm = [], []
        for c in self.ended:
            sols.append(self.preset.make_solution(
                c.text, self.question, model=self.model,
                seed=question_seed(self.params.seed, self.question.id), index=len(sols),
                tokens=len(c.ids), finish_reason=c.finish_reason, lineage=c.lineage,
                steps_generated=c.steps))
            prm.append(StepScores(probs=c.probs) if c.probs else
                       StepScores.unscored("no scored step"))
        self.compute.samples_drawn = len(sols)
        search = {"strategy": format_strategy(self.strategy), "steps": self.log,
                  "tokens_generated": self.compute.tokens_generated,
                  "prm_tokens_computed": self.compute.prm_tokens_computed}
        return Item(self.question, sols, prm=prm, compute=self.compute.to_dict(), search=search)


def search_jobs(questions: Sequence[Question], strategy: Strategy, n: int,
                params: SamplingConfig, tokenizer: Any, preset: Any, model: str, scoring: Any,
                fmt: StepFormat = MEDPRM_STEPS) -> Iterator[SearchJob]:
    """One job per question (made as the loop admits it: its prompt is tokenized then)."""
    for q in questions:
        yield SearchJob(q, strategy, n, params, fmt, prompt_ids(tokenizer, preset, q),
                        tokenizer, scoring, model, preset)
