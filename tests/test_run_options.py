"""`run`'s settings reach what they configure: the preset's sampling and step filter (and the
flags that override them), the engine flags, the verifier backends; bad input leaves nothing
behind; the quiet mode keeps engine logs off the terminal."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from collections.abc import Sequence

import pytest

from bestofn.cli import build_all, main
from bestofn.cli.run import run_config
from bestofn.config import RunConfig, SamplingConfig
from bestofn.execution.stages import build_policy, build_scorer
from bestofn.run import prepare
from bestofn.text.records import Question, Solution
from policies import POLICIES
from policies.presets import get_preset


def parse(*argv: str):
    ap, _ = build_all()
    return ap.parse_args(["run", *argv])


class RecordingPolicy:
    """A policy backend that answers every question with fixed texts and records the sampling
    parameters it was asked with (what reaches a backend is the thing under test)."""

    asked: list[SamplingConfig] = []

    def __init__(self, model: str, *, preset: str = "medprm", device: str = "auto") -> None:
        self.preset = get_preset(preset)

    def sample(self, questions: Sequence[Question], n: int, params: SamplingConfig,
               start: int = 0) -> list[list[Solution]]:
        RecordingPolicy.asked.append(params)
        return [[Solution.from_text("Step 1: x.\nStep 2: y.\nStep 3: the answer is (A).")
                 for _ in range(n)] for _ in questions]


@pytest.fixture
def recording():
    POLICIES.register("recording", RecordingPolicy)
    RecordingPolicy.asked.clear()
    yield RecordingPolicy
    POLICIES._entries.pop("recording", None)


@pytest.mark.parametrize("preset", ["medprm", "ii-medical", "grpo-acr"])
def test_the_preset_sets_sampling_and_flags_override_it(preset, recording):
    want = get_preset(preset)
    cfg, _ = prepare(run_config(parse("--policy", "m", "--policy-backend", "recording",
                                      "--preset", preset, "--prm", "none")))
    assert cfg.sampling() == SamplingConfig(want.sampling.temperature, want.sampling.top_k,
                                            want.sampling.top_p, want.sampling.max_tokens, 0)
    assert (cfg.policy.min_steps, cfg.policy.max_steps) == (want.steps or (0, 0))
    [sols] = build_policy(cfg).sample([Question(id="q", stem="s", options={"A": "a"})], cfg.n,
                                      cfg.sampling())
    assert recording.asked[-1] == cfg.sampling() and len(sols) == cfg.n
    over, _ = prepare(run_config(parse("--policy", "m", "--policy-backend", "recording",
                                       "--preset", preset, "--temperature", "0.3",
                                       "--max-tokens", "77", "--valid-steps", "2-5")))
    p = over.policy
    assert (p.temperature, p.max_tokens, p.top_p) == (0.3, 77, want.sampling.top_p)
    assert (p.min_steps, p.max_steps) == (2, 5)
    build_policy(over).sample([Question(id="q", stem="s", options={"A": "a"})], over.n,
                              over.sampling())
    assert recording.asked[-1].temperature == 0.3 and recording.asked[-1].max_tokens == 77


def test_config_json_records_what_was_used(tmp_path, recording):
    out = tmp_path / "r"
    assert main(["run", "--out", str(out), "--questions", "2", "-n", "2", "--policy", "m",
                 "--policy-backend", "recording", "--preset", "ii-medical", "--prm", "none",
                 "--top-k", "7", "--no-ray"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["temperature"], cfg["top_p"], cfg["top_k"], cfg["max_tokens"]) == (
        0.6, 0.9, 7, 8192)
    assert cfg["preset"] == "ii-medical" and "engine" not in cfg


def test_engine_and_backend_flags_reach_their_backends(tiny_llama_special):
    a = parse("--policy", "served-model", "--policy-backend", "openai", "--base-url",
              "http://127.0.0.1:9/v1", "--concurrency", "3", "--prm", "none")
    policy = build_policy(prepare(run_config(a))[0])  # the step filter is the jobs', not a wrapper
    assert type(policy).__name__ == "OpenAIPolicy"
    assert policy.url.startswith("http://127.0.0.1:9/v1") and policy.concurrency == 3
    v = run_config(parse("--policy-backend", "vllm", "--tensor-parallel-size", "2",
                         "--gpu-memory-utilization", "0.5", "--kv-cache-gb", "3", "--lora",
                         "adapter"))
    kw = v.engine.backend_kwargs("vllm", preset=v.policy.preset, device=v.device,
                                 lora=v.policy.lora)
    assert (kw["tensor_parallel_size"], kw["gpu_memory_utilization"], kw["kv_cache_gb"],
            kw["lora"]) == (2, 0.5, 3.0, "adapter")
    hf = prepare(run_config(parse("--policy", str(tiny_llama_special), "--policy-backend", "hf",
                                  "--policy-batch-size", "5", "--prm", str(tiny_llama_special),
                                  "--prm-backend", "prm-hf", "--device", "cpu",
                                  "--valid-steps", "off")))[0]
    assert build_policy(hf).batch_size == 5
    assert type(build_scorer(hf).prm).__name__ == "HFPRMScorer"
    with pytest.raises(KeyError, match="unknown scorer 'prm-nope'"):
        build_scorer(RunConfig.from_settings(prm="x", prm_backend="prm-nope"))


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "missing.jsonl"], "missing.jsonl"),
    (["--rules", "nope"], None),
    (["--valid-steps", "3-x"], "--valid-steps"),
    (["--preset", "nope"], "error: unknown policy preset 'nope'"),
])
def test_bad_input_leaves_no_run_folder(tmp_path, capsys, argv, message):
    out = tmp_path / "r"
    try:
        code = main(["run", "--out", str(out), "--prm", "none", *argv])
    except SystemExit as e:
        code = e.code
    assert code == 2 and not out.exists()
    if message:
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_quiet_run_keeps_engine_logs_in_the_log_file(tmp_path, tiny_llama_special):
    pytest.importorskip("vllm")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bestofn.cli", "run", "--out", str(out), "--questions", "1",
           "-n", "2", "--policy", str(tiny_llama_special), "--prm", "none", "--max-tokens", "8",
           "--device", "cpu", "--valid-steps", "off", "--no-ray"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    terminal = done.stdout + done.stderr
    # vLLM's log lines ("INFO 12-07 14:52:53 [llm.py:362] ...") stay out; the starting line
    # that names the engine (`starting: policy (vLLM)`) is ours
    assert "INFO" not in terminal and not re.search(r"\[\w+\.py:\d+\]", terminal)
    assert "starting: policy (vLLM)" in done.stderr
    assert "Majority vote" in done.stdout
    log = (out / "engine.log").read_text()
    assert "INFO" in log


def _policy_of(command: str, *flags: str):
    """The policy `command` builds from `flags` and its step filter (openai backend: no model
    is loaded)."""
    from bestofn.cli import sample as sample_cli
    from bestofn.cli import serve as serve_cli
    from bestofn.execution.engines import build_policy as build
    from policies.validity import ValidityConfig

    ap, _ = build_all()
    base = ["--policy", "served-model", "--policy-backend", "openai", "--base-url",
            "http://127.0.0.1:9/v1", "--concurrency", "3"]
    if command == "run":
        cfg = prepare(run_config(parse(*base, "--prm", "none", *flags)))[0]
        p = cfg.policy
        steps = (ValidityConfig(min_steps=p.min_steps, max_steps=p.max_steps,
                                fill_invalid=True) if p.max_steps else None)
        return build_policy(cfg), steps
    if command == "serve":
        a = ap.parse_args(["serve", *base, "--prm", "none", *flags])
        preset = serve_cli.serve_config(a).preset
        return serve_cli.build_policy(a, preset), serve_cli.validity(a, preset)
    a = ap.parse_args(["sample", "--questions", "medqa", "--output", "x.jsonl", *base, *flags])
    preset, _ = sample_cli.preset_sampling(a)
    return build(sample_cli.policy_spec(a, preset)), sample_cli.validity(a, preset)


@pytest.mark.parametrize("flags, steps", [((), (3, 9)), (("--valid-steps", "2-5"), (2, 5)),
                                          (("--valid-steps", "off"), None)])
def test_run_and_serve_build_the_same_policy(flags, steps):
    """One engine factory: the same flags give the same policy and the same step filter
    (job logic in both: `execution.fixed.FixedJob`)."""
    got = [_policy_of(c, "--preset", "medprm", *flags) for c in ("run", "serve")]
    for policy, validity in got:
        assert type(policy).__name__ == "OpenAIPolicy" and policy.concurrency == 3
        assert policy.preset.name == "medprm"
        if steps:
            assert (validity.min_steps, validity.max_steps) == steps
        else:
            assert validity is None
    assert got[0][1] == got[1][1]  # run's filter: top-ups, then the best rejected
    sampled, validity = _policy_of("sample", "--preset", "medprm")
    assert type(sampled).__name__ == "OpenAIPolicy"
    assert (validity.min_steps, validity.max_steps) == (3, 9)


def test_run_passes_the_prm_cache_bound_and_it_is_not_part_of_identity():
    from bestofn.config import PRMOptions

    cfg = run_config(parse("--prm-cache-gb", "0.25", "--policy-backend", "hf"))
    assert cfg.prm_options().cache_gb == 0.25
    default = run_config(parse("--policy-backend", "hf"))
    assert default.prm_options().cache_gb == PRMOptions.cache_gb
    assert cfg.identity() == default.identity()
    again = RunConfig.from_settings(**cfg.identity(), prm_cache_gb=0.25)
    assert again.prm_options().cache_gb == 0.25


def test_prm_backends_refuse_the_options_they_do_not_take():
    from bestofn.config import PRM_BACKEND_OPTIONS, PRMOptions

    with pytest.raises(ValueError, match="--batch-size does not apply to prm-vllm"):
        PRMOptions(batch_size=4).scorer_kwargs(True, "prm-vllm")
    with pytest.raises(ValueError, match="--max-batch-tokens does not apply to prm-vllm"):
        PRMOptions(max_batch_tokens=1024).scorer_kwargs(True, "prm-vllm")
    with pytest.raises(ValueError, match="--prm-cache-gb does not apply to prm-vllm"):
        PRMOptions(cache_gb=1.0).scorer_kwargs(True, "prm-vllm")
    kw = PRMOptions().scorer_kwargs(True, "prm-vllm")
    assert not {"batch_size", "max_batch_tokens", "cache_gb"} & set(kw)
    assert PRMOptions(cache_gb=0.5).scorer_kwargs(True, "prm-hf")["cache_gb"] == 0.5
    assert PRMOptions(batch_size=4).scorer_kwargs(True, "prm-hf")["batch_size"] == 4
    for field, value, flag in [("batch_size", 4, "--batch-size"),
                               ("max_batch_tokens", 99, "--max-batch-tokens"),
                               ("double_bos", False, "--no-double-bos"),
                               ("published", True, "--published-prompt")]:
        with pytest.raises(ValueError, match=f"{flag} does not apply to prm-judge"):
            PRMOptions(**{field: value}).scorer_kwargs(True, "prm-judge")
    with pytest.raises(ValueError, match="--judge-mode does not apply to prm-hf"):
        PRMOptions(judge_mode="forced").scorer_kwargs(True, "prm-hf")
    judge = PRMOptions(judge_mode="forced").scorer_kwargs(False, "prm-judge")
    assert set(judge) == {"max_len", "device", "dtype", "judge_mode", "use_docs"}
    for backend, takes in PRM_BACKEND_OPTIONS.items():  # each takes what its class accepts
        from bestofn.scorers import SCORERS

        params = inspect.signature(SCORERS.get(backend).__init__).parameters
        assert set(takes) | {"use_docs"} <= set(params), (backend, set(takes) - set(params))
        assert not any(p.kind == p.VAR_KEYWORD for p in params.values()), backend


def test_serve_config_takes_its_sampling_from_the_preset():
    from bestofn.serve import ServeConfig

    for name in ("medprm", "smollm2", "ii-medical"):
        want = get_preset(name).sampling
        got = ServeConfig(preset=name)
        assert (got.temperature, got.top_k, got.top_p, got.max_tokens) == (
            want.temperature, want.top_k, want.top_p, want.max_tokens)
    assert ServeConfig(preset="medprm", max_tokens=64, temperature=0.2).max_tokens == 64
