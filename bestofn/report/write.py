"""The benchmark report of a run or a scored file, written: `report.json` (`build`: numbers
under stable keys; the same items and seed give the same bytes), `report.md` (`markdown`),
`report.html` (`viewer`), `accuracy_vs_n.csv` and `.png` (`figures`)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import ReportOptions
from ..evaluation import token_budget
from ..evaluation.ledger import compute_json
from ..evaluation.select import STRICT, SelectionRules
from ..text.files import atomic_write_text
from ..text.records import Item
from .build import build_report
from .figures import CSV_FILE, PLOT_FILE, _plot, curves_csv
from .markdown import markdown
from .viewer import write_html


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
    section (`bestofn.evaluation.adaptive_curves`), plotted against `adaptive_x` (samples or
    tokens).

    `seed` seeds the selection tie-breaks, the bootstrap and the subset draws. `failures` are
    the questions that failed (dicts such as the pipeline's `{question_id, stage, error,
    attempts}`). `plot`: None draws the PNG when matplotlib is installed, True requires it.
    `extra` keys are added to report.json; `search_vs_best_of_n` (`token_budget.compare`)
    also gets its section and plot. `stage_seconds`: a run's measured stage seconds
    (`evaluation.ledger.StageClock`); the time spent here on selection and evaluation is
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
        from ..evaluation.adaptive_curves import adaptive_curves

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
    write_html(out_dir, items, data, seed=seed, rules=rules)
    return data


def _adaptive_curves(out_dir: Path, curves: dict[str, Any], drawn: str, x: str) -> str:
    from ..evaluation import adaptive_curves as ar

    ar.x_axis(curves, x)
    if drawn == "drawn":
        ar.plot(out_dir / ar.PLOT_FILE, curves, x)
    return ar.markdown(curves, drawn == "drawn")
