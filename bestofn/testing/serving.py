"""Helpers of the serving tests and the load benchmark: a free loopback port, `bestofn serve`
started as its own process, a policy whose calls wait at a gate, and MedQA-style questions
with stored solutions for a replay policy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

OPTIONS = {"A": "pneumonia", "B": "asthma", "C": "sepsis", "D": "stroke"}
ANSWERS = "ABCBDBAC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stem(i: int) -> str:
    return f"A patient (case {i}) presents with fever and cough. What is the diagnosis?"


def prompt(i: int) -> str:
    return stem(i) + "\n\n" + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items())


def texts(i: int, count: int = 6) -> list[str]:
    """`count` solutions with varied step counts and answers (the last without an answer)."""
    out = []
    for j in range(count):
        steps = " ".join(f"Step {s}: finding {i}-{j}-{s} points somewhere." for s in
                         range(1, 2 + (i + j) % 4))
        ans = ANSWERS[(i + j) % len(ANSWERS)]
        out.append(f"{steps} The answer is ({ans})." if j != count - 1 else f"{steps} Unsure.")
    return out


def write_replay(path: Path, questions: int, count: int = 6) -> Path:
    """A solutions file for the replay policy: `count` solutions of each of `questions`."""
    from bestofn import Question, Solution
    from bestofn.serve import question_id
    from bestofn.text.records import Item

    lines = []
    for i in range(questions):
        q = Question(id=question_id(stem(i), OPTIONS), stem=stem(i), options=OPTIONS)
        lines.append(json.dumps(Item(q, [Solution.from_text(t, OPTIONS, tokens=10 + k)
                                         for k, t in enumerate(texts(i, count))]).to_dict()))
    path.write_text("\n".join(lines) + "\n")
    return path


class GatedPolicy:
    """A real policy whose calls wait for `gate` (to hold work in flight deterministically);
    `asked` records the question ids of each call."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.gate, self.asked = inner, threading.Event(), []
        self.gate.set()

    def sample(self, questions: list, n: int, params: Any, start: int = 0) -> Any:
        self.asked.append([q.id for q in questions])
        assert self.gate.wait(60), "gate never opened"
        return self.inner.sample(questions, n, params, start=start)


def start_cli_server(cwd: Path, argv: list[str], timeout: float = 300) -> tuple[Any, str]:
    """`bestofn serve ARGV` as its own process on a free loopback port, once /health answers
    200: (process, base URL)."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "bestofn.cli", "serve", "--port", str(port),
                             *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not start")
