"""Killing a command mid-run, as a power cut or `kill -9` would, for resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def kill_after_lines(argv: list[str], path: Path, lines: int, extra_s: float,
                     timeout: float = 600) -> None:
    """Start `argv` in its own process group, wait until `path` holds `lines` lines (or the
    command ends), wait `extra_s` more, and SIGKILL the whole group if it still runs."""
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            break
        time.sleep(0.05)
    time.sleep(extra_s)
    if proc.poll() is None:
        os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
        proc.wait()


def reference_and_resumed(argv_of: Callable[[Path], list[str]], tmp: Path, most_lines: int,
                          progress: str = "rounds.jsonl") -> tuple[Path, Path]:
    """Run the command to its end in `tmp/ref`; run it again in `tmp/run`, SIGKILL it at a
    seeded random point (after 1..`most_lines` lines of `progress`, plus up to half a second)
    and run it once more to resume. Returns (reference folder, resumed folder)."""
    from .seeds import seeded_rng

    ref, out = tmp / "ref", tmp / "run"
    for folder, killed in ((ref, False), (out, True)):
        if killed:
            rng = seeded_rng("kill point")
            kill_after_lines(argv_of(out), out / progress, rng.randint(1, most_lines),
                             rng.random() * 0.5)
        done = subprocess.run(argv_of(folder), capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
    return ref, out


def wait_for(pred: Callable[[], bool], timeout: float,
             proc: subprocess.Popen | None = None) -> None:
    """Wait until `pred()` holds; fail if `proc` exits first or `timeout` seconds pass."""
    end = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited early: {proc.returncode}")
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.2)
