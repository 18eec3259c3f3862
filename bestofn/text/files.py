"""Reading and writing solution files: Med-PRM's published JSON and the project's JSONL.

Med-PRM's test-set file is a JSON list of `{question_id, data_source, question, correct_answer,
related_docs[], solutions[{solution, prm_processed_solution, orm_processed_solution, answer,
score}]}`. Written back, each solution gains `PRM_min_score`, `PRM_score` (final step) and
`PRM_score_list`; a solution that could not be scored gets `null` scores and `PRM_reason`
(the published scorer wrote `-inf`, which is not valid JSON and ranks silently).
An outcome reward model's score is `ORM_score` (a number, or `null` with `ORM_reason`).

The project's JSONL has one `Item.to_dict()` per line. A line may instead use Med-PRM's item
fields (with `solutions` as plain strings allowed), which is the easy way to hand-write input.
Every problem in a file raises `InputError` naming the file, the record and the field.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from .option_lines import split_options
from .records import Document, Item, Question, Solution, StepScores
from .shapes import (
    GoldCheck,
    InputError,
    check_documents,
    check_item_dict,
    gold_field,
    item_where,
    no_lone_surrogates,
    number,
    short,
    utf8_text,
)

STEP_LABELS = ("prm_gemini_label", "prm_llama_label", "prm_hard_label", "prm_soft_label",
               "orm_label")
"""Med-PRM training-set labels a solution keeps in `meta` (for `bestofn verifier-eval`)."""


def read_items(path: str | os.PathLike[str]) -> list[Item]:
    """Items from a Med-PRM JSON list (`.json`) or the project's JSONL (any other suffix)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    items = read_medprm(p) if p.suffix == ".json" else list(read_jsonl(p))
    if not items:
        raise InputError(p, "whole file", "(file)", "holds no questions")
    return items


def open_bytes(path: Path) -> BinaryIO:
    """A file's bytes, decompressed when its name ends in `.gz`."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a UTF-8 JSONL(.gz) file; a line that
    is not a JSON object raises `InputError` naming it."""
    with open_bytes(path) as f:
        try:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                line = utf8_text(raw, path, f"line {n}", "(line)", bom=n == 1)
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(path, f"line {n}", "(line)",
                                     f"malformed JSON: {e.msg}") from None
                if not isinstance(d, dict):
                    raise InputError(path, f"line {n}", "(line)",
                                     f"expected a JSON object, got {type(d).__name__}")
                no_lone_surrogates(line, d, path, f"line {n}")
                yield n, d
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise InputError(path, "whole file", "(file)", f"not a readable gzip file: {e}") \
                from None


def load_json(path: Path, kind: type[list] | type[dict], what: str) -> Any:
    """A whole JSON file whose top level is a `kind` (`what` describes it in errors)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputError(path, f"line {line}", "(file)", "not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(path, f"line {e.lineno} column {e.colno}", "(file)",
                         f"malformed JSON: {e.msg}") from None
    if not isinstance(data, kind):
        raise InputError(path, "top level", "(file)",
                         f"expected a JSON {what}, got {type(data).__name__}")
    no_lone_surrogates(text, data, path, "whole file")
    return data


def read_medprm(path: Path) -> list[Item]:
    data = load_json(path, list, "list of questions")
    gold, out = GoldCheck(path), []
    for i, d in enumerate(data):
        out.append(item_from_medprm(d, path, f"record {i}"))
        gold(out[-1].question, item_where(f"record {i}", out[-1]), gold_field(d))
    gold.close()
    return out


def read_jsonl(path: Path) -> Iterator[Item]:
    gold = GoldCheck(path)
    for n, d in json_objects(path):
        item = item_from_line(d, path, f"line {n}")
        gold(item.question, item_where(f"line {n}", item), gold_field(d))
        yield item
    gold.close()


def item_from_line(d: dict[str, Any], path: Path, where: str) -> Item:
    if isinstance(d.get("question"), dict):
        check_item_dict(d, path, where)
        return Item.from_dict(d)
    return item_from_medprm(d, path, where)


def item_from_medprm(d: Any, path: Path, where: str) -> Item:
    """One Med-PRM question record → Item (the record itself is kept in `Item.raw`)."""
    if not isinstance(d, dict):
        raise InputError(path, where, "(record)", f"expected an object, got {type(d).__name__}")
    qid = str(d.get("question_id", d.get("id", "")))
    where = f"{where} (question_id={qid})" if qid else where
    stem = _required(d, "question", str, path, where)
    sols = _required(d, "solutions", list, path, where)
    if not sols:
        raise InputError(path, where, "solutions", "empty list: a question needs solutions")
    question = _question(d, qid or where, stem, path, where)
    solutions = [_solution(s, question, path, where, f"solutions[{k}]")
                 for k, s in enumerate(sols)]
    prm = _scores(sols, path, where)
    return Item(question, solutions, prm=prm, orm=_orm_scores(sols, path, where), raw=d)


def _question(d: dict[str, Any], qid: str, stem: str, path: Path, where: str) -> Question:
    options, in_stem = _options(d.get("options"), stem, path, where)
    docs = d.get("related_docs", d.get("documents"))
    check_documents(docs, path, where, "related_docs" if "related_docs" in d else "documents")
    gold = d.get("correct_answer", d.get("answer"))
    return Question(id=qid, stem=stem, options=options, answer=None if gold is None else str(gold),
                    source=str(d.get("data_source", d.get("source", ""))),
                    documents=None if docs is None else [Document.from_dict(x) for x in docs],
                    options_in_stem=in_stem)


def _options(raw: Any, stem: str, path: Path, where: str) -> tuple[dict[str, str], bool]:
    """Options from the record, else parsed from `(A) …` lines that end the question text."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}, False
    if isinstance(raw, list):
        return {chr(ord("A") + i): str(v) for i, v in enumerate(raw)}, False
    if raw is not None:
        raise InputError(path, where, "options", f"expected a list or object, got {raw!r}")
    options = split_options(stem)[1]
    return options, bool(options)


def _solution(s: Any, q: Question, path: Path, where: str, field: str) -> Solution:
    if isinstance(s, str):
        s = {"solution": s}
    if not isinstance(s, dict):
        raise InputError(path, where, field, f"expected an object or string, got {s!r}")
    text = s.get("solution", s.get("text"))
    marked = s.get("prm_processed_solution", s.get("marked"))
    if not isinstance(text, str) and not isinstance(marked, str):
        raise InputError(path, where, f"{field}.solution",
                         "missing: needs 'solution' (text) or 'prm_processed_solution'")
    text = text if isinstance(text, str) else marked
    if not text.strip():
        raise InputError(path, where, f"{field}.solution", "empty solution text")
    meta = {k: s[k] for k in ("score", *STEP_LABELS) if k in s}
    read = Solution.from_text(text, q.options or None)
    answer = s.get("answer", read.answer)
    if answer == "":
        meta["answer_raw"] = ""
    if isinstance(s.get("ORM_reason"), str):
        meta["orm_reason"] = s["ORM_reason"]
    return replace(read, marked=marked if isinstance(marked, str) else read.marked,
                   answer=None if answer in (None, "") else str(answer), meta=meta)


def _scores(sols: list[Any], path: Path, where: str) -> list[StepScores] | None:
    """Step scores already in the file (a scored Med-PRM file), else None."""
    for k, s in enumerate(sols):
        for name in ("PRM_min_score", "PRM_score"):
            if isinstance(s, dict) and s.get(name) is not None and not number(s[name]):
                raise InputError(path, where, f"solutions[{k}].{name}",
                                 f"expected a number, -Infinity or null, got {short(s[name])}")
    if not all(isinstance(s, dict) and "PRM_score_list" in s for s in sols):
        return None
    out = []
    for k, s in enumerate(sols):
        probs = s["PRM_score_list"]
        if not isinstance(probs, list) or not all(number(p) for p in probs):
            raise InputError(path, where, f"solutions[{k}].PRM_score_list",
                             f"expected a list of numbers, got {short(probs)}")
        if probs and all(math.isfinite(p) for p in probs) and _finite(s.get("PRM_min_score")):
            out.append(StepScores(tuple(float(p) for p in probs)))
        else:
            out.append(StepScores.unscored(s.get("PRM_reason") or "no step score in the file"))
    return out


def _finite(v: Any) -> bool:
    """A score field that does not mark the solution unscored (absent, or a finite number):
    the published scorer writes -Infinity for a solution it could not score."""
    return v is None or isinstance(v, int | float) and math.isfinite(v)


def _orm_scores(sols: list[Any], path: Path, where: str) -> list[float | None] | None:
    """`ORM_score` of every solution (numbers or null), else None when any lacks it."""
    if not all(isinstance(s, dict) and "ORM_score" in s for s in sols):
        return None
    out = []
    for k, s in enumerate(sols):
        v = s["ORM_score"]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise InputError(path, where, f"solutions[{k}].ORM_score",
                             f"expected a number or null, got {v!r}")
        out.append(None if v is None or not math.isfinite(v) else float(v))  # -Infinity: unscored
    return out


def _required(d: dict[str, Any], key: str, typ: type, path: Path, where: str) -> Any:
    if key not in d:
        raise InputError(path, where, key, "missing")
    if not isinstance(d[key], typ):
        raise InputError(path, where, key,
                         f"expected {typ.__name__}, got {type(d[key]).__name__}")
    return d[key]


def medprm_record(item: Item) -> dict[str, Any]:
    """The item in Med-PRM's structure, with PRM/ORM score fields on every solution."""
    base = dict(item.raw) if item.raw is not None else _medprm_skeleton(item)
    sols = [dict(s) if isinstance(s, dict) else {"solution": s}
            for s in base.get("solutions", [])] or [{} for _ in item.solutions]
    for k, (sol, own, sc) in enumerate(zip(sols, item.solutions,
                                           item.prm or [None] * len(sols), strict=True)):
        sol.setdefault("solution", own.text)
        sol.setdefault("prm_processed_solution", own.marked)
        sol.setdefault("answer", own.answer)
        if sc is not None:
            sol.update(_score_fields(sc))
        if item.orm is not None:
            sol.pop("ORM_reason", None)
            sol.update(_orm_fields(item.orm[k], own))
    base["solutions"] = sols
    return base


def _score_fields(sc: StepScores) -> dict[str, Any]:
    if not sc.scored:
        return {"PRM_min_score": None, "PRM_score": None, "PRM_score_list": [],
                "PRM_reason": sc.reason}
    out = {"PRM_min_score": sc.aggregate("min"), "PRM_score": sc.aggregate("final"),
           "PRM_score_list": list(sc.probs)}
    return out if sc.note is None else {**out, "PRM_note": sc.note}


def _orm_fields(score: float | None, sol: Solution) -> dict[str, Any]:
    if score is not None:
        return {"ORM_score": score}
    return {"ORM_score": None, "ORM_reason": sol.meta.get("orm_reason") or "not scored"}


def _medprm_skeleton(item: Item) -> dict[str, Any]:
    q = item.question
    return {"question_id": q.id, "data_source": q.source, "question": q.text(),
            "correct_answer": q.answer,
            "related_docs": q.document_texts(), "solutions": []}


def write_medprm(path: str | os.PathLike[str], items: Iterable[Item]) -> None:
    atomic_write_text(path, json.dumps([medprm_record(it) for it in items], ensure_ascii=False,
                                       indent=2, allow_nan=False))


def write_jsonl(path: str | os.PathLike[str], items: Iterable[Item]) -> None:
    atomic_write_text(path, "".join(json_line(it.to_dict()) for it in items))


def write_items(path: str | os.PathLike[str], items: list[Item]) -> None:
    """Write in the format the suffix names: `.json` → Med-PRM list, else JSONL."""
    (write_medprm if Path(path).suffix == ".json" else write_jsonl)(path, items)


def json_line(d: dict[str, Any]) -> str:
    return json.dumps(d, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_line(path: Path, d: dict[str, Any]) -> None:
    """Append one JSON line and fsync: the unit of progress of resumable commands."""
    with path.open("a", encoding="utf-8") as f:
        f.write(json_line(d))
        f.flush()
        os.fsync(f.fileno())


def complete_lines(path: Path) -> tuple[list[dict[str, Any]], str, int]:
    """The records of an append-only JSONL file up to its first incomplete or torn line (a
    crash mid-write), the file's text and the length of its good part."""
    if not path.exists():
        return [], "", 0
    raw = path.read_text(encoding="utf-8")
    out, good = [], 0
    for line in raw.splitlines(keepends=True):
        try:
            if not line.endswith("\n"):
                raise ValueError("no newline")
            out.append(json.loads(line))
        except ValueError:
            break
        good += len(line)
    return out, raw, good


LineCheck = Callable[[str, dict[str, Any]], None]
"""Checks one progress line (`where` is "line N"); raises `InputError` for a line that is not
the file's own."""


def resume_lines(path: Path, check: LineCheck | None = None) -> list[dict[str, Any]]:
    """The lines of an append-only progress file, for a command that resumes from it.

    Lines are appended whole and fsync'd one at a time, so only the last line can be cut
    short (the machine lost power or the process was killed mid-write): such a line, one
    that is not complete JSON or has no newline, is cut off the file and its work is redone.
    Any other line that is not a JSON object, or that `check` refuses (a line edited by hand,
    or another run's), raises `InputError` with its line number: nothing is dropped silently.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    pieces = data.split(b"\n")
    pieces.pop()  # what follows the last newline: b"" or a line cut short
    out: list[dict[str, Any]] = []
    good = 0
    for n, piece in enumerate(pieces, 1):
        if piece.strip():
            try:
                d = json.loads(piece.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                if n == len(pieces) and not data[good + len(piece) + 1:].strip():
                    break  # the last line, cut short: redone
                problem = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
                raise InputError(path, f"line {n}", "(line)", f"malformed JSON ({problem}) "
                                 "before the last line: not a line cut by a crash; fix or "
                                 "delete it") from None
            if not isinstance(d, dict):
                raise InputError(path, f"line {n}", "(line)",
                                 f"expected a JSON object, got {type(d).__name__}")
            no_lone_surrogates(piece.decode("utf-8"), d, path, f"line {n}")
            if check is not None:
                check(f"line {n}", d)
            out.append(d)
        good += len(piece) + 1
    if good != len(data):
        atomic_write_text(path, data[:good].decode("utf-8"))
    return out
