"""A run's config turned into engines, the same in this process and on the Ray actors.

`resolve_config` fills the sampling settings a run left open from its policy's preset;
`build_policy` and `build_scorer` go through the one engine factory (`bestofn.execution.engines`).
What
the engines then do is jobs on the scheduler (`bestofn.execution.jobs`); the validity
filter is job logic there (`execution.fixed.FixedJob`), so a run's policy is never wrapped.
"""

from __future__ import annotations

from typing import Any

from ..config import RunConfig
from .engines import PolicySpec
from .scoring import Verifiers


def resolve_config(cfg: RunConfig) -> RunConfig:
    """Sampling settings and step filter left open (None) taken from the policy's preset
    (`engines.resolve_preset_sampling`, as `sample` and `serve` resolve theirs)."""
    from .engines import resolve_preset_sampling

    preset, sampling = resolve_preset_sampling(cfg.policy.model, cfg.policy.preset, cfg.seed)
    stored = cfg.policy.backend == "replay"  # stored samples were filtered when drawn, if ever
    return cfg.resolved(sampling, None if stored else preset.steps)


def policy_spec(cfg: RunConfig) -> PolicySpec:
    """The run's policy as the engine factory takes it (unfiltered: the jobs filter)."""
    p = cfg.policy
    return PolicySpec(model=p.model, backend=p.backend, preset=p.preset, device=cfg.device,
                      lora=p.lora, engine=cfg.engine)


def build_policy(cfg: RunConfig) -> Any:
    from .engines import build_policy as build

    return build(policy_spec(cfg))


def build_scorer(cfg: RunConfig) -> Verifiers:
    return Verifiers(build_run_prm(cfg), build_run_orm(cfg))


def build_run_prm(cfg: RunConfig) -> Any:
    """The run's PRM (None without one); built apart from the ORM so both can load at once."""
    from .engines import build_prm

    prm = cfg.verifiers.prm
    return build_prm(prm.model, prm.backend, cfg.prm_options(), prm.use_docs)


def build_run_orm(cfg: RunConfig) -> Any:
    from .engines import build_orm

    return build_orm(cfg.orm_options())
