"""The Ray engines of a run: policy, scorer and retrieval actors (`RayWorkers`).

Why actors rather than Ray Data: the unit of work that must be exactly-once is one question
(resume, failure records, per-question seeds), each engine is expensive to start and must
stay resident, and results must land in the run folder as each question finishes. The driver
runs the same scheduler loop as an in-process run (`execution.jobs`): each policy actor
hosts a `SampleStream` that the driver's `execution.ray_stream.RayStream` submits to and
polls (so fixed, adaptive and search jobs all run here, step requests included), the scoring
side calls the scorer actors (`execution.scoring.score_pairs`, the in-process function), and
the documents stage (`bestofn.execution.documents`) searches on the retrieval actor, which holds the
FAISS index and the query embedder, while the driver writes the search cache. Only the driver
writes the run folder, so there is one writer and no duplicate.

Failures: actors restart after a crash (`max_restarts`); Ray retries a scorer call that was
running (`max_task_retries`), and the Ray stream sends a restarted policy actor the requests
it lost, with the same seeds, so a run finishes as if nothing happened. A question whose own
request or scoring raises comes out as `driver.Failed`, which the run driver retries up to
`max_attempts` times, then records; the run goes on.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from ..config import ExecConfig, RunConfig
from ..console import log_file_for_workers, to_log_file
from ..evaluation.ledger import StageClock
from ..registry import require
from ..text.files import atomic_write_text
from ..text.records import Document, Question, Solution
from .documents import CACHE_DIR, Documents, IndexLookup
from .requests import SampleKey, SampleRequest, StepRequest
from .scoring import Scored, score_pairs
from .startup import StartupLine, part_labels

WORKERS_FILE = "workers.json"
"""Where each actor of a Ray run runs (stage, node, pid), written when they are up."""


class _Worker:
    stage = ""

    def __init__(self, cfg: RunConfig) -> None:
        log = log_file_for_workers()
        if log:
            to_log_file(log)
        self.cfg = cfg

    def where(self) -> dict[str, Any]:
        import ray

        return {"stage": self.stage, "node": ray.get_runtime_context().get_node_id(),
                "pid": os.getpid()}


class _PolicyWorker(_Worker):
    """The policy's `SampleStream` on an actor (`execution.ray_stream.RayStream` drives it).

    `incarnation` is new each time the actor starts, so the driver sees a restart (its
    running requests were lost with the process) and sends them again; a request whose key
    is already running here is not started twice."""

    stage = "policy"

    def __init__(self, cfg: RunConfig) -> None:
        from .stages import build_policy
        from .streams import make_stream

        super().__init__(cfg)
        _engine_in_this_process(cfg)
        self.policy = build_policy(self.cfg)
        self.samples = make_stream(self.policy)
        self.incarnation = uuid.uuid4().hex
        self.live: set[SampleKey] = set()

    def _new(self, requests: list[Any]) -> list[Any]:
        fresh = [r for r in requests if r.key not in self.live]
        self.live.update(r.key for r in fresh)
        return fresh

    def stream_submit(self, requests: list[SampleRequest]) -> None:
        self.samples.submit(self._new(requests), self.cfg.sampling())

    def stream_submit_steps(self, requests: list[StepRequest]) -> None:
        """Search steps: continuations from token ids on this actor's engine."""
        self.samples.submit_steps(self._new(requests), self.cfg.sampling())

    def stream_poll(self, timeout: float) -> tuple[str, list[Any]]:
        """This actor's incarnation, and what finished (`Finished`, `StepOutput`, or a
        `SampleError` carrying the request's own error)."""
        done = self.samples.poll(timeout)
        self.live.difference_update(f.key for f in done)
        return self.incarnation, done

    def where(self) -> dict[str, Any]:
        return {**super().where(), "incarnation": self.incarnation}

    def stream_abort(self, keys: list[SampleKey]) -> int:
        self.live.difference_update(keys)
        return self.samples.abort(keys)


def _engine_in_this_process(cfg: RunConfig) -> None:
    """vLLM on CPU runs its engine core and its worker in this actor's process: otherwise it
    starts two more processes one after the other, each importing torch and vLLM again (about
    30 of the main job's 60 s of start-up on 2 cores; the samples are the same). The actor is
    the policy's own process already. Not on GPU, where the engine core's process overlaps
    scheduling with the GPU's work; `VLLM_ENABLE_V1_MULTIPROCESSING` in the environment wins."""
    from ..config import resolve_backend

    if resolve_backend(cfg.policy.backend) != "vllm":
        return
    from policies.vllm import on_cpu_platform

    if on_cpu_platform():
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


class _RetrieverWorker(_Worker):
    """The documents stage's search (`documents.IndexLookup`) on an actor. It opens the index on
    first use rather than at construction, so that an index error reaches the driver as the
    error it is, and a restarted actor opens it again."""

    stage = "retriever"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        assert cfg.documents.index, "a retrieval actor needs an index"
        self.index = IndexLookup(cfg.documents.index, cfg.documents.k)

    def fingerprint(self) -> str:
        self.index.open()
        return self.index.fingerprint()

    def search(self, queries: list[str]) -> list[list[dict[str, Any]]]:
        return [[d.to_dict() for d in docs] for docs in self.index.search(queries)]


class ActorLookup:
    """The retrieval actor as the documents stage's `Lookup`, seen from the driver."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self.ray, self.actor = ray, actor

    def fingerprint(self) -> str:
        return str(_get(self.ray, self.actor.fingerprint.remote()))

    def search(self, queries: list[str], progress: bool = False) -> list[list[Document]]:
        found = _get(self.ray, self.actor.search.remote(queries))
        return [[Document.from_dict(d) for d in docs] for docs in found]


class _ScorerWorker(_Worker):
    stage = "scorer"

    def __init__(self, cfg: RunConfig) -> None:
        from .stages import build_scorer

        super().__init__(cfg)
        self.verifiers = build_scorer(self.cfg)

    def score(self, work: list[tuple[Question, list[Solution]]],
              prm_only: bool = False) -> list[Scored]:
        """Several questions' scores in one call (`execution.scoring.score_pairs`)."""
        return score_pairs(self.verifiers, work, self.cfg.verifiers.prm.use_docs, prm_only)


def _gpus(asked: float | None, ray: Any) -> float:
    if asked is not None:
        return asked
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def _actors(ray: Any, cls: type, n: int, gpus: float, cfg: dict[str, Any],
            ex: ExecConfig, cpus: float = 1) -> list[Any]:
    remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=ex.actor_restarts,
                        max_task_retries=ex.actor_restarts)(cls)
    return [remote.options(scheduling_strategy="SPREAD").remote(cfg) for _ in range(n)]


class RayWorkers:
    """The run's engines on Ray actors: policy actors behind one `RayStream`, scorer actors
    behind `score`, the retrieval actor behind the documents stage (`bestofn.execution.documents`,
    cached in the run folder by this process)."""

    def __init__(self, cfg: RunConfig, ex: ExecConfig) -> None:
        self.ray = require("ray", "'ray[data]'")
        self.cfg, self.ex = cfg, ex
        self.workers: list[dict[str, Any]] = []
        self.policies: list[Any] = []
        self.scorers: list[Any] = []
        self.retrievers: list[Any] = []
        self.stream: Any = None
        self.documents: Documents | None = None

    @classmethod
    def for_run(cls, cfg: RunConfig, ex: ExecConfig, clock: StageClock,
                line: StartupLine | None = None) -> RayWorkers:
        workers = cls(cfg, ex)
        with clock.stage("startup_s"):
            workers.start(line or StartupLine(["Ray", *part_labels(cfg).values()],
                                              enabled=False))
        return workers

    def start(self, line: StartupLine) -> None:
        """Ray, then every actor at once (each loads its engine in its own process); the
        driver takes each actor as it is up, and the index starts opening on the retrieval
        actor meanwhile (its errors reach the driver on the first search, as before)."""
        from .ray_stream import RayStream

        ray, cfg = self.ray, self.cfg
        self._init_ray()
        line.ready("Ray")
        self.policies = _actors(ray, _PolicyWorker, self.ex.policy_actors,
                                _gpus(self.ex.policy_gpus, ray), cfg, self.ex)
        if cfg.verifiers.any:
            self.scorers = _actors(ray, _ScorerWorker, self.ex.scorer_actors,
                                   _gpus(self.ex.scorer_gpus, ray), cfg, self.ex)
        if cfg.documents.index:
            self.retrievers = _actors(ray, _RetrieverWorker, 1, 0, cfg, self.ex,
                                      cpus=self.ex.retriever_cpus)
        self.workers = self._wait_up(line)
        atomic_write_text(Path(self.cfg.out) / WORKERS_FILE, json.dumps(
            [{k: v for k, v in w.items() if k != "incarnation"} for w in self.workers],
            indent=2) + "\n")
        self.stream = RayStream(ray, self.policies, restarts=self.ex.actor_restarts,
                                incarnations=[w["incarnation"] for w in
                                              self.workers[:len(self.policies)]])
        if self.retrievers:
            self.documents = Documents(ActorLookup(ray, self.retrievers[0]), cfg.documents.k,
                                       Path(self.cfg.out) / CACHE_DIR)

    def _init_ray(self) -> None:
        if self.ray.is_initialized():
            return
        log = log_file_for_workers()
        env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false",
                            **({"BESTOFN_LOG_FILE": log} if log else {})}}
        if self.ex.ray_address:
            self.ray.init(address=self.ex.ray_address, runtime_env=env, log_to_driver=not log)
        else:
            self.ray.init(num_cpus=self.ex.num_cpus, include_dashboard=False, runtime_env=env,
                          log_to_driver=not log)

    def _wait_up(self, line: StartupLine) -> list[dict[str, Any]]:
        """Each actor's `where`, in actor order, once all are up; the line drops a part as
        soon as its last actor is up (the index: once it is open), whichever comes first."""
        ray = self.ray
        labels = part_labels(self.cfg)
        stages = [(self.policies, [labels["policy"]]),
                  (self.scorers, [labels[k] for k in ("prm", "orm") if k in labels]),
                  (self.retrievers, [])]
        waiting = [([a.where.remote() for a in actors], names) for actors, names in stages]
        refs = [ref for left, _ in waiting for ref in left]
        index = {r.fingerprint.remote(): labels["index"] for r in self.retrievers}
        pending = [*refs, *index]
        while pending:
            [done], pending = ray.wait(pending, num_returns=1)
            if done in index:
                line.ready(index[done])
            for left, names in waiting:
                if done in left:
                    left.remove(done)
                    for name in names if not left else []:
                        line.ready(name)
        return _get(ray, refs)

    def score(self, work: list[tuple[Question, list[Solution]]],
              prm_only: bool = False) -> list[Scored]:
        """The questions spread over the scorer actors, each part in one call."""
        k = len(self.scorers)
        parts = [list(range(len(work)))[i::k] for i in range(k)]
        refs = [a.score.remote([work[i] for i in part], prm_only)
                for a, part in zip(self.scorers, parts, strict=True) if part]
        out: list[Any] = [None] * len(work)
        for part, got in zip([p for p in parts if p], _get(self.ray, refs), strict=True):
            for i, scored in zip(part, got, strict=True):
                out[i] = scored
        return out

    def policy_info(self) -> tuple[Any, Any, str]:
        """What a search needs of the policy (its tokenizer, preset and name), read here from
        the model folder: the actors' engines tokenize with the same files."""
        from policies.presets import get_preset

        from ..embedded import resolve_model

        tokenizers = require("transformers", "transformers")
        policy = self.cfg.policy
        tok = tokenizers.AutoTokenizer.from_pretrained(resolve_model(policy.model))
        return tok, get_preset(policy.preset), policy.model

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        for a in self.policies + self.scorers + self.retrievers:
            self.ray.kill(a)


def _cause(e: BaseException) -> BaseException:
    """The error a remote call raised (Ray wraps it)."""
    cause = getattr(e, "cause", None)
    return cause if isinstance(cause, BaseException) else e


def _get(ray: Any, refs: Any) -> Any:
    """`ray.get`, raising the remote call's own error."""
    try:
        return ray.get(refs)
    except Exception as e:  # noqa: BLE001 - unwrapped, not handled
        raise _cause(e) from e

