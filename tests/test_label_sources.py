"""Each step-label source of Med-PRM's training data on constructed records, against what Med-PRM's
training script makes of them (written out by hand here), and through `verifier-eval --labels`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bestofn.cli import main
from bestofn.evaluation.label_sources import LabelChoice
from bestofn.evaluation.labels import read_labelled

RECORD = {"question": "Q", "steps": ["a", "b", "c", "d", "e"],
          "prm_gemini_label": [1, 1, 0, 1, 1],
          "prm_llama_label": [1, 1, 1, 1, 0],
          "prm_hard_label": [1, 0, 1, 1, 1],
          "prm_soft_label": [0.9, 0.45, 0.6, 0.2, 1.0]}

EXPECTED = {
    # source: (per-step labels, first error)
    "gemini": ([1, 1, 0, 0, 0], 2),  # Med-PRM's process_gemini_label: 0 from the first 0 on
    "llama": ([1, 1, 1, 1, 0], 4),
    "hard": ([1, 0, 1, 1, 1], 1),  # Monte-Carlo labels as given
    "soft": ([1, 0, 1, 0, 1], 1),  # below 0.5 is wrong
}


def write(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_each_source(tmp_path: Path, source: str) -> None:
    (s,) = read_labelled(write(tmp_path / "m.jsonl", RECORD), LabelChoice(source))
    assert (s.hard, s.first_error, s.label_source) == (*EXPECTED[source], source)
    assert s.soft == RECORD["prm_soft_label"]  # soft labels stay the calibration target


def test_auto_is_gemini_where_present_else_hard(tmp_path: Path) -> None:
    no_gemini = {k: v for k, v in RECORD.items() if k != "prm_gemini_label"}
    sols = read_labelled(write(tmp_path / "m.jsonl", RECORD, no_gemini))
    assert [(s.first_error, s.label_source) for s in sols] == [(2, "gemini"), (1, "hard")]


def test_soft_cut(tmp_path: Path) -> None:
    f = write(tmp_path / "m.jsonl", RECORD)
    (s,) = read_labelled(f, LabelChoice("soft", soft_cut=0.3))
    assert s.hard == [1, 1, 1, 0, 1] and s.first_error == 3
    (s,) = read_labelled(f, LabelChoice("soft", soft_cut=0.95))
    assert s.hard == [0, 0, 0, 0, 1] and s.first_error == 0
    with pytest.raises(ValueError, match="soft cut"):
        LabelChoice("soft", soft_cut=0.0)
    with pytest.raises(ValueError, match="known: auto"):
        LabelChoice("mc")


def test_processbench_records_keep_their_label(tmp_path: Path) -> None:
    f = write(tmp_path / "pb.jsonl", {"steps": ["a", "b", "c"], "label": 1})
    for source in ("auto", "gemini", "soft"):
        (s,) = read_labelled(f, LabelChoice(source))
        assert (s.hard, s.first_error, s.label_source) == ([1, 0, None], 1, "label")


def test_missing_requested_source_names_the_field(tmp_path: Path, capsys) -> None:
    rec = {k: v for k, v in RECORD.items() if k != "prm_llama_label"}
    f = write(tmp_path / "m.jsonl", RECORD, rec)
    assert main(["verifier-eval", "--input", str(f), "--labels", "llama"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{f}: line 2: field 'prm_llama_label': missing (--labels llama)" in err, err
    bad = write(tmp_path / "b.jsonl", {**RECORD, "prm_gemini_label": [1, 1, 2, 1, 1]})
    assert main(["verifier-eval", "--input", str(bad)]) == 2
    assert "line 1: field 'prm_gemini_label': expected a list of 5 labels 0/1" in \
        capsys.readouterr().err


def test_command_reports_the_source_and_its_metrics(tmp_path: Path, capsys) -> None:
    """Scores that find exactly the Gemini first error: F1 100 with gemini labels, and the
    matching errors counted against each other source."""
    scores = [0.9, 0.8, 0.1, 0.9, 0.9]  # predicted first error 2 at 0.5
    correct = {"question": "Q2", "steps": ["x", "y"], "prm_gemini_label": [1, 1],
               "prm_llama_label": [1, 1], "prm_hard_label": [1, 1],
               "prm_soft_label": [0.8, 0.9], "PRM_score_list": [0.9, 0.9]}
    f = write(tmp_path / "m.jsonl", {**RECORD, "PRM_score_list": scores}, correct)
    got = {}
    for source in ("auto", "gemini", "llama", "hard", "soft"):
        assert main(["verifier-eval", "--input", str(f), "--labels", source, "--bootstrap",
                     "0", "--json"]) == 0
        got[source] = json.loads(capsys.readouterr().out)
    assert got["auto"]["labels"] == got["gemini"]["labels"] == {"gemini": 2}
    assert got["gemini"]["processbench_f1"] == 100.0
    for source in ("llama", "hard", "soft"):
        assert got[source]["labels"] == {source: 2}
        assert got[source]["acc_erroneous"] == 0.0 and got[source]["acc_correct"] == 100.0
    assert main(["verifier-eval", "--input", str(f), "--bootstrap", "0"]) == 0
    assert "step labels: gemini (2)" in capsys.readouterr().out


def test_converter_keeps_the_source_field(tmp_path: Path, capsys) -> None:
    f = write(tmp_path / "m.jsonl", {**RECORD, "PRM_score_list": [0.5] * 5})
    out = tmp_path / "flat.jsonl"
    assert main(["verifier-eval", "--input", str(f), "--labels", "llama", "--to-labelled",
                 str(out)]) == 0
    capsys.readouterr()
    rec = json.loads(out.read_text())
    assert rec["label"] == 4 and rec["prm_llama_label"] == [1, 1, 1, 1, 0]
    (back,) = read_labelled(out, LabelChoice("llama"))
    assert back.first_error == 4 and back.hard == [1, 1, 1, 1, 0]


def test_labels_survive_the_project_jsonl(tmp_path: Path) -> None:
    """Med-PRM's published JSON -> the project's JSONL (labels in solution meta) -> the same
    sources."""
    from bestofn.text.files import read_items, write_items

    sol = {"solution": "Step 1: a. Step 2: b. Step 3: c. Step 4: d. Step 5: the answer is A",
           "answer": "A", **{k: v for k, v in RECORD.items() if k.startswith("prm_")}}
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"question_id": "1", "question": "Q?", "correct_answer": "A",
                                "solutions": [sol]}]))
    out = tmp_path / "out.jsonl"
    write_items(out, read_items(src))
    for source in sorted(EXPECTED):
        (s,) = read_labelled(out, LabelChoice(source))
        assert (s.hard, s.first_error) == EXPECTED[source], source
