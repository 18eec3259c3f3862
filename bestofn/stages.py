"""The pure stages of a run, shared by the in-process path and the Ray pipeline.

build_* turn a `RunConfig` into engines through the one factory (`bestofn.engines`); `solve`
and `verify` do the work. The Ray pipeline only places these calls on actors; `process` chains
them in-process (`--no-ray`), so both paths compute the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import RunConfig
from .driver import Failed, failed
from .engines import PolicySpec
from .records import Item, Question, Solution, StepScores
from .scheduler.ledger import Compute, StageClock
from .scorers.protocol import TokenCounts


def resolve_config(cfg: RunConfig) -> RunConfig:
    """Sampling settings and step filter left open (None) taken from the policy's preset
    (`engines.resolve_preset_sampling`, as `sample` and `serve` resolve theirs)."""
    from .engines import resolve_preset_sampling

    preset, sampling = resolve_preset_sampling(cfg.policy, cfg.preset, cfg.seed)
    stored = cfg.policy_backend == "replay"  # stored samples were filtered when drawn, if ever
    return cfg.resolved(sampling, None if stored else preset.steps)


def policy_spec(cfg: RunConfig) -> PolicySpec:
    """The run's policy as the engine factory takes it."""
    return PolicySpec(model=cfg.policy, backend=cfg.policy_backend, preset=cfg.preset,
                      device=cfg.device, lora=cfg.lora, engine=cfg.engine,
                      steps=(cfg.min_steps or 1, cfg.max_steps) if cfg.max_steps else None)


def build_policy(cfg: RunConfig) -> Any:
    from .engines import build_policy as build

    return build(policy_spec(cfg))


@dataclass
class Verifiers:
    """The run's verifiers: a PRM, an ORM, both or neither (majority vote only)."""

    prm: Any = None
    orm: Any = None
    tokens: dict[str, TokenCounts] = field(
        default_factory=lambda: {"prm": TokenCounts(), "orm": TokenCounts()})
    """What scoring cost so far, by verifier kind."""

    def __bool__(self) -> bool:
        return self.prm is not None or self.orm is not None


def build_scorer(cfg: RunConfig) -> Verifiers:
    from .engines import build_orm, build_prm

    return Verifiers(build_prm(cfg.prm, cfg.prm_backend, cfg.prm_options(), cfg.use_docs),
                     build_orm(cfg.orm_options()))


def solve(policy: Any, qs: list[Question], cfg: RunConfig, n: int | None = None,
          start: int = 0) -> list[list[Solution]]:
    """N solutions for each question (samples start..start+n-1 when given: an adaptive
    round), in one policy call (seeds are per question and per sample index, so how the
    questions are grouped does not change the samples)."""
    n = cfg.n if n is None else n
    out = policy.sample(qs, n, cfg.sampling(), start=start)
    assert len(out) == len(qs), f"{len(qs)} questions, {len(out)} solution lists"
    for q, sols in zip(qs, out, strict=True):
        assert len(sols) <= n, f"question {q.id}: asked for {n} solutions, got {len(sols)}"
    return out


def verify(v: Verifiers, work: list[tuple[Question, list[Solution]]], cfg: RunConfig,
           ) -> list[tuple[list[StepScores] | None, list[float | None] | None]]:
    """(PRM step scores, ORM scores) of several questions' solutions, None where not
    configured; each verifier sees every question in one `score_requests` call (prm-vllm
    sends all their prompts in one engine call, each prefix computed once)."""
    from .batch_scoring import Request, orm_values, score_requests

    jobs = [Request(q, sols, [d.text for d in q.documents or []] if cfg.use_docs else None)
            for q, sols in work]
    prm = score_requests(v.prm, jobs, v.tokens["prm"]).results if v.prm is not None else None
    orm = score_requests(v.orm, jobs, v.tokens["orm"]).results if v.orm is not None else None
    return [(prm[i] if prm is not None else None,
             orm_values(orm[i]) if orm is not None else None) for i in range(len(jobs))]


def prm_tokens_computed(v: Verifiers) -> int:
    """Tokens the run's PRM has computed so far (not read from a cache)."""
    return v.tokens["prm"].computed_tokens


def process(q: Question, policy: Any, v: Verifiers, cfg: RunConfig,
            clock: StageClock | None = None) -> Item | Failed:
    """One question through every stage, in this process; a stage that raises makes it a
    `Failed` (the run driver tries it again, then records it)."""
    clock = clock or StageClock()
    try:
        with clock.stage("sample_s"):
            [sols] = solve(policy, [q], cfg)
    except Exception as e:  # noqa: BLE001 - the question's failure, not the run's
        return failed(q, "solve", e)
    before = prm_tokens_computed(v)
    try:
        with clock.stage("score_s"):
            [(prm, orm)] = verify(v, [(q, sols)], cfg)
    except Exception as e:  # noqa: BLE001
        return failed(q, "verify", e)
    spent = prm_tokens_computed(v) - before
    return Item(q, sols, prm=prm, orm=orm, compute=Compute.kept(sols, spent).to_dict())
