"""What report.html embeds: an index (the report's numbers and one row per question, for the
overview and the question list) and one record per question (its solutions, steps, scores,
documents, picks, adaptive stop point and search log, read only when the question is opened).

The picks are `select.select_all`'s under the report's seed and rules, graded by
`select.selection_correct`: the ones `evaluate` counts, so the mean of a method's `ok` over the
graded questions is report.json's accuracy. The numbers of the overview are report.json's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ...evaluation.select import (
    BUDGET_METHODS,
    METHODS,
    STRICT,
    SelectionRules,
    labels,
    select_all,
    selection_correct,
)
from ...text.records import Item, Selection
from ...text.steps import split_steps
from .stop_point import run_rule, stop_point

PRM_PICK, MAJORITY = BUDGET_METHODS
"""The PRM pick (best-of-N by PRM min) the list compares with the majority vote, and whose
score it sorts by."""


def methods_of(picks: Sequence[dict[str, Selection]]) -> list[str]:
    """The methods with a pick on every question, in registration order."""
    return [m for m in METHODS if picks and all(m in p for p in picks)]


def index(items: Sequence[Item], data: dict[str, Any], picks: Sequence[dict[str, Selection]],
          rules: SelectionRules = STRICT) -> dict[str, Any]:
    """The overview's numbers (report.json's content) and the question list's rows."""
    methods = methods_of(picks)
    headline = [m for m in methods if METHODS[m].headline]
    rows = []
    for i, (it, sel) in enumerate(zip(items, picks, strict=True)):
        q = it.question
        gold = q.answer
        prm = sel.get(PRM_PICK)
        rows.append({
            "i": i, "id": q.id, "source": q.source, "gold": gold, "stem": q.stem,
            "options": q.options, "n": len(it.solutions),
            "pick": [sel[m].answer for m in methods],
            "ok": [None if gold is None else int(selection_correct(sel[m], it.solutions, gold,
                                                                     rules)) for m in methods],
            "prm_min": None if prm is None or prm.answer is None else _num(
                prm.weights.get(prm.answer))})
    return {"report": data, "labels": labels(), "methods": methods, "headline": headline,
            "chosen": PRM_PICK if PRM_PICK in methods else MAJORITY, "questions": rows}


def question(item: Item, sel: dict[str, Selection], methods: Sequence[str],
             data: dict[str, Any], rules: SelectionRules = STRICT) -> dict[str, Any]:
    """Everything the question view shows about one question."""
    q, gold = item.question, item.question.answer
    rule = run_rule(data)
    return {
        "id": q.id, "stem": q.stem, "options": q.options, "gold": gold, "source": q.source,
        "documents": [{"title": d.title, "text": d.text, "id": d.id, "score": _num(d.score)}
                      for d in q.documents or []],
        "solutions": [_solution(item, j) for j in range(len(item.solutions))],
        "picks": {m: {"answer": sel[m].answer, "index": sel[m].index, "tied": sel[m].tied,
                      "reason": sel[m].reason,
                      "weights": [[a, _num(w)] for a, w in sel[m].weights.items()],
                      "ok": None if gold is None else bool(
                          selection_correct(sel[m], item.solutions, gold, rules))}
                  for m in methods},
        "adaptive": stop_point(item, rule) if rule is not None else None,
        "search": item.search or None, "compute": item.compute or None}


def _solution(item: Item, j: int) -> dict[str, Any]:
    s = item.solutions[j]
    steps = list(s.steps) or split_steps(s.text)
    out: dict[str, Any] = {"answer": s.answer, "steps": steps}
    if s.text.strip() != "\n".join(steps):
        out["text"] = s.text
    if item.prm is not None:
        sc = item.prm[j]
        out["probs"] = [_num(p) for p in sc.probs]
        if sc.reason:
            out["reason"] = sc.reason
        if sc.note:
            out["note"] = sc.note
    if item.orm is not None:
        out["orm"] = _num(item.orm[j])
    meta = s.meta
    for key in ("tokens", "finish_reason", "lineage", "label", "score"):
        if key in meta and isinstance(meta[key], (int, float, str)):
            out[key] = meta[key]
    conf = meta.get("confidence")
    if isinstance(conf, dict):
        out["confidence"] = {k: _num(v) for k, v in conf.items() if isinstance(v, (int, float))}
    return out


def _num(x: Any) -> float | None:
    """A finite float, or None (JSON has no NaN or infinity)."""
    if x is None or isinstance(x, bool):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def all_picks(items: Sequence[Item], seed: int,
              rules: SelectionRules) -> list[dict[str, Selection]]:
    """Every method's pick on every question, as `evaluate` picks."""
    return [select_all(it, seed=seed, rules=rules) for it in items]
