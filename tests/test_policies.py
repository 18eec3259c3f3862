"""Policies without vLLM: presets, the validity filter and top-up, replay, resumable sampling to
a file, the transformers backend (seeds, PEFT LoRA) and the OpenAI client's retries and `n`
fallback against a local HTTP server."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import pytest

from bestofn.cli import main
from bestofn.config import default_policy_backend
from bestofn.execution.sample_file import sample_to_file
from bestofn.testing.lora import make_lora
from bestofn.testing.openai_server import client
from bestofn.testing.samples import HF_PARAMS, PARAMS, mcq, steps_text
from bestofn.text.files import read_items
from bestofn.text.prompts import MEDPRM_OPEN_POLICY_SYSTEM, MEDPRM_POLICY_SYSTEM
from bestofn.text.records import Item, Question
from bestofn.text.steps import split_steps
from policies import POLICIES, SamplingConfig, question_seed
from policies.openai import OpenAIPolicy, RetryConfig, ServerError, completions_url
from policies.presets import ACR_LABELS, BOXED_INSTRUCTION, PRESETS, Preset, get_preset
from policies.replay import MissingQuestion, ReplayPolicy
from policies.validity import ValidityConfig, round_params

MEDPRM = PRESETS["medprm"]



# ---- presets ------------------------------------------------------------------------------

def test_medprm_preset_prompt_and_sampling():
    q = mcq()
    assert MEDPRM.messages(q) == [{"role": "system", "content": MEDPRM_POLICY_SYSTEM},
                                  {"role": "user", "content": q.text()}]
    assert q.text().endswith("(A) alpha\n(B) beta\n(C) gamma\n(D) delta")
    open_q = Question(id="o", stem="A 30-year-old man … diagnosis?")
    assert MEDPRM.messages(open_q)[0]["content"] == MEDPRM_OPEN_POLICY_SYSTEM
    s = MEDPRM.sampling
    assert (s.temperature, s.top_k, s.top_p, s.max_tokens) == (0.7, 50, 1.0, 4096)
    assert MEDPRM.steps == (3, 9)


def test_ii_medical_preset_strips_think_before_marking():
    p = PRESETS["ii-medical"]
    msgs = p.messages(mcq())
    assert [m["role"] for m in msgs] == ["user"]
    assert msgs[0]["content"] == mcq().text() + "\n\n" + BOXED_INSTRUCTION
    assert (p.sampling.temperature, p.sampling.top_p, p.sampling.top_k) == (0.6, 0.9, 0)
    raw = ("<think>Step 1: maybe A. Step 2: no. \\boxed{A}</think>\n"
           "Step 1: x.\nStep 2: y.\nStep 3: so \\boxed{C}")
    sol = p.make_solution(raw, mcq(), seed=3)
    assert sol.text == raw and sol.answer == "C" and sol.meta == {"seed": 3}
    assert sol.steps == ["Step 1: x.", "Step 2: y.", "Step 3: so \\boxed{C}"]
    assert "think" not in sol.marked and sol.marked.count(" ки") == 3
    assert p.make_solution("<think>never closed Step 1: a", mcq()).steps == []


def test_grpo_acr_preset_reads_categorical_answers():
    p = PRESETS["grpo-acr"]
    q = Question(id="acr", stem="MRI for acute low back pain without red flags?")
    user = p.messages(q)[-1]["content"]
    assert all(label in user for label in ACR_LABELS) and "<answer>" in p.messages(q)[0]["content"]
    sol = p.make_solution("<think>Usually Appropriate? no.</think>"
                          "<answer>Usually Not Appropriate</answer>", q)
    assert sol.answer == "Usually Not Appropriate"


def test_preset_errors_name_the_problem():
    with pytest.raises(KeyError, match="grpo-acr, ii-medical, medprm"):
        get_preset("nope")
    with pytest.raises(ValueError, match="step bounds"):
        Preset(name="bad", steps=(5, 2))
    assert get_preset(MEDPRM) is MEDPRM
    with pytest.raises(ValueError, match="top_k >= 0"):
        SamplingConfig(top_k=-1)


def test_registry_and_default_backend():
    assert {"vllm", "hf", "openai", "replay"} <= set(POLICIES.names())
    assert default_policy_backend() in ("vllm", "hf")


# ---- validity filter and top-up -----------------------------------------------------------

class StepCountPolicy:
    """A deterministic fake backend: sample k of question q with seed s has a step count drawn
    from `random.Random(f"{s}:{q}:{k}")`, like a real backend's per-question seeds. It records
    every call (question ids, n, seed)."""

    def __init__(self, low: int = 1, high: int = 12, preset: Preset = MEDPRM) -> None:
        self.low, self.high, self.preset = low, high, preset
        self.calls: list[tuple[tuple[str, ...], int, int]] = []

    def steps_of(self, seed: int, qid: str, k: int) -> int:
        return random.Random(f"{question_seed(seed, qid)}:{k}").randint(self.low, self.high)

    def sample(self, questions, n, params, start=0):
        self.calls.append((tuple(q.id for q in questions), n, params.seed))
        return [[self.preset.make_solution(steps_text(self.steps_of(params.seed, q.id, k)), q,
                                           seed=params.seed, index=k)
                 for k in range(start, start + n)] for q in questions]


def filtered(fake, questions, n, cfg=None) -> list[list]:
    """Each question's kept solutions: fixed jobs with the filter on the scheduler loop over
    the fake backend (its ordered stream)."""
    from bestofn.execution import make_stream
    from bestofn.execution.jobs import fixed_samples

    done = {j.question.id: j for j in fixed_samples(make_stream(fake), questions, n, PARAMS,
                                                    cfg or ValidityConfig())}
    return [done[q.id].kept for q in questions]


def calls_of(fake, qid: str) -> list[tuple[int, int]]:
    """(count, seed) of each backend call for question `qid`."""
    return [(n, seed) for ids, n, seed in fake.calls if ids == (qid,)]


def medprm_reference(fake: StepCountPolicy, qid: str, n: int, seed: int) -> list[int]:
    """Med-PRM's published loop, written out plainly: step counts of the kept solutions."""
    first = [fake.steps_of(seed, qid, k) for k in range(math.ceil(n * 1.25))]
    valid = [s for s in first if 2 < s < 10]
    if len(valid) < n:
        lack = (n - len(valid)) * 3
        top = [fake.steps_of(round_params(PARAMS, 1).seed, qid, k) for k in range(lack)]
        valid += [s for s in top if 2 < s < 10]
    return valid[:n]


@pytest.mark.parametrize("n", [1, 4, 8, 64])
def test_validity_filter_matches_medprm_reference(n):
    fake = StepCountPolicy()
    questions = [mcq(f"q{i}") for i in range(6)]
    got = filtered(fake, questions, n)
    for q, sols in zip(questions, got, strict=True):
        assert [len(s.steps) for s in sols] == medprm_reference(fake, q.id, n, PARAMS.seed)
        assert all(3 <= len(s.steps) <= 9 for s in sols)
        calls = calls_of(fake, q.id)
        assert sum(c for c, seed in calls if seed == PARAMS.seed) == math.ceil(1.25 * n)
        assert len({seed for _, seed in calls}) == min(len(calls), 2)  # top-up: a new seed


def test_top_up_draws_three_times_the_shortfall_per_question():
    fake = StepCountPolicy()
    questions = [mcq(f"q{i}") for i in range(10)]
    n = 8
    filtered(fake, questions, n, ValidityConfig(max_rounds=1))
    first = {q.id: sum(3 <= fake.steps_of(PARAMS.seed, q.id, k) <= 9 for k in range(10))
             for q in questions}
    expected = {qid: 3 * (n - valid) for qid, valid in first.items() if valid < n}
    topups = {q.id: sum(c for c, seed in calls_of(fake, q.id) if seed != PARAMS.seed)
              for q in questions}
    assert {k: v for k, v in topups.items() if v} == expected and expected, (
        "the draw should leave some question short")


def test_rounds_are_capped_and_short_questions_are_reported(tmp_path):
    never = StepCountPolicy(low=1, high=2)  # never 3..9 steps
    cfg = ValidityConfig(max_rounds=3)
    out = filtered(never, [mcq("a"), mcq("b")], 4, cfg)
    assert out == [[], []] and len(never.calls) == 8
    for qid in ("a", "b"):
        assert [c for c, _ in calls_of(never, qid)] == [5, 12, 12, 12]
        assert len({seed for _, seed in calls_of(never, qid)}) == 4
    rep = sample_to_file([mcq("a"), mcq("b")], StepCountPolicy(low=1, high=2),
                         tmp_path / "s.jsonl", 4, PARAMS, validity=cfg, progress=False)
    assert rep.short == {"a": 0, "b": 0}
    [filled] = filtered(StepCountPolicy(low=1, high=2), [mcq("a")], 4,
                        replace(cfg, fill_invalid=True))
    assert len(filled) == 4 and not any(s.meta["valid"] for s in filled)
    assert [s.meta["round"] for s in filled] == [0] * 4


def test_fill_invalid_puts_valid_solutions_first():
    fake = StepCountPolicy(low=1, high=4)
    cfg = ValidityConfig(max_rounds=0, fill_invalid=True)
    [sols] = filtered(fake, [mcq()], 8, cfg)
    flags = [s.meta["valid"] for s in sols]
    assert len(sols) == 8 and flags == sorted(flags, reverse=True) and any(flags)
    assert not all(flags), "the draw should leave the question short"
    assert flags == [3 <= len(s.steps) <= 9 for s in sols]


def test_a_questions_solutions_do_not_depend_on_its_batch():
    [alone] = filtered(StepCountPolicy(), [mcq("q3")], 8)
    batch = filtered(StepCountPolicy(), [mcq(f"q{i}") for i in range(6)], 8)
    assert [s.text for s in alone] == [s.text for s in batch[3]]


def test_configurable_bounds():
    cfg = ValidityConfig(min_steps=5, max_steps=6, max_rounds=3)
    [sols] = filtered(StepCountPolicy(), [mcq()], 6, cfg)
    assert len(sols) == 6 and {len(s.steps) for s in sols} <= {5, 6}
    with pytest.raises(ValueError, match="min_steps"):
        ValidityConfig(min_steps=4, max_steps=3)


# ---- replay and sample_to_file ------------------------------------------------------------

def medprm_file(tmp_path):
    data = [{"question_id": f"m{i}", "data_source": "med_qa",
             "question": f"Q{i}?\n\n(A) a\n(B) b\n(C) c\n(D) d", "correct_answer": "B",
             "related_docs": ["doc"],
             "solutions": [{"solution": steps_text(3, "ABCD"[k % 4]), "answer": "ABCD"[k % 4],
                            "score": int(k % 4 == 1)} for k in range(5)]}
            for i in range(3)]
    path = tmp_path / "medprm.json"
    path.write_text(json.dumps(data))
    return path, data


def test_replay_reads_a_medprm_file(tmp_path):
    path, data = medprm_file(tmp_path)
    policy = ReplayPolicy(str(path))
    qs = [Question(id="m2", stem="?"), Question(id="m0", stem="?")]
    got = policy.sample(qs, 3, PARAMS)
    assert [[s.text for s in sols] for sols in got] == [
        [s["solution"] for s in data[i]["solutions"][:3]] for i in (2, 0)]
    assert [s.answer for s in got[0]] == ["A", "B", "C"]
    assert got[0][0].marked.count(" ки") == 3
    assert len(policy.sample(qs, 64, PARAMS)[0]) == 5  # the file holds 5
    with pytest.raises(MissingQuestion, match=r"medprm.json has no solutions for question "
                                              r"id\(s\) 'zz'.*holds 3 questions"):
        policy.sample([Question(id="zz", stem="?")], 2, PARAMS)


def test_sample_to_file_then_replay_round_trips(tmp_path):
    out = tmp_path / "sols.jsonl"
    questions = [mcq(f"q{i}") for i in range(4)]
    rep = sample_to_file(questions, StepCountPolicy(), out, 5, PARAMS,
                         validity=ValidityConfig(), chunk_size=3, progress=False)
    assert (rep.written, rep.resumed, rep.solutions) == (4, 0, 20) and rep.short == {}
    items = read_items(out)
    assert [it.question.id for it in items] == [q.id for q in questions]
    replayed = ReplayPolicy(str(out)).sample(questions, 5, PARAMS)
    assert [[s.to_dict() for s in sols] for sols in replayed] == [
        [s.to_dict() for s in it.solutions] for it in items]


def test_sample_to_file_resumes_after_a_torn_line(tmp_path):
    questions = [mcq(f"q{i}") for i in range(5)]
    full = tmp_path / "full.jsonl"
    sample_to_file(questions, StepCountPolicy(), full, 4, PARAMS, chunk_size=2, progress=False)
    lines = full.read_text().splitlines()
    part = tmp_path / "part.jsonl"
    part.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    fake = StepCountPolicy()
    rep = sample_to_file(questions, fake, part, 4, PARAMS, chunk_size=2, progress=False)
    assert (rep.resumed, rep.written) == (2, 3)
    assert {qid for call in fake.calls for qid in call[0]} == {"q2", "q3", "q4"}
    assert part.read_text() == full.read_text()


def test_sample_to_file_refuses_bad_output(tmp_path):
    with pytest.raises(ValueError, match="JSONL"):
        sample_to_file([mcq()], StepCountPolicy(), tmp_path / "x.json", 2, PARAMS)
    with pytest.raises(ValueError, match="more than once"):
        sample_to_file([mcq(), mcq()], StepCountPolicy(), tmp_path / "x.jsonl", 2, PARAMS)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "an item"}\n')
    with pytest.raises(ValueError, match="bad.jsonl: line 1: field 'question'"):
        sample_to_file([mcq()], StepCountPolicy(), bad, 2, PARAMS)


def test_cli_sample_replay(tmp_path, capfd):
    path, data = medprm_file(tmp_path)
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(Question(id=d["question_id"], stem=d["question"]).to_dict())
                             + "\n" for d in data))
    out = tmp_path / "out.jsonl"
    argv = ["sample", "--questions", str(qfile), "--policy", str(path), "--backend", "replay",
            "-n", "4", "--output", str(out)]
    assert main(argv) == 0
    items = [Item.from_dict(json.loads(x)) for x in out.read_text().splitlines()]
    assert [len(it.solutions) for it in items] == [4, 4, 4]
    assert main(argv) == 0 and "3 resumed" in capfd.readouterr().err  # the terminal
    assert main([*argv[:-2], "--lora", "x", "--output", str(out)]) == 2


# ---- transformers backend -----------------------------------------------------------------

def test_hf_n_solutions_reproducible_and_seeded(hf_policy):
    qs = [mcq("a"), mcq("b")]
    a = hf_policy.sample(qs, 5, HF_PARAMS)
    assert [len(x) for x in a] == [5, 5]
    assert all(1 <= s.meta["tokens"] <= HF_PARAMS.max_tokens for x in a for s in x)
    assert all(s.meta["finish_reason"] in ("stop", "length") for x in a for s in x)
    texts = [[s.text for s in x] for x in a]
    assert texts == [[s.text for s in x] for x in hf_policy.sample(qs, 5, HF_PARAMS)]
    assert texts[1] == [s.text for s in hf_policy.sample([mcq("b")], 5, HF_PARAMS)[0]]
    other = hf_policy.sample(qs, 5, replace(HF_PARAMS, seed=8))
    assert texts != [[s.text for s in x] for x in other]
    assert len(set(texts[0])) > 1


def test_hf_lora_changes_outputs(tmp_path, tiny_llama_split, hf_policy):
    from policies.hf import HFPolicy

    base = [s.text for s in hf_policy.sample([mcq()], 4, HF_PARAMS)[0]]
    zero = HFPolicy(str(tiny_llama_split), device="cpu", batch_size=3,
                    lora=make_lora(tiny_llama_split, tmp_path / "zero", nonzero=False))
    assert [s.text for s in zero.sample([mcq()], 4, HF_PARAMS)[0]] == base
    lora = HFPolicy(str(tiny_llama_split), device="cpu", batch_size=3,
                    lora=make_lora(tiny_llama_split, tmp_path / "lora", nonzero=True))
    assert [s.text for s in lora.sample([mcq()], 4, HF_PARAMS)[0]] != base


def test_cli_sample_hf(tmp_path, tiny_llama_split):
    out = tmp_path / "hf.jsonl"
    assert main(["sample", "--questions", "medqa", "--limit", "2", "--policy",
                 str(tiny_llama_split), "--backend", "hf", "-n", "3", "--max-tokens", "8",
                 "--no-filter", "--device", "cpu", "--output", str(out)]) == 0
    items = read_items(out)
    assert [len(it.solutions) for it in items] == [3, 3]
    assert all(s.meta["tokens"] <= 8 for it in items for s in it.solutions)


# ---- OpenAI-compatible client against a local server --------------------------------------

def test_openai_retries_429_and_500_then_succeeds(serve):
    server = serve(script=[429, 500])
    sols = client(server, concurrency=1).sample([mcq()], 3, PARAMS)[0]
    assert len(server.requests) == 3 and len(sols) == 3
    body = server.requests[-1]
    seed = question_seed(PARAMS.seed, "q1")
    assert (body["n"], body["seed"], body["top_k"], body["max_tokens"]) == (3, seed, 50, 16)
    assert body["messages"] == MEDPRM.messages(mcq()) and body["model"] == "served-model"
    assert [s.meta["index"] for s in sols] == [0, 1, 2]
    assert all(f" s{seed + i}." in s.text for i, s in enumerate(sols))
    assert [len(split_steps(s.text)) for s in sols] == [3, 3, 3]


def test_openai_gives_up_after_bounded_attempts(serve):
    server = serve(script=[503] * 10)
    with pytest.raises(ServerError, match="HTTP 503 after 4 attempts") as e:
        client(server).sample([mcq()], 2, PARAMS)
    assert e.value.status == 503 and len(server.requests) == 4


def test_openai_client_errors_raise_at_once_with_the_body(serve):
    server = serve(script=[404])
    with pytest.raises(ServerError, match="HTTP 404: .*scripted 404"):
        client(server, n_per_request=True).sample([mcq()], 2, PARAMS)
    assert len(server.requests) == 1


def test_openai_retries_a_timeout(serve):
    server = serve(delay_first=3.0)
    retry = RetryConfig(attempts=8, base_delay=0.01, max_delay=0.05)
    pol = OpenAIPolicy("m", base_url=server.url, retry=retry, timeout=0.5, concurrency=1)
    assert len(pol.sample([mcq()], 2, PARAMS)[0]) == 2
    assert len(server.requests) >= 2  # the first timed out and was sent again


def test_openai_falls_back_to_single_requests_when_n_is_ignored(serve):
    honest, ignoring = serve(), serve(honour_n=False)
    qs = [mcq("a"), mcq("b"), mcq("c")]
    want = client(honest).sample(qs, 4, PARAMS)
    pol = client(ignoring, concurrency=2)
    got = pol.sample(qs, 4, PARAMS)
    assert pol.n_per_request is False
    assert [[s.text for s in x] for x in got] == [[s.text for s in x] for x in want]
    assert len(ignoring.requests) == 3 * 4 and len(honest.requests) == 3
    again = pol.sample(qs, 4, PARAMS)  # now known: single requests from the start
    assert len(ignoring.requests) == 3 * 4 + 12 and all(r["n"] == 1 for r in ignoring.requests[12:])
    assert [[s.text for s in x] for x in again] == [[s.text for s in x] for x in want]


def test_completions_url():
    assert completions_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
