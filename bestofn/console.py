"""One live progress display on the terminal; engine and Ray logs go to a file.

vLLM logs to stdout and stderr from this process and from the engine processes it starts, and
Ray forwards its actors' output. `quiet(log_path)` points file descriptors 1 and 2 at the log
file (so child processes inherit it too) and hands back the terminal as `Console.out` and
`Console.err`; the progress bar and the final table are written there. Ray actors call
`to_log_file` at start for the same effect in their own process. `verbose=True` changes nothing:
every log reaches the terminal as before.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

LOG_NAME = "engine.log"
"""The log file's name inside a run folder (or beside a command's output file)."""

_PROCESS: dict[str, Any] = {"owned": False, "terminal": None}


def own_process() -> None:
    """Called by the `bestofn` console script: this process ends with the command, so a quiet
    command may keep its logs in the file until exit (engines log their shutdown at exit)."""
    _PROCESS["owned"] = True


def process_owned() -> bool:
    return bool(_PROCESS["owned"])


def progress_file() -> IO[str] | None:
    """Where a progress bar goes: the terminal while a quiet block sends logs to a file, else
    None (tqdm's default)."""
    return _PROCESS["terminal"]


@dataclass
class Console:
    """Where the user-facing output goes while the logs go elsewhere."""

    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    log: Path | None = None

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)


def to_log_file(path: Path | str) -> None:
    """Send this process's stdout and stderr (and its children's) to `path` (appended)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


@contextlib.contextmanager
def quiet(log_path: Path | str | None, *, verbose: bool = False,
          restore: bool = True) -> Iterator[Console]:
    """Logs to `log_path` for the duration; yields the console that still reaches the user.

    `restore=False` leaves the logs going to the file after the block, for a command that
    ends there: engines that shut down at interpreter exit log their shutdown to the file too.
    """
    if verbose or log_path is None:
        yield Console()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    created = _missing_parts(Path(log_path))
    saved = os.dup(1), os.dup(2)
    term_out = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    term_err = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    os.environ["BESTOFN_LOG_FILE"] = str(Path(log_path).resolve())

    def back() -> None:
        _PROCESS["terminal"] = None
        sys.stdout.flush()
        sys.stderr.flush()
        os.environ.pop("BESTOFN_LOG_FILE", None)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        term_out.close()
        term_err.close()

    try:
        to_log_file(log_path)
        _PROCESS["terminal"] = term_err
        yield Console(term_out, term_err, Path(log_path))
    except BaseException:
        back()  # an error is shown where the user looks
        _remove_if_empty(created)
        raise
    os.environ.pop("BESTOFN_LOG_FILE", None)
    _PROCESS["terminal"] = None if restore else term_err
    if restore:
        back()


def _missing_parts(path: Path) -> list[Path]:
    """`path` and its parent folders that do not exist yet, deepest first."""
    out = []
    for p in [path, *path.parents]:
        if p.exists():
            break
        out.append(p)
    return out


def _remove_if_empty(created: list[Path]) -> None:
    """A command that failed leaves nothing it created that holds nothing: an empty log file
    and the empty folders made for it."""
    for p in created:
        try:
            if p.is_dir():
                p.rmdir()
            elif p.stat().st_size == 0:
                p.unlink()
        except OSError:
            return


def log_file_for_workers() -> str | None:
    """The log file a quiet driver asked its Ray actors to write to (None: not quiet)."""
    return os.environ.get("BESTOFN_LOG_FILE")


@dataclass
class Progress:
    """The run's one progress line: stage, questions done of total, samples/s, tokens/s, PRM
    solutions/s and ETA (a tqdm bar with a live postfix)."""

    total: int
    done: int = 0
    stage: str = "questions"
    file: IO[str] | None = None
    enabled: bool = True
    samples: int = 0
    tokens: int = 0
    scored: int = 0
    _bar: Any = None
    _t0: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=self.total, initial=self.done, desc=self.stage, unit="q",
                         file=self.file, disable=not self.enabled, dynamic_ncols=True)

    def add(self, *, questions: int = 0, samples: int = 0, tokens: int = 0,
            scored: int = 0) -> None:
        self.samples += samples
        self.tokens += tokens
        self.scored += scored
        dt = max(time.perf_counter() - self._t0, 1e-9)
        self._bar.set_postfix_str(f"{self.samples / dt:.1f} samples/s, "
                                  f"{self.tokens / dt:.0f} tok/s, "
                                  f"PRM {self.scored / dt:.1f} sol/s", refresh=False)
        self._bar.update(questions)

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self._bar.set_description(stage, refresh=True)

    def close(self) -> None:
        self._bar.close()
