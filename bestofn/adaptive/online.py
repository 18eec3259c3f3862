"""`bestofn run --adaptive RULE`: sample each question in rounds until its stopping rule says so.

Each round asks the policy for R more samples of every unsettled question (one request with
`n=R` per question, starting at sample index k, so vLLM's prefix cache keeps the prompt's
prefill shared and the seeds stay per question and per sample index: an adaptive run's first k
samples are a fixed-N run's first k), scores only the new samples, and asks the rule. Rounds
of several questions go to the engines together, so an engine stays full while questions
settle. Every round is appended to `rounds.jsonl` (fsync'd) before the rule is asked, and a
settled question goes to `results.jsonl` as an ordinary item; a run killed at any point
resumes from both files to the identical report. A question whose own engine call raises
(a call of several that raises is tried again question by question) leaves the round as a
`driver.Failed`; the run driver tries it again and records it if it still fails.

The engines are the run's (`stages.build_policy`/`build_scorer`), in this process or on the
Ray actors of `bestofn.pipeline`, behind the small `Engines` protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..confidence import solution_confidence
from ..config import ExecConfig, RunConfig
from ..documents import run_documents
from ..driver import Executor, Failed, Outcome, each_alone, failed, one_by_one
from ..files import (
    InputError,
    LineCheck,
    append_line,
    resume_lines,
)
from ..records import Item, Question, Solution, StepScores
from ..scheduler.ledger import StageClock
from ..shapes import check_orm_list, check_prm_dicts, check_solution_dicts
from .rules import Bounds, Drawn, parse_rule

ROUNDS_FILE = "rounds.jsonl"
SCORE_AGGREGATE = "min"
"""The PRM aggregate a verifier-aware rule reads (the `weighted_min` vote's)."""


def run_rule(cfg: RunConfig) -> Bounds:
    """The run's stopping rule with the run's N as its `max_n`, checked against the run."""
    assert cfg.adaptive, "not an adaptive run"
    rule = dataclasses.replace(parse_rule(cfg.adaptive), max_n=cfg.n)
    if "scores" in rule.needs and not cfg.prm:
        raise ValueError(f"--adaptive {rule.name} reads PRM scores: give --prm MODEL "
                         "(or use a vote-based rule: esc, beta, dirichlet)")
    if "confidences" in rule.needs and cfg.logprobs is None:
        raise ValueError(f"--adaptive {rule.name} reads the policy's confidence: give "
                         "--logprobs K (DeepConf: 20)")
    if cfg.max_steps:
        raise ValueError("--adaptive samples in rounds, which the step filter cannot top up: "
                         "pass --valid-steps off")
    return rule


@dataclass
class Partial:
    """One question's samples and scores so far."""

    question: Question
    solutions: list[Solution] = field(default_factory=list)
    prm: list[StepScores] = field(default_factory=list)
    orm: list[float | None] = field(default_factory=list)

    def drawn(self) -> Drawn:
        scores = [s.aggregate(SCORE_AGGREGATE) for s in self.prm] if self.prm else None
        return Drawn([s.answer for s in self.solutions], scores,
                     [solution_confidence(s) for s in self.solutions])

    def add(self, sols: list[Solution], prm: list[StepScores] | None,
            orm: list[float | None] | None) -> None:
        self.solutions += sols
        self.prm += prm or []
        self.orm += orm or []

    def item(self, has_prm: bool, has_orm: bool) -> Item:
        return Item(self.question, self.solutions, prm=self.prm if has_prm else None,
                    orm=self.orm if has_orm else None)


class Engines(Protocol):
    def solve(self, calls: list[tuple[list[Question], int, int]]) -> list[list[list[Solution]]]:
        """For each call (questions, n, start): each question's samples start..start+n-1."""

    def verify(self, work: list[tuple[Question, list[Solution]]]
               ) -> list[tuple[list[StepScores] | None, list[float | None] | None]]: ...


class LocalEngines:
    """The run's engines in this process."""

    def __init__(self, cfg: RunConfig) -> None:
        from ..stages import build_policy, build_scorer

        self.cfg, self.policy, self.scorer = cfg, build_policy(cfg), build_scorer(cfg)

    def solve(self, calls: list[tuple[list[Question], int, int]]) -> list[list[list[Solution]]]:
        from ..stages import solve

        return [solve(self.policy, qs, self.cfg, n, start) for qs, n, start in calls]

    def verify(self, work: list[tuple[Question, list[Solution]]]
               ) -> list[tuple[list[StepScores] | None, list[float | None] | None]]:
        from ..stages import verify

        return verify(self.scorer, work, self.cfg)


def rounds(cfg: RunConfig, todo: list[Question], out: Path, engines: Engines, *,
           batch: int | None = None, clock: StageClock | None = None,
           known: Collection[str] | None = None) -> Iterator[Outcome]:
    """Settled questions as items, in the order they settle, and failed ones as `Failed`;
    resumes from `rounds.jsonl` (`known`: the run's question ids, to refuse lines of any
    other)."""
    rule = run_rule(cfg)
    clock = clock or StageClock()
    path = out / ROUNDS_FILE
    state = {q.id: Partial(q) for q in todo}
    has_prm, has_orm = bool(cfg.prm), bool(cfg.orm)
    for line in resume_lines(path, round_lines(path, known, has_prm, has_orm)):
        if line["question"] in state:
            state[line["question"]].add(*_decode(line))
    settled: list[Outcome] = []

    def unsettled(qs: list[Question]) -> list[Question]:
        """The questions still open; the settled ones go to `settled` as items."""
        settled.extend(state.pop(q.id).item(has_prm, has_orm) for q in qs
                       if _done(rule, state[q.id]))
        return [q for q in qs if q.id in state]

    active = unsettled(todo)
    yield from settled
    settled.clear()
    while active:
        calls = _calls(active, state, cfg.round_size, rule.max_n, batch or len(active))
        with clock.stage("sample_s"):
            got = _solve(engines, calls)
        new: list[tuple[Question, list[Solution]]] = []
        for q, s in got:
            if isinstance(s, Exception):
                settled.append(_drop(state, q, "solve", s))
            else:
                new.append((q, s))
        with clock.stage("score_s"):
            scores = (one_by_one(engines.verify, new) if (has_prm or has_orm) and new
                      else [(None, None)] * len(new))
        for (q, sols), got_scores in zip(new, scores, strict=True):
            if isinstance(got_scores, Exception):
                settled.append(_drop(state, q, "verify", got_scores))
                continue
            prm, orm = got_scores
            line = {"question": q.id, "start": len(state[q.id].solutions),
                    "solutions": [s.to_dict() for s in sols],
                    "prm": None if prm is None else [p.to_dict() for p in prm], "orm": orm}
            append_line(path, line)
            state[q.id].add(sols, prm, orm)
        active = unsettled([q for q in active if q.id in state])
        yield from settled
        settled.clear()


def _solve(engines: Engines, calls: list[tuple[list[Question], int, int]]
           ) -> list[tuple[Question, list[Solution] | Exception]]:
    """Each question's new samples, or the error of its own call."""
    def each(c: list[tuple[list[Question], int, int]]) -> list[list[Solution]]:
        got = engines.solve(c)
        out = []
        for (qs, n, _), sols in zip(c, got, strict=True):
            for q, s in zip(qs, sols, strict=True):
                assert len(s) == n, f"question {q.id}: asked for {n} samples, got {len(s)}"
                out.append(s)
        return out

    alone = [([q], n, start) for qs, n, start in calls for q in qs]
    try:
        got: list[list[Solution] | Exception] = list(each(calls))
    except Exception as e:  # noqa: BLE001 - tried again question by question
        got = [e] if len(alone) == 1 else each_alone(each, alone)
    return [(c[0][0], s) for c, s in zip(alone, got, strict=True)]


def _drop(state: dict[str, Partial], q: Question, stage: str, e: Exception) -> Failed:
    del state[q.id]
    return failed(q, stage, e)


def round_lines(path: Path, known: Collection[str] | None, has_prm: bool,
                has_orm: bool) -> LineCheck:
    """Refuses a rounds line that is not this run's: another shape, a question the run does
    not have, a `start` that does not continue the question's earlier lines, or scores the
    run does not compute (or lacking those it does)."""
    drawn: dict[str, int] = {}

    def check(where: str, d: dict[str, Any]) -> None:
        qid = d.get("question")
        if not isinstance(qid, str) or (known is not None and qid not in known):
            raise InputError(path, where, "question", f"{qid!r} is not one of this run's "
                             "questions: a line from another run or edited by hand")
        start, sols = d.get("start"), d.get("solutions")
        if not isinstance(sols, list) or not sols:
            raise InputError(path, where, "solutions", "expected a non-empty list of solutions")
        if start != drawn.get(qid, 0) or isinstance(start, bool):
            raise InputError(path, where, "start", f"{start!r}, but the lines before hold "
                             f"{drawn.get(qid, 0)} samples of question {qid!r}")
        check_solution_dicts(sols, path, where, "solutions")
        for name, wanted in (("prm", has_prm), ("orm", has_orm)):
            if (d.get(name) is not None) != wanted:
                raise InputError(path, where, name, f"{'missing' if wanted else 'present'}, "
                                 f"but this run {'has' if wanted else 'has no'} {name.upper()}")
        check_prm_dicts(d.get("prm"), len(sols), path, where, "prm")
        check_orm_list(d.get("orm"), len(sols), path, where, "orm")
        drawn[qid] = start + len(sols)

    return check


def _done(rule: Bounds, p: Partial) -> bool:
    return bool(p.solutions) and rule.stop(p.drawn())


def _calls(active: list[Question], state: dict[str, Partial], size: int, max_n: int,
           batch: int) -> list[tuple[list[Question], int, int]]:
    """Policy calls of at most `batch` questions that share (n, start)."""
    groups: dict[tuple[int, int], list[Question]] = {}
    for q in active:
        k = len(state[q.id].solutions)
        groups.setdefault((min(size, max_n - k), k), []).append(q)
    return [(qs[i:i + batch], n, start) for (n, start), qs in groups.items()
            for i in range(0, len(qs), batch)]


def _decode(line: dict[str, Any]) -> tuple[list[Solution], list[StepScores] | None,
                                           list[float | None] | None]:
    prm = line.get("prm")
    return ([Solution.from_dict(s) for s in line["solutions"]],
            None if prm is None else [StepScores.from_dict(s) for s in prm], line.get("orm"))


def adaptive_rounds(cfg: RunConfig, ex: ExecConfig | None, out: Path, clock: StageClock,
                    known: Collection[str] | None = None, progress: bool = False) -> Executor:
    """An adaptive run in rounds as the run driver's `Execution`: the engines in this process
    (`ex` None) or on the pipeline's actors, the documents retrieved where the engines are."""
    if ex is None:
        with clock.stage("startup_s"):
            local = LocalEngines(cfg)
        return Executor(lambda qs: rounds(cfg, qs, out, local, clock=clock, known=known),
                        run_documents(cfg.index, cfg.k, out, progress))
    from ..pipeline import RayEngines

    engines = RayEngines(cfg, ex)
    with clock.stage("startup_s"):
        engines.start()
    return Executor(lambda qs: rounds(cfg, qs, out, engines, batch=ex.policy_batch,
                                      clock=clock, known=known),
                    engines.documents(), engines.stop)
