"""`bestofn run --adaptive RULE` without `--round`: barrier-free adaptive sampling.

Each question is a `StreamJob` on the streaming scheduler (`bestofn.scheduler`): its samples
run as single requests (sample k with the question's seed + k, the fixed run's sample k), at
most `EngineOptions.question_in_flight` at once, while other questions fill the engine. A
finished sample is scored as soon as it arrives (`Scoring`: a thread beside the in-process
engine, or the scorer actors), and the rule is asked on the samples in index order: once
samples 0..j are all finished and scored, it sees the prefixes 1..j+1 in turn, exactly as the
offline replay does, so where a question stops never depends on timing. When the rule says
stop at k, the question's running requests are aborted, samples past k that finished anyway
are thrown away (and counted), and the question is written with its first k samples.

Every finished and scored sample is appended to `rounds.jsonl` (one line per sample, `start`
= its index, the round file's format), so a run killed at any point resumes with the samples
already drawn and stops where an uninterrupted run stops.

A question whose sample request fails (the stream reports a `SampleError`) or whose samples
cannot be scored (a scoring batch that raises is scored again question by question) is
settled as a `driver.Failed`: its running samples are aborted, the others go on, and the run
driver tries it again (from the samples it logged) and records it if it still fails.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ExecConfig, RunConfig
from ..documents import run_documents
from ..driver import Executor, Failed, Outcome, failed, one_by_one
from ..files import InputError, LineCheck, append_line, resume_lines
from ..records import Item, Question, Solution, StepScores
from ..scheduler import Budget, Compute, Finished, SampleKey, Scheduler, StageClock
from ..scheduler.ledger import split_by_size
from ..scheduler.side import BatchSide
from ..shapes import check_orm_list, check_prm_dicts, check_solution_dicts
from .online import ROUNDS_FILE, SCORE_AGGREGATE, run_rule
from .rules import Bounds, Drawn

Scores = tuple[StepScores | None, float | None]


@dataclass
class StreamJob:
    """One question of a barrier-free adaptive run (a `scheduler.Job`)."""

    question: Question
    rule: Bounds
    scoring: Any
    """The `Scoring` side its finished samples go to (None: no verifier)."""
    log: Callable[[dict[str, Any]], None]
    has_prm: bool = False
    has_orm: bool = False
    """Which verifiers score its samples (what its `rounds.jsonl` lines carry)."""
    samples: dict[int, Solution] = field(default_factory=dict)
    scores: dict[int, Scores] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)
    checked: int = 0
    stop_at: int | None = None
    compute: Compute = field(default_factory=Compute)
    error: tuple[str, Exception] | None = None
    """The stage and error that failed the question (it settles unfinished)."""

    def resume(self, index: int, sol: Solution, scores: Scores, prm_tokens: int) -> None:
        self.samples[index], self.scores[index] = sol, scores
        self.started.add(index)
        self.compute.tokens_generated += int(sol.meta.get("tokens") or 0)
        self.compute.prm_tokens_computed += prm_tokens
        self._check()

    def next_indices(self, room: int) -> list[int]:
        if self.settled():
            return []
        out = [k for k in range(self.rule.max_n) if k not in self.started][:room]
        self.started.update(out)
        return out

    def request(self, index: int) -> None:
        """Every index is a sample of the question."""
        return None

    def finished(self, f: Finished) -> None:
        self.samples[f.key.index] = f.solution
        self.compute.tokens_generated += f.tokens
        if self.scoring is None:
            self._record(f.key.index, (None, None), 0)
        else:
            self.scoring.submit(self, f.key.index, f.solution)

    def scored(self, index: int, scores: Scores, prm_tokens: int) -> None:
        if self.error is not None:
            return  # failed and handed back: its retry logs this sample (once)
        self.compute.prm_tokens_computed += prm_tokens
        self._record(index, scores, prm_tokens)

    def _record(self, index: int, scores: Scores, prm_tokens: int) -> None:
        self.scores[index] = scores
        prm, orm = scores
        self.log({"question": self.question.id, "start": index,
                  "solutions": [self.samples[index].to_dict()],
                  "prm": [prm.to_dict()] if self.has_prm and prm is not None else None,
                  "orm": [orm] if self.has_orm else None, "prm_tokens": prm_tokens})
        self._check()

    def _check(self) -> None:
        """Ask the rule on every new complete prefix, in index order."""
        while self.stop_at is None and self.checked in self.scores:
            self.checked += 1
            if self.rule.stop(self._drawn(self.checked)):
                self.stop_at = self.checked

    def _drawn(self, k: int) -> Drawn:
        prm = [self.scores[i][0] for i in range(k)]
        scores = (None if all(p is None for p in prm) else
                  [None if p is None else p.aggregate(SCORE_AGGREGATE) for p in prm])
        return Drawn([self.samples[i].answer for i in range(k)], scores)

    def settled(self) -> bool:
        return self.stop_at is not None or self.error is not None

    def fail(self, stage: str, error: Exception) -> None:
        if self.stop_at is None and self.error is None:
            self.error = (stage, error)

    def aborted(self, keys: list[SampleKey], tokens: int) -> None:
        if self.stop_at is None:
            return  # failed: nothing of it is kept
        extra = [i for i in self.samples if i >= self.stop_at]
        self.compute.samples_aborted += len(keys) + len(extra)
        self.compute.tokens_generated += tokens
        self.compute.tokens_aborted += tokens + sum(
            int(self.samples[i].meta.get("tokens") or 0) for i in extra)
        self.compute.samples_drawn = self.stop_at

    def outcome(self, has_prm: bool, has_orm: bool) -> Item | Failed:
        if self.stop_at is None and self.error is not None:
            return failed(self.question, *self.error)
        return self.item(has_prm, has_orm)

    def item(self, has_prm: bool, has_orm: bool) -> Item:
        k = self.stop_at
        assert k is not None, f"question {self.question.id} is not settled"
        keep = range(k)
        return Item(self.question, [self.samples[i] for i in keep],
                    prm=[self.scores[i][0] for i in keep] if has_prm else None,  # type: ignore[misc]
                    orm=[self.scores[i][1] for i in keep] if has_orm else None,
                    compute=self.compute.to_dict())


class Scoring:
    """Finished samples scored beside the engine: batched across questions in the scheduler's
    side worker (`scheduler.side.BatchSide`; `verify` is `stages.verify` on the run's
    verifiers, or the scorer actors' call)."""

    def __init__(self, verify: Callable[[list[tuple[Question, list[Solution]]]],
                                        list[tuple[list[Any], int]]],
                 clock: StageClock) -> None:
        self.verify = verify
        self.side: BatchSide[tuple[StreamJob, int, Solution], tuple[Scores, int] | Exception] = (
            BatchSide(self._score, self._deliver, clock, name="bestofn-scoring"))

    def submit(self, job: StreamJob, index: int, sol: Solution) -> None:
        self.side.submit((job, index, sol))

    def busy(self) -> bool:
        return self.side.busy()

    def pump(self, wait: float) -> None:
        self.side.pump(wait)

    def close(self) -> None:
        self.side.close()

    @staticmethod
    def _deliver(item: tuple[StreamJob, int, Solution],
                 got: tuple[Scores, int] | Exception) -> None:
        job, i, _ = item
        if isinstance(got, Exception):
            job.fail("verify", got)
        else:
            job.scored(i, *got)

    def _score(self, batch: list[tuple[StreamJob, int, Solution]]
               ) -> list[tuple[Scores, int] | Exception]:
        """Each sample's scores and PRM tokens, or the error scoring its question raised."""
        groups: dict[str, list[tuple[StreamJob, int, Solution]]] = {}
        for b in batch:
            groups.setdefault(b[0].question.id, []).append(b)
        work = [(g[0][0].question, [s for _, _, s in g]) for g in groups.values()]
        results = one_by_one(self.verify, work)
        by_key: dict[tuple[str, int], tuple[Scores, int] | Exception] = {}
        for g, got in zip(groups.values(), results, strict=True):
            if isinstance(got, Exception):
                by_key.update({(job.question.id, i): got for job, i, _ in g})
                continue
            per_sample, tokens = got
            share = split_by_size(tokens, [1] * len(g))
            for (job, i, _), scores, t in zip(g, per_sample, share, strict=True):
                by_key[(job.question.id, i)] = (scores, t)
        return [by_key[(j.question.id, i)] for j, i, _ in batch]


def verify_locally(verifiers: Any, cfg: RunConfig) -> Callable[..., Any]:
    """`Scoring.verify` on the run's verifiers in this process."""
    from ..stages import prm_tokens_computed, verify

    def scored(work: list[tuple[Question, list[Solution]]]) -> list[tuple[list[Any], int]]:
        before = prm_tokens_computed(verifiers)
        got = verify(verifiers, work, cfg)
        spent = prm_tokens_computed(verifiers) - before
        shares = split_by_size(spent, [len(s) for _, s in work])
        return [(list(zip(prm or [None] * len(s), orm or [None] * len(s), strict=True)), t)
                for (prm, orm), (_, s), t in zip(got, work, shares, strict=True)]

    return scored


def stream_adaptive(cfg: RunConfig, ex: ExecConfig | None, out: Path, clock: StageClock,
                    known: Collection[str] | None = None, progress: bool = False) -> Executor:
    """A streamed adaptive run as the run driver's `Execution` (`known`: the run's question
    ids, to refuse `rounds.jsonl` lines of any other): the engines in this process (`ex`
    None) or on the pipeline's actors, the documents retrieved where the engines are."""
    if ex is None:
        from ..scheduler import make_stream
        from ..stages import build_policy, build_scorer

        with clock.stage("startup_s"):
            policy, verifiers = build_policy(cfg), build_scorer(cfg)
        stream = make_stream(policy)
        scoring = Scoring(verify_locally(verifiers, cfg), clock) if verifiers else None
        documents = run_documents(cfg.index, cfg.k, out, progress)
        stop: Callable[[], None] = lambda: None  # noqa: E731
    else:
        from ..pipeline import RayEngines

        engines = RayEngines(cfg, ex)
        with clock.stage("startup_s"):
            engines.start()
        stream = engines.stream()
        scoring = (Scoring(engines.verify_counted, clock)
                   if (cfg.prm or cfg.orm) else None)
        documents = engines.documents()
        stop = engines.stop

    def close() -> None:
        stream.close()
        if scoring is not None:
            scoring.close()
        stop()

    return Executor(lambda qs: _settle(cfg, qs, out, stream, scoring, clock, known),
                    documents, close)


def sample_lines(path: Path, known: Collection[str] | None, has_prm: bool, has_orm: bool,
                 max_n: int) -> LineCheck:
    """Refuses a line of a streamed run's `rounds.jsonl` that is not this run's: another
    shape (one sample per line), a question the run does not have, a sample index out of
    range or seen before, or scores the run does not compute (or lacking those it does)."""
    seen: set[tuple[str, int]] = set()

    def check(where: str, d: dict[str, Any]) -> None:
        qid, start, sols = d.get("question"), d.get("start"), d.get("solutions")
        if not isinstance(qid, str) or (known is not None and qid not in known):
            raise InputError(path, where, "question", f"{qid!r} is not one of this run's "
                             "questions: a line from another run or edited by hand")
        if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < max_n \
                or (qid, start) in seen:
            raise InputError(path, where, "start", f"{start!r}: expected a sample index in "
                             f"0..{max_n - 1} not on an earlier line")
        if not isinstance(sols, list) or len(sols) != 1:
            raise InputError(path, where, "solutions", "expected a list of one solution "
                             "(a streamed run writes one sample per line)")
        check_solution_dicts(sols, path, where, "solutions")
        for name, wanted in (("prm", has_prm), ("orm", has_orm)):
            if (d.get(name) is not None) != wanted:
                raise InputError(path, where, name, f"{'missing' if wanted else 'present'}, "
                                 f"but this run {'has' if wanted else 'has no'} {name.upper()}")
        check_prm_dicts(d.get("prm"), 1, path, where, "prm")
        check_orm_list(d.get("orm"), 1, path, where, "orm")
        seen.add((qid, start))

    return check


def _settle(cfg: RunConfig, todo: list[Question], out: Path, stream: Any, scoring: Any,
            clock: StageClock, known: Collection[str] | None) -> Iterator[Outcome]:
    rule = run_rule(cfg)
    path = out / ROUNDS_FILE
    has_prm, has_orm = bool(cfg.prm), bool(cfg.orm)

    def log(line: dict[str, Any]) -> None:
        append_line(path, line)

    jobs = {q.id: StreamJob(q, rule, scoring, log, has_prm, has_orm) for q in todo}
    check = sample_lines(path, known, has_prm, has_orm, rule.max_n)
    for line in resume_lines(path, check):
        job = jobs.get(line["question"])
        if job is not None:
            prm, orm = line.get("prm"), line.get("orm")
            job.resume(line["start"], Solution.from_dict(line["solutions"][0]),
                       (None if prm is None else StepScores.from_dict(prm[0]),
                        None if orm is None else orm[0]), int(line.get("prm_tokens") or 0))
    e = cfg.engine
    budget = Budget(in_flight=e.samples_in_flight,
                    per_question=min(e.question_in_flight, rule.max_n))
    sched = Scheduler(stream, cfg.sampling(), budget, scoring)
    runner = sched.run(jobs[q.id] for q in todo)
    while True:
        with clock.stage("sample_s"):
            job = next(runner, None)
        if job is None:
            return
        yield job.outcome(has_prm, has_orm)  # type: ignore[attr-defined]
