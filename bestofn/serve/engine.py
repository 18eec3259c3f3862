"""The server's synchronous work: sample, retrieve, score and select. Every call runs on the
batcher's one worker thread, because the engines are not thread-safe and are loaded once
(scoring runs beside the engine on the scheduler's scoring side, as in `run`).

Fixed-N requests are jobs on the one scheduler loop with the scoring side beside it: a
question's solutions go to the PRM (and ORM) as soon as they are in, and everything waiting
for scores (every request of the batch) is scored in one call. Adaptive and search requests
are scored together after they are drawn, also in one call. Selection goes through
`bestofn.api.Reranker.pick` (what `Reranker.select` and `best_of_n` do after scoring), so the
endpoint answers what the library answers for the same question, solutions, method and seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api import Reranker
from ..config import EngineOptions
from ..evaluation.ledger import split_by_size
from ..evaluation.select import get_method
from ..execution import Compute, StageClock, make_stream
from ..execution.documents import Documents
from ..execution.fixed import FixedJob
from ..execution.jobs import budget, run_jobs
from ..execution.requests import SampleKey
from ..execution.scoring import Scored, ScoringSide, Verifiers, score_pairs
from ..search.loop import with_documents
from ..text.records import Item, Question, Selection, Solution


@dataclass
class Ask:
    """One distinct question of a batch: the requests asking the same question with the same
    documents share its samples (they would get the same ones: the seed is per question).
    `gone()` is true once every request asking it has left (client gone, timeout)."""

    question: Question
    documents: list[str] | None
    gone: Callable[[], bool] = lambda: False


@dataclass
class Verdict:
    """A question's verifier results: PRM step scores, ORM rewards (None: verifier not
    loaded), the PRM prompt tokens and computed tokens of its share of the calls, and the
    solutions scored by verifier kind."""

    prm: list[Any] | None
    orm: list[float | None] | None
    prompt_tokens: int = 0
    computed_tokens: int = 0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Sampled:
    """One question's samples: the kept solutions (an adaptive request's, a search's finished
    candidates), their PRM scores when they were computed while sampling (None otherwise),
    and what they cost; `verdict`: the verifiers' results when they were scored on the loop."""

    solutions: list[Solution]
    prm: list[Any] | None
    compute: Compute
    search: dict[str, Any] | None = None
    """What a search did (`Item.search`: strategy, per-step log, tokens), or None."""
    verdict: Verdict | None = None
    cancelled: bool = False
    """Every request asking it left: its running samples were aborted, its scoring skipped."""


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


@dataclass
class ServedJob(FixedJob):
    """A fixed-N request's job: settled as soon as every request asking it has left, so the
    loop aborts its running samples (and its scoring is skipped)."""

    gone: Callable[[], bool] = lambda: False

    def settled(self) -> bool:
        return super().settled() or self.gone()

    def aborted(self, keys: list[SampleKey], tokens: int) -> None:
        super().aborted(keys, tokens)
        self.compute.samples_aborted += len(keys)


class Engine:
    """The policy, the verifiers and an optional documents stage (`bestofn.execution.documents`, no
    cache: a server has no run folder), loaded once.

    Every request samples as jobs on the one scheduler loop (`execution.jobs`) over the
    policy's stream, within the budget `engine` (`EngineOptions`) gives: fixed N (with
    Med-PRM's step filter `validity`, a `policies.validity.ValidityConfig`, when given),
    adaptive and search; a search ends its steps where `step_format` says (default: the
    Med-PRM `Step N:` headers). `on_score(questions, solutions)` hears of every verifier call
    (the server's largest PRM batch)."""

    def __init__(self, policy: Any, reranker: Reranker, documents: Documents | None = None,
                 engine: EngineOptions | None = None, step_format: Any = None,
                 validity: Any = None,
                 on_score: Callable[[int, int], None] = lambda q, s: None) -> None:
        from ..search import MEDPRM_STEPS

        self.policy, self.docs, self.validity = policy, documents, validity
        self.options = engine or EngineOptions()
        self.step_format = step_format or MEDPRM_STEPS
        self._stream: Any = None
        self.prm, self.orm = reranker.prm, reranker.orm
        self.method, self.seed = reranker.method, reranker.seed
        self.on_score = on_score

    def reranker(self, method: str, seed: int) -> Reranker:
        """A reranker over the loaded verifiers; ValueError when `method` needs one that is
        not loaded."""
        return Reranker(self.prm, orm=self.orm, method=method, seed=seed)

    def stream(self) -> Any:
        if self._stream is None:
            self._stream = make_stream(self.policy)
        return self._stream

    def draw_fixed(self, asks: list[Ask], n: int, params: Any,
                   settle: Callable[[Ask, Sampled | Exception], None]) -> None:
        """N solutions per question as fixed jobs on the loop, scored on the scoring side as
        they come in (every question waiting for scores in one call); `settle(ask, drawn)`
        as each question settles (an exception: that question's failure alone). An error of
        the engine as a whole (`EngineFailure`) is raised."""
        by_id = {a.question.id: a for a in asks}
        assert len(by_id) == len(asks), "asks of one call must be distinct questions"
        verified = self.prm is not None or self.orm is not None
        prompt: dict[str, int] = {}
        side = ScoringSide(self._side_scorer(by_id, prompt), StageClock()) if verified else None
        jobs = [ServedJob(a.question, n, params.seed, side, self.validity, self.prm is not None,
                          self.orm is not None, gone=a.gone) for a in asks]
        for job in run_jobs(self.stream(), params, jobs, budget(self.options, "fixed", n),
                            side):
            settle(by_id[job.question.id], self._fixed_outcome(job, prompt))  # type: ignore[arg-type]

    def _fixed_outcome(self, job: ServedJob, prompt: dict[str, int]) -> Sampled | Exception:
        if job.error is not None:
            return job.error[1]
        if job.scores is None or job.kept is None:
            return Sampled([], None, job.compute, cancelled=True)
        has = {"prm": self.prm is not None, "orm": self.orm is not None}
        verdict = Verdict([p for p, _ in job.scores] if has["prm"] else None,
                          [o for _, o in job.scores] if has["orm"] else None,
                          prompt.get(job.question.id, 0), job.compute.prm_tokens_computed,
                          {k: len(job.kept) for k, on in has.items() if on})
        return Sampled(job.kept, verdict.prm, job.compute, verdict=verdict)

    def _side_scorer(self, asks: dict[str, Ask],
                     prompt: dict[str, int]) -> Callable[[list[Any]], list[Scored]]:
        """The scoring side's call: every waiting question scored at once, questions whose
        requests all left skipped; each question's PRM prompt tokens go to `prompt`."""
        verifiers = Verifiers(self.prm, self.orm)

        def score(work: list[tuple[Question, list[Solution]]]) -> list[Scored]:
            live = [not asks[q.id].gone() for q, _ in work]
            todo = [(q, s, asks[q.id].documents) for (q, s), on in zip(work, live, strict=True)
                    if on]
            got = iter(self._score(verifiers, todo))
            out = []
            for (q, sols), on in zip(work, live, strict=True):
                if not on:
                    out.append(Scored([(None, None)] * len(sols), 0))
                    continue
                v = next(got)
                prompt[q.id] = prompt.get(q.id, 0) + v.prompt_tokens
                out.append(Scored(list(zip(v.prm or [None] * len(sols),
                                           v.orm or [None] * len(sols), strict=True)),
                                  v.computed_tokens))
            return out

        return score

    def _score(self, verifiers: Verifiers,
               work: Sequence[tuple[Question, list[Solution], list[str] | None]],
               prm_only: bool = False) -> list[Verdict]:
        """One call per verifier for every question in `work` (question, solutions,
        documents): what `Reranker.scored_item` computes for each, with the prompt tokens
        split by solution count."""
        if not work:
            return []
        sizes = [len(s) for _, s, _ in work]
        self.on_score(len(work), sum(sizes))
        before = verifiers.tokens["prm"].prompt_tokens
        got = score_pairs(verifiers, [(q, s) for q, s, _ in
                                      zip(with_documents([q for q, _, _ in work],
                                                         [d or [] for _, _, d in work]),
                                          [s for _, s, _ in work], [d for _, _, d in work],
                                          strict=True)], True, prm_only)
        shares = split_by_size(verifiers.tokens["prm"].prompt_tokens - before, sizes)
        has = {"prm": verifiers.prm is not None, "orm": verifiers.orm is not None and
               not prm_only}
        return [Verdict([p for p, _ in g.scores] if has["prm"] else None,
                        [o for _, o in g.scores] if has["orm"] else None, share,
                        g.prm_tokens, {k: size for k, on in has.items() if on})
                for g, share, size in zip(got, shares, sizes, strict=True)]

    def score_together(self, work: Sequence[tuple[Question, list[Solution], list[str] | None]]
                   ) -> list[Verdict | Exception]:
        """Every question's verifier results in one call per verifier (when that call raises,
        each question alone, so one bad question fails only itself)."""
        from ..execution.driver import one_by_one

        verifiers = Verifiers(self.prm, self.orm)
        return one_by_one(lambda w: self._score(verifiers, w), list(work))

    def sample_adaptive(self, questions: list[Question], documents: list[list[str] | None],
                        params: Any, rule: Any) -> list[Sampled]:
        """Each question sampled until `rule` settles it (at most `rule.max_n` samples), the
        questions streamed together; running samples of a settled question are aborted.
        A rule that reads scores gets them as samples finish (and they are kept)."""
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

    def needs_scores(self, drawn: Sampled) -> bool:
        """Whether selection still needs a verifier call: not scored on the loop, and either
        no PRM scores from sampling or an ORM to run."""
        if drawn.verdict is not None:
            return False
        if drawn.prm is not None:
            return self.orm is not None
        return self.prm is not None or self.orm is not None

    def select(self, question: Question, drawn: Sampled, verdict: Verdict | None, method: str,
               seed: int) -> Reranked:
        """The method's pick on the scored solutions (`verdict`: the verifiers' results; None
        when selection reads only what sampling gave: votes, or the PRM scores of an adaptive
        rule or a search)."""
        rr = self.reranker(method, seed)
        v = verdict or drawn.verdict or Verdict(drawn.prm, None, 0, 0, {} if drawn.prm is None
                                                else {"prm": len(drawn.prm)})
        prm = v.prm if v.prm is not None else drawn.prm
        item = Item(question, drawn.solutions, prm=prm, orm=v.orm)
        sel = rr.pick(item)
        scored = dict(v.counts)
        if drawn.prm is not None:
            scored["prm"] = len(drawn.prm)
        return Reranked(item, sel, rank(item, sel), v.prompt_tokens, scored,
                        0 if drawn.verdict is not None else v.computed_tokens)
