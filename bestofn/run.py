"""`bestofn run`: questions → N samples → marking and answers → PRM scores → selection → report.

This module checks the inputs and the run folder, opens the execution for the config (jobs on
the one scheduler loop, in this process or on Ray; fixed N, adaptive or search:
`execution.placement.open_execution`) and writes the report; the run driver
(`bestofn.execution.driver`) owns what happens in between, the same for every execution: resume from
`results.jsonl` (each finished question appended, fsync'd, so a run that stops for any reason
resumes where it stopped and, with the same config and seeds, ends with the same report),
retries, `failures.jsonl` and progress.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .config import ExecConfig, RunConfig
from .console import LOG_NAME, Console, quiet
from .evaluation.ledger import StageClock
from .evaluation.select import get_rules
from .execution.driver import FAILURES_FILE, RESULTS_FILE, drive
from .execution.placement import open_execution
from .execution.scheduler import EngineFailure
from .execution.stages import resolve_config
from .jobs.kinds import run_jobs_for
from .report import write_report
from .text.datasets import load_questions
from .text.files import atomic_write_text, load_json
from .text.records import Item, Question


class ConfigMismatch(RuntimeError):
    pass


def check_run_dir(out: Path, cfg: RunConfig, overwrite: bool) -> None:
    """Refuse to mix results of two configs in one folder unless `overwrite` clears it.

    A setting missing from an older config.json counts as its default, so a folder written
    before a setting existed resumes when the setting keeps its default.
    """
    path = out / "config.json"
    if path.exists() and not overwrite:
        old = _current_spelling(load_json(path, dict, "object of run settings"))
        defaults = RunConfig.from_settings(policy_backend=cfg.policy.backend).identity()
        diff = {k: (old.get(k, defaults.get(k)), v) for k, v in cfg.identity().items()
                if old.get(k, defaults.get(k)) != v}
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ConfigMismatch(f"{out} holds a run with another config ({changes}); "
                                 "use another --out or pass --overwrite")
    if overwrite:
        for name in (RESULTS_FILE, "rounds.jsonl", "report.json", "report.md",
                     FAILURES_FILE, "timing.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cfg.identity(), indent=2) + "\n")


def _current_spelling(old: dict[str, Any]) -> dict[str, Any]:
    """An older config.json's settings as this version writes them (a search strategy's
    `agg=last` is `agg=final`)."""
    if isinstance(old.get("search"), str):
        from .search.strategies import format_strategy, parse_strategy

        try:
            return {**old, "search": format_strategy(parse_strategy(old["search"]))}
        except ValueError:
            return old
    return old


def check_inputs(cfg: RunConfig) -> None:
    """Backends by name, engine options against the backend, and models, adapters, a replay
    file and an index that are local paths: refused before the run folder exists."""
    from policies import POLICIES

    from .scorers import SCORERS

    policy, prm, orm, index = (cfg.policy, cfg.verifiers.prm, cfg.verifiers.orm,
                               cfg.documents.index)
    POLICIES.check(policy.backend, "--policy-backend")
    cfg.engine.backend_kwargs(policy.backend, preset=policy.preset, device=cfg.device,
                              lora=policy.lora)
    if prm.model:
        SCORERS.check(prm.backend, "--prm-backend")
    if orm.model:
        SCORERS.check(orm.backend, "--orm-backend")
    if policy.backend == "replay" and not Path(policy.model).expanduser().is_file():
        raise FileNotFoundError(f"--policy {policy.model}: no such solutions file (the replay "
                                "backend reads one)")
    local = {"--policy": policy.model if policy.backend in ("hf", "vllm") else None,
             "--prm": prm.model, "--orm": orm.model, "--orm-adapter": orm.adapter,
             "--lora": policy.lora, "--index": None if index == "default" else index}
    for flag, name in local.items():
        if name and _missing_path(name):
            raise FileNotFoundError(f"{flag} {name}: no such folder")


def _missing_path(name: str) -> bool:
    """A name written as a local path (absolute, ./, ~, or with two slashes: not an
    org/name hub id) that does not exist."""
    if name in ("smollm2", "embedded", "minilm"):
        return False
    looks_local = name.startswith(("/", ".", "~")) or name.count("/") > 1
    return looks_local and not Path(name).expanduser().exists()


def prepare(cfg: RunConfig) -> tuple[RunConfig, list[Question]]:
    """The resolved config and its questions, every input checked before anything is written."""
    check_inputs(cfg)
    cfg = resolve_config(cfg)
    get_rules(cfg.rules)
    if cfg.strategy.adaptive:
        from .adaptive.rules import format_rule
        from .jobs.adaptive import run_rule

        cfg = replace(cfg, strategy=replace(cfg.strategy, adaptive=format_rule(run_rule(cfg))))
    if cfg.strategy.search:
        from .search.run_search import check_search
        from .search.strategies import format_strategy, parse_strategy

        check_search(cfg)
        search = format_strategy(parse_strategy(cfg.strategy.search))
        cfg = replace(cfg, strategy=replace(cfg.strategy, search=search))
    return cfg, load_questions(cfg.dataset, limit=cfg.questions)


def run(cfg: RunConfig, *, overwrite: bool = False, progress: bool = True,
        ex: ExecConfig | None = None, quiet_logs: bool = False,
        console: Console | None = None, questions: list[Question] | None = None,
        max_attempts: int | None = None) -> dict[str, Any]:
    """Run (or resume) and write the report: in-process when `ex` is None, else on Ray.

    `quiet_logs` sends engine and Ray logs to `engine.log` in the run folder and keeps the
    terminal for the progress display; `console` is a terminal a caller already set up
    (`console.quiet`). Returns report.json's content plus this session's
    `seconds`, `resumed_questions` and `failed` (questions that failed every attempt; a later
    resume retries them). `questions`: what `prepare(cfg)` returned for this (prepared)
    config, when the caller prepared it already. `max_attempts`: tries per question before it
    is recorded as failed (default: `ex.max_attempts`, in-process `ExecConfig`'s default).
    """
    if questions is None:
        cfg, questions = prepare(cfg)
    if max_attempts is not None:
        ExecConfig(max_attempts=max_attempts)  # refuses a count below 1
    attempts = max_attempts or (ex or ExecConfig()).max_attempts
    out = Path(cfg.out)
    check_run_dir(out, cfg, overwrite)
    if console is not None:
        return _run(cfg, questions, out, progress, ex, attempts, console)
    with quiet(out / LOG_NAME, verbose=not quiet_logs) as con:
        return _run(cfg, questions, out, progress, ex, attempts, con)


def _run(cfg: RunConfig, questions: list[Question], out: Path, progress: bool,
         ex: ExecConfig | None, max_attempts: int, console: Console) -> dict[str, Any]:
    t0 = time.perf_counter()
    clock = StageClock()
    known = {q.id for q in questions}
    try:
        def jobs_for(workers: Any, todo: list[Question]) -> Any:
            return run_jobs_for(cfg, workers, todo, out, clock, known)

        got = drive(questions, out, lambda: open_execution(cfg, ex, out, clock, jobs_for,
                                                           progress, console.err),
                    max_attempts, console, progress)
    except EngineFailure as e:
        raise EngineFailure(e.engine, e.error, resume=str(out)) from e
    items = [got.done[q.id] for q in questions if q.id in got.done]
    failures = [asdict(f) for f in got.failures]
    report = write_report(out, items, cfg.identity(), seed=cfg.seed, failures=failures,
                          progress=progress, rules=get_rules(cfg.rules),
                          extra={**adaptive_summary(cfg, items), **search_summary(cfg, items)},
                          stage_seconds=record_seconds(out, clock))
    return {**report, "resumed_questions": got.resumed, "failed": len(failures),
            "seconds": round(time.perf_counter() - t0, 1)}


TIMING_FILE = "timing.json"
"""Stage seconds of a run folder, summed over the sessions that worked on it."""


def record_seconds(out: Path, clock: StageClock) -> dict[str, Any]:
    """This session's stage seconds added to the folder's `timing.json` (which a resumed run
    keeps adding to, and `bestofn report` reads), with this session's `startup_parts`: the
    seconds from the start-up's beginning until each part (Ray, policy, PRM, ...) was ready."""
    path = out / TIMING_FILE
    earlier = json.loads(path.read_text()) if path.exists() else None
    total: dict[str, Any] = {**clock.merged(earlier)}
    if clock.startup_parts:  # this session's start-up, part by part
        total["startup_parts"] = clock.startup_parts
    atomic_write_text(path, json.dumps(total, indent=2) + "\n")
    return total


def adaptive_summary(cfg: RunConfig, items: list[Item]) -> dict[str, Any]:
    """For an adaptive run: samples drawn against the fixed-N budget (nothing otherwise)."""
    if not cfg.strategy.adaptive:
        return {}
    drawn = [len(it.solutions) for it in items]
    return {"adaptive": {"rule": cfg.strategy.adaptive, "round_size": "streamed",
                         "n_max": cfg.n,
                         "samples": sum(drawn), "budget": cfg.n * len(items),
                         "mean_samples": sum(drawn) / len(drawn) if drawn else 0.0}}


def search_summary(cfg: RunConfig, items: list[Item]) -> dict[str, Any]:
    """For a search run: finished and pruned candidates, tokens (nothing otherwise)."""
    if not cfg.strategy.search:
        return {}
    logs = [it.search or {} for it in items]
    return {"search": {"strategy": cfg.strategy.search, "n": cfg.n,
                       "finished": sum(len(it.solutions) for it in items),
                       "pruned": sum(s.get("pruned", 0) for lg in logs
                                     for s in lg.get("steps", [])),
                       "tokens_generated": sum(int(lg.get("tokens_generated") or 0)
                                               for lg in logs),
                       "prm_tokens_computed": sum(int(lg.get("prm_tokens_computed") or 0)
                                                  for lg in logs)}}
