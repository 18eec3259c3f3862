"""`run --adaptive`: samples per question until the stopping rule says so (streamed).

- an adaptive run's first k samples of a question equal a fixed-N run's first k (seeds per
  question and per sample index), and it never draws more than N;
- stored samples replay adaptively through the replay backend, and the stop points equal the
  offline replay of the same rule;
- a driver killed with SIGKILL at a random point resumes to the identical report;
- a rule that needs scores without a PRM, and a step filter, are refused before anything is
  written.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from bestofn.adaptive import Drawn, parse_rule
from bestofn.cli import main
from bestofn.config import RunConfig
from bestofn.run import run
from bestofn.testing.kill import reference_and_resumed
from bestofn.testing.reports import report_without_timing
from bestofn.text.datasets import load_questions
from bestofn.text.files import read_items
from bestofn.text.records import Item, Solution

Q, N = 3, 8


def cfg(out: Path, model: Path, **over) -> RunConfig:
    base = dict(out=str(out), questions=Q, n=N, policy=str(model), prm=str(model),
                policy_backend="hf", max_tokens=10, device="cpu", min_steps=0, max_steps=0,
                temperature=1.0)
    return RunConfig.from_settings(**{**base, **over})


@pytest.fixture(scope="module")
def fixed(tmp_path_factory, tiny_llama_special):
    out = tmp_path_factory.mktemp("fixed") / "run"
    run(cfg(out, tiny_llama_special), progress=False)
    return {it.question.id: it for it in read_items(out / "results.jsonl")}


def texts(item) -> list[str]:
    return [s.text for s in item.solutions]


def test_adaptive_samples_are_the_fixed_runs_first_k(tmp_path, tiny_llama_special, fixed):
    out = tmp_path / "ad"
    rep = run(cfg(out, tiny_llama_special, adaptive="esc:w=2"), progress=False)
    got = {it.question.id: it for it in read_items(out / "results.jsonl")}
    assert sorted(got) == sorted(fixed)
    rule = parse_rule("esc:w=2")
    for qid, it in got.items():
        k = len(it.solutions)
        assert 1 <= k <= N
        assert texts(it) == texts(fixed[qid])[:k]
        for got_p, want_p in zip(it.prm, fixed[qid].prm[:k], strict=True):  # other batching
            assert got_p.probs == pytest.approx(want_p.probs, abs=1e-5)
        answers = [s.answer for s in fixed[qid].solutions]
        stops = [j for j in range(1, N + 1) if rule.stop(Drawn(answers[:j]))]
        assert k == (stops[0] if stops else N), qid
    ad = rep["adaptive"]
    assert ad["samples"] == sum(len(it.solutions) for it in got.values())
    assert ad["budget"] == Q * N and ad["rule"].startswith("esc:")
    rounds = [json.loads(x) for x in (out / "rounds.jsonl").read_text().splitlines()]
    assert all(len(r["solutions"]) == 1 for r in rounds)
    assert len(rounds) >= ad["samples"]  # samples past a stop that finished are logged too


def stored_items(n: int) -> list[Item]:
    """The first Q MedQA questions with n written solutions each, answers drawn from a skewed
    distribution (some questions settle early, some never), a few without an answer."""
    rng = random.Random(4)
    items = []
    for q in load_questions("medqa", limit=Q):
        weights = rng.choice([(8, 1, 1), (3, 3, 2), (1, 1, 1)])
        sols = []
        for _ in range(n):
            letter = rng.choices(["A", "B", None], weights=weights)[0]
            text = "Step 1: think.\n" + (f"The answer is ({letter})." if letter else "Unsure.")
            sols.append(Solution.from_text(text, q.options))
        items.append(Item(q, sols))
    return items


def test_stored_samples_replay_adaptively(tmp_path):
    stored = tmp_path / "stored.jsonl"
    items = stored_items(N)
    stored.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in items))
    out = tmp_path / "replayed"
    assert main(["run", "--out", str(out), "--questions", str(Q), "--max-n", str(N),
                 "--policy", str(stored), "--policy-backend", "replay", "--prm", "none",
                 "--adaptive", "beta:eps=0.2", "--no-ray"]) == 0
    got = {it.question.id: it for it in read_items(out / "results.jsonl")}
    rule = parse_rule(f"beta:eps=0.2,max_n={N}")
    stops = []
    for it in items:
        k = len(got[it.question.id].solutions)
        assert k == rule.first_stop(Drawn([s.answer for s in it.solutions]))
        assert texts(got[it.question.id]) == texts(it)[:k]
        stops.append(k)
    assert min(stops) < N, "some question should settle early on this data"


@pytest.mark.parametrize("argv, message", [
    (["--adaptive", "prm", "--prm", "none"], "reads PRM scores"),
    (["--adaptive", "beta", "--valid-steps", "3-9"], "--valid-steps off"),
    (["--adaptive", "nope"], "unknown stopping rule"),
    (["--adaptive", "beta:eps=x"], "must be a number"),
    (["--adaptive", "beta:min_n=9", "-n", "4", "--valid-steps", "off"], "max_n"),
    (["--adaptive", "beta", "--round", "2"], "--round is retired"),
])
def test_bad_adaptive_input_is_refused_before_anything_is_written(tmp_path, capsys, argv,
                                                                  message):
    out = tmp_path / "r"
    assert main(["run", "--out", str(out), *argv]) == 2
    assert not out.exists()
    assert message in capsys.readouterr().err


def _cli(out: Path, model: Path) -> list[str]:
    return [sys.executable, "-m", "bestofn.cli", "run", "--out", str(out), "--questions", str(Q),
            "--max-n", str(N), "--policy", str(model), "--prm", str(model), "--max-tokens", "10",
            "--device", "cpu", "--policy-backend", "hf", "--valid-steps", "off",
            "--temperature", "1.0", "--adaptive", "prm:eps=0.2", "--no-ray"]


@pytest.mark.slow
def test_adaptive_run_killed_at_random_point_resumes_identically(tmp_path, tiny_llama_special):
    ref, out = reference_and_resumed(lambda o: _cli(o, tiny_llama_special), tmp_path, 3)
    # compute aside: a resumed streamed run has thrown away other work than an uninterrupted one
    assert report_without_timing(out / "report.json", compute=False) == report_without_timing(
        ref / "report.json", compute=False)
    assert (out / "results.jsonl").read_text().count("\n") == Q
