"""report.json's content: accuracies, intervals, curves, settings and counts, deterministic
given the items, config, failures and seed. What the intervals mean is in
`bestofn.evaluation.intervals` and `bestofn.evaluation.curves`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import ReportOptions
from ..evaluation.columns import benchmark_table
from ..evaluation.curves import Curves, accuracy_curves
from ..evaluation.evaluate import evaluate, graded
from ..evaluation.intervals import CI_LEVEL, Estimate, intervals, matrix_from_rows
from ..evaluation.select import STRICT, SelectionRules
from ..text.records import Item

DIGITS = 6
"""Intervals and curve points are rounded to this many decimals in report.json."""


def build_report(items: Sequence[Item], config: dict[str, Any], *, seed: int = 0,
                 failures: Sequence[dict[str, Any] | str] | None = None,
                 bootstrap: int = ReportOptions.bootstrap, draws: int = ReportOptions.draws,
                 level: float = CI_LEVEL,
                 progress: bool = False, rules: SelectionRules = STRICT) -> dict[str, Any]:
    """report.json's content: deterministic given the items, config, failures and seed."""
    ev = evaluate(items, seed=seed, rules=rules)
    methods, matrix = matrix_from_rows(ev.per_question)
    ci = intervals(methods, matrix, seed=seed, b=bootstrap, level=level)
    curves = accuracy_curves(items, draws=draws, seed=seed, level=level, methods=methods,
                             progress=progress, rules=rules)
    fails = list(failures or [])
    sources = [it.question.source for it in graded(items)]
    return {"accuracy": ev.accuracy,
            **{k: v for k, v in ev.to_json().items() if k not in ev.accuracy},
            "ci": _ci_json(ci), "ci_level": level, "bootstrap": bootstrap,
            "settings": settings(config, items),
            "counts": {**counts(items, ev.to_json()), "failed": len(fails)},
            "by_source": by_source(sources, methods, matrix, seed=seed, b=bootstrap,
                                   level=level),
            "curves": curves_json(curves),
            "failures": fails, "config": config,
            **_rules_json(rules, sources, methods, matrix)}


def _rules_json(rules: SelectionRules, sources: Sequence[str], methods: list[str],
                matrix: np.ndarray) -> dict[str, Any]:
    """Keys present only when they say something: non-default rules, benchmark columns."""
    out: dict[str, Any] = {}
    if rules != STRICT:
        out["rules"] = rules.name
    table = benchmark_table(sources, methods, matrix)
    if table:
        out["benchmarks"] = table
    return out


def settings(config: dict[str, Any], items: Sequence[Item]) -> dict[str, Any]:
    """What a reader of the table must know: models, N, seed, whether documents were used."""
    n = config.get("n") or max((len(it.solutions) for it in items), default=0)
    return {"dataset": config.get("dataset"), "policy": config.get("policy"),
            "prm": config.get("prm"), "orm": config.get("orm"), "n": n,
            "seed": config.get("seed"), "documents": config.get("use_docs")}


def counts(items: Sequence[Item], ev: dict[str, Any]) -> dict[str, int]:
    g = len(graded(items))
    return {"questions": len(items), "graded": g, "ungraded": len(items) - g,
            "solutions": ev["n_solutions"], "unscored": ev["n_unscored"],
            "no_answer": ev["n_no_answer"], "orm_unscored": ev["n_orm_unscored"]}


def by_source(sources: Sequence[str], methods: list[str], matrix: np.ndarray, *, seed: int,
              b: int, level: float = CI_LEVEL) -> dict[str, dict[str, Any]]:
    """Per source (sorted): graded questions, accuracies (summed as `evaluate` sums) and CIs.

    `sources` and the rows of `matrix` are the graded questions, in the same order.
    """
    out = {}
    for src in sorted(set(sources)):
        part = matrix[[i for i, s in enumerate(sources) if s == src]]
        acc = {m: sum(part[:, j].tolist()) / len(part) for j, m in enumerate(methods)}
        out[src or "(none)"] = {"n_questions": len(part), "accuracy": acc,
                                "ci": _ci_json(intervals(methods, part, seed=seed, b=b,
                                                         level=level))}
    return out


def _ci_json(ci: dict[str, Estimate]) -> dict[str, list[float | None]]:
    return {m: [_r(e.lo), _r(e.hi)] for m, e in ci.items()}


def curves_json(c: Curves) -> dict[str, Any]:
    return {"ns": c.ns, "draws": c.draws, "level": c.level, "n_short": c.n_short,
            "methods": {m: {"mean": [_r(x) for x in c.mean[m]], "lo": [_r(x) for x in c.lo[m]],
                            "hi": [_r(x) for x in c.hi[m]]} for m in c.mean}}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, DIGITS)
