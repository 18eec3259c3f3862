"""Workers die; runs do not (slow: real local Ray, real actors, tiny models).

For a fixed, a streamed adaptive and a search run, the policy actor and the scorer actor are
each killed with SIGKILL at a seeded random point while the run is going. Ray restarts them,
the Ray stream sends the policy actor's lost requests again with the same seeds, the scorer
call is retried, and the run's `results.jsonl` equals the same run done in this process with
`--no-ray` (texts, answers, scores; compute aside: a killed request's work is done twice).
A search on Ray equals the same search with `--no-ray`, text for text.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bestofn.testing.kill import wait_for
from bestofn.testing.reports import without_compute
from bestofn.testing.seeds import seeded_rng

pytestmark = pytest.mark.slow

Q, N = 4, 4
KINDS = {"fixed": (), "adaptive": ("--adaptive", "esc:w=3"),
         "search": ("--search", "beam:width=2", "--policy-backend", "vllm")}


def cli(out: Path, model: Path, kind: str, *extra: str) -> list[str]:
    policy = ("--policy-backend", "hf") if kind != "search" else ()
    return [sys.executable, "-m", "bestofn.cli", "run", "--out", str(out), "--questions", str(Q),
            "-n", str(N), "--policy", str(model), "--prm", str(model), "--max-tokens", "16",
            "--device", "cpu", "--valid-steps", "off", "--temperature", "1.0", *policy,
            *KINDS[kind], *extra]


def items_of(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    ids = [json.loads(x)["question"]["id"] for x in lines]
    assert len(ids) == len(set(ids)), f"duplicated questions: {ids}"
    return {json.loads(x)["question"]["id"]: without_compute(json.loads(x)) for x in lines}


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, tiny_llama_special) -> dict[str, Path]:
    """Each kind of run done with `--no-ray`."""
    out = {}
    for kind in KINDS:
        out[kind] = tmp_path_factory.mktemp(kind) / "run"
        _run(cli(out[kind], tiny_llama_special, kind, "--no-ray"))
    return out


def _lines(out: Path) -> int:
    p = out / "results.jsonl"
    return len(p.read_text().splitlines()) if p.exists() else 0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_killed_actors_are_restarted_and_the_run_equals_an_uninterrupted_one(
        in_process, tmp_path, tiny_llama_special, kind):
    rng = seeded_rng(f"actor kills ({kind})")
    out = tmp_path / "run"
    proc = subprocess.Popen(cli(out, tiny_llama_special, kind), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (out / "workers.json").exists(), 600, proc)
        pids = {w["stage"]: w["pid"] for w in json.loads((out / "workers.json").read_text())}
        killed = []
        for stage, most in zip(rng.sample(["policy", "scorer"], 2), (0.3, 1.0), strict=True):
            time.sleep(rng.uniform(0.0, most))  # the first kill early: a tiny run is quick
            if _lines(out) < Q:
                os.kill(pids[stage], signal.SIGKILL)
                killed.append(stage)
        assert killed, "the run finished before any kill: give it more work"
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert items_of(out) == items_of(in_process[kind])


def test_search_on_ray_equals_search_in_process(in_process, tmp_path, tiny_llama_special):
    out = tmp_path / "run"
    _run(cli(out, tiny_llama_special, "search"))
    got, want = items_of(out), items_of(in_process["search"])
    assert got == want
    assert all(it["search"]["steps"] for it in got.values())
    stages = [w["stage"] for w in json.loads((out / "workers.json").read_text())]
    assert stages == ["policy", "scorer"]
