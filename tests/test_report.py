"""Report files: content against evaluate/stats, determinism, per-source sums, the CLI."""

from __future__ import annotations

import csv
import json

import pytest

from bestofn.cli import main
from bestofn.evaluation.evaluate import evaluate
from bestofn.report import write_report
from bestofn.testing.items import random_items
from bestofn.text.records import Item

CONFIG = {"dataset": "mirage", "policy": "pol", "prm": "prm-model", "n": 6, "seed": 3,
          "use_docs": True}
SOURCES = ["medqa", "medmcqa", "pubmedqa"]


def make_items(seed: int, q: int = 24, n: int = 6) -> list[Item]:
    return random_items(seed, q, n, letters="ABC", none_rate=0.25, steps=(2, 2), orm=True,
                        sources=SOURCES)


def test_report_files_and_content(tmp_path):
    items = make_items(0)
    items[5].question.answer = None
    fails = [{"question_id": "q99", "stage": "scorer", "error": "RuntimeError: oom",
              "attempts": 3}]
    rep = write_report(tmp_path, items, CONFIG, seed=3, failures=fails, bootstrap=300, draws=50)
    assert json.loads((tmp_path / "report.json").read_text()) == rep
    ev = evaluate(items, seed=3)
    assert rep["accuracy"] == ev.accuracy and "orm_weighted" in rep["accuracy"]
    for key, v in ev.to_json().items():
        assert rep["accuracy"][key] == v if key in ev.accuracy else rep[key] == v
    assert rep["counts"] == {"questions": 24, "graded": 23, "ungraded": 1, "solutions": 138,
                             "unscored": ev.n_unscored, "no_answer": ev.n_no_answer,
                             "orm_unscored": 0, "failed": 1}
    assert rep["settings"] == {"dataset": "mirage", "policy": "pol", "prm": "prm-model",
                               "orm": None, "n": 6, "seed": 3, "documents": True}
    for m, v in rep["accuracy"].items():
        lo, hi = rep["ci"][m]
        assert lo <= v <= hi
    curves = rep["curves"]
    assert curves["ns"] == [1, 2, 4, 6] and curves["draws"] == 50
    for m, v in rep["accuracy"].items():
        c = curves["methods"][m]
        assert c["mean"][-1] == pytest.approx(v, abs=1e-6) == c["lo"][-1] == c["hi"][-1]
        assert all(lo <= x <= hi for lo, x, hi in zip(c["lo"], c["mean"], c["hi"], strict=True))
    md = (tmp_path / "report.md").read_text()
    for text in ("Majority vote", "95% CI", "## By source", "| medmcqa | 8 |", "N=4",
                 "![accuracy vs N](accuracy_vs_n.png)", "q99", "RuntimeError: oom",
                 "`prm-model`", "| documents in the verifier prompt | `yes` |"):
        assert text in md, text
    png = (tmp_path / "accuracy_vs_n.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    from matplotlib.image import imread

    assert imread(tmp_path / "accuracy_vs_n.png").shape[0] > 200
    rows = list(csv.DictReader((tmp_path / "accuracy_vs_n.csv").open()))
    assert len(rows) == len(curves["methods"]) * 4
    first = next(r for r in rows if r["method"] == "prm_min" and r["n"] == "2")
    assert float(first["mean"]) == curves["methods"]["prm_min"]["mean"][1]


def test_per_source_breakdown_sums_to_the_total(tmp_path):
    items = make_items(1, q=31)
    rep = write_report(tmp_path, items, CONFIG, seed=0, bootstrap=100, draws=10)
    src = rep["by_source"]
    assert list(src) == sorted(SOURCES)
    assert sum(s["n_questions"] for s in src.values()) == rep["n_questions"] == 31
    pubmedqa = [it for it in items if it.question.source == "pubmedqa"]
    assert src["pubmedqa"]["accuracy"] == evaluate(pubmedqa).accuracy
    for m, v in rep["accuracy"].items():
        total = sum(s["accuracy"][m] * s["n_questions"] for s in src.values())
        assert total == pytest.approx(v * 31, abs=1e-9), m
        for s in src.values():
            lo, hi = s["ci"][m]
            assert lo <= s["accuracy"][m] <= hi


def test_report_json_is_deterministic(tmp_path):
    items = make_items(2)
    for name in ("a", "b"):
        write_report(tmp_path / name, items, CONFIG, seed=5, bootstrap=200, draws=30, plot=False)
    first = (tmp_path / "a" / "report.json").read_bytes()
    assert first == (tmp_path / "b" / "report.json").read_bytes()
    assert (tmp_path / "a" / "accuracy_vs_n.csv").read_bytes() == \
        (tmp_path / "b" / "accuracy_vs_n.csv").read_bytes()
    write_report(tmp_path / "c", items, CONFIG, seed=6, bootstrap=200, draws=30, plot=False)
    assert (tmp_path / "c" / "report.json").read_bytes() != first


def test_report_without_graded_questions_or_plot(tmp_path):
    items = make_items(3, q=2)
    for it in items:
        it.question.answer = None
    rep = write_report(tmp_path, items, {}, bootstrap=10, draws=5)
    assert rep["accuracy"] == {} and rep["curves"]["ns"] == [] and rep["n_questions"] == 0
    assert "nothing to grade" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "accuracy_vs_n.png").exists()
    write_report(tmp_path / "np", make_items(3, q=4), {}, plot=False, bootstrap=10, draws=5)
    assert not (tmp_path / "np" / "accuracy_vs_n.png").exists()
    assert "## Accuracy vs N" in (tmp_path / "np" / "report.md").read_text()


def test_cli_report_on_run_folder_and_file(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    items = make_items(4)
    (run / "results.jsonl").write_text("".join(json.dumps(it.to_dict()) + "\n" for it in items))
    (run / "config.json").write_text(json.dumps(CONFIG))
    (run / "failures.jsonl").write_text(json.dumps({"question_id": "q7", "stage": "policy",
                                                    "error": "boom", "attempts": 2}) + "\n")
    assert main(["report", str(run), "--bootstrap", "50", "--draws", "8"]) == 0
    rep = json.loads((run / "report.json").read_text())
    assert rep["config"] == CONFIG and rep["counts"]["failed"] == 1
    assert rep["accuracy"] == evaluate(items, seed=3).accuracy  # the run's seed
    assert "Majority vote" in capsys.readouterr().out
    assert main(["report", str(run / "results.jsonl"), "--out", str(tmp_path / "o"),
                 "--seed", "3", "--bootstrap", "50", "--draws", "8", "--no-plot"]) == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text()) == rep
    assert not (tmp_path / "o" / "accuracy_vs_n.png").exists()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
