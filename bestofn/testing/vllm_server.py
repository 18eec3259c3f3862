"""Starting a real `vllm serve` (vLLM's OpenAI-compatible server) for tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

SERVER_START_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc: subprocess.Popen, url: str, log: Path,
                 timeout: float = SERVER_START_S) -> None:
    """Wait until `url` answers 200, or raise with the end of the server's log."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited ({proc.returncode}):\n"
                               + log.read_text()[-3000:])
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise RuntimeError(f"vllm serve not healthy after {timeout} s:\n" + log.read_text()[-3000:])
