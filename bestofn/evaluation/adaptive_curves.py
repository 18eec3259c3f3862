"""The report's "accuracy vs mean samples" section: fixed N against each adaptive rule.

Each rule is replayed over a grid of its main parameter (from eager to cautious), each fixed N
over 1, 2, 4, … samples; a point is the accuracy of the rule's method (majority vote for the
vote rules, PRM-weighted vote (min) for `prm`) with its 95% bootstrap interval over questions,
placed at the mean number of samples drawn per question.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..adaptive.rules import parse_rule
from ..text.records import Item
from .adaptive_replay import CurvePoint, Replayer, fixed_curve, rule_curve
from .curves import curve_ns

GRIDS: dict[str, tuple[str, tuple[float, ...]]] = {
    "beta": ("eps", (0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001)),
    "dirichlet": ("eps", (0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001)),
    "prm": ("eps", (0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.0)),
    "esc": ("w", (2, 3, 4, 5, 6, 8)),
}
"""Per rule: the parameter its curve sweeps, and the values."""

PLOT_FILE = "accuracy_vs_samples.png"


def rule_method(name: str, scored: bool) -> str:
    return "weighted_min" if name == "prm" and scored else "majority"


def adaptive_curves(items: Sequence[Item], specs: Sequence[str], *, seed: int = 0,
                    draws: int | None = None) -> dict[str, Any]:
    """report.json's `adaptive_curves`: fixed-N curves and one curve per rule spec."""
    replayer = Replayer(items, draws=draws, seed=seed)
    scored = replayer.has_scores
    n_max = replayer.n_solutions
    fixed = fixed_curve(replayer, curve_ns(n_max))
    out: dict[str, Any] = {
        "draws": draws, "n_max": n_max,
        "fixed": [_point(p, m) | {"method": m} for m in _methods(scored) for p in fixed],
        "rules": []}
    for spec in specs:
        rule = parse_rule(spec)
        if "max_n" not in spec:
            rule = _with_max(rule, n_max)
        method = rule_method(rule.name, scored)
        param, grid = GRIDS.get(rule.name, ("", ()))
        points = (rule_curve(replayer, rule, param, grid) if grid
                  else [CurvePoint(rule.name, 0, replayer.run(rule))])
        out["rules"].append({"rule": rule.name, "spec": spec, "param": param,
                             "method": method, "points": [_point(p, method) for p in points]})
    return out


def _with_max(rule: Any, n_max: int) -> Any:
    import dataclasses

    return dataclasses.replace(rule, max_n=max(n_max, rule.min_n))


def _methods(scored: bool) -> list[str]:
    return ["majority", "weighted_min"] if scored else ["majority"]


def _point(p: CurvePoint, method: str) -> dict[str, Any]:
    e = p.result.intervals()[method]
    tokens = p.result.mean_tokens
    return {"param": p.value, "mean_samples": round(p.result.mean_samples, 6),
            "mean_tokens": None if tokens is None else round(tokens, 3),
            "accuracy": round(e.mean, 6), "lo": round(e.lo or 0.0, 6),
            "hi": round(e.hi or 0.0, 6)}


X_AXES = {"samples": ("mean_samples", "mean samples per question"),
          "tokens": ("mean_tokens", "mean generated tokens per question")}
"""The x axes a curve can be drawn on (`bestofn report --adaptive-x`)."""


def x_axis(curves: dict[str, Any], x: str) -> tuple[str, str]:
    """The point key and label of axis `x`; tokens need every point's `mean_tokens`."""
    if x not in X_AXES:
        raise ValueError(f"unknown x axis {x!r}; known: {', '.join(X_AXES)}")
    key, label = X_AXES[x]
    points = curves["fixed"] + [p for c in curves["rules"] for p in c["points"]]
    if any(p.get(key) is None for p in points):
        raise ValueError("--adaptive-x tokens needs every solution's token count "
                         "(meta.tokens), which these results lack")
    return key, label


def plot(path: Path, curves: dict[str, Any], x: str = "samples") -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    lines = [(f"fixed N ({m})", [p for p in curves["fixed"] if p["method"] == m], "--")
             for m in dict.fromkeys(p["method"] for p in curves["fixed"])]
    lines += [(f"{c['rule']} ({c['method']}, {c['param'] or 'default'})", c["points"], "-")
              for c in curves["rules"]]
    key, xlabel = x_axis(curves, x)
    for label, pts, style in lines:
        xs = [p[key] for p in pts]
        (ln,) = ax.plot(xs, [100 * p["accuracy"] for p in pts], style, marker="o", ms=3,
                        label=label)
        ax.fill_between(xs, [100 * p["lo"] for p in pts], [100 * p["hi"] for p in pts],
                        color=ln.get_color(), alpha=0.12, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set(xlabel=xlabel, ylabel="accuracy (%)",
           title=f"Accuracy vs {xlabel.split(' per ')[0]}: fixed N and adaptive rules "
                 "(95% bootstrap bands)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})


def markdown(curves: dict[str, Any], drawn: bool) -> str:
    rows = ["## Accuracy vs mean samples", "",
            "Each rule replayed over its parameter on the stored samples (file order"
            + (f", {curves['draws']} permutations" if curves["draws"] else "")
            + "); accuracy with its 95% bootstrap interval over questions."
            + (f" Plot: `{PLOT_FILE}`." if drawn else ""), "",
            "| curve | parameter | mean samples | mean tokens | accuracy | 95% CI |",
            "|---|---:|---:|---:|---:|---|"]

    def row(curve: str, param: str, p: dict[str, Any]) -> str:
        tokens = "—" if p.get("mean_tokens") is None else f"{p['mean_tokens']:.0f}"
        return (f"| {curve} | {param} | {p['mean_samples']:.2f} | {tokens} | "
                f"{100 * p['accuracy']:.2f}% | [{100 * p['lo']:.2f}, {100 * p['hi']:.2f}] |")

    for p in curves["fixed"]:
        rows.append(row(f"fixed N ({p['method']})", f"N={p['param']:g}", p))
    for c in curves["rules"]:
        for p in c["points"]:
            rows.append(row(f"{c['rule']} ({c['method']})", f"{c['param']}={p['param']:g}", p))
    return "\n".join(rows)
