"""Killing a command mid-run, as a power cut or `kill -9` would, for resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
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
