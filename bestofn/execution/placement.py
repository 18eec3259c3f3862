"""Where a run's jobs run: the one "in this process or on Ray?" branch.

The engines start once (`workers.LocalWorkers` or `ray_workers.RayWorkers`); every pass of
the run driver (the first, and its retries of failed questions) runs its questions as jobs
on them (`jobs_for`: `bestofn.jobs.kinds.run_jobs_for`, which knows the job kinds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from bestofn.config import ExecConfig, RunConfig

from ..evaluation.ledger import StageClock
from ..text.records import Question

JobsFor = Callable[[Any, list[Question]], Iterator[Any]]
"""(workers, questions) -> each question's outcome as it settles (`jobs.kinds.run_jobs_for`)."""


def open_execution(cfg: RunConfig, ex: ExecConfig | None, out: Path, clock: StageClock,
                   jobs_for: JobsFor, progress: bool = False,
                   terminal: IO[str] | None = None) -> Any:
    """The run's `driver.Execution`: its engines started once, in this process when `ex` is
    None, else on the Ray actors, the parts that do not depend on each other at the same time
    (`startup`), named on the progress line (`terminal`) while they load; every pass of the
    driver (the first, and its retries of failed questions) runs its questions as jobs on
    them (`jobs_for`)."""
    from bestofn.execution.driver import Executor

    from .startup import StartupLine, part_labels

    parts = list(part_labels(cfg).values())
    line = StartupLine(parts if ex is None else ["Ray", *parts], terminal, enabled=progress)
    try:
        if ex is None:
            from .workers import LocalWorkers

            workers: Any = LocalWorkers.for_run(cfg, out, clock, progress, line)
        else:
            from bestofn.execution.ray_workers import RayWorkers

            workers = RayWorkers.for_run(cfg, ex, clock, line)
    finally:
        line.close()
        clock.startup_parts = dict(line.seconds)
    return Executor(lambda qs: jobs_for(workers, qs),
                    workers.documents, workers.close)
