"""The benchmark report of a run or a scored file: `report.json` (numbers under stable keys;
the same items and seed give the same bytes), `report.md` (tables in percent), `report.html`
(`bestofn.viewer`), `accuracy_vs_n.csv` and `.png` (with matplotlib). What the intervals mean
is in `bestofn.bootstrap` and `bestofn.curves`."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import token_budget, viewer
from .bootstrap import CI_LEVEL, Estimate, intervals, matrix_from_rows
from .columns import benchmark_markdown, benchmark_table
from .config import ReportOptions
from .curves import Curves, accuracy_curves
from .evaluate import evaluate, graded
from .execution.ledger import compute_json
from .files import atomic_write_text
from .records import Item
from .select import STRICT, SelectionRules, get_rules, label, labels, table_keys

PLOT_FILE, CSV_FILE = "accuracy_vs_n.png", "accuracy_vs_n.csv"
PLOT_INSTALL = "pip install 'bestofn[plot]'  (or: pip install matplotlib)"
BOUNDS = ("oracle", "single")
"""Reference lines (not selection methods), drawn dashed."""
DIGITS = 6
"""Intervals and curve points are rounded to this many decimals in report.json."""


def write_report(out_dir: Path, items: Sequence[Item], config: dict[str, Any], *,
                 seed: int = 0, extra: dict[str, Any] | None = None,
                 failures: Sequence[dict[str, Any] | str] | None = None,
                 bootstrap: int = ReportOptions.bootstrap, draws: int = ReportOptions.draws,
                 plot: bool | None = None,
                 progress: bool = False, rules: SelectionRules = STRICT,
                 adaptive: Sequence[str] = (), adaptive_x: str = "samples",
                 stage_seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """Write the report files into `out_dir` and return report.json's content.

    `adaptive`: stopping-rule specs to replay on the items for the accuracy-vs-mean-samples
    section (`bestofn.adaptive.report`), plotted against `adaptive_x` (samples or tokens).

    `seed` seeds the selection tie-breaks, the bootstrap and the subset draws. `failures` are
    the questions that failed (dicts such as the pipeline's `{question_id, stage, error,
    attempts}`). `plot`: None draws the PNG when matplotlib is installed, True requires it.
    `extra` keys are added to report.json; `search_vs_best_of_n` (`token_budget.compare`)
    also gets its section and plot. `stage_seconds`: a run's measured stage seconds
    (`execution.ledger.StageClock`); the time spent here on selection and evaluation is
    `select_s`. Without them the stage keys of `compute` are null and the report is
    deterministic.
    """
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    data = build_report(items, config, seed=seed, failures=failures, bootstrap=bootstrap,
                        draws=draws, progress=progress, rules=rules)
    if stage_seconds is not None:
        stage_seconds = {**stage_seconds, "select_s": round(time.perf_counter() - t0, 3)}
    data["compute"] = compute_json(items, stage_seconds)
    data.update(extra or {})
    if adaptive:
        from .adaptive.report import adaptive_curves

        data["adaptive_curves"] = adaptive_curves(items, adaptive, seed=seed)
    atomic_write_text(out_dir / "report.json", json.dumps(data, indent=2, allow_nan=False) + "\n")
    atomic_write_text(out_dir / CSV_FILE, curves_csv(data["curves"]))
    drawn = _plot(out_dir / PLOT_FILE, data["curves"], plot)
    if drawn == "drawn" and "search_vs_best_of_n" in data:
        token_budget.plot(out_dir / token_budget.PLOT_FILE, data["search_vs_best_of_n"])
    text = markdown(data, plot=drawn)
    if adaptive:
        text += "\n" + _adaptive_curves(out_dir, data["adaptive_curves"], drawn,
                                         adaptive_x) + "\n"
    atomic_write_text(out_dir / "report.md", text)
    viewer.write_html(out_dir, items, data, seed=seed, rules=rules)
    return data


def _adaptive_curves(out_dir: Path, curves: dict[str, Any], drawn: str, x: str) -> str:
    from .adaptive import report as ar

    ar.x_axis(curves, x)
    if drawn == "drawn":
        ar.plot(out_dir / ar.PLOT_FILE, curves, x)
    return ar.markdown(curves, drawn == "drawn")


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


def curves_csv(curves: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "label", "n", "mean", "lo", "hi", "draws"])
    for m, c in curves["methods"].items():
        for j, n in enumerate(curves["ns"]):
            w.writerow([m, label(m), n, c["mean"][j], c["lo"][j], c["hi"][j],
                        curves["draws"]])
    return buf.getvalue()


def plot_curves(path: Path, curves: dict[str, Any], methods: Sequence[str] | None = None) -> None:
    """One line per method (headline methods by default) with its shaded interval, log2 N."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"the accuracy-vs-N plot needs matplotlib: {PLOT_INSTALL}") from None
    ns, got = curves["ns"], curves["methods"]
    fig = Figure(figsize=(9, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for m in methods or _headline(got):
        c = got[m]
        style = "--" if m in BOUNDS else "-"
        (line,) = ax.plot(ns, [100 * x for x in c["mean"]], style, marker="o", ms=3,
                          label=label(m))
        if all(x is not None for x in c["lo"] + c["hi"]):
            ax.fill_between(ns, [100 * x for x in c["lo"]], [100 * x for x in c["hi"]],
                            color=line.get_color(), alpha=0.12, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set(xlabel="N (solutions per question)", ylabel="accuracy (%)",
           title=f"Accuracy vs N ({curves['draws']} random subsets per N)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    _atomic_save(fig, path)


def _plot(path: Path, curves: dict[str, Any], plot: bool | None) -> str:
    """Draw the PNG; returns drawn, off (not asked for, no curve) or missing (no matplotlib)."""
    if plot is False or not curves["ns"]:
        return "off"
    try:
        plot_curves(path, curves)
    except ImportError:
        if plot:
            raise
        return "missing"
    return "drawn"


def _atomic_save(fig: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _headline(methods: dict[str, Any]) -> list[str]:
    return [m for m in table_keys() if m in methods] or list(methods)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, DIGITS)


def markdown(data: dict[str, Any], *, plot: str = "off") -> str:
    parts = ["# bestofn report", _settings_md(data), _accuracy_md(data),
             benchmark_markdown(data.get("benchmarks", {}), _headline(data["accuracy"]), labels()),
             _compute_md(data), _adaptive_md(data), _sources_md(data),
             _curves_md(data, plot), _budget_md(data, plot), _failures_md(data),
             _config_md(data["config"])]
    return "\n\n".join(p for p in parts if p) + "\n"


def _settings_md(data: dict[str, Any]) -> str:
    s, c = data["settings"], data["counts"]
    docs = {True: "yes", False: "no", None: "not recorded"}[s["documents"]]
    rows = [("dataset", s["dataset"]), ("policy", s["policy"]), ("PRM", s["prm"]),
            ("ORM", s["orm"]), ("solutions per question (N)", s["n"]), ("seed", s["seed"]),
            ("documents in the verifier prompt", docs)]
    table = _table(["setting", "value"], [[k, "—" if v is None else f"`{v}`"] for k, v in rows])
    return (f"{table}\n\n{c['graded']} questions graded ({c['questions']} in the results, "
            f"{c['ungraded']} without a gold answer, {c['failed']} failed); {c['solutions']} "
            f"solutions, {c['unscored']} unscored by the PRM, {c['orm_unscored']} by the ORM, "
            f"{c['no_answer']} without an extracted answer.{_rules_md(data)}")


def _compute_md(data: dict[str, Any]) -> str:
    c = data.get("compute")
    if not c:
        return ""
    q = max(data["counts"]["questions"], 1)
    rows = [[label, f"{c[k]:,}", f"{c[k] / q:,.1f}"] for k, label in (
        ("samples_drawn", "samples kept"), ("samples_aborted", "samples aborted or thrown away"),
        ("tokens_generated", "tokens generated"), ("tokens_aborted", "of which thrown away"),
        ("prm_tokens_computed", "PRM tokens computed"))]
    rows += [[label, "—" if c.get(k) is None else f"{c[k]:.1f} s", ""] for k, label in (
        ("startup_s", "engine start-up"), ("sample_s", "sampling"), ("score_s", "scoring"),
        ("select_s", "selection and report"))]
    return ("## Compute\n\nWhat the accuracies above cost (stage seconds may overlap: scoring "
            "runs while the engine samples).\n\n"
            + _table(["", "total", "per question"], rows, right=(1, 2)))


def _adaptive_md(data: dict[str, Any]) -> str:
    ad = data.get("adaptive")
    if not ad:
        return ""
    share = 100 * ad["samples"] / max(ad["budget"], 1)
    how = ("streamed sample by sample" if ad["round_size"] == "streamed"
           else f"rounds of {ad['round_size']}")
    return (f"## Adaptive compute\n\nStopping rule `{ad['rule']}`, "
            f"{how}: {ad['samples']} samples drawn of the fixed-N budget "
            f"{ad['budget']} ({share:.1f}%), {ad['mean_samples']:.2f} per question (at most "
            f"{ad['n_max']}).")


def _rules_md(data: dict[str, Any]) -> str:
    if "rules" not in data:
        return ""
    r = get_rules(data["rules"])
    text = (f"\n\nSelection rules: `{r.name}` (ties: {r.tie}; no-answer solutions "
            f"{'vote' if r.none_votes else 'never vote'}; graded by {r.grade})")
    n = data.get("n_unlabelled", 0)
    return text + (f"; {n} solutions have no correctness label and were graded by the gold "
                   "answer." if n else ".")


def _accuracy_md(data: dict[str, Any]) -> str:
    if not data["accuracy"]:
        return "## Accuracy\n\nNo question with a gold answer: nothing to grade."
    level = round(100 * data["ci_level"])
    rows = [[label(m), f"{100 * v:.2f}%", _interval(data["ci"].get(m))]
            for m, v in data["accuracy"].items()]
    return (f"## Accuracy\n\nAccuracy over the graded questions; {level}% percentile-bootstrap "
            f"interval from {data['bootstrap']} resamples of the questions.\n\n"
            + _table(["method", "accuracy", f"{level}% CI"], rows, right=(1, 2)))


def _sources_md(data: dict[str, Any]) -> str:
    src = data["by_source"]
    if not src:
        return ""
    methods = _headline(data["accuracy"])
    rows = [[name, str(s["n_questions"]),
             *(f"{100 * s['accuracy'][m]:.1f}" if m in s["accuracy"] else "—" for m in methods)]
            for name, s in src.items()]
    return ("## By source\n\nAccuracy (%) per `Question.source`; intervals are in "
            "report.json.\n\n" + _table(["source", "questions",
                                          *(label(m) for m in methods)], rows,
                                         right=tuple(range(1, len(methods) + 2))))


def _curves_md(data: dict[str, Any], plot: str) -> str:
    c = data["curves"]
    if not c["ns"]:
        return ""
    level = round(100 * c["level"])
    figure = {"drawn": f"![accuracy vs N]({PLOT_FILE})\n\n",
              "missing": f"(plot not drawn: {PLOT_INSTALL})\n\n"}.get(plot, "")
    head = (f"## Accuracy vs N\n\n{figure}"
            f"Accuracy (%) with N of each question's solutions: the mean over {c['draws']} "
            f"random subsets per question, and in brackets the {level}% range over draws of "
            f"the across-question accuracy. Data: `{CSV_FILE}`.")
    if any(c["n_short"]):
        head += (" Questions with fewer than N solutions use all of theirs: "
                 + ", ".join(f"N={n}: {k}" for n, k in zip(c["ns"], c["n_short"], strict=True)
                             if k) + ".")
    rows = [[label(m), *(_point(v["mean"][j], v["lo"][j], v["hi"][j])
                                 for j in range(len(c["ns"])))]
            for m, v in c["methods"].items()]
    return head + "\n\n" + _table(["method", *(f"N={n}" for n in c["ns"])], rows,
                                  right=tuple(range(1, len(c["ns"]) + 1)))


def _budget_md(data: dict[str, Any], plot: str) -> str:
    got = data.get("search_vs_best_of_n")
    return token_budget.markdown(got, plot == "drawn") if got else ""


def _failures_md(data: dict[str, Any]) -> str:
    if not data["failures"]:
        return ""
    rows = []
    for f in data["failures"]:
        d = f if isinstance(f, dict) else {"error": str(f)}
        err = str(d.get("error", "")).strip().splitlines()
        rows.append([str(d.get("question_id", d.get("id", "?"))), str(d.get("stage", "")),
                     str(d.get("attempts", "")), (err[-1] if err else "")[:160]])
    return (f"## Failed questions ({len(rows)})\n\n"
            + _table(["question", "stage", "attempts", "error"], rows))


def _config_md(config: dict[str, Any]) -> str:
    if not config:
        return ""
    return "## Config\n\n" + _table(["key", "value"], [[k, f"`{v}`"] for k, v in config.items()])


def _interval(ci: list[float | None] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "—"
    return f"{100 * ci[0]:.2f}–{100 * ci[1]:.2f}"


def _point(mean: float, lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def _table(header: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(_cell(x) for x in line) + " |" for line in lines)


def _cell(x: str) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")
