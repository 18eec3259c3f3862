"""The pure stages of a run, shared by the in-process path and the Ray pipeline.

build_* turn a `RunConfig` into engines; `solve` and `verify` do one question's work. The Ray
pipeline only places these calls on actors; `process` chains them in-process (`--no-ray`), so
both paths compute the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import RunConfig
from .records import Item, Question, Solution, StepScores
from .scheduler.ledger import Compute, StageClock


def resolve_config(cfg: RunConfig) -> RunConfig:
    """Sampling settings and step filter left open (None) taken from the policy's preset."""
    from policies.presets import get_preset

    preset = get_preset(cfg.preset)
    stored = cfg.policy_backend == "replay"  # stored samples were filtered when drawn, if ever
    return cfg.resolved(preset.sampling, None if stored else preset.steps)


def build_policy(cfg: RunConfig) -> Any:
    from policies import make_policy
    from policies.validity import ValidityConfig, ValidPolicy

    policy = make_policy(cfg.policy_backend, model=cfg.policy,
                         **cfg.engine.backend_kwargs(cfg.policy_backend, preset=cfg.preset,
                                                     device=cfg.device, lora=cfg.lora))
    if not cfg.max_steps:
        return policy
    return ValidPolicy(policy, ValidityConfig(min_steps=cfg.min_steps or 1,
                                              max_steps=cfg.max_steps, fill_invalid=True))


@dataclass
class Verifiers:
    """The run's verifiers: a PRM, an ORM, both or neither (majority vote only)."""

    prm: Any = None
    orm: Any = None

    def __bool__(self) -> bool:
        return self.prm is not None or self.orm is not None


def build_scorer(cfg: RunConfig) -> Verifiers:
    from .scorers import make_scorer

    prm = make_scorer(cfg.prm_backend, model=cfg.prm,
                      **cfg.prm_options().scorer_kwargs(cfg.use_docs)) if cfg.prm else None
    orm = make_scorer(cfg.orm_backend, model=cfg.orm, device=cfg.device,
                      adapter=cfg.orm_adapter) if cfg.orm else None
    return Verifiers(prm, orm)


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


def verify(v: Verifiers, q: Question, sols: list[Solution],
           cfg: RunConfig) -> tuple[list[StepScores] | None, list[float | None] | None]:
    """(PRM step scores, ORM scores) of one question's solutions; None where not configured."""
    docs = [d.text for d in q.documents or []] if cfg.use_docs else None
    prm = v.prm.score(q, docs, sols) if v.prm is not None else None
    orm = v.orm.score(q, docs, sols) if v.orm is not None else None
    for name, got in (("PRM", prm), ("ORM", orm)):
        assert got is None or len(got) == len(sols), (
            f"question {q.id}: {len(sols)} solutions, {len(got or [])} {name} scores")
    return prm, orm


def verify_many(v: Verifiers, work: list[tuple[Question, list[Solution]]], cfg: RunConfig,
                ) -> list[tuple[list[StepScores] | None, list[float | None] | None]]:
    """`verify` for several questions: a PRM that batches questions (`score_many`: prm-vllm
    sends all their prompts in one engine call, each prefix computed once) sees them at once."""
    if len(work) == 1 or v.prm is None:
        return [verify(v, q, sols, cfg) for q, sols in work]
    from .batch_scoring import Request, prm_scores

    jobs = [Request(q, sols, [d.text for d in q.documents or []] if cfg.use_docs else None)
            for q, sols in work]
    out = []
    for r, prm in zip(jobs, prm_scores(v.prm, jobs), strict=True):
        q, sols, docs = r.question, list(r.solutions), r.documents
        orm = v.orm.score(q, docs, sols) if v.orm is not None else None
        assert len(prm) == len(sols), f"question {q.id}: {len(sols)} solutions, {len(prm)} PRM"
        assert orm is None or len(orm) == len(sols), f"question {q.id}: ORM count"
        out.append((prm, orm))
    return out


def prm_tokens_computed(v: Verifiers) -> int:
    """Tokens the run's PRM has computed so far (0 for a scorer that does not count them)."""
    return int(getattr(v.prm, "tokens_computed", 0) or 0)


def fixed_compute(sols: list[Solution], prm_tokens: int) -> Compute:
    """What a fixed-N question cost: every sample drawn is kept."""
    tokens = sum(int(s.meta.get("tokens") or 0) for s in sols)
    return Compute(samples_drawn=len(sols), tokens_generated=tokens,
                   prm_tokens_computed=prm_tokens)


def process(q: Question, policy: Any, v: Verifiers, cfg: RunConfig,
            clock: StageClock | None = None) -> Item:
    """One question through every stage, in this process."""
    clock = clock or StageClock()
    with clock.stage("sample_s"):
        [sols] = solve(policy, [q], cfg)
    before = prm_tokens_computed(v)
    with clock.stage("score_s"):
        prm, orm = verify(v, q, sols, cfg)
    spent = prm_tokens_computed(v) - before
    return Item(q, sols, prm=prm, orm=orm, compute=fixed_compute(sols, spent).to_dict())
