"""A run's start-up: independent parts load at once, the line names what is still loading,
and the parallel start gives the same results as one part after another."""

from __future__ import annotations

import io
import json
import threading

import pytest

from bestofn.config import RunConfig
from bestofn.console import Console
from bestofn.execution import workers
from bestofn.execution.startup import StartupLine, part_labels, start_parts
from bestofn.run import run


def test_the_line_names_what_is_still_loading():
    term = io.StringIO()
    line = StartupLine(["Ray", "policy (vLLM)", "PRM"], term)
    assert term.getvalue().endswith("starting: Ray · policy (vLLM) · PRM")
    line.ready("Ray")
    assert term.getvalue().endswith("starting: policy (vLLM) · PRM")
    line.ready("PRM")
    assert term.getvalue().endswith("starting: policy (vLLM)")
    line.ready("policy (vLLM)")
    line.close()
    assert term.getvalue().endswith("\r\033[K")  # cleared for the question bar
    assert set(line.seconds) == {"Ray", "policy (vLLM)", "PRM"}


def test_no_line_when_progress_is_off():
    term = io.StringIO()
    line = StartupLine(["policy (vLLM)"], term, enabled=False)
    line.ready("policy (vLLM)")
    line.close()
    assert term.getvalue() == ""
    assert "policy (vLLM)" in line.seconds  # still timed for timing.json


def test_the_parts_are_the_runs_engines():
    cfg = RunConfig.from_settings(policy_backend="vllm", prm="smollm2", orm="some/orm",
                                  index="default")
    assert list(part_labels(cfg).values()) == ["policy (vLLM)", "PRM", "ORM", "index"]
    plain = RunConfig.from_settings(policy_backend="hf", prm=None)
    assert list(part_labels(plain).values()) == ["policy (transformers)"]


def test_parts_load_at_the_same_time():
    both = threading.Barrier(2, timeout=10)  # passes only when the two parts run at once

    def part(value):
        return lambda: (both.wait(), value)[1]

    line = StartupLine(["a", "b"], io.StringIO())
    assert start_parts({"a": part(1), "b": part(2)}, line) == {"a": 1, "b": 2}
    assert set(line.seconds) == {"a", "b"}


def test_a_part_that_fails_raises_after_the_others_loaded():
    loaded = threading.Event()

    def bad():
        raise FileNotFoundError("no such model")

    line = StartupLine(["bad", "good"], io.StringIO())
    with pytest.raises(FileNotFoundError, match="no such model"):
        start_parts({"bad": bad, "good": loaded.set}, line)
    assert loaded.is_set() and list(line.seconds) == ["good"]


def one_after_another(parts, line):
    """The start-up as it was: each part built after the previous one."""
    got = {}
    for name, make in parts.items():
        got[name] = make()
        line.ready(name)
    return got


@pytest.mark.slow
def test_parallel_start_gives_the_same_results_as_one_after_another(tmp_path, monkeypatch,
                                                                    tiny_llama_special):
    model = str(tiny_llama_special)
    settings = dict(questions=2, n=3, policy=model, prm=model,
                    policy_backend="hf", max_tokens=16, device="cpu", min_steps=0,
                    max_steps=0)
    term = io.StringIO()
    parallel = run(RunConfig.from_settings(out=str(tmp_path / "parallel"), **settings),
                   console=Console(err=term))
    assert "starting: policy (transformers) · PRM" in term.getvalue()
    timing = json.loads((tmp_path / "parallel" / "timing.json").read_text())
    assert set(timing["startup_parts"]) == {"policy (transformers)", "PRM"}
    assert timing["startup_s"] >= max(timing["startup_parts"].values()) - 0.1

    monkeypatch.setattr(workers, "start_parts", one_after_another)
    before = run(RunConfig.from_settings(out=str(tmp_path / "sequential"), **settings),
                 progress=False)
    assert ((tmp_path / "parallel" / "results.jsonl").read_text()
            == (tmp_path / "sequential" / "results.jsonl").read_text())
    assert parallel["accuracy"] == before["accuracy"]


@pytest.mark.slow
def test_models_built_on_threads_at_once_leave_torch_intact(tiny_llama_special):
    """transformers swaps torch.nn.init's functions for no-ops while it builds a model; two
    builds at once used to restore each other's swaps and leave them no-ops for good (within a
    few rounds of this loop). Every model load holds `torch_utils.MODEL_BUILD`."""
    import torch

    from bestofn.scorers.prm_hf import HFPRMScorer
    from bestofn.torch_utils import MODEL_BUILD
    from policies.hf import HFPolicy

    assert not MODEL_BUILD._is_owned()  # type: ignore[attr-defined]
    init = {n: getattr(torch.nn.init, n) for n in dir(torch.nn.init) if n.endswith("_")}
    parts = {"policy": lambda: HFPolicy(str(tiny_llama_special), device="cpu"),
             "prm": lambda: HFPRMScorer(str(tiny_llama_special), device="cpu")}
    for _ in range(12):
        got = start_parts(parts, StartupLine(list(parts), enabled=False))
        assert set(got) == {"policy", "prm"}
        assert [n for n in init if getattr(torch.nn.init, n) is not init[n]] == []
