"""Solutions with labelled steps, for `bestofn verifier-eval`.

Formats read (JSONL one record a line, or a `.json` list):
- ProcessBench: `steps` (list of strings), `label` (index of the first wrong step, -1 when
  every step is right), optional `problem`, `id`, `final_answer_correct`. Steps after the
  first error carry no label.
- Med-PRM training set, flat: `steps`, step labels `prm_gemini_label`, `prm_llama_label`,
  `prm_hard_label` (0/1 per step), `prm_soft_label` (a number in [0, 1] per step), `question`,
  `orm_label`. Which of them label the steps: `bestofn.evaluation.label_sources` (default Gemini's
  where
  present, else the hard ones; the first error is the first step labelled 0).
- Med-PRM training set as published (question records with `solutions`, each solution with
  `solution` / `prm_processed_solution` and the labels above), and `bestofn score` output
  (Med-PRM JSON, or the project's JSONL whose solutions keep their labels in `meta`): the
  steps are the marked solution cut at the step tag.
Any record may carry `PRM_score_list` (one score per step, as `bestofn score` writes it);
`PRM_score_list: []` means unscored. A record with no step labels but an outcome label
(`final_answer_correct`, `orm_label`, or `score`) counts for the outcome-level metric only.

Bad records raise `InputError` naming the file, the line (or record) and the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..text.files import InputError, json_line, json_objects, load_json
from ..text.steps import STEP_TAG, split_steps
from .label_sources import FIELDS, LabelChoice, short, step_labels

OUTCOME_FIELDS = ("final_answer_correct", "orm_label", "score")


@dataclass
class LabelledSolution:
    """One solution: its steps, per-step labels (1 right, 0 wrong, None unlabelled), the first
    error (-1: none; None: no step labels), soft labels, outcome label and verifier scores."""

    id: str
    question: str
    steps: list[str]
    hard: list[int | None] | None
    first_error: int | None
    soft: list[float] | None = None
    outcome: bool | None = None
    scores: list[float] | None = None
    unscored: str | None = None
    where: str = ""
    label_source: str | None = None
    """Where the step labels came from: `label` (ProcessBench) or a key of
    `label_sources.FIELDS` (Med-PRM); None without step labels."""

    @property
    def outcome_label(self) -> bool | None:
        """The outcome label, else process correctness (no wrong step)."""
        if self.outcome is not None:
            return self.outcome
        return None if self.first_error is None else self.first_error == -1

    def to_dict(self) -> dict[str, Any]:
        """The flat labelled format (ProcessBench `label`, plus Med-PRM's labels when every
        step is labelled)."""
        d: dict[str, Any] = {"id": self.id, "question": self.question, "steps": self.steps}
        if self.first_error is not None:
            d["label"] = self.first_error
        field = FIELDS.get(self.label_source or "")
        if field and self.label_source != "soft" and self.hard is not None:
            d[field] = self.hard
        if self.soft is not None:
            d["prm_soft_label"] = self.soft
        if self.outcome is not None:
            d["final_answer_correct"] = self.outcome
        if self.scores is not None or self.unscored:
            d["PRM_score_list"] = self.scores or []
        if self.unscored:
            d["PRM_reason"] = self.unscored
        return d


def read_labelled(path: str | os.PathLike[str],
                  labels: LabelChoice | None = None) -> list[LabelledSolution]:
    """Every solution of a labelled file, its step labels taken as `labels` says (default:
    `LabelChoice()`, Med-PRM's Gemini labels where present, else the hard ones)."""
    choice = labels or LabelChoice()
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    if p.suffix == ".json":
        data = load_json(p, list, "list of records")
        records: Iterator[tuple[str, Any]] = ((f"record {i}", d) for i, d in enumerate(data))
    else:
        records = ((f"line {n}", d) for n, d in json_objects(p))
    out: list[LabelledSolution] = []
    for where, d in records:
        out.extend(_parse(d, p, where, choice))
    if not out:
        raise InputError(p, "whole file", "(file)", "no records")
    return out


def write_labelled(path: str | os.PathLike[str], sols: list[LabelledSolution]) -> None:
    from ..text.files import atomic_write_text

    atomic_write_text(path, "".join(json_line(s.to_dict()) for s in sols))


def _parse(d: Any, path: Path, where: str, choice: LabelChoice) -> list[LabelledSolution]:
    if not isinstance(d, dict):
        raise InputError(path, where, "(record)", f"expected an object, got {type(d).__name__}")
    if "steps" in d:
        return [_flat(d, path, where, choice)]
    if isinstance(d.get("question"), dict):
        return _item(d, path, where, choice)
    if isinstance(d.get("solutions"), list):
        return _nested(d, path, where, choice)
    raise InputError(path, where, "steps", "missing: a record needs 'steps' (ProcessBench or "
                     "flat Med-PRM) or 'solutions' (Med-PRM question record)")


def _flat(d: dict[str, Any], path: Path, where: str, choice: LabelChoice) -> LabelledSolution:
    steps = d["steps"]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise InputError(path, where, "steps", f"expected a non-empty list of strings, got "
                         f"{short(steps)}")
    sid = str(d.get("id", d.get("question_id", where)))
    question = d.get("problem", d.get("question", ""))
    return _build(d, path, where, sid, str(question), steps, "", choice)


def _build(d: dict[str, Any], path: Path, where: str, sid: str, question: str,
           steps: list[str], prefix: str, choice: LabelChoice) -> LabelledSolution:
    n = len(steps)
    hard, first, source = step_labels(d, n, path, where, prefix, choice)
    soft = _numbers(d, "prm_soft_label", n, path, where, prefix, unit=True)
    outcome = _outcome(d, path, where, prefix)
    if hard is None and outcome is None:
        raise InputError(path, where, f"{prefix}label",
                         "missing: needs step labels ('label' or one of "
                         + ", ".join(FIELDS.values()) + ") or an outcome label ("
                         + ", ".join(OUTCOME_FIELDS) + ")")
    scores, reason = _scores(d, n, path, where, prefix)
    return LabelledSolution(sid, question, steps, hard, first, soft, outcome, scores, reason,
                            where, source)


def _numbers(d: dict[str, Any], key: str, n: int, path: Path, where: str, prefix: str, *,
             unit: bool) -> list[float] | None:
    raw = d.get(key)
    if raw is None:
        return None
    ok = isinstance(raw, list) and len(raw) == n and all(
        isinstance(v, int | float) and not isinstance(v, bool) and v == v for v in raw)
    if ok and unit:
        ok = all(0 <= v <= 1 for v in raw)
    if not ok:
        rng = " in [0, 1]" if unit else ""
        raise InputError(path, where, f"{prefix}{key}",
                         f"expected a list of {n} numbers{rng} (one per step), got {short(raw)}")
    return [float(v) for v in raw]


def _scores(d: dict[str, Any], n: int, path: Path, where: str,
            prefix: str) -> tuple[list[float] | None, str | None]:
    if "PRM_score_list" not in d:
        return None, None
    raw = d["PRM_score_list"]
    if raw == [] or raw is None:
        return None, str(d.get("PRM_reason") or "no step score in the file")
    return _numbers(d, "PRM_score_list", n, path, where, prefix, unit=False), None


def _outcome(d: dict[str, Any], path: Path, where: str, prefix: str) -> bool | None:
    for key in OUTCOME_FIELDS:
        v = d.get(key)
        if v is None:
            continue
        if v not in (0, 1) or isinstance(v, str):
            raise InputError(path, where, f"{prefix}{key}", f"expected true/false or 0/1, "
                             f"got {v!r}")
        return bool(v)
    return None


def _nested(d: dict[str, Any], path: Path, where: str,
            choice: LabelChoice) -> list[LabelledSolution]:
    qid = str(d.get("question_id", d.get("id", where)))
    question = str(d.get("question", ""))
    out = []
    for k, s in enumerate(d["solutions"]):
        prefix = f"solutions[{k}]."
        if not isinstance(s, dict):
            raise InputError(path, where, f"solutions[{k}]",
                             f"expected an object, got {type(s).__name__}")
        steps = _solution_steps(s.get("prm_processed_solution"), s.get("solution"))
        if not steps:
            raise InputError(path, where, f"{prefix}solution", "missing or empty: needs "
                             "'solution' or 'prm_processed_solution' text")
        out.append(_build(s, path, where, f"{qid}/{k}", question, steps, prefix, choice))
    return out


def _item(d: dict[str, Any], path: Path, where: str,
          choice: LabelChoice) -> list[LabelledSolution]:
    """A line of the project's JSONL (`Item.to_dict()`): labels in each solution's `meta`,
    scores in `prm`."""
    q = d["question"]
    prm = d.get("prm") or [None] * len(d.get("solutions") or [])
    out = []
    for k, (s, sc) in enumerate(zip(d.get("solutions") or [], prm, strict=False)):
        if not isinstance(s, dict):
            raise InputError(path, where, f"solutions[{k}]", "expected an object")
        steps = _solution_steps(s.get("marked"), s.get("text"))
        rec = dict(s.get("meta") or {})
        if isinstance(sc, dict):
            rec["PRM_score_list"] = sc.get("probs") or []
            rec["PRM_reason"] = sc.get("reason")
        if rec.get("score") is None and q.get("answer") is not None:
            rec["score"] = int(str(s.get("answer")).casefold() == str(q["answer"]).casefold())
        out.append(_build(rec, path, where, f"{q.get('id', where)}/{k}", str(q.get("stem", "")),
                          steps, f"solutions[{k}].meta.", choice))
    return out


def _solution_steps(marked: Any, text: Any) -> list[str]:
    """The scored steps: the marked solution cut at the step tag (text before a tag belongs to
    that step), else the text split at `Step N:`."""
    if isinstance(marked, str) and STEP_TAG in marked:
        return [p.strip() for p in marked.split(STEP_TAG)[:-1]]
    return split_steps(text) if isinstance(text, str) else []
