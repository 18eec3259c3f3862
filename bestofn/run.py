"""`bestofn run`: questions → N samples → marking and answers → PRM scores → selection → report.

Each finished question is appended to `results.jsonl` (fsync'd), so a run that stops for any
reason resumes where it stopped and, with the same config and seeds, ends with the same report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .config import ExecConfig, RunConfig
from .datasets import load_questions
from .files import append_line, atomic_write_text, json_line, resume_lines
from .pipeline import RayPipeline
from .records import Item, Question
from .report import write_report
from .stages import build_policy, build_scorer, process


class ConfigMismatch(RuntimeError):
    pass


def check_run_dir(out: Path, cfg: RunConfig, overwrite: bool) -> None:
    """Refuse to mix results of two configs in one folder unless `overwrite` clears it."""
    path = out / "config.json"
    if path.exists() and not overwrite:
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), v) for k, v in cfg.identity().items() if old.get(k) != v}
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ConfigMismatch(f"{out} holds a run with another config ({changes}); "
                                 "use another --out or pass --overwrite")
    if overwrite:
        for name in ("results.jsonl", "report.json", "report.md", "failures.jsonl"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cfg.identity(), indent=2) + "\n")


def run(cfg: RunConfig, *, overwrite: bool = False, progress: bool = True,
        ex: ExecConfig | None = None) -> dict[str, Any]:
    """Run (or resume) and write the report: in-process when `ex` is None, else on Ray.

    Returns report.json's content plus this session's `seconds`, `resumed_questions` and
    `failed` (questions that failed every attempt; a later resume retries them).
    """
    out = Path(cfg.out)
    check_run_dir(out, cfg, overwrite)
    results = out / "results.jsonl"
    done = {d["question"]["id"]: Item.from_dict(d) for d in resume_lines(results)}
    questions = load_questions(cfg.dataset, limit=cfg.questions)
    todo = [q for q in questions if q.id not in done]
    if ex is None:
        todo = with_documents(todo, cfg, out, progress)
    t0 = time.perf_counter()
    failures: list[dict[str, Any]] = []
    if todo:
        stream, finish = _stream(cfg, ex, todo)
        bar = tqdm(total=len(questions), initial=len(done), desc="questions", unit="q",
                   disable=not progress)
        try:
            for item in stream:
                append_line(results, item.to_dict())
                done[item.question.id] = item
                bar.update(1)
        finally:
            bar.close()
            failures = finish()
    atomic_write_text(out / "failures.jsonl", "".join(json_line(f) for f in failures))
    items = [done[q.id] for q in questions if q.id in done]
    report = write_report(out, items, cfg.identity(), seed=cfg.seed, failures=failures,
                          progress=progress)
    return {**report, "resumed_questions": len(questions) - len(todo), "failed": len(failures),
            "seconds": round(time.perf_counter() - t0, 1)}


def with_documents(questions: list[Question], cfg: RunConfig, out: Path,
                   progress: bool) -> list[Question]:
    """Questions with their top-k retrieved passages, cached per question in the run folder
    (in-process runs; the Ray pipeline retrieves in an actor while the policy samples)."""
    if not cfg.index or not questions:
        return questions
    from retrieval import attach_documents, index_folder

    return attach_documents(questions, index_folder(cfg.index), cfg.k, cache_dir=out / "retrieval",
                            progress=progress)


def _stream(cfg: RunConfig, ex: ExecConfig | None,
            todo: list[Question]) -> tuple[Iterator[Item], Callable[[], list[dict[str, Any]]]]:
    """Finished items (any order) and a function returning the failures once drained."""
    if ex is None:
        policy, scorer = build_policy(cfg), build_scorer(cfg)
        return (process(q, policy, scorer, cfg) for q in todo), list
    pipe = RayPipeline(cfg, ex)
    pipe.start()
    atomic_write_text(Path(cfg.out) / "workers.json", json.dumps(pipe.workers, indent=2) + "\n")

    def finish() -> list[dict[str, Any]]:
        pipe.stop()
        return [asdict(f) for f in pipe.failures]

    return pipe.run(todo), finish
