"""A real two-node Ray cluster on loopback runs a small pipeline across both nodes (slow)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    # loopback test cluster: no token (Ray 2.60 turns token auth on for `ray start`)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    port = free_port()
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                    *common], check=True, capture_output=True, timeout=180)
    try:
        subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", *common], check=True,
                       capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=180)


def test_pipeline_spreads_over_two_nodes(cluster, tmp_path, tiny_llama_special):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bestofn.cli", "run", "--out", str(out), "--questions", "3",
           "-n", "2", "--policy", str(tiny_llama_special), "--prm", str(tiny_llama_special),
           "--max-tokens", "8", "--device", "cpu", "--policy-backend", "hf",
           "--valid-steps", "off", "--ray-address", cluster]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    workers = json.loads((out / "workers.json").read_text())
    assert len({w["node"] for w in workers}) == 2, workers
    lines = (out / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["question"]["id"] for x in lines) == ["0", "1", "2"]
    assert json.loads((out / "report.json").read_text())["n_questions"] == 3
