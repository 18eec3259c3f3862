"""The Ray pipeline: policy and scorer actor pools, streaming per question.

Why actors and a driver loop rather than Ray Data: the unit of work that must be exactly-once
is one question (resume, failure records, per-question seeds), each engine is expensive to
start and must stay resident, and results must land in the run folder as each question
finishes. A driver that keeps a bounded number of questions in flight per actor and hands each
sampled question to the scorer pool as soon as it is ready (`ray.wait`) gives streaming between
stages, while only the driver writes the run folder, so there is one writer and no duplicate.

Failures: actors restart after a crash (`max_restarts`) and Ray retries the call that was
running (`max_task_retries`); a question whose call raises is retried up to `max_attempts`
times and then reported as failed, and the run goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from .records import Item, Question, Solution, StepScores
from .registry import require


@dataclass(frozen=True)
class ExecConfig:
    """Where and how a run executes; none of it changes the results."""

    ray_address: str | None = None
    """`None` starts a local Ray; `auto` or `HOST:PORT` joins a cluster."""
    policy_actors: int = 1
    scorer_actors: int = 1
    policy_gpus: float | None = None
    """GPUs per policy actor; `None`: 1 when the cluster has GPUs, else 0."""
    scorer_gpus: float | None = None
    in_flight: int = 2
    """Questions queued per policy actor, so that it never waits for the driver."""
    max_attempts: int = 3
    actor_restarts: int = 3
    num_cpus: int | None = None
    """CPUs of a locally started Ray (default: all)."""


@dataclass
class Failure:
    question_id: str
    stage: str
    error: str
    attempts: int


class _PolicyWorker:
    def __init__(self, cfg: dict[str, Any]) -> None:
        from .run import RunConfig
        from .stages import build_policy

        self.cfg = RunConfig(**cfg)
        self.policy = build_policy(self.cfg)

    def where(self) -> dict[str, Any]:
        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def solve(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        from .stages import solve

        return [s.to_dict() for s in solve(self.policy, Question.from_dict(q), self.cfg)]


class _ScorerWorker:
    def __init__(self, cfg: dict[str, Any]) -> None:
        from .run import RunConfig
        from .stages import build_scorer

        self.cfg = RunConfig(**cfg)
        self.scorer = build_scorer(self.cfg)

    def where(self) -> dict[str, Any]:
        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def verify(self, q: dict[str, Any], sols: list[dict[str, Any]]) -> dict[str, Any]:
        from .stages import verify

        prm, orm = verify(self.scorer, Question.from_dict(q),
                          [Solution.from_dict(s) for s in sols], self.cfg)
        return {"prm": None if prm is None else [s.to_dict() for s in prm], "orm": orm}


def _gpus(asked: float | None, ray: Any) -> float:
    if asked is not None:
        return asked
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def _actors(ray: Any, cls: type, n: int, gpus: float, cfg: dict[str, Any],
            ex: ExecConfig) -> list[Any]:
    remote = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=ex.actor_restarts,
                        max_task_retries=ex.actor_restarts)(cls)
    return [remote.options(scheduling_strategy="SPREAD").remote(cfg) for _ in range(n)]


class RayPipeline:
    """Streams questions through policy and scorer actor pools; yields finished items."""

    def __init__(self, cfg: Any, ex: ExecConfig) -> None:
        self.ray = require("ray", "'ray[data]'")
        self.cfg, self.ex = cfg, ex
        self.failures: list[Failure] = []
        self.workers: list[dict[str, Any]] = []

    def start(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
            if self.ex.ray_address:
                ray.init(address=self.ex.ray_address, runtime_env=env)
            else:
                ray.init(num_cpus=self.ex.num_cpus, include_dashboard=False, runtime_env=env)
        cfg = asdict(self.cfg)
        self.policies = _actors(ray, _PolicyWorker, self.ex.policy_actors,
                                _gpus(self.ex.policy_gpus, ray), cfg, self.ex)
        self.scorers = (_actors(ray, _ScorerWorker, self.ex.scorer_actors,
                                _gpus(self.ex.scorer_gpus, ray), cfg, self.ex)
                        if self.cfg.prm or self.cfg.orm else [])
        self.workers = ray.get([a.where.remote() for a in self.policies + self.scorers])

    def run(self, questions: list[Question]) -> Iterator[Item]:
        """Yield each question's Item as soon as it is scored (completion order)."""
        ray = self.ray
        queue = list(reversed(questions))
        inflight: dict[Any, tuple[str, Question, Any, int]] = {}
        sols_of: dict[str, list[dict[str, Any]]] = {}
        turn = {"solve": 0, "verify": 0}
        cap = self.ex.in_flight * len(self.policies)

        def submit(stage: str, q: Question, attempt: int) -> None:
            pool = self.policies if stage == "solve" else self.scorers
            actor = pool[turn[stage] % len(pool)]
            turn[stage] += 1
            ref = (actor.solve.remote(q.to_dict()) if stage == "solve"
                   else actor.verify.remote(q.to_dict(), sols_of[q.id]))
            inflight[ref] = (stage, q, actor, attempt)

        while queue or inflight:
            while queue and sum(s == "solve" for s, *_ in inflight.values()) < cap:
                submit("solve", queue.pop(), 1)
            [ref], _ = ray.wait(list(inflight), num_returns=1)
            stage, q, _actor, attempt = inflight.pop(ref)
            try:
                out = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - any task error is retried, then recorded
                if attempt < self.ex.max_attempts:
                    submit(stage, q, attempt + 1)
                else:
                    self.failures.append(Failure(q.id, stage, _error_text(e), attempt))
                    sols_of.pop(q.id, None)
                continue
            if stage == "solve":
                sols_of[q.id] = out
                if self.scorers:
                    submit("verify", q, 1)
                    continue
                out = {"prm": None, "orm": None}
            sols = [Solution.from_dict(s) for s in sols_of.pop(q.id)]
            prm = None if out["prm"] is None else [StepScores.from_dict(s) for s in out["prm"]]
            yield Item(q, sols, prm=prm, orm=out["orm"])

    def stop(self) -> None:
        for a in self.policies + self.scorers:
            self.ray.kill(a)


def _error_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"[:2000]
