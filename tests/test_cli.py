"""`bestofn score` + `bestofn evaluate` on a small Med-PRM-format file, through the real CLI."""

from __future__ import annotations

import json
import random

import pytest

from bestofn.cli import main
from bestofn.evaluation.evaluate import evaluate
from bestofn.scorers.prm_files import scorer_fingerprint
from bestofn.scorers.prm_hf import HFPRMScorer
from bestofn.testing.references import published_scores
from bestofn.testing.samples import medprm_file
from bestofn.text.files import read_items


def test_score_then_evaluate_round_trip(tmp_path, tiny_llama_special, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, out = tmp_path / "in.json", tmp_path / "out.json"
    recs = medprm_file(src, random.Random(0))
    assert main(["score", "--input", str(src), "--prm", str(tiny_llama_special), "--output",
                 str(out), "--device", "cpu", "--batch-size", "3"]) == 0
    scored = json.loads(out.read_text())
    assert [r["question_id"] for r in scored] == [r["question_id"] for r in recs]
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_special).eval()
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)
    for rec in scored:
        for sol in rec["solutions"]:
            assert {"PRM_min_score", "PRM_score", "PRM_score_list", "score"} <= set(sol)
            ref = published_scores(model, tok, rec["question"], sol["prm_processed_solution"],
                                   rec["related_docs"])
            assert sol["PRM_score_list"] == pytest.approx(ref, abs=1e-5)
            assert sol["PRM_min_score"] == min(sol["PRM_score_list"])
            assert sol["PRM_score"] == sol["PRM_score_list"][-1]
    assert not (tmp_path / "out.json.partial.jsonl").exists()

    capsys.readouterr()
    assert main(["evaluate", "--input", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = evaluate(read_items(out)).to_json()
    assert got == want
    assert {"majority", "prm_min", "prm_final", "weighted_min", "weighted_final", "oracle",
            "single", "n_questions"} <= set(got)
    assert got["n_questions"] == 3 and got["oracle"] >= got["prm_min"]


def test_score_no_docs_and_solution_limit(tmp_path, tiny_llama_special):
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    medprm_file(src, random.Random(1))
    assert main(["score", "--input", str(src), "--prm", str(tiny_llama_special), "--output",
                 str(out), "--no-docs", "--solutions", "2", "--device", "cpu"]) == 0
    assert all(len(r["solutions"]) == 2 for r in json.loads(out.read_text()))


def test_score_resumes_from_its_progress_file(tmp_path, tiny_llama_special):
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    medprm_file(src, random.Random(2))
    args = ["score", "--input", str(src), "--prm", str(tiny_llama_special), "--output", str(out),
            "--device", "cpu"]
    assert main(args) == 0
    full = json.loads(out.read_text())
    # a previous run that stopped after question 0, with a torn second line
    partial = tmp_path / "out.json.partial.jsonl"
    fp = scorer_fingerprint(HFPRMScorer(str(tiny_llama_special), device="cpu"), True, None)
    first = {"index": 0, "id": "q0", "prm": [
        {"probs": [0.123] * len(s["PRM_score_list"]), "reason": None}
        for s in full[0]["solutions"]]}
    header = json.dumps({"config": fp}) + "\n"
    partial.write_text(header + json.dumps(first) + '\n{"index": 1, "id": "q1", "prm": [{"pro')
    out.unlink()
    assert main(args) == 0
    resumed = json.loads(out.read_text())
    assert resumed[1:] == full[1:], "questions after the saved one are scored again"
    assert resumed[0]["solutions"][0]["PRM_score_list"][0] == 0.123, "saved progress is reused"

    # progress saved under another config is refused, not mixed in
    other = dict(fp, use_docs=False)
    partial.write_text(json.dumps({"config": other}) + "\n" + json.dumps(first) + "\n")
    assert main(args) == 2
    assert partial.exists()


def test_bad_input_exits_2_and_names_the_record(tmp_path, tiny_llama_special, capsys):
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"question_id": "z9", "question": "x", "solutions": []}]))
    assert main(["score", "--input", str(src), "--prm", str(tiny_llama_special), "--output",
                 str(tmp_path / "o.json"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "record 0 (question_id=z9)" in err and "'solutions'" in err
