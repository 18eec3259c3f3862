"""Bad input found by trying the CLI as a new user would: each one is refused in one line
naming the file, line and field (or warned about), and nothing is left behind."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bestofn.cli import main
from bestofn.testing.fuzzing import assert_one_line_error
from bestofn.testing.serving import start_cli_server
from bestofn.text.datasets import load_questions
from bestofn.text.records import Item, Question, Solution

OPTIONS = {"A": "aspirin", "B": "heparin"}


def solution(text: str, **scores) -> dict:
    return {"solution": text, "answer": text[-3], **scores}


def medprm(path: Path, sols: list[dict], gold: str = "A") -> Path:
    path.write_text(json.dumps([{"question_id": "q1", "question": "Which?\n\n(A) aspirin\n"
                                 "(B) heparin", "correct_answer": gold, "solutions": sols}]))
    return path


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def test_unknown_policy_backend_is_refused_before_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--policy-backend", "bogus"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--policy-backend", "bogus",
                          "known: hf, openai, replay, vllm")
    assert not out.exists()


@pytest.mark.parametrize("argv, words", [
    (["--prm-backend", "prm-nope"], ["--prm-backend", "known:"]),
    (["--orm", "x/y", "--orm-backend", "orm-nope"], ["--orm-backend", "known:"]),
    (["--policy", "/no/such/policy", "--policy-backend", "hf"], ["--policy", "no such"]),
    (["--prm", "./no/such/prm"], ["--prm", "no such"]),
    (["--policy-backend", "replay", "--policy", "missing.jsonl"], ["--policy", "missing"]),
    (["--policy-backend", "openai", "--lora", "adapter"], ["--lora"]),
    (["--index", "/no/such/index"], ["--index", "no such"]),
])
def test_other_run_inputs_are_checked_before_the_run_folder(tmp_path, capsys, argv, words):
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), *argv]) == 2
    assert_one_line_error(capsys.readouterr().err, *words)
    assert not out.exists()


def test_a_score_field_that_is_not_a_number_is_refused(tmp_path, capsys):
    bad = medprm(tmp_path / "bad.json", [
        solution("Step 1: x. (A).", PRM_min_score="high", PRM_score=0.5, PRM_score_list=[0.5]),
        solution("Step 1: y. (B).", PRM_min_score=0.3, PRM_score=0.3, PRM_score_list=[0.3])])
    assert main(["evaluate", "--input", str(bad)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(bad), "record 0",
                          "solutions[0].PRM_min_score", "'high'")


def test_published_unscored_markers_are_accepted(tmp_path, capsys):
    """-Infinity (what the published scorer writes) and null both mean unscored."""
    ok = medprm(tmp_path / "ok.json", [
        solution("Step 1: x. (A).", PRM_min_score=float("-inf"), PRM_score=float("-inf"),
                 PRM_score_list=[0.5]),
        solution("Step 1: y. (B).", PRM_min_score=None, PRM_score=None, PRM_score_list=[]),
        solution("Step 1: z. (A).", PRM_min_score=0.9, PRM_score=0.9, PRM_score_list=[0.9])])
    assert "-Infinity" in ok.read_text()
    assert main(["evaluate", "--input", str(ok), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["n_unscored"] == 2 and got["prm_min"] == 1.0


@pytest.mark.parametrize("name, text", [("empty.jsonl", ""), ("blank.jsonl", "\n \n"),
                                        ("empty.json", "[]")])
def test_an_empty_file_says_it_holds_no_questions(tmp_path, capsys, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert main(["evaluate", "--input", str(path)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(path), "holds no questions")
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--dataset", str(path), "--policy-backend",
                 "replay", "--policy", str(path), "--prm", "none", "--no-ray"]) == 2
    # a .json question file is a MIRAGE benchmark: an object of datasets, not a list
    assert_one_line_error(capsys.readouterr().err, str(path),
                          "expected a JSON object" if text == "[]" else "holds no questions")
    assert not out.exists()


def test_a_gold_answer_outside_the_options_is_warned_about(tmp_path, capsys):
    q = Question(id="q7", stem="Which?", options=OPTIONS, answer="E")
    item = Item(q, [Solution.from_text("Step 1: so (A).", OPTIONS)])
    path = tmp_path / "in.jsonl"
    good = Item(Question(id="q8", stem="Which?", options=OPTIONS, answer="B"),
                item.solutions)
    path.write_text(json.dumps(good.to_dict()) + "\n" + json.dumps(item.to_dict()) + "\n")
    assert main(["evaluate", "--input", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    [warning] = captured.err.strip().splitlines()
    for word in (str(path), "line 2 (question_id=q7)", "question.answer", "'E'", "warning"):
        assert word in warning, (word, warning)
    assert json.loads(captured.out)["n_questions"] == 2
    mp = medprm(tmp_path / "mp.json", [solution("Step 1: x. (A).")], gold="Z")
    assert main(["evaluate", "--input", str(mp)]) == 0
    [warning] = capsys.readouterr().err.strip().splitlines()
    assert "record 0 (question_id=q1): field 'correct_answer'" in warning


def test_score_refusing_a_missing_model_leaves_nothing(tmp_path, capsys):
    src = medprm(tmp_path / "in.json", [solution("Step 1: x. (A).")])
    before = files_under(tmp_path)
    out = tmp_path / "new" / "deeper" / "out.json"
    assert main(["score", "--input", str(src), "--prm", "/no/such/folder", "--output",
                 str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err, "/no/such/folder")
    assert files_under(tmp_path) == before


def stop_serve(proc) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    return out, err


def replay_file(path: Path) -> tuple[Path, str]:
    from bestofn.serve import question_id

    stem = "Which drug thins the blood?"
    q = Question(id=question_id(stem, OPTIONS), stem=stem, options=OPTIONS)
    sols = [Solution.from_text(f"Step 1: think {i}. The answer is (B).", OPTIONS, tokens=4)
            for i in range(4)]
    path.write_text(json.dumps(Item(q, sols).to_dict()) + "\n")
    return path, stem + "\n" + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items())


def check_server_terminal(out: str, err: str, requests: int) -> None:
    """The server's own lines: where it listens, what it serves, its limits, the log file,
    then one access line per request, and nothing else."""
    assert out == ""
    lines = err.strip().splitlines()
    own = [x for x in lines if x.startswith("bestofn serve: ")]
    assert "listening on http://127.0.0.1:" in own[0] and "limits: n" in own[2]
    assert own[-1] == "bestofn serve: engine logs: serve.engine.log"
    access = lines[len(own):]
    assert access[0].endswith('"GET /health HTTP/1.1" 200'), access  # start_cli_server's probe
    assert len(access) == 1 + requests and all(
        '"POST /v1/chat/completions HTTP/1.1" ' in x for x in access[1:]), access


@pytest.mark.slow  # starts the server process
def test_serve_prints_its_own_lines_and_one_per_request(tmp_path):
    path, prompt = replay_file(tmp_path / "replay.jsonl")
    proc, url = start_cli_server(tmp_path, ["--policy-backend", "replay", "--policy", str(path),
                                       "--prm", "none", "--method", "majority", "-n", "4"])
    try:
        good = httpx.post(url + "/v1/chat/completions", timeout=60,
                          json={"messages": [{"role": "user", "content": prompt}]})
        bad = httpx.post(url + "/v1/chat/completions", json={"messages": 5})
    finally:
        out, err = stop_serve(proc)
    assert good.json()["bestofn"]["answer"] == "B" and bad.status_code == 400
    check_server_terminal(out, err, requests=2)
    assert (tmp_path / "serve.engine.log").exists()


@pytest.mark.slow
def test_serve_keeps_vllm_start_up_logs_in_the_file(tmp_path, tiny_llama_split):
    pytest.importorskip("vllm")
    proc, url = start_cli_server(tmp_path, ["--policy", str(tiny_llama_split), "--policy-backend",
                                       "vllm", "--prm", "none", "--method", "majority", "-n",
                                       "2", "--max-tokens", "8", "--max-model-len", "512",
                                       "--kv-cache-gb", "0.5", "--device", "cpu"], timeout=300)
    try:
        r = httpx.post(url + "/v1/chat/completions", timeout=120,
                       json={"messages": [{"role": "user", "content": "Which?\nA. x\nB. y"}]})
    finally:
        out, err = stop_serve(proc)
    assert r.status_code == 200
    check_server_terminal(out, err, requests=1)
    log = (tmp_path / "serve.engine.log").read_text()
    assert "vllm" in log.lower() and log.count("\n") > 10


def test_question_file_readers_agree_on_empty(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n")
    with pytest.raises(ValueError, match="holds no questions"):
        load_questions(str(path))
