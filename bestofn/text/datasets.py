"""Question sets: bundled MedQA and MIRAGE, and question files in the MedQA/JSONL format."""

from __future__ import annotations

from importlib import resources
from itertools import chain, zip_longest
from pathlib import Path
from typing import Any

from .files import InputError, json_objects, load_json
from .records import Question
from .shapes import check_options, check_question_dict

BUNDLED = {"medqa": "medqa/test_4options.jsonl", "medqa5": "medqa/test_5options.jsonl"}
"""Dataset names → files under `bestofn/data` (MedQA, Jin et al. 2021, MIT License)."""

MIRAGE_FILE = "mirage/benchmark.json"
"""MIRAGE benchmark, Xiong et al. 2024 (NCBI public domain notice); component datasets MIT."""

MIRAGE_COMPONENTS = ("medqa", "medmcqa", "pubmedqa", "bioasq", "mmlu")
"""MIRAGE's five question sets, in the file's order (PubMedQA* without its contexts;
PubMedQA options are yes/no/maybe and BioASQ's yes/no, as letters)."""

DATASETS = [*BUNDLED, "mirage", *(f"mirage-{c}" for c in MIRAGE_COMPONENTS)]
"""Every name `load_questions` knows; anything else is read as a file path."""


def load_questions(name_or_path: str, limit: int | None = None) -> list[Question]:
    """A bundled dataset by name (see `DATASETS`), or a question file.

    `mirage-<set>` is one MIRAGE component (`Question.source` is the component's name);
    `mirage` is all five, interleaved round-robin so that any prefix (`limit`) mixes them.
    A `.json` file is read as a MIRAGE-format benchmark; any other file as JSONL, where a line
    is either a `Question.to_dict()` or MedQA's format (`question`, `options` as a letter → text
    object, `answer_idx`); `id`/`realidx` name the question, else its line number.
    """
    if name_or_path in DATASETS and name_or_path not in BUNDLED:
        qs = _mirage_by_name(name_or_path)
        return qs if limit is None else qs[:limit]
    if name_or_path in BUNDLED:
        path, source = _bundled(BUNDLED[name_or_path]), name_or_path
    else:
        path, source = Path(name_or_path), Path(name_or_path).stem
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (bundled datasets: "
                                    f"{', '.join(DATASETS)})")
        if path.suffix == ".json":
            qs = _interleave(load_mirage(path))
            if not qs:
                raise InputError(path, "whole file", "(file)", "holds no questions")
            return qs if limit is None else qs[:limit]
    out: list[Question] = []
    for n, d in json_objects(path):
        if limit is not None and len(out) >= limit:
            break
        out.append(_question(d, path, n, source))
    if not out:
        raise InputError(path, "whole file", "(file)", "holds no questions")
    return out


def load_mirage(path: str | Path | None = None,
                components: tuple[str, ...] | None = None) -> dict[str, list[Question]]:
    """A MIRAGE-format file (default: the bundled one): component → questions in file order.

    Format: `{component: {id: {question, options: {letter: text}, answer: letter}}}`.
    """
    p = Path(path) if path is not None else _bundled(MIRAGE_FILE)
    data = load_json(p, dict, "object of dataset → questions")
    wanted = components or tuple(data)
    for c in wanted:
        if c not in data:
            raise InputError(p, "top level", c, f"no such dataset; the file has {sorted(data)}")
    out = {c: [_mirage_question(p, c, qid, d) for qid, d in _records(p, c, data[c])]
           for c in wanted}
    _check_unique_ids(p, out)
    return out


def _mirage_by_name(name: str) -> list[Question]:
    if name == "mirage":
        return _interleave(load_mirage())
    component = name.removeprefix("mirage-")
    return load_mirage(components=(component,))[component]


def _interleave(sets: dict[str, list[Question]]) -> list[Question]:
    return [q for q in chain.from_iterable(zip_longest(*sets.values())) if q is not None]


def _bundled(rel: str) -> Path:
    return Path(str(resources.files("bestofn") / "data" / rel))


def _records(path: Path, component: str, block: Any) -> list[tuple[str, Any]]:
    if not isinstance(block, dict):
        raise InputError(path, f"dataset {component}", "(dataset)",
                         "expected an object of question id → question")
    return list(block.items())


def _mirage_question(path: Path, component: str, qid: str, d: Any) -> Question:
    where = f"dataset {component} question {qid}"
    if not isinstance(d, dict):
        raise InputError(path, where, "(question)", "expected an object")
    for key, kind in (("question", str), ("options", dict), ("answer", str)):
        if not isinstance(d.get(key), kind):
            raise InputError(path, where, key, f"missing or not a {kind.__name__}")
    options = {str(k): str(v) for k, v in d["options"].items()}
    if d["answer"] not in options:
        raise InputError(path, where, "answer", f"{d['answer']!r} is not one of the options "
                         f"{sorted(options)}")
    return Question(id=str(qid), stem=d["question"], options=options, answer=d["answer"],
                    source=component)


def _check_unique_ids(path: Path, sets: dict[str, list[Question]]) -> None:
    seen: dict[str, str] = {}
    for component, qs in sets.items():
        for q in qs:
            if q.id in seen:
                raise InputError(path, f"dataset {component} question {q.id}", "(id)",
                                 f"id also used in dataset {seen[q.id]}: ids must be unique")
            seen[q.id] = component


def _question(d: dict[str, Any], path: Path, n: int, source: str) -> Question:
    where = f"line {n}"
    if "stem" in d:
        check_question_dict(d, path, where)
        q = Question.from_dict(d)
        if q.answer is not None and q.options and q.answer not in q.options:
            raise InputError(path, where, "answer", f"{q.answer!r} is not one of the options "
                             f"{sorted(q.options)}")
        return q
    for key in ("question", "options"):
        if key not in d:
            raise InputError(path, where, key, "missing")
    if not isinstance(d["question"], str):
        raise InputError(path, where, "question", "expected a string")
    options = d["options"]
    check_options(options, path, where, "options")
    gold = d.get("answer_idx", d.get("answer"))
    if gold is not None and not isinstance(gold, str):
        raise InputError(path, where, "answer_idx", f"expected an option letter, got {gold!r}")
    if gold is not None and options and gold not in options:
        raise InputError(path, where, "answer_idx", f"{gold!r} is not one of the options "
                         f"{sorted(options)}")
    qid = d.get("id", d.get("realidx", n - 1))
    return Question(id=str(qid), stem=d["question"], options=dict(options), answer=gold,
                    source=d.get("source", source))
