"""The shape of user data: `InputError` (a problem located by file, record and field),
located warnings, and checks of the project's item, solution and score dicts.

Imports nothing from the project (records are checked as plain dicts, before
`Item.from_dict` builds them), so every reader may use it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """Bad input, located: `file: record N (question_id=…): field 'x': problem`."""

    def __init__(self, path: str | os.PathLike[str], where: str, field: str, problem: str):
        self.path, self.where, self.field, self.problem = str(path), where, field, problem
        super().__init__(one_line(f"{path}: {where}: field '{field}': {problem}"))


def one_line(text: str) -> str:
    """`text` with its line breaks escaped (ids and values quoted from a file may hold them)."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def warn(path: str | os.PathLike[str], where: str, field: str, problem: str) -> None:
    """A located warning on the user's terminal (stderr, or the terminal a quiet command kept
    while its logs go to a file)."""
    from ..console import progress_file

    print(f"{path}: {where}: field '{field}': warning: {problem}",
          file=progress_file() or sys.stderr, flush=True)


class GoldCheck:
    """Warns about gold answers that are not one of the question's options (graded wrong
    whatever is chosen); the first `limit` by name, then a count."""

    def __init__(self, path: Path, limit: int = 5) -> None:
        self.path, self.limit, self.count = path, limit, 0

    def __call__(self, q: Any, where: str, field: str) -> None:
        if q.answer is None or not q.options or q.answer in q.options:
            return
        self.count += 1
        if self.count <= self.limit:
            warn(self.path, where, field, f"gold answer {q.answer!r} is not one of the options "
                 f"{sorted(q.options)}: every choice is graded wrong")

    def close(self) -> None:
        if self.count > self.limit:
            warn(self.path, "whole file", "correct_answer",
                 f"{self.count - self.limit} more gold answers are not among their options")


def item_where(where: str, item: Any) -> str:
    """`line N (question_id=…)`: where an item was read, naming its question."""
    return f"{where} (question_id={item.question.id})" if item.question.id else where


def gold_field(d: dict[str, Any]) -> str:
    """The name a record gives its gold answer."""
    if isinstance(d.get("question"), dict):
        return "question.answer"
    return "correct_answer" if "correct_answer" in d else "answer"


def check_item_dict(d: dict[str, Any], path: Path, where: str) -> None:
    """`d` is an `Item.to_dict()`: every field present with its type, scores one per solution
    (so `Item.from_dict` cannot fail on it), else `InputError` naming the field."""
    check_question_dict(_typed(d, "question", dict, path, where), path, where, "question.")
    sols = _typed(d, "solutions", list, path, where)
    check_solution_dicts(sols, path, where, "solutions")
    check_prm_dicts(d.get("prm"), len(sols), path, where, "prm")
    check_orm_list(d.get("orm"), len(sols), path, where, "orm")


def check_question_dict(q: dict[str, Any], path: Path, where: str, prefix: str = "") -> None:
    """`q` is a `Question.to_dict()` (fields named `prefix` + name in errors)."""
    qid = q.get("id")
    _expect(isinstance(qid, str | int) and not isinstance(qid, bool), path, where,
            f"{prefix}id", "a string or integer", qid)
    _expect(isinstance(q.get("stem"), str), path, where, f"{prefix}stem", "a string",
            q.get("stem"))
    check_options(q.get("options"), path, where, f"{prefix}options", optional=True)
    for key in ("answer", "source"):
        _expect(q.get(key) is None or isinstance(q[key], str), path, where, f"{prefix}{key}",
                "a string or null", q.get(key))
    check_documents(q.get("documents"), path, where, f"{prefix}documents")


def check_options(opts: Any, path: Path, where: str, field: str, optional: bool = False) -> None:
    """An object of option label → text."""
    _expect(optional and opts is None or isinstance(opts, dict) and all(
        isinstance(v, str) for v in opts.values()), path, where, field,
        "an object of letter → text", opts)


def check_documents(docs: Any, path: Path, where: str, field: str) -> None:
    """None, or a list of passages: strings or `{text, title?, id?}` objects."""
    _expect(docs is None or isinstance(docs, list) and all(
        isinstance(x, str) or isinstance(x, dict) and isinstance(x.get("text"), str)
        and isinstance(x.get("title", ""), str) for x in docs), path, where, field,
        "a list of strings or {text, title}", docs)


def check_solution_dicts(sols: list[Any], path: Path, where: str, field: str) -> None:
    """Each entry is a `Solution.to_dict()`."""
    for k, s in enumerate(sols):
        f = f"{field}[{k}]"
        _expect(isinstance(s, dict), path, where, f, "an object", s)
        for key in ("text", "marked"):
            _expect(isinstance(s.get(key), str), path, where, f"{f}.{key}", "a string",
                    s.get(key))
        _expect(s.get("answer") is None or isinstance(s["answer"], str), path, where,
                f"{f}.answer", "a string or null", s.get("answer"))
        _expect(s.get("steps") is None or isinstance(s["steps"], list) and all(
            isinstance(x, str) for x in s["steps"]), path, where, f"{f}.steps",
            "a list of strings", s.get("steps"))
        _expect(s.get("meta") is None or isinstance(s["meta"], dict), path, where,
                f"{f}.meta", "an object", s.get("meta"))


def check_prm_dicts(prm: Any, n: int, path: Path, where: str, field: str) -> None:
    """None, or one `StepScores.to_dict()` per solution (probabilities, or a reason)."""
    if prm is None:
        return
    _expect(isinstance(prm, list) and len(prm) == n, path, where, field,
            f"null or a list of {n} step scores (one per solution)", prm)
    for k, p in enumerate(prm):
        f = f"{field}[{k}]"
        _expect(isinstance(p, dict), path, where, f, "an object {probs, reason}", p)
        probs, reason = p.get("probs") or [], p.get("reason")
        _expect(isinstance(probs, list) and all(number(x) for x in probs), path, where,
                f"{f}.probs", "a list of numbers", probs)
        _expect(reason is None or isinstance(reason, str), path, where, f"{f}.reason",
                "a string or null", reason)
        _expect(bool(probs) != bool(reason), path, where, f, "step probabilities or a reason "
                "(why it is unscored), not both or neither", p)


def check_orm_list(orm: Any, n: int, path: Path, where: str, field: str) -> None:
    """None, or one number (or null: unscored) per solution."""
    _expect(orm is None or isinstance(orm, list) and len(orm) == n and all(
        x is None or number(x) for x in orm), path, where, field,
        f"null or a list of {n} numbers or nulls (one per solution)", orm)


def _typed(d: dict[str, Any], key: str, typ: type, path: Path, where: str) -> Any:
    if key not in d:
        raise InputError(path, where, key, "missing")
    _expect(isinstance(d[key], typ), path, where, key, f"a JSON {_JSON_NAMES[typ]}", d[key])
    return d[key]


_JSON_NAMES = {dict: "object", list: "list", str: "string", int: "integer"}


def _expect(ok: bool, path: Path, where: str, field: str, what: str, got: Any) -> None:
    if not ok:
        raise InputError(path, where, field, f"expected {what}, got {short(got)}")


def number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def short(v: Any, limit: int = 80) -> str:
    """A value as an error message shows it: its repr, cut to `limit` characters."""
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "…"


def utf8_text(raw: bytes, path: Path, where: str, field: str, bom: bool) -> str:
    """UTF-8 text (a byte-order mark at the start of a file is allowed), else `InputError`."""
    try:
        return raw.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, where, field, f"not UTF-8 text (byte {e.start} of the line: "
                         f"{raw[e.start:e.start + 1]!r})") from None


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def no_lone_surrogates(text: str, value: Any, path: Path, where: str) -> None:
    """JSON may escape half of a UTF-16 pair (`\\ud800`) alone, which is no character: such
    text cannot be written back or encoded, so it is refused where it is read."""
    if not _SURROGATE.search(text):
        return
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(path, where, "(text)", "a \\uD800-\\uDFFF escape that is not part "
                         "of a surrogate pair: not a character") from None
