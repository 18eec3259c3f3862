"""Question sets: the bundled MedQA test split, and question files in the MedQA/JSONL format."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .files import InputError
from .records import Question

BUNDLED = {"medqa": "medqa/test_4options.jsonl", "medqa5": "medqa/test_5options.jsonl"}
"""Dataset names → files under `bestofn/data` (MedQA, Jin et al. 2021, MIT License)."""


def load_questions(name_or_path: str, limit: int | None = None) -> list[Question]:
    """A bundled dataset by name (`medqa`, `medqa5`) or a JSONL file of questions.

    A line is either a `Question.to_dict()` or MedQA's format (`question`, `options` as a
    letter → text object, `answer_idx`); `id`/`realidx` name the question, else its line number.
    """
    if name_or_path in BUNDLED:
        path = Path(str(resources.files("bestofn") / "data" / BUNDLED[name_or_path]))
        source = name_or_path
    else:
        path, source = Path(name_or_path), Path(name_or_path).stem
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (bundled datasets: "
                                    f"{', '.join(BUNDLED)})")
    out: list[Question] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if line.strip():
                out.append(_question(line, path, n, source))
    return out


def _question(line: str, path: Path, n: int, source: str) -> Question:
    where = f"line {n}"
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(path, where, "(line)", f"malformed JSON: {e.msg}") from None
    if not isinstance(d, dict):
        raise InputError(path, where, "(line)", "expected an object")
    if "stem" in d:
        return Question.from_dict(d)
    for key in ("question", "options"):
        if key not in d:
            raise InputError(path, where, key, "missing")
    options = d["options"]
    if not isinstance(options, dict):
        raise InputError(path, where, "options", "expected an object of letter → text")
    gold = d.get("answer_idx", d.get("answer"))
    if gold is not None and options and gold not in options:
        raise InputError(path, where, "answer_idx", f"{gold!r} is not one of the options "
                         f"{sorted(options)}")
    qid = d.get("id", d.get("realidx", n - 1))
    return Question(id=str(qid), stem=d["question"], options=dict(options), answer=gold,
                    source=d.get("source", source))
