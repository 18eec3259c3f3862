"""Search runs against best-of-N and majority at equal generated-token budgets
(`bestofn report BEST_OF_N_RUN --search-runs RUN ...`).

The best-of-N run gives a curve: for k = 1..N, every question keeps its first k samples (in
the order they were drawn; all of them when it has fewer), each method's accuracy on them with
the report's bootstrap interval over questions (`bootstrap.intervals`), at the mean over
questions of those k samples' tokens (`meta["tokens"]`). Each other run gives one point: its
accuracy, with the same interval, at its mean generated tokens per question
(`compute.tokens_generated`: a search's pruned candidates count too). At a run's budget B the
best-of-N side is read two ways: the largest k whose mean tokens are at most B (a real
operating point, with its interval), and the accuracy interpolated linearly in mean tokens
between k and k + 1 (None past the curve's ends). Means are over the graded questions, which
must be the same in every run: a run over other questions is refused.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ReportOptions
from ..text.records import Item
from .curves import curve_ns, prefix_outcomes
from .evaluate import graded
from .intervals import CI_LEVEL, Estimate, intervals, outcome_matrix
from .ledger import Compute
from .select import BUDGET_METHODS, get_method, label

PLOT_FILE = "accuracy_vs_tokens.png"
DIGITS = 6
RULE = ("at budget: the largest k whose mean tokens are at most the run's; interpolated: "
        "linear in mean tokens between k and k + 1")


@dataclass(frozen=True)
class Run:
    """A run folder's results, named as the user named it."""

    name: str
    items: Sequence[Item]

    @property
    def strategy(self) -> str | None:
        """The search strategy its results record (None: not a search run)."""
        return next((it.search["strategy"] for it in self.items if it.search), None)


def best_of_n_curve(items: Sequence[Item], methods: Sequence[str], *, seed: int, b: int,
                level: float) -> list[dict[str, Any]]:
    """The best-of-N run's points, k = 1..N: mean tokens and each method's estimate."""
    qs = graded(items)
    tokens = [_tokens(it) for it in qs]
    ks = list(range(1, max((len(t) for t in tokens), default=0) + 1))
    if not ks:
        raise ValueError("the best-of-N run has no graded question with a solution")
    got = prefix_outcomes(qs, ks, methods, seed=seed)
    return [{"k": k, "mean_tokens": _r(float(np.mean([sum(t[:k]) for t in tokens]))),
             **_estimates(intervals(methods, got[k], seed=seed, b=b, level=level))}
            for k in ks]


def run_point(run: Run, methods: Sequence[str], *, seed: int, b: int,
              level: float) -> dict[str, Any]:
    """One run's mean generated tokens per graded question and each method's estimate."""
    qs = graded(run.items)
    cols = _columns(run, methods, seed)
    return {"run": run.name, "strategy": run.strategy,
            "n": max((_n(it) for it in qs), default=0),
            "mean_tokens": _r(float(np.mean([Compute.of_item(it).tokens_generated
                                             for it in qs]))),
            **_estimates(intervals(methods, cols, seed=seed, b=b, level=level))}


def _columns(run: Run, methods: Sequence[str], seed: int) -> np.ndarray:
    """The run's correctness (graded questions x `methods`); refused when a method has no
    outcome on every question (a PRM method on unscored solutions)."""
    names, matrix = outcome_matrix(run.items, seed=seed)
    missing = [m for m in methods if m not in names]
    if missing or not len(matrix):
        raise ValueError(f"{run.name}: no {', '.join(missing) or 'graded'} outcome on its "
                         "questions (are its solutions scored by a PRM?)")
    return matrix[:, [names.index(m) for m in methods]]


def at_budget(curve: list[dict[str, Any]], budget: float,
              methods: Sequence[str]) -> dict[str, Any]:
    """The best-of-N side at `budget` mean tokens (see the module doc)."""
    xs = [p["mean_tokens"] for p in curve]
    j = bisect.bisect_right(xs, budget) - 1
    out: dict[str, Any] = {"k": None if j < 0 else curve[j]["k"],
                           "mean_tokens": None if j < 0 else xs[j],
                           "beyond_curve": budget > xs[-1]}
    for m in methods:
        point = dict(curve[j][m]) if j >= 0 else {"accuracy": None, "lo": None, "hi": None}
        point["interpolated"] = _interpolate(xs, [p[m]["accuracy"] for p in curve], budget)
        out[m] = point
    return out


def _interpolate(xs: list[float], ys: list[float], x: float) -> float | None:
    if not xs[0] <= x <= xs[-1]:
        return None
    return _r(float(np.interp(x, xs, ys)))


def compare(best_of_n: Run, runs: Sequence[Run], *, seed: int = 0,
            b: int = ReportOptions.bootstrap, level: float = CI_LEVEL,
            methods: Sequence[str] = BUDGET_METHODS) -> dict[str, Any]:
    """report.json's `search_vs_best_of_n`."""
    for m in methods:
        get_method(m)
    if best_of_n.strategy:
        raise ValueError(f"{best_of_n.name}: a search run ({best_of_n.strategy}); the runs are "
                         "placed against a best-of-N run, pass that first")
    _columns(best_of_n, methods, seed)
    for run in runs:
        same_questions(best_of_n, run)
    curve = best_of_n_curve(best_of_n.items, methods, seed=seed, b=b, level=level)
    points = [run_point(r, methods, seed=seed, b=b, level=level) for r in runs]
    for p in points:
        p["best_of_n_at_budget"] = at_budget(curve, p["mean_tokens"], methods)
    return {"best_of_n": {"run": best_of_n.name, "n": curve[-1]["k"],
                          "questions": len(graded(best_of_n.items)), "curve": curve},
            "methods": list(methods), "level": level, "bootstrap": b, "rule": RULE,
            "runs": points}


def same_questions(best_of_n: Run, run: Run) -> None:
    """Refuse a run whose questions are not the best-of-N run's."""
    want = {it.question.id for it in best_of_n.items}
    got = {it.question.id for it in run.items}
    if got != want:
        extra, missing = sorted(got - want), sorted(want - got)
        raise ValueError(
            f"{run.name}: its {len(got)} questions are not the {len(want)} questions of the "
            f"best-of-N run {best_of_n.name} ({len(missing)} missing, e.g. "
            f"{missing[:1]}; {len(extra)} not in it, e.g. {extra[:1]}); compare runs over "
            "the same questions")


def _n(item: Item) -> int:
    """A question's N: a search's first-step candidates, else its solutions."""
    steps = (item.search or {}).get("steps")
    return int(steps[0]["live"]) if steps else len(item.solutions)


def _tokens(item: Item) -> list[int]:
    toks = [s.meta.get("tokens") for s in item.solutions]
    if not all(isinstance(t, int) for t in toks):
        raise ValueError(f"question {item.question.id!r}: the best-of-N run's solutions must "
                         "record their token counts (meta.tokens) to place them on a token "
                         "budget")
    return toks  # type: ignore[return-value]


def _estimates(est: dict[str, Estimate]) -> dict[str, dict[str, float | None]]:
    return {m: {"accuracy": _r(e.mean), "lo": _r(e.lo), "hi": _r(e.hi)}
            for m, e in est.items()}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, DIGITS)


def markdown(data: dict[str, Any], drawn: bool) -> str:
    """report.md's section: one row per run, then the best-of-N curve at 1, 2, 4, … N."""
    methods, level = data["methods"], round(100 * data["level"])
    bon = data["best_of_n"]
    head = (f"## Search vs best-of-N at equal generated tokens\n\n"
            f"Each run's accuracy ({level}% bootstrap interval over {bon['questions']} "
            f"questions) at its mean generated tokens per question, against the best-of-N "
            f"run `{bon['run']}` (its first k of {bon['n']} samples per question) at the same "
            f"budget; {RULE}." + (f" Plot: `{PLOT_FILE}`." if drawn else ""))
    cols = ["run", "strategy", "N", "tokens / question", "best-of-N k (tokens)"]
    for m in methods:
        cols += [f"{label(m)}: run", f"{label(m)}: at budget", f"{label(m)}: interpolated"]
    rows = []
    for p in data["runs"]:
        at = p["best_of_n_at_budget"]
        k = "—" if at["k"] is None else f"{at['k']} ({at['mean_tokens']:.0f})"
        if at["beyond_curve"]:
            k += ", past N"
        row = [f"`{p['run']}`", f"`{p['strategy']}`" if p["strategy"] else "—", str(p["n"]),
               f"{p['mean_tokens']:.1f}", k]
        for m in methods:
            row += [_cell(p[m]), _cell(at[m]), _pct(at[m]["interpolated"])]
        rows.append(row)
    curve = {p["k"]: p for p in bon["curve"]}
    crow = [[str(k), f"{curve[k]['mean_tokens']:.1f}", *(_cell(curve[k][m]) for m in methods)]
            for k in curve_ns(bon["n"])]
    return "\n\n".join([head, _table(cols, rows),
                        "Best-of-N run (every k is in report.json):",
                        _table(["k", "tokens / question", *(label(m) for m in methods)],
                               crow)])


def _cell(e: dict[str, float | None]) -> str:
    if e["accuracy"] is None:
        return "—"
    if e["lo"] is None or e["hi"] is None:
        return _pct(e["accuracy"])
    return f"{_pct(e['accuracy'])} [{100 * e['lo']:.1f}, {100 * e['hi']:.1f}]"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(x.replace("|", "\\|") for x in line) + " |"
                     for line in lines)


def plot(path: Path, data: dict[str, Any]) -> None:
    """Accuracy vs mean generated tokens: the best-of-N curves with their bands, each run a
    point with its interval."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    curve = data["best_of_n"]["curve"]
    xs = [p["mean_tokens"] for p in curve]
    for m in data["methods"]:
        (ln,) = ax.plot(xs, [100 * p[m]["accuracy"] for p in curve], "--", marker="o", ms=2,
                        label=f"first k samples: {label(m)}")
        ax.fill_between(xs, [100 * p[m]["lo"] for p in curve],
                        [100 * p[m]["hi"] for p in curve], color=ln.get_color(), alpha=0.12,
                        linewidth=0)
    for p in data["runs"]:
        for m in data["methods"]:
            e = p[m]
            ax.errorbar([p["mean_tokens"]], [100 * e["accuracy"]],
                        yerr=[[100 * (e["accuracy"] - e["lo"])], [100 * (e["hi"] - e["accuracy"])]],
                        fmt="s", capsize=3, label=f"{p['strategy'] or p['run']}: {label(m)}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="mean generated tokens per question", ylabel="accuracy (%)",
           title="Accuracy vs generated tokens: best-of-N against search")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
