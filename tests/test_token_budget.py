"""`bestofn report BEST_OF_N_RUN --search-runs RUN ...`: runs against best-of-N and majority at
equal generated tokens, checked against a plain reference computed here (first k samples,
`question_outcomes` on each, mean tokens, a loop for the budget)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from bestofn.cli import main
from bestofn.evaluation.evaluate import question_outcomes
from bestofn.evaluation.intervals import intervals
from bestofn.evaluation.token_budget import Run, compare
from bestofn.testing.items import random_items
from bestofn.text.records import Item

N, Q, B = 8, 40, 200
METHODS = ["prm_min", "majority"]


def best_of_n_items():
    return random_items(11, Q, N, gold_rate=(0.3, 0.5, 0.8), tokens=True, unscored_rate=0.0)


def search_items(items, keep, spend, strategy="beam:width=2,agg=final"):
    """A search run over the same questions: each question's first `keep` samples finished,
    `spend` times its N samples' tokens generated (pruned candidates count too)."""
    out = []
    for it in items:
        total = sum(s.meta["tokens"] for s in it.solutions)
        out.append(Item(it.question, it.solutions[:keep], prm=it.prm[:keep],
                        compute={"samples_drawn": keep, "tokens_generated": int(spend * total)},
                        search={"strategy": strategy, "steps": [{"step": 0, "live": N}]}))
    return out


def write_run(folder, items):
    folder.mkdir(parents=True)
    (folder / "results.jsonl").write_text("".join(json.dumps(it.to_dict()) + "\n"
                                                  for it in items))
    (folder / "config.json").write_text(json.dumps({"seed": 3}))
    return folder


def reference_curve(items, seed):
    """Per k: mean tokens of the first k samples, and each method's correctness rows."""
    out = []
    for k in range(1, N + 1):
        rows = [question_outcomes(Item(it.question, it.solutions[:k], prm=it.prm[:k]),
                                  seed=seed) for it in items]
        tokens = np.mean([sum(s.meta["tokens"] for s in it.solutions[:k]) for it in items])
        out.append((k, tokens, np.array([[r[m] for m in METHODS] for r in rows])))
    return out


def test_curve_points_and_budgets_equal_the_reference():
    bon = best_of_n_items()
    runs = [search_items(bon, 3, 0.4), search_items(bon, 8, 1.5, "reject:alpha=0.5"),
            search_items(bon, 2, 0.01)]
    got = compare(Run("bon", bon), [Run(f"s{i}", r) for i, r in enumerate(runs)], seed=3, b=B)
    ref = reference_curve(bon, 3)
    curve = got["best_of_n"]["curve"]
    assert [p["k"] for p in curve] == list(range(1, N + 1)) and got["best_of_n"]["n"] == N
    for p, (_, tokens, rows) in zip(curve, ref, strict=True):
        assert p["mean_tokens"] == pytest.approx(tokens, abs=1e-6)
        est = intervals(METHODS, rows, seed=3, b=B)
        for j, m in enumerate(METHODS):
            assert p[m]["accuracy"] == pytest.approx(rows[:, j].mean(), abs=1e-6)
            assert (p[m]["lo"], p[m]["hi"]) == pytest.approx((est[m].lo, est[m].hi), abs=1e-6)
    xs = [t for _, t, _ in ref]
    for run, point in zip(runs, got["runs"], strict=True):
        budget = np.mean([it.compute["tokens_generated"] for it in run])
        assert point["mean_tokens"] == pytest.approx(budget, abs=1e-6)
        assert point["strategy"] == run[0].search["strategy"] and point["n"] == N
        for m in METHODS:
            want = np.mean([question_outcomes(it, seed=3)[m] for it in run])
            assert point[m]["accuracy"] == pytest.approx(want, abs=1e-6)
        at = point["best_of_n_at_budget"]
        within = [k for k, t, _ in ref if t <= budget]
        assert at["k"] == (within[-1] if within else None)
        assert at["beyond_curve"] == (budget > xs[-1])
        for j, m in enumerate(METHODS):
            if within:
                assert at[m]["accuracy"] == pytest.approx(ref[within[-1] - 1][2][:, j].mean())
            if xs[0] <= budget <= xs[-1]:
                k = max(within[-1], 1)
                lo, hi = ref[k - 1], ref[min(k, N - 1)]
                y0, y1 = lo[2][:, j].mean(), hi[2][:, j].mean()
                frac = 0.0 if hi[1] == lo[1] else (budget - lo[1]) / (hi[1] - lo[1])
                assert at[m]["interpolated"] == pytest.approx(y0 + frac * (y1 - y0), abs=1e-5)
            else:
                assert at[m]["interpolated"] is None
    # the three runs land inside, past and below the curve
    assert got["runs"][0]["best_of_n_at_budget"]["k"] not in (None, N)
    assert got["runs"][1]["best_of_n_at_budget"]["beyond_curve"]
    assert got["runs"][2]["best_of_n_at_budget"]["k"] is None


def test_report_command_writes_the_section_with_the_reports_intervals(tmp_path):
    bon = best_of_n_items()
    a = write_run(tmp_path / "bon", bon)
    s = write_run(tmp_path / "beam", search_items(bon, 4, 0.5))
    assert main(["report", str(s), "--bootstrap", str(B), "--draws", "4", "--no-plot"]) == 0
    assert main(["report", str(a), "--search-runs", str(s), "--bootstrap", str(B),
                 "--draws", "4", "--no-plot"]) == 0
    rep = json.loads((a / "report.json").read_text())
    sec, own = rep["search_vs_best_of_n"], json.loads((s / "report.json").read_text())
    [point] = sec["runs"]
    for m in METHODS:  # a run's point is its own report's accuracy and interval
        assert point[m]["accuracy"] == pytest.approx(own["accuracy"][m], abs=1e-6)
        assert [point[m]["lo"], point[m]["hi"]] == pytest.approx(own["ci"][m], abs=1e-6)
        last = sec["best_of_n"]["curve"][-1][m]  # k = N: the best-of-N run's own numbers
        assert last["accuracy"] == pytest.approx(rep["accuracy"][m], abs=1e-6)
        assert [last["lo"], last["hi"]] == pytest.approx(rep["ci"][m], abs=1e-6)
    assert point["run"] == str(s) and point["strategy"] == "beam:width=2,agg=final"
    md = (a / "report.md").read_text()
    assert "## Search vs best-of-N at equal generated tokens" in md and str(s) in md


def test_runs_over_other_questions_are_refused_before_anything_is_written(tmp_path, capsys):
    bon = best_of_n_items()
    a = write_run(tmp_path / "bon", bon)
    other = search_items(bon[:-1], 3, 0.5)
    other.append(replace(other[0], question=replace(bon[-1].question, id="elsewhere")))
    s = write_run(tmp_path / "other", other)
    assert main(["report", str(a), "--search-runs", str(s), "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert str(s) in err and "not the 40 questions" in err and "'elsewhere'" in err
    assert not (a / "report.json").exists()
    with pytest.raises(ValueError, match="a search run"):
        compare(Run("beam", search_items(bon, 3, 0.5)), [Run("bon", bon)])
    with pytest.raises(ValueError, match="meta.tokens"):
        untimed = [replace(it, solutions=[replace(x, meta={}) for x in it.solutions])
                   for it in bon]
        compare(Run("untimed", untimed), [Run("s", search_items(bon, 3, 0.5))])
