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
from ..config import EngineOptions
from ..evaluation.select import get_method
from ..execution import Compute, make_stream
from ..execution.documents import Documents
from ..execution.fixed import FixedJob
from ..execution.jobs import budget, fixed_samples, run_jobs
from ..search.loop import with_documents
from ..text.records import Item, Question, Selection, Solution


def _error(job: FixedJob) -> Exception | None:
    return None if job.error is None else job.error[1]


@dataclass
class Sampled:
    """One question's samples: the kept solutions (an adaptive request's, a search's finished
    candidates), their PRM scores when they were computed while sampling (None otherwise),
    and what they cost."""

    solutions: list[Solution]
    prm: list[Any] | None
    compute: Compute
    search: dict[str, Any] | None = None
    """What a search did (`Item.search`: strategy, per-step log, tokens), or None."""


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
    prm_computed: int = 0
    """Tokens the PRM computed for this selection (not read from a cache)."""

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
    """The policy, the verifiers and an optional documents stage (`bestofn.execution.documents`, no
    cache: a server has no run folder), loaded once.

    Every request samples as jobs on the one scheduler loop (`execution.jobs`) over the
    policy's stream, within the budget `engine` (`EngineOptions`) gives: fixed N (with
    Med-PRM's step filter `validity`, a `policies.validity.ValidityConfig`, when given),
    adaptive and search; a search ends its steps where `step_format` says (default: the
    Med-PRM `Step N:` headers)."""

    def __init__(self, policy: Any, reranker: Reranker, documents: Documents | None = None,
                 engine: EngineOptions | None = None, step_format: Any = None,
                 validity: Any = None) -> None:
        from ..search import MEDPRM_STEPS

        self.policy, self.docs, self.validity = policy, documents, validity
        self.options = engine or EngineOptions()
        self.step_format = step_format or MEDPRM_STEPS
        self._stream: Any = None
        self.prm, self.orm = reranker.prm, reranker.orm
        self.method, self.seed = reranker.method, reranker.seed

    def reranker(self, method: str, seed: int) -> Reranker:
        """A reranker over the loaded verifiers; ValueError when `method` needs one that is
        not loaded."""
        return Reranker(self.prm, orm=self.orm, method=method, seed=seed)

    def stream(self) -> Any:
        if self._stream is None:
            self._stream = make_stream(self.policy)
        return self._stream

    def sample(self, questions: list[Question], n: int,
               params: Any) -> list[list[Solution] | Exception]:
        """N solutions per question (fixed jobs on the loop: the engine batches across
        questions); a question whose sample fails is that question's error alone."""
        done = {j.question.id: j for j in fixed_samples(self.stream(), questions, n, params,
                                                        self.validity, self.options)}
        return [_error(done[q.id]) or done[q.id].kept for q in questions]  # type: ignore[misc]

    def sample_adaptive(self, questions: list[Question], documents: list[list[str] | None],
                        params: Any, rule: Any) -> list[Sampled]:
        """Each question sampled until `rule` settles it (at most `rule.max_n` samples), the
        questions streamed together; running samples of a settled question are aborted.
        A rule that reads scores gets them as samples finish (and they are kept)."""
        from ..execution import StageClock
        from ..execution.scoring import ScoringSide, Verifiers, score_pairs
        from ..jobs.adaptive import StreamJob

        scoring = None
        if "scores" in rule.needs:
            assert self.prm is not None, "a rule that reads scores needs the PRM"
            verifiers = Verifiers(self.prm)
            scoring = ScoringSide(lambda work: score_pairs(verifiers, work, True, True),
                                  StageClock())
        qs = with_documents(questions, [d or [] for d in documents])
        jobs = [StreamJob(q, rule, scoring, lambda line: None, scoring is not None)
                for q in qs]
        done = {j.question.id: j for j in run_jobs(
            self.stream(), params, jobs, budget(self.options, "adaptive", rule.max_n), scoring)}
        out = []
        for q in questions:
            job = done[q.id]
            if job.error is not None:  # type: ignore[attr-defined]
                raise job.error[1]  # type: ignore[attr-defined]
            item = job.item()  # type: ignore[attr-defined]
            out.append(Sampled(item.solutions, item.prm, Compute.from_dict(item.compute)))
        return out

    def search_problem(self) -> str | None:
        """Why this server cannot search (None: it can)."""
        if self.prm is None:
            return "a search scores partial solutions with the PRM and this server has none"
        if getattr(self.policy, "backend", None) != "vllm":
            return ("a search needs the vllm policy backend (step-wise generation continues "
                    f"from token ids); this server's policy is {type(self.policy).__name__}")
        return None

    def sample_search(self, questions: list[Question], documents: list[list[str] | None],
                      n: int, params: Any, strategy: Any) -> list[Sampled | Exception]:
        """Each question searched with N candidates (`bestofn.search`), the questions on one
        engine stream; the finished candidates come back with their PRM scores."""
        from ..execution.driver import Failed
        from ..search import outcomes_in_order

        got = outcomes_in_order(self.policy, self.prm, with_documents(questions, documents),
                                n, params, strategy, use_docs=True, fmt=self.step_format,
                                in_flight=self.options.samples_in_flight)
        return [RuntimeError(f"{it.stage}: {it.error}") if isinstance(it, Failed) else
                Sampled(it.solutions, it.prm, Compute.from_dict(it.compute), it.search)
                for it in got]

    def documents(self, questions: list[Question]) -> list[list[str]]:
        """Top-k passages per question from the index."""
        assert self.docs is not None, "the server has no index"
        return self.docs.texts(questions)

    def rerank(self, question: Question, solutions: list[Solution],
               documents: list[str] | None, method: str, seed: int,
               prm: list[Any] | None = None) -> Reranked:
        """Score and select; `prm`: the PRM's scores of `solutions`, already computed while
        sampling (then only an ORM, if loaded, scores here)."""
        rr = self.reranker(method, seed)
        if prm is not None and self.orm is None:
            item = Item(question, solutions, prm=prm)
        else:
            item = rr.scored_item(question, solutions,
                                  documents if documents is not None else [])
        sel = rr.pick(item)
        scored = {s.kind: rr.tokens[s.kind].solutions for s in (self.prm, self.orm)
                  if s is not None}
        if prm is not None:
            scored["prm"] = len(prm)
        return Reranked(item, sel, rank(item, sel), rr.tokens["prm"].prompt_tokens, scored,
                        rr.tokens["prm"].computed_tokens)
