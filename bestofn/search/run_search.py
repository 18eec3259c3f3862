"""`bestofn run --search STRATEGY`: the checks a search run passes before anything is written.

The questions then go to the one scheduler loop as search jobs (`execution.jobs`), in
this process or on the Ray actors: at most `EngineOptions.samples_in_flight` step requests
run at once, over `samples_in_flight // n` open questions (at least one); every finished
question is written at once, so a killed run resumes with the questions not yet written
(searched again from the start: seeds depend only on the run seed, question, lineage and
step, so the result is the same). A question whose scoring raised on its own is a failure
the run driver retries and records.
"""

from __future__ import annotations

from ..config import RunConfig
from .strategies import parse_strategy


def check_search(cfg: RunConfig) -> None:
    """Refuse a bad `--search` before anything is written."""
    search, policy = cfg.strategy.search, cfg.policy
    if not search:
        return
    parse_strategy(search)
    if not cfg.verifiers.prm.model:
        raise ValueError(f"--search {search}: search needs a PRM (--prm)")
    if cfg.strategy.adaptive:
        raise ValueError("--search and --adaptive cannot be combined")
    if policy.backend != "vllm":
        raise ValueError(f"--search needs --policy-backend vllm (got {policy.backend!r})")
    if policy.max_steps:
        raise ValueError("--search does not filter by step count: pass --valid-steps off")
