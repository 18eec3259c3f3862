"""`bestofn run`: questions → N samples → marking and answers → PRM scores → selection → report.

Each finished question is appended to `results.jsonl` (fsync'd), so a run that stops for any
reason resumes where it stopped and, with the same config and seeds, ends with the same report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .config import ExecConfig, RunConfig
from .console import LOG_NAME, Console, Progress, quiet
from .datasets import load_questions
from .files import append_line, atomic_write_text, json_line, resume_lines
from .pipeline import RayPipeline
from .records import Item, Question
from .report import write_report
from .scheduler.ledger import StageClock
from .select import get_rules
from .stages import build_policy, build_scorer, process, resolve_config


class ConfigMismatch(RuntimeError):
    pass


def check_run_dir(out: Path, cfg: RunConfig, overwrite: bool) -> None:
    """Refuse to mix results of two configs in one folder unless `overwrite` clears it.

    A setting missing from an older config.json counts as its default, so a folder written
    before a setting existed resumes when the setting keeps its default.
    """
    path = out / "config.json"
    if path.exists() and not overwrite:
        old = json.loads(path.read_text())
        defaults = RunConfig(policy_backend=cfg.policy_backend).identity()
        diff = {k: (old.get(k, defaults.get(k)), v) for k, v in cfg.identity().items()
                if old.get(k, defaults.get(k)) != v}
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ConfigMismatch(f"{out} holds a run with another config ({changes}); "
                                 "use another --out or pass --overwrite")
    if overwrite:
        for name in ("results.jsonl", "rounds.jsonl", "report.json", "report.md",
                     "failures.jsonl", "timing.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cfg.identity(), indent=2) + "\n")


def prepare(cfg: RunConfig) -> tuple[RunConfig, list[Question]]:
    """The resolved config and its questions, every input checked before anything is written."""
    cfg = resolve_config(cfg)
    get_rules(cfg.rules)
    if cfg.adaptive:
        from .adaptive.online import run_rule
        from .adaptive.rules import format_rule

        cfg = replace(cfg, adaptive=format_rule(run_rule(cfg)))
    if cfg.search:
        from .search.run_search import check_search
        from .search.strategies import format_strategy, parse_strategy

        check_search(cfg)
        cfg = replace(cfg, search=format_strategy(parse_strategy(cfg.search)))
    return cfg, load_questions(cfg.dataset, limit=cfg.questions)


def run(cfg: RunConfig, *, overwrite: bool = False, progress: bool = True,
        ex: ExecConfig | None = None, quiet_logs: bool = False,
        console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) and write the report: in-process when `ex` is None, else on Ray.

    `quiet_logs` sends engine and Ray logs to `engine.log` in the run folder and keeps the
    terminal for the progress display; `console` is a terminal a caller already set up
    (`console.quiet`). Returns report.json's content plus this session's
    `seconds`, `resumed_questions` and `failed` (questions that failed every attempt; a later
    resume retries them).
    """
    cfg, questions = prepare(cfg)
    if cfg.search:
        ex = None  # search runs in-process (the Ray pipeline does not search)
    out = Path(cfg.out)
    check_run_dir(out, cfg, overwrite)
    if console is not None:
        return _run(cfg, questions, out, progress, ex, console)
    with quiet(out / LOG_NAME, verbose=not quiet_logs) as con:
        return _run(cfg, questions, out, progress, ex, con)


def _run(cfg: RunConfig, questions: list[Question], out: Path, progress: bool,
         ex: ExecConfig | None, console: Console) -> dict[str, Any]:
    results = out / "results.jsonl"
    done = {d["question"]["id"]: Item.from_dict(d) for d in resume_lines(results)}
    todo = [q for q in questions if q.id not in done]
    if ex is None:
        todo = with_documents(todo, cfg, out, progress)
    t0 = time.perf_counter()
    failures: list[dict[str, Any]] = []
    clock = StageClock()
    if todo:
        stream, finish = _stream(cfg, ex, todo, out, clock)
        bar = Progress(len(questions), len(done), file=console.err, enabled=progress)
        try:
            for item in stream:
                append_line(results, item.to_dict())
                done[item.question.id] = item
                bar.add(questions=1, samples=len(item.solutions),
                        tokens=sum(int(s.meta.get("tokens") or 0) for s in item.solutions),
                        scored=len(item.prm or []))
        finally:
            bar.close()
            failures = finish()
    atomic_write_text(out / "failures.jsonl", "".join(json_line(f) for f in failures))
    items = [done[q.id] for q in questions if q.id in done]
    report = write_report(out, items, cfg.identity(), seed=cfg.seed, failures=failures,
                          progress=progress, rules=get_rules(cfg.rules),
                          extra={**adaptive_summary(cfg, items), **search_summary(cfg, items)},
                          stage_seconds=record_seconds(out, clock))
    return {**report, "resumed_questions": len(questions) - len(todo), "failed": len(failures),
            "seconds": round(time.perf_counter() - t0, 1)}


TIMING_FILE = "timing.json"
"""Stage seconds of a run folder, summed over the sessions that worked on it."""


def record_seconds(out: Path, clock: StageClock) -> dict[str, float]:
    """This session's stage seconds added to the folder's `timing.json` (which a resumed run
    keeps adding to, and `bestofn report` reads)."""
    path = out / TIMING_FILE
    earlier = json.loads(path.read_text()) if path.exists() else None
    total = clock.merged(earlier)
    atomic_write_text(path, json.dumps(total, indent=2) + "\n")
    return total


def adaptive_summary(cfg: RunConfig, items: list[Item]) -> dict[str, Any]:
    """For an adaptive run: samples drawn against the fixed-N budget (nothing otherwise)."""
    if not cfg.adaptive:
        return {}
    drawn = [len(it.solutions) for it in items]
    return {"adaptive": {"rule": cfg.adaptive, "round_size": cfg.round_size or "streamed",
                         "n_max": cfg.n,
                         "samples": sum(drawn), "budget": cfg.n * len(items),
                         "mean_samples": sum(drawn) / len(drawn) if drawn else 0.0}}


def search_summary(cfg: RunConfig, items: list[Item]) -> dict[str, Any]:
    """For a search run: finished and pruned candidates, tokens (nothing otherwise)."""
    if not cfg.search:
        return {}
    logs = [it.search or {} for it in items]
    return {"search": {"strategy": cfg.search, "n": cfg.n,
                       "finished": sum(len(it.solutions) for it in items),
                       "pruned": sum(s.get("pruned", 0) for lg in logs
                                     for s in lg.get("steps", [])),
                       "tokens_generated": sum(int(lg.get("tokens_generated") or 0)
                                               for lg in logs),
                       "prm_tokens_computed": sum(int(lg.get("prm_tokens_computed") or 0)
                                                  for lg in logs)}}


def with_documents(questions: list[Question], cfg: RunConfig, out: Path,
                   progress: bool) -> list[Question]:
    """Questions with their top-k retrieved passages, cached per question in the run folder
    (in-process runs; the Ray pipeline retrieves in an actor while the policy samples)."""
    if not cfg.index or not questions:
        return questions
    from retrieval import attach_documents, index_folder

    return attach_documents(questions, index_folder(cfg.index), cfg.k, cache_dir=out / "retrieval",
                            progress=progress)


def _stream(cfg: RunConfig, ex: ExecConfig | None, todo: list[Question], out: Path,
            clock: StageClock) -> tuple[Iterator[Item], Callable[[], list[dict[str, Any]]]]:
    """Finished items (any order) and a function returning the failures once drained."""
    if cfg.search:
        from .search.run_search import stream_search

        return stream_search(cfg, todo, clock)
    if cfg.adaptive:
        if ex is not None:
            todo = with_documents(todo, cfg, out, progress=False)
        if cfg.round_size is None:
            from .adaptive.stream import stream_adaptive

            return stream_adaptive(cfg, ex, todo, out, clock)
        from .adaptive.online import adaptive_stream

        return adaptive_stream(cfg, ex, todo, out, clock)
    if ex is None:
        with clock.stage("startup_s"):
            policy, scorer = build_policy(cfg), build_scorer(cfg)
        return (process(q, policy, scorer, cfg, clock) for q in todo), list
    pipe = RayPipeline(cfg, ex)
    with clock.stage("startup_s"):
        pipe.start()
    atomic_write_text(Path(cfg.out) / "workers.json", json.dumps(pipe.workers, indent=2) + "\n")

    def finish() -> list[dict[str, Any]]:
        pipe.stop(clock)
        return [asdict(f) for f in pipe.failures]

    return pipe.run(todo), finish
