"""`bestofn run` end to end on tiny models: results, report, resume, config guard."""

from __future__ import annotations

import json

import pytest

from bestofn.cli import main
from bestofn.run import ConfigMismatch, RunConfig, run
from bestofn.testing.reports import strip_timing
from bestofn.text.records import Item


def config(tmp_path, model, **over):
    base = dict(out=str(tmp_path / "run"), questions=2, n=3, policy=str(model), prm=str(model),
                policy_backend="hf", max_tokens=16, device="cpu", min_steps=0, max_steps=0)
    return RunConfig.from_settings(**{**base, **over})


def test_run_writes_results_and_report_and_resumes(tmp_path, tiny_llama_special):
    cfg = config(tmp_path, tiny_llama_special)
    first = run(cfg, progress=False)
    out = tmp_path / "run"
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert all(len(json.loads(x)["solutions"]) == 3 for x in lines)
    assert all(len(json.loads(x)["prm"]) == 3 for x in lines)
    report = json.loads((out / "report.json").read_text())
    assert report["n_questions"] == 2 and "prm_min" in report["accuracy"]
    assert "Majority vote" in (out / "report.md").read_text()

    # a crash mid-write of the second question: torn line, then the same command again
    (out / "results.jsonl").write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    again = run(cfg, progress=False)
    assert again["resumed_questions"] == 1
    # compute too: prm-hf counts each question's PRM tokens apart, whatever it was scored with
    assert (out / "results.jsonl").read_text().splitlines() == lines
    assert strip_timing(json.loads((out / "report.json").read_text())) == strip_timing(report)
    assert again["accuracy"] == first["accuracy"]


def test_changed_config_is_refused_unless_overwrite(tmp_path, tiny_llama_special):
    run(config(tmp_path, tiny_llama_special, questions=1), progress=False)
    with pytest.raises(ConfigMismatch, match="n: 3 -> 2"):
        run(config(tmp_path, tiny_llama_special, questions=1, n=2), progress=False)
    rep = run(config(tmp_path, tiny_llama_special, questions=1, n=2), overwrite=True,
              progress=False)
    assert rep["n_solutions"] == 2


def test_cli_run_majority_only(tmp_path, tiny_llama_special, capfd):
    assert main(["run", "--out", str(tmp_path / "r"), "--questions", "1", "-n", "2",
                 "--policy", str(tiny_llama_special), "--prm", "none", "--max-tokens", "8",
                 "--device", "cpu", "--valid-steps", "off"]) == 0
    assert "Majority vote" in capfd.readouterr().out  # the terminal, not the engine log


def test_run_with_an_index_puts_retrieved_documents_in_the_prm_prompt(tmp_path,
                                                                      tiny_llama_special):
    from bestofn.scorers.prm_hf import HFPRMScorer
    from retrieval import build_index

    corpus = tmp_path / "corpus.jsonl"
    passages = [f"Passage {i} about {w} and its treatment." for i, w in enumerate(
        ["tendon injury", "ethics of disclosure", "renal failure", "pneumonia", "anemia"])]
    corpus.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n"
                              for i, t in enumerate(passages)))
    build_index(corpus, tmp_path / "index", "minilm", progress=False)
    cfg = config(tmp_path, tiny_llama_special, questions=1, n=2, index=str(tmp_path / "index"),
                 k=2, use_docs=True)
    run(cfg, progress=False)
    [line] = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    item = Item.from_dict(json.loads(line))
    docs = [d.text for d in item.question.documents]
    assert len(docs) == 2 and set(docs) <= set(passages)
    scorer = HFPRMScorer(str(tiny_llama_special), device="cpu")
    [enc, _] = scorer.encode(item.question, docs, item.solutions)
    prompt = scorer.tokenizer.decode(enc.input_ids)
    assert f"Document 1: {docs[0]}\n\nDocument 2: {docs[1]}\n\nQuestion: " in prompt
    assert (tmp_path / "run" / "retrieval").exists()


def test_exec_config_refuses_counts_below_one():
    from bestofn.execution.ray_workers import ExecConfig

    with pytest.raises(ValueError, match="policy_actors=0, max_attempts=0"):
        ExecConfig(policy_actors=0, max_attempts=0)
    with pytest.raises(ValueError, match="retriever_cpus must be >= 0, got -1"):
        ExecConfig(retriever_cpus=-1)
