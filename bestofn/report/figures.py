"""The accuracy-vs-N curves as files: `accuracy_vs_n.csv` and, with matplotlib, the PNG."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..evaluation.select import label, table_keys

PLOT_FILE, CSV_FILE = "accuracy_vs_n.png", "accuracy_vs_n.csv"
PLOT_INSTALL = "pip install 'bestofn[plot]'  (or: pip install matplotlib)"
BOUNDS = ("oracle", "single")
"""Reference lines (not selection methods), drawn dashed."""


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
    for m in methods or headline(got):
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


def headline(methods: dict[str, Any]) -> list[str]:
    return [m for m in table_keys() if m in methods] or list(methods)
