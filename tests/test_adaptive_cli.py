"""`evaluate --adaptive` and the report's accuracy-vs-mean-samples section, against the library's
replay; bad specs and unscored files are refused with the problem named."""

from __future__ import annotations

import json

import pytest

from bestofn.adaptive import parse_rule
from bestofn.cli import main
from bestofn.evaluation.adaptive_replay import replay
from bestofn.testing.items import random_items
from bestofn.text.files import read_items, write_items
from bestofn.text.records import Item


def make_items(seed: int, scored: bool = True) -> list[Item]:
    return random_items(seed, 30, 12, gold_rate=(0.9, 0.6, 0.3), steps=(1, 1),
                        unscored_rate=0.0, tokens=True, prm=scored)


@pytest.fixture
def scored(tmp_path):
    path = tmp_path / "scored.jsonl"
    write_items(path, make_items(1))
    return path


@pytest.mark.parametrize("spec", ["beta", "esc:w=3", "prm:eps=0.1", "dirichlet:eps=0.1"])
def test_evaluate_adaptive_equals_the_library_replay(scored, capsys, spec):
    assert main(["evaluate", "--input", str(scored), "--adaptive", spec, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = replay(read_items(scored), parse_rule(spec)).to_json()
    for k in ("adaptive_majority", "adaptive_weighted_min", "adaptive_mean_samples",
              "adaptive_n_max"):
        assert got[k] == pytest.approx(want[k]), k
    assert got["adaptive_mean_samples"] <= 12 and "majority" in got


def test_draws_are_deterministic_and_change_with_the_seed(scored, capsys):
    def once(*extra: str) -> dict:
        assert main(["evaluate", "--input", str(scored), "--adaptive", "beta", "--draws", "5",
                     "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    a, b, c = once(), once(), once("--seed", "7")
    assert a == b and a["adaptive_draws"] == 5
    assert a["adaptive_mean_samples"] != c["adaptive_mean_samples"]


def test_table_shows_fixed_and_adaptive(scored, capsys):
    assert main(["evaluate", "--input", str(scored), "--adaptive", "beta"]) == 0
    out = capsys.readouterr().out
    assert "adaptive beta" in out and "fixed N" in out and "samples per question" in out


@pytest.mark.parametrize("argv, message", [
    (["--adaptive", "nope"], "unknown stopping rule"),
    (["--adaptive", "beta:eps=x"], "must be a number"),
    (["--adaptive", "beta:foo=1"], "unknown parameter 'foo'"),
    (["--adaptive", "beta:min_n=9,max_n=4"], "max_n"),
    (["--draws", "3"], "--draws needs --adaptive"),
])
def test_bad_specs_are_refused(scored, capsys, argv, message):
    assert main(["evaluate", "--input", str(scored), *argv]) == 2
    assert message in capsys.readouterr().err


def test_prm_rule_on_an_unscored_file_is_refused(tmp_path, capsys):
    path = tmp_path / "plain.jsonl"
    write_items(path, make_items(2, scored=False))
    assert main(["evaluate", "--input", str(path), "--adaptive", "prm"]) == 2
    assert "score" in capsys.readouterr().err.lower()
    assert main(["evaluate", "--input", str(path), "--adaptive", "beta", "--json"]) == 0


def test_report_plots_accuracy_vs_mean_samples(scored, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(scored), "--out", str(out), "--bootstrap", "50", "--draws", "4",
                 "--adaptive", "beta,esc"]) == 0
    rep = json.loads((out / "report.json").read_text())
    curves = rep["adaptive_curves"]
    assert {c["rule"] for c in curves["rules"]} == {"beta", "esc"}
    assert curves["fixed"][-1]["mean_samples"] == 12
    for c in curves["rules"]:
        assert all(p["mean_samples"] <= 12 for p in c["points"])
        assert all(p["lo"] <= p["accuracy"] <= p["hi"] for p in c["points"])
    assert (out / "accuracy_vs_samples.png").read_bytes()[:4] == b"\x89PNG"
    assert "Accuracy vs mean samples" in (out / "report.md").read_text()
