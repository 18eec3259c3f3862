"""Fuzzing every reader of user data: what counts as a clean refusal, and the inputs.

Each reader makes a valid input from a seeded `random.Random`, damages it (a field
replaced by any JSON value, a key dropped, a line cut, edited, repeated or swapped, bytes that
are not UTF-8) and reads it the way the command does, including what the command then does with
what it read (evaluate the items, resume the run). `check` is the property, in one place: the
reader works, or raises the project's located error (`InputError`: file, line or record,
field; one line), and the folder holds the same files as before. Anything else is a `Crash`.
The HTTP API has the same property over requests (`bestofn.testing.fuzzing_http`).

The readers are `bestofn.testing.fuzz_inputs.READERS`. Used by tests/test_fuzz.py (a few hundred
inputs per reader) and benchmarks/fuzz.py (the long campaign). Test support: the engine never
imports it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..text.files import InputError

JSON = Any


class Crash(AssertionError):
    """A reader broke the property: a traceback, an unlocated error, or output left behind."""


def clean_refusal(e: BaseException, path: Path) -> bool:
    """The project's one-line error about `path`: an `InputError` naming the file, the line
    or record, and the field; or a one-line error of a refusal class that names the file."""
    from retrieval.manifest import IndexMismatch

    from ..run import ConfigMismatch

    text = str(e)
    if "\n" in text or str(path) not in text and str(path.parent) not in text:
        return False
    if isinstance(e, InputError):
        return Path(e.path) == path and bool(e.where and e.field and e.problem)
    return isinstance(e, IndexMismatch | ConfigMismatch)


def check(read: Callable[[], Any], path: Path, folder: Path) -> str:
    """Run `read` on the input at `path`: "ok" or "refused"; raises `Crash` otherwise."""
    before = _listing(folder)
    try:
        read()
        result = "ok"
    except Exception as e:  # noqa: BLE001 - anything but a clean refusal is a crash
        if not clean_refusal(e, path):
            raise Crash(f"{type(e).__name__}: {e}"[:2000]) from e
        result = "refused"
    after = _listing(folder)
    if after != before:
        raise Crash(f"files left or removed: {before} -> {after}")
    return result


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_one_line_error(stderr: str, *words: str) -> None:
    """A CLI refusal as a user sees it: one line, `bestofn CMD: error: …`, naming `words`."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("bestofn ") and ": error: " in lines[0], lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


# --- damage ------------------------------------------------------------------------------

def any_json(r: random.Random, depth: int = 0) -> JSON:
    """Any JSON value, biased to the awkward ones (NaN, huge, empty, lone surrogates)."""
    kind = r.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return r.choice([True, False])
    if kind == 2:
        return r.choice([0, -1, 1, 2 ** 63, -(10 ** 30), r.randint(-5, 5)])
    if kind == 3:
        return r.choice([0.5, -0.0, 1e308, float("inf"), float("-inf"), float("nan"), 1e-320])
    if kind in (4, 5, 6):
        return any_text(r)
    if kind in (7, 8):
        return [any_json(r, depth + 1) for _ in range(r.randrange(4))]
    return {any_text(r, 6): any_json(r, depth + 1) for _ in range(r.randrange(4))}


def any_text(r: random.Random, limit: int = 40) -> str:
    pool = ["", " ", "A", "B", "(A)", "q0", "\n", "\x00", "\ud800", "ки", "é", "Step 1: x.",
            "The answer is (A).", "null", "0", "-Infinity", "\u2028", "x" * 300]
    if r.random() < 0.6:
        return r.choice(pool)
    return "".join(chr(r.choice([r.randrange(32, 127), r.randrange(0x80, 0x3000)]))
                   for _ in range(r.randrange(limit)))


def damage(v: JSON, r: random.Random) -> JSON:
    """`v` with one random change somewhere inside it."""
    if isinstance(v, dict) and v and r.random() < 0.75:
        key = r.choice(list(v))
        op = r.randrange(4)
        if op == 0:
            return {k: x for k, x in v.items() if k != key}
        if op == 1:
            return {**v, key: any_json(r)}
        if op == 2:
            return {**v, any_text(r, 8): any_json(r)}
        return {**v, key: damage(v[key], r)}
    if isinstance(v, list) and v and r.random() < 0.75:
        i = r.randrange(len(v))
        op = r.randrange(4)
        if op == 0:
            return v[:i] + v[i + 1:]
        if op == 1:
            return v[:i] + [v[i]] + v[i:]
        if op == 2:
            return v[:i] + [any_json(r)] + v[i + 1:]
        return v[:i] + [damage(v[i], r)] + v[i + 1:]
    return any_json(r)


def damaged(v: JSON, r: random.Random) -> JSON:
    """Zero to three changes: a third of inputs stay valid, so the readers' working paths
    (and what follows them) are exercised too."""
    for _ in range(r.choice([0, 1, 1, 2, 3])):
        v = damage(v, r)
    return v


def dumps(v: JSON) -> str:
    return json.dumps(v, ensure_ascii=False) if _encodable(v) else json.dumps(v)


def _encodable(v: JSON) -> bool:
    try:
        json.dumps(v, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def damage_bytes(data: bytes, r: random.Random) -> bytes:
    """A file damaged as files are: cut short, edited lines, stray bytes."""
    lines = data.split(b"\n")
    op = r.randrange(8)
    if op == 0:
        return data[:r.randrange(len(data) + 1)]
    if op == 1 and len(lines) > 1:
        i = r.randrange(len(lines))
        lines[i] = lines[i][:r.randrange(len(lines[i]) + 1)]
    elif op == 2:
        lines.insert(r.randrange(len(lines) + 1), dumps(any_json(r)).encode("utf-8", "replace"))
    elif op == 3 and len(lines) > 1:
        i, j = r.randrange(len(lines)), r.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 4:
        i = r.randrange(len(data) + 1)
        return data[:i] + bytes(r.randrange(256) for _ in range(r.randrange(1, 4))) + data[i:]
    elif op == 5:
        return b"\xef\xbb\xbf" + data
    elif op == 6 and lines:
        lines.insert(r.randrange(len(lines)), lines[r.randrange(len(lines))])
    else:
        return data.rstrip(b"\n") if r.random() < 0.5 else data + b"\n\n"
    return b"\n".join(lines)


def jsonl(values: list[JSON]) -> bytes:
    return "".join(dumps(v) + "\n" for v in values).encode("utf-8", "surrogatepass")


def whole(value: JSON) -> bytes:
    return dumps(value).encode("utf-8", "surrogatepass")


def file_input(r: random.Random, value: JSON, lines: bool) -> bytes:
    """A valid value (a list of lines when `lines`), damaged as values and then perhaps as
    bytes."""
    value = damaged(value, r)
    data = jsonl(value) if lines and isinstance(value, list) else whole(value)
    return damage_bytes(data, r) if r.random() < 0.4 else data


@dataclass(frozen=True)
class Reader:
    """One reader of user data: `make` writes a (possibly damaged) input into a folder and
    returns its path; `read` reads it the way the command does."""

    name: str
    make: Callable[[random.Random, Path], Path]
    read: Callable[[Path], Any]


def fuzz_one(reader: Reader, r: random.Random, folder: Path) -> str:
    """One input through one reader: "ok" or "refused"; `Crash` otherwise."""
    path = reader.make(r, folder)
    return check(lambda: reader.read(path), path, folder)
