"""`bestofn run --search STRATEGY`: the in-process path (the Ray pipeline does not search).

The questions go to the streaming scheduler as search jobs (`loop.search_items`): at most
`EngineOptions.samples_in_flight` step requests run at once, over `samples_in_flight // n`
open questions (at least one); every finished question is written at once, so a killed run
resumes with the questions not yet written (searched again from the start: seeds depend only
on the run seed, question, lineage and step, so the result is the same). A question whose
scoring raised on its own is a failure the run driver retries and records.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..config import RunConfig
from ..driver import Executor, Outcome
from ..records import Question
from ..scheduler.ledger import StageClock
from .loop import search_items
from .scoring import prm_documents
from .strategies import parse_strategy


def check_search(cfg: RunConfig) -> None:
    """Refuse a bad `--search` before anything is written."""
    if not cfg.search:
        return
    parse_strategy(cfg.search)
    if not cfg.prm:
        raise ValueError(f"--search {cfg.search}: search needs a PRM (--prm)")
    if cfg.adaptive:
        raise ValueError("--search and --adaptive cannot be combined")
    if cfg.policy_backend != "vllm":
        raise ValueError(f"--search needs --policy-backend vllm (got {cfg.policy_backend!r})")
    if cfg.max_steps:
        raise ValueError("--search does not filter by step count: pass --valid-steps off")


def search_execution(cfg: RunConfig, clock: StageClock, documents: Any) -> Executor:
    """The run's search as a `driver.Execution`: the engines are built once; each pass
    (the first, and the driver's retries of failed questions) searches its questions on
    them. `documents`: the run's documents stage (None: no index)."""
    from ..stages import build_policy, build_scorer

    with clock.stage("startup_s"):
        policy, verifiers = build_policy(cfg), build_scorer(cfg)
    strategy = parse_strategy(cfg.search)  # type: ignore[arg-type]

    def outcomes(todo: list[Question]) -> Iterator[Outcome]:
        return search_items(policy, verifiers.prm, todo, cfg.n, cfg.sampling(), strategy,
                            docs=prm_documents(todo, cfg.use_docs), clock=clock,
                            in_flight=cfg.engine.samples_in_flight)

    return Executor(outcomes, documents)
