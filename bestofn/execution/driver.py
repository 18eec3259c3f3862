"""The run driver: one loop over every way a run executes.

An `Execution` (in-process or on Ray; fixed N, adaptive rounds, streamed adaptive, search)
turns questions into per-question outcomes: an `Item`, or a `Failed` naming the stage that
raised and the error. The driver owns the rest, the same for all of them:

- resume: questions already in `results.jsonl` are not run again (a line that is not this
  run's is refused with its number);
- results: each finished item is appended to `results.jsonl` (fsync'd) as it comes, and the
  file is put in the questions' order when the pass ends (`in_question_order`);
- retries: questions that failed run again, in a new pass over the same execution, until they
  finish or have had `max_attempts` tries;
- failures: what still failed is written to `failures.jsonl` (question, stage, error, tries),
  and the run goes on; a later resume tries those questions again;
- progress: one bar over the run's questions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..console import Console, Progress
from ..text.files import (
    InputError,
    LineCheck,
    append_line,
    atomic_write_text,
    json_line,
    resume_lines,
)
from ..text.records import Item, Question
from ..text.shapes import check_item_dict

RESULTS_FILE = "results.jsonl"
FAILURES_FILE = "failures.jsonl"


@dataclass(frozen=True)
class Failed:
    """A question an execution could not finish in one try."""

    question_id: str
    stage: str
    error: str


@dataclass(frozen=True)
class Failure:
    """A question that failed every try (a line of `failures.jsonl`)."""

    question_id: str
    stage: str
    error: str
    attempts: int


Outcome = Item | Failed


class Execution(Protocol):
    def outcomes(self, questions: list[Question]) -> Iterator[Outcome]:
        """One outcome per question, in any order (called again with the questions that
        failed, on the same engines)."""

    def close(self) -> None: ...


@dataclass
class Executor:
    """An `Execution` from its parts: what turns questions into outcomes, the documents stage
    (`bestofn.execution.documents.Documents`) the questions pass through first (None: the run has no
    index, or `outcomes_of` retrieves itself), and what stops its engines."""

    outcomes_of: Callable[[list[Question]], Iterator[Outcome]]
    documents: Any = None
    stop: Callable[[], None] = lambda: None

    def outcomes(self, questions: list[Question]) -> Iterator[Outcome]:
        if self.documents is not None:
            questions = self.documents.attach(questions)
        return self.outcomes_of(questions)

    def close(self) -> None:
        self.stop()


def error_text(e: BaseException) -> str:
    """An error as a failure record shows it: its type and last line (a remote call's error
    carries the remote traceback before it)."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"[:2000]


def failed(q: Question, stage: str, e: BaseException) -> Failed:
    return Failed(q.id, stage, error_text(e))


W = TypeVar("W")
R = TypeVar("R")


def each_alone(call: Callable[[list[W]], list[R]], work: list[W]) -> list[R | Exception]:
    """`call` on each entry alone: its one result, or the error it raised."""
    out: list[R | Exception] = []
    for w in work:
        try:
            [got] = call([w])
        except Exception as e:  # noqa: BLE001 - the entry's failure, not the run's
            got = e
        out.append(got)
    return out


def one_by_one(call: Callable[[list[W]], list[R]], work: list[W]) -> list[R | Exception]:
    """`call(work)` (one result per entry); when it raises for several entries, each entry
    again alone, so that one bad entry fails only itself."""
    try:
        return list(call(work))
    except Exception as e:  # noqa: BLE001
        if len(work) == 1:
            return [e]
    return each_alone(call, work)


@dataclass
class Driven:
    """What the driver leaves: every finished item by question id (resumed ones too), the
    questions resumed from `results.jsonl`, and this session's failures."""

    done: dict[str, Item]
    resumed: int
    failures: list[Failure]


def drive(questions: list[Question], out: Path, start: Callable[[], Execution],
          max_attempts: int, console: Console, progress: bool = True) -> Driven:
    """Run the questions not yet in `out/results.jsonl` on the execution `start()` opens
    (only when there are some), retrying failed ones, and write `failures.jsonl`."""
    results = out / RESULTS_FILE
    done = {str(d["question"]["id"]): Item.from_dict(d)
            for d in resume_lines(results, own_lines(results, questions))}
    todo = [q for q in questions if q.id not in done]
    resumed = len(questions) - len(todo)
    last: dict[str, Failed] = {}
    tries: dict[str, int] = {}
    if todo:
        execution = start()
        bar = Progress(len(questions), resumed, file=console.err, enabled=progress)
        try:
            pending = todo
            while pending:
                for q in pending:
                    tries[q.id] = tries.get(q.id, 0) + 1
                for got in execution.outcomes(pending):
                    if isinstance(got, Failed):
                        last[got.question_id] = got
                        continue
                    append_line(results, got.to_dict())
                    done[got.question.id] = got
                    last.pop(got.question.id, None)
                    bar.add(questions=1, samples=len(got.solutions),
                            tokens=sum(int(s.meta.get("tokens") or 0) for s in got.solutions),
                            scored=len(got.prm or []))
                pending = [q for q in pending if q.id in last and tries[q.id] < max_attempts]
        finally:
            bar.close()
            execution.close()
        in_question_order(results, questions)
    failures = [Failure(q.id, last[q.id].stage, last[q.id].error, tries[q.id])
                for q in questions if q.id in last and q.id not in done]
    atomic_write_text(out / FAILURES_FILE, "".join(json_line(asdict(f)) for f in failures))
    return Driven(done, resumed, failures)


def in_question_order(path: Path, questions: list[Question]) -> None:
    """Rewrite `results.jsonl` (atomically, its lines unchanged) in the questions' order: lines
    are appended as questions finish, in an order that depends on timing, so a run, its
    resumption and the same run on Ray end with the same bytes."""
    if not path.exists():
        return
    lines = [b for b in path.read_bytes().splitlines(keepends=True) if b.strip()]
    rank = {q.id: i for i, q in enumerate(questions)}
    ordered = sorted(lines, key=lambda b: rank[str(json.loads(b)["question"]["id"])])
    if ordered != lines:
        atomic_write_text(path, b"".join(ordered).decode("utf-8"))


def own_lines(path: Path, questions: list[Question]) -> LineCheck:
    """Refuses a results line that is not this run's: not an item, a question the run does
    not have, or a question already done on an earlier line."""
    ids, seen = {q.id for q in questions}, set()

    def check(where: str, d: dict[str, Any]) -> None:
        check_item_dict(d, path, where)
        qid = str(d["question"]["id"])
        if qid not in ids:
            raise InputError(path, where, "question.id", f"{qid!r} is not one of this run's "
                             f"{len(ids)} questions: a line from another run or edited by hand")
        if qid in seen:
            raise InputError(path, where, "question.id", f"{qid!r} is already on an earlier "
                             "line")
        seen.add(qid)

    return check
