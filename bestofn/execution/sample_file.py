"""Sampling a question set into a solutions JSONL, resumably (the `bestofn sample` command).

The questions are fixed-N jobs on the one scheduler loop (`bestofn.execution.jobs`), the
validity filter included; each question's `Item` line is appended and fsync'd as soon as it
settles; a restart skips the questions already in the file, and with the same seed produces
the same solutions for the rest (seeds are per question and per sample index).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from bestofn.config import EngineOptions, SampleOptions, SamplingConfig, default_of
from bestofn.console import progress_file
from bestofn.text.files import InputError, append_line, resume_lines
from bestofn.text.records import Item, Question
from policies.base import Policy
from policies.validity import ValidityConfig


@dataclass
class SampleReport:
    """What `sample_to_file` did. `short` maps each question of the file holding fewer than N
    solutions (the validity filter's top-up ran out) to how many it holds."""

    output: str
    n_questions: int
    resumed: int
    written: int
    solutions: int
    tokens: int
    seconds: float
    short: dict[str, int] = field(default_factory=dict)


def done_ids(path: Path) -> dict[str, int]:
    """Question id → solution count of the items already in `path`."""
    out: dict[str, int] = {}
    for k, d in enumerate(resume_lines(path), 1):
        q, sols = d.get("question"), d.get("solutions")
        if not isinstance(q, dict) or "id" not in q or not isinstance(sols, list):
            raise InputError(path, f"line {k}", "question", "not a bestofn Item line "
                             "(needs question.id and solutions)")
        out[str(q["id"])] = len(sols)
    return out


def sample_to_file(questions: Sequence[Question], policy: Policy, output: str | os.PathLike[str],
                   n: int, params: SamplingConfig, *, validity: ValidityConfig | None = None,
                   chunk_size: int = default_of(SampleOptions, "chunk"),
                   engine: EngineOptions | None = None, progress: bool = True) -> SampleReport:
    """Sample `n` solutions for every question not yet in `output` (JSONL of `Item`s).

    `validity` is Med-PRM's step-count filter and top-up. The questions go to the loop
    `chunk_size` at a time (each chunk's jobs share the engine, within `engine`'s budget);
    a question is written as soon as it settles.
    """
    path = Path(output)
    if path.suffix == ".json":
        raise ValueError(f"{path}: sample writes JSONL (one question per line, resumable); "
                         "name the output .jsonl")
    if n < 1 or chunk_size < 1:
        raise ValueError(f"need n >= 1 and chunk_size >= 1, got n={n}, chunk_size={chunk_size}")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"question id {dup!r} appears more than once in the question set")
    from bestofn.execution import make_stream
    from bestofn.execution.jobs import fixed_samples

    stream = make_stream(policy)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = done_ids(path)
    todo = [q for q in questions if q.id not in counts]
    t0, n_sols, n_tokens = time.perf_counter(), 0, 0
    with tqdm(total=len(todo), desc="questions", unit="q", disable=not progress,
              file=progress_file()) as bar:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            for job in fixed_samples(stream, chunk, n, params, validity, engine):
                if job.error is not None:
                    raise job.error[1]
                sols = job.kept
                append_line(path, Item(job.question, sols).to_dict())
                counts[job.question.id] = len(sols)
                n_sols += len(sols)
                n_tokens += sum(int(s.meta.get("tokens") or 0) for s in sols)
                bar.update(1)
    short = {q.id: counts[q.id] for q in questions if counts[q.id] < n}
    return SampleReport(output=str(path), n_questions=len(questions),
                        resumed=len(questions) - len(todo), written=len(todo), solutions=n_sols,
                        tokens=n_tokens, seconds=round(time.perf_counter() - t0, 2), short=short)
