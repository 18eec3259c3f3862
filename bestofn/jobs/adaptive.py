"""`bestofn run --adaptive RULE`: barrier-free adaptive sampling.

Each question is a `StreamJob` on the streaming scheduler (`bestofn.execution`): its samples
run as single requests (sample k with the question's seed + k, the fixed run's sample k), at
most `EngineOptions.question_in_flight` at once, while other questions fill the engine. A
finished sample is scored as soon as it arrives (`execution.scoring.ScoringSide`: a thread
beside the engine calling the verifiers or the scorer actors), and the rule is asked on the
samples in index order: once samples 0..j are all finished and scored, it sees the prefixes
1..j+1 in turn, exactly as the offline replay does, so where a question stops never depends
on timing. When the rule says stop at k, the question's running requests are aborted,
samples past k that finished anyway are thrown away (and counted), and the question is
written with its first k samples.

Every finished and scored sample is appended to `rounds.jsonl` (one line per sample, `start`
= its index, the round file's format), so a run killed at any point resumes with the samples
already drawn and stops where an uninterrupted run stops.

A question whose sample request fails (the stream reports a `SampleError`) or whose samples
cannot be scored (a scoring batch that raises is scored again question by question) is
settled as a `driver.Failed`: its running samples are aborted, the others go on, and the run
driver tries it again (from the samples it logged) and records it if it still fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..adaptive.rules import Bounds, Drawn, drawn_of, parse_rule
from ..config import RunConfig
from ..execution import Compute, Finished, SampleKey
from ..execution.driver import Failed, failed
from ..execution.scoring import Scores
from ..text.files import InputError, LineCheck, append_line, resume_lines
from ..text.records import Item, Question, Solution, StepScores
from ..text.shapes import check_orm_list, check_prm_dicts, check_solution_dicts

ROUNDS_FILE = "rounds.jsonl"


def run_rule(cfg: RunConfig) -> Bounds:
    """The run's stopping rule with the run's N as its `max_n`, checked against the run."""
    assert cfg.strategy.adaptive, "not an adaptive run"
    rule = dataclasses.replace(parse_rule(cfg.strategy.adaptive), max_n=cfg.n)
    if "scores" in rule.needs and not cfg.verifiers.prm.model:
        raise ValueError(f"--adaptive {rule.name} reads PRM scores: give --prm MODEL "
                         "(or use a vote-based rule: esc, beta, dirichlet)")
    if "confidences" in rule.needs and cfg.policy.logprobs is None:
        raise ValueError(f"--adaptive {rule.name} reads the policy's confidence: give "
                         "--logprobs K (DeepConf: 20)")
    if cfg.policy.max_steps:
        raise ValueError("--adaptive stops at a sample count the step filter cannot top up: "
                         "pass --valid-steps off")
    return rule



@dataclass
class StreamJob:
    """One question of a barrier-free adaptive run (a `execution.Job`)."""

    question: Question
    rule: Bounds
    scoring: Any
    """The `execution.scoring.ScoringSide` its finished samples go to (None: no verifier)."""
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
            self.scoring.submit(self, f.key.index, [f.solution])

    def scored(self, index: int, scores: list[Scores], prm_tokens: int) -> None:
        if self.error is not None:
            return  # failed and handed back: its retry logs this sample (once)
        self.compute.prm_tokens_computed += prm_tokens
        self._record(index, scores[0], prm_tokens)

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
        return drawn_of([self.samples[i] for i in range(k)],
                        [self.scores[i][0] for i in range(k)])

    def settled(self) -> bool:
        return self.stop_at is not None or self.error is not None

    def score_failed(self, index: int, error: Exception) -> None:
        self.fail("verify", error)

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

    def outcome(self) -> Item | Failed:
        if self.stop_at is None and self.error is not None:
            return failed(self.question, *self.error)
        return self.item()

    def item(self) -> Item:
        k = self.stop_at
        assert k is not None, f"question {self.question.id} is not settled"
        keep = range(k)
        return Item(self.question, [self.samples[i] for i in keep],
                    prm=[self.scores[i][0] for i in keep] if self.has_prm else None,  # type: ignore[misc]
                    orm=[self.scores[i][1] for i in keep] if self.has_orm else None,
                    compute=self.compute.to_dict())


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
        tokens = d.get("prm_tokens", 0)
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise InputError(path, where, "prm_tokens", f"{tokens!r}: expected a count >= 0")
        seen.add((qid, start))

    return check


def adaptive_jobs(cfg: RunConfig, todo: list[Question], out: Path, scoring: Any,
                  known: Collection[str] | None) -> list[StreamJob]:
    """One job per question, resumed from the samples `rounds.jsonl` already holds (`known`:
    the run's question ids, to refuse lines of any other)."""
    rule = run_rule(cfg)
    path = out / ROUNDS_FILE
    has_prm, has_orm = bool(cfg.verifiers.prm.model), bool(cfg.verifiers.orm.model)

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
    return [jobs[q.id] for q in todo]
