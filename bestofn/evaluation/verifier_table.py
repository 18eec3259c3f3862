"""Several labelled files, one table, as ProcessBench reports a verifier (Zheng et al. 2024,
§4.1): each file's accuracies and F1 at the fixed threshold, the threshold of best F1 on one
file (GSM8K in the paper) applied to every file, and the unweighted mean of the files' F1.

The mean is undefined (None) when any file's F1 is (a file with no erroneous or no correct
solution): a mean over fewer files would not be the paper's number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .labels import LabelledSolution
from .verifier_eval import VerifierEval, evaluate_steps, format_report, label_summary


@dataclass
class InputEval:
    """One file's metrics and its F1 at the calibrated threshold (None: not calibrated)."""

    input: str
    ev: VerifierEval
    f1_calibrated: float | None = None


@dataclass
class EvalTable:
    rows: list[InputEval]
    calibrated_threshold: float | None = None
    calibrated_on: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mean_f1(self) -> float | None:
        return unweighted_mean([r.ev.values.get("processbench_f1") for r in self.rows])

    @property
    def mean_f1_calibrated(self) -> float | None:
        if self.calibrated_on is None:
            return None
        return unweighted_mean([r.f1_calibrated for r in self.rows])

    def to_json(self) -> dict[str, Any]:
        """One input: its own keys (plus the calibrated ones when calibrated); several:
        `inputs`, `mean_f1`, `mean_f1_calibrated`, `calibrated_threshold`, `calibrated_on`."""
        calib = {"calibrated_threshold": self.calibrated_threshold,
                 "calibrated_on": self.calibrated_on}
        if len(self.rows) == 1:
            r = self.rows[0]
            extra = ({"processbench_f1_calibrated": r.f1_calibrated, **calib}
                     if self.calibrated_on else {})
            return {**r.ev.to_json(), **extra}
        return {"inputs": [{"input": r.input, **r.ev.to_json(),
                            "processbench_f1_calibrated": r.f1_calibrated} for r in self.rows],
                "mean_f1": self.mean_f1, "mean_f1_calibrated": self.mean_f1_calibrated,
                **calib}


def unweighted_mean(values: Sequence[float | None]) -> float | None:
    """The plain mean of the values; None when there are none or any is None."""
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def calibration_threshold(sols: Sequence[LabelledSolution], name: str) -> tuple[float, float]:
    """The threshold of best ProcessBench F1 on `sols` (the smallest on a tie), and that F1."""
    ev = evaluate_steps(sols, b=0)
    if ev.best_threshold is None or ev.best_f1 is None:
        raise ValueError(f"cannot calibrate on {name}: it needs scored solutions both with and "
                         f"without a wrong step (has {ev.n_erroneous} erroneous, "
                         f"{ev.n_correct} correct)")
    return ev.best_threshold, ev.best_f1


def calibrate(table: EvalTable, inputs: Sequence[Sequence[LabelledSolution]],
              calib: Sequence[LabelledSolution], name: str) -> EvalTable:
    """Choose the threshold on `calib` and fill every row's F1 at it."""
    t, _ = calibration_threshold(calib, name)
    table.calibrated_threshold, table.calibrated_on = t, name
    for row, sols in zip(table.rows, inputs, strict=True):
        row.f1_calibrated = evaluate_steps(sols, threshold=t, b=0).values["processbench_f1"]
    return table


def format_table(table: EvalTable) -> str:
    """One input: the single-file report; several: one row per file and the mean."""
    t = table.calibrated_threshold
    if len(table.rows) == 1:
        text = format_report(table.rows[0].ev)
        if t is not None:
            text += (f"\ncalibrated threshold {t:.4g} (best F1 on {table.calibrated_on}): "
                     f"F1 {_num(table.rows[0].f1_calibrated)}")
        return "\n".join([text, *table.notes])
    first = table.rows[0].ev
    critic = first.critic is not None
    head = (f"F1 @{first.threshold:g} [95% CI]" if not critic else "F1 [95% CI]")
    cal = f"F1 @{t:.4g}" if t is not None else "F1 calibrated"
    lines = ["ProcessBench per input (percent; " + (
        "critic protocol" if critic else f"threshold {first.threshold:g}") + (
        f"; calibrated threshold {t:.4g} = best F1 on {table.calibrated_on}" if t is not None
        else "; no --calibrate-on") + ")",
        f"| input | solutions (err / correct) | acc err | acc correct | {head} | {cal} | "
        "step AUROC | unscored | step labels |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for r in table.rows:
        v, ci = r.ev.values, r.ev.intervals.get("processbench_f1")
        band = f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""
        lines.append(f"| {r.input} | {r.ev.n} ({r.ev.n_erroneous} / {r.ev.n_correct}) | "
                     f"{_num(v['acc_erroneous'])} | {_num(v['acc_correct'])} | "
                     f"{_num(v['processbench_f1'])}{band} | {_num(r.f1_calibrated)} | "
                     f"{_num(v['step_auroc'], 3)} | {r.ev.n_unscored}"
                     f"{_unparsed(r.ev)} | {label_summary(r.ev.labels)} |")
    lines.append(f"| mean of {len(table.rows)} (unweighted) | | | | {_num(table.mean_f1)} | "
                 f"{_num(table.mean_f1_calibrated)} | | | |")
    return "\n".join([*lines, *table.notes])


def _unparsed(ev: VerifierEval) -> str:
    return f" (+{ev.critic['unparsed']} unparsable)" if ev.critic else ""


def _num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"
