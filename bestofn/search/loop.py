"""The search itself: questions advance step by step together, pruned by a strategy.

Every step is one engine call for the live candidates of all open questions
(`StepGenerator.advance`) and one PRM call (`score_candidates`); a question whose candidates
have all finished is handed back at once (questions finish independently) as an `Item` whose
solutions are its finished candidates, scored with the same PRM, so the run's usual selection
methods (`bestofn.select`) pick the answer. `Item.search` records what the search did: per
step the candidates live, kept, pruned and finished, tokens generated, PRM tokens computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.records import Item, Question, StepScores
from bestofn.scheduler.ledger import Compute, StageClock, split_by_size

from .scoring import score_candidates
from .stepwise import Candidate, StepFormat, StepGenerator
from .strategies import Live, Strategy, format_strategy


@dataclass
class QuestionSearch:
    question: Question
    live: list[Candidate]
    finished: list[Candidate] = field(default_factory=list)
    compute: Compute = field(default_factory=Compute)
    log: list[dict[str, int]] = field(default_factory=list)

    def item(self, strategy: Strategy, model: str, preset: Any, seed: int) -> Item:
        from policies import question_seed

        sols, prm = [], []
        for c in self.finished:
            sols.append(preset.make_solution(
                c.text, self.question, model=model, seed=question_seed(seed, self.question.id),
                index=len(sols), tokens=len(c.ids), finish_reason=c.finish_reason,
                lineage=c.lineage, steps_generated=c.steps))
            prm.append(StepScores(probs=c.probs) if c.probs else
                       StepScores.unscored("no scored step"))
        self.compute.samples_drawn = len(sols)
        search = {"strategy": format_strategy(strategy), "steps": self.log,
                  "tokens_generated": self.compute.tokens_generated,
                  "prm_tokens_computed": self.compute.prm_tokens_computed}
        return Item(self.question, sols, prm=prm, compute=self.compute.to_dict(), search=search)


def search_items(policy: Any, prm: Any, questions: Sequence[Question], n: int,
                 params: SamplingConfig, strategy: Strategy, *,
                 docs: dict[str, list[str] | None] | None = None,
                 fmt: StepFormat | None = None, clock: StageClock | None = None,
                 gen: StepGenerator | None = None) -> Iterator[Item]:
    """Search N candidates per question; items are yielded as their questions finish."""
    gen = gen or StepGenerator(policy, fmt or StepFormat())
    clock = clock or StageClock()
    docs = docs or {}
    size = strategy.groups(n)
    open_ = [QuestionSearch(q, [Candidate(q, str(i), i // size) for i in range(n)])
             for q in questions]
    step = 0
    while open_:
        cands = [c for s in open_ for c in s.live]
        with clock.stage("sample_s"):
            tokens = gen.advance(cands, params)
        at = 0
        for s in open_:
            s.compute.tokens_generated += sum(tokens[at:at + len(s.live)])
            at += len(s.live)
        with clock.stage("score_s"):
            spent = score_candidates(prm, cands, docs)
        for s, t in zip(open_, split_by_size(spent, [len(s.live) for s in open_]), strict=True):
            s.compute.prm_tokens_computed += t
        still = []
        for s in open_:
            done = [c for c in s.live if c.done]
            s.finished += done
            live = [c for c in s.live if not c.done]
            plan = strategy.plan([Live(c.group, c.probs) for c in live], step) if live else []
            s.compute.samples_aborted += sum(k == 0 for k in plan)
            s.log.append({"step": step, "live": len(s.live), "finished": len(done),
                          "kept": sum(k > 0 for k in plan), "pruned": sum(k == 0 for k in plan),
                          "next": sum(plan)})
            s.live = [c if j == 0 else c.child(f"{c.lineage}.{step}.{j}")
                      for c, k in zip(live, plan, strict=True) for j in range(k)]
            if s.live:
                still.append(s)
            else:
                yield s.item(strategy, policy.model_name, policy.preset, params.seed)
        open_ = still
        step += 1
