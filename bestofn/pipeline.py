"""The Ray pipeline: policy, retrieval and scorer actors, streaming per question.

Why actors and a driver loop rather than Ray Data: the unit of work that must be exactly-once
is one question (resume, failure records, per-question seeds), each engine is expensive to
start and must stay resident, and results must land in the run folder as each question
finishes. A driver that keeps a bounded number of policy calls (`policy_batch` questions each,
so the engine batches across questions) in flight per actor and hands each sampled question to
the scorer pool as soon as it is ready (`ray.wait`) gives streaming between stages, while only
the driver writes the run folder, so there is one writer and no duplicate.

Retrieval runs beside sampling, not before it: the policy never reads the documents, so a
retrieval actor (it holds the FAISS index and the query embedder, and builds the default index
on first use) searches while the engines sample, and a question goes to the scorer pool when
both its solutions and its documents are in. The driver loads neither the index nor the
embedder and writes the search cache (`bestofn.documents`, the in-process runs' stage and
cache; adaptive Ray runs attach documents through the actor: `RayPipeline.documents`).

Failures: actors restart after a crash (`max_restarts`) and Ray retries the call that was
running (`max_task_retries`); a call that raises for several questions is retried question by
question, and a question whose own call raises comes out as `driver.Failed`, which the run
driver (`bestofn.driver`) retries up to `max_attempts` times, then records; the run goes on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .config import ExecConfig, RunConfig
from .console import log_file_for_workers, to_log_file
from .documents import CACHE_DIR, Documents, IndexSearch
from .driver import Failed, Outcome, error_text
from .files import atomic_write_text
from .records import Document, Item, Question, Solution, StepScores
from .registry import require
from .scheduler.ledger import Compute, StageClock, split_by_size
from .scheduler.requests import SampleError

WORKERS_FILE = "workers.json"
"""Where each actor of a Ray run runs (stage, node, pid), written when they are up."""


class _Worker:
    stage = ""

    def __init__(self, cfg: dict[str, Any]) -> None:
        log = log_file_for_workers()
        if log:
            to_log_file(log)
        self.cfg = RunConfig(**cfg)
        self.clock = StageClock()

    def seconds(self) -> dict[str, float]:
        """The stage seconds this actor was busy (measured here, start-up excluded)."""
        return self.clock.to_dict()

    def where(self) -> dict[str, Any]:
        import ray

        return {"stage": self.stage, "node": ray.get_runtime_context().get_node_id(),
                "pid": os.getpid()}


class _PolicyWorker(_Worker):
    stage = "policy"

    def __init__(self, cfg: dict[str, Any]) -> None:
        from .stages import build_policy

        super().__init__(cfg)
        self.policy = build_policy(self.cfg)

    def solve(self, qs: list[dict[str, Any]], n: int | None = None,
              start: int = 0) -> list[list[dict[str, Any]]]:
        from .stages import solve

        with self.clock.stage("sample_s"):
            out = solve(self.policy, [Question.from_dict(q) for q in qs], self.cfg, n, start)
        return [[s.to_dict() for s in sols] for sols in out]

    def _stream(self) -> Any:
        if getattr(self, "_samples", None) is None:
            from .scheduler import make_stream

            self._samples = make_stream(self.policy)
        return self._samples

    def stream_submit(self, requests: list[tuple[dict[str, Any], int]]) -> None:
        """Start single samples on this actor's stream (`scheduler.ray_stream`)."""
        self._stream().submit([(Question.from_dict(q), k) for q, k in requests],
                              self.cfg.sampling())

    def stream_poll(self, timeout: float) -> list[dict[str, Any]]:
        with self.clock.stage("sample_s"):
            done = self._stream().poll(timeout)
        return [{"question": f.key.question, "index": f.key.index,
                 **({"error": f.error} if isinstance(f, SampleError) else  # pickled as it is
                    {"solution": f.solution.to_dict(), "tokens": f.tokens})} for f in done]

    def stream_abort(self, keys: list[tuple[str, int]]) -> int:
        from .scheduler import SampleKey

        return self._stream().abort([SampleKey(q, k) for q, k in keys])


class _RetrieverWorker(_Worker):
    """The documents stage's search (`documents.IndexSearch`) on an actor. It opens the index on
    first use rather than at construction, so that an index error reaches the driver as the
    error it is, and a restarted actor opens it again."""

    stage = "retriever"

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        assert self.cfg.index, "a retrieval actor needs an index"
        self.index = IndexSearch(self.cfg.index, self.cfg.k)

    def fingerprint(self) -> str:
        self.index.open()
        return self.index.fingerprint()

    def search(self, queries: list[str]) -> list[list[dict[str, Any]]]:
        return [[d.to_dict() for d in docs] for docs in self.index.search(queries)]


class ActorSearch:
    """The retrieval actor as the documents stage's `Searcher`, seen from the driver."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self.ray, self.actor = ray, actor

    def fingerprint(self) -> str:
        return str(_get(self.ray, self.actor.fingerprint.remote()))

    def search(self, queries: list[str], progress: bool = False) -> list[list[Document]]:
        found = _get(self.ray, self.actor.search.remote(queries))
        return [[Document.from_dict(d) for d in docs] for docs in found]


class _ScorerWorker(_Worker):
    stage = "scorer"

    def __init__(self, cfg: dict[str, Any]) -> None:
        from .stages import build_scorer

        super().__init__(cfg)
        self.scorer = build_scorer(self.cfg)

    def verify(self, qs: list[dict[str, Any]],
               sols: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Several questions' scores in one call (the engine batches across them)."""
        from .stages import prm_tokens_computed, verify

        work = [(Question.from_dict(q), [Solution.from_dict(s) for s in ss])
                for q, ss in zip(qs, sols, strict=True)]
        before = prm_tokens_computed(self.scorer)
        with self.clock.stage("score_s"):
            got = verify(self.scorer, work, self.cfg)
        tokens = split_by_size(prm_tokens_computed(self.scorer) - before,
                               [len(s) for s in sols])
        return [{"prm": None if prm is None else [s.to_dict() for s in prm], "orm": orm,
                 "prm_tokens": t} for (prm, orm), t in zip(got, tokens, strict=True)]


def _gpus(asked: float | None, ray: Any) -> float:
    if asked is not None:
        return asked
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def _actors(ray: Any, cls: type, n: int, gpus: float, cfg: dict[str, Any],
            ex: ExecConfig, cpus: float = 1) -> list[Any]:
    remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=ex.actor_restarts,
                        max_task_retries=ex.actor_restarts)(cls)
    return [remote.options(scheduling_strategy="SPREAD").remote(cfg) for _ in range(n)]


_NO_SCORES: dict[str, Any] = {"prm": None, "orm": None}


class RayPipeline:
    """Streams questions through policy, retrieval and scorer actors; yields finished items."""

    def __init__(self, cfg: RunConfig, ex: ExecConfig) -> None:
        self.ray = require("ray", "'ray[data]'")
        self.cfg, self.ex = cfg, ex
        self.workers: list[dict[str, Any]] = []
        self.policies: list[Any] = []
        self.scorers: list[Any] = []
        self.retrievers: list[Any] = []

    def start(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            log = log_file_for_workers()
            env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false",
                                **({"BESTOFN_LOG_FILE": log} if log else {})}}
            if self.ex.ray_address:
                ray.init(address=self.ex.ray_address, runtime_env=env, log_to_driver=not log)
            else:
                ray.init(num_cpus=self.ex.num_cpus, include_dashboard=False, runtime_env=env,
                         log_to_driver=not log)
        cfg = asdict(self.cfg)
        self.policies = _actors(ray, _PolicyWorker, self.ex.policy_actors,
                                _gpus(self.ex.policy_gpus, ray), cfg, self.ex)
        if self.cfg.prm or self.cfg.orm:
            self.scorers = _actors(ray, _ScorerWorker, self.ex.scorer_actors,
                                   _gpus(self.ex.scorer_gpus, ray), cfg, self.ex)
        if self.cfg.index:
            self.retrievers = _actors(ray, _RetrieverWorker, 1, 0, cfg, self.ex,
                                      cpus=self.ex.retriever_cpus)
        actors = self.policies + self.scorers + self.retrievers
        self.workers = ray.get([a.where.remote() for a in actors])
        atomic_write_text(Path(self.cfg.out) / WORKERS_FILE,
                          json.dumps(self.workers, indent=2) + "\n")

    def documents(self) -> Documents | None:
        """The run's documents stage searching on the retrieval actor, cached in the run
        folder by this process (None without an index)."""
        if not self.retrievers:
            return None
        return Documents(ActorSearch(self.ray, self.retrievers[0]), self.cfg.k,
                         Path(self.cfg.out) / CACHE_DIR)

    def run(self, questions: list[Question]) -> Iterator[Outcome]:
        """Yield each question's Item as soon as it is scored (completion order), or its
        `Failed` when its own call raised.

        Questions go to the policy pool `policy_batch` at a time, to the retrieval actor (when
        the run has an index) in chunks of `retrieval.attach.SEARCH_CHUNK` not already in the
        run's search cache, and to the scorer pool one at a time once both are in. A call that
        fails for several questions is retried question by question, so one bad question cannot
        fail the others. An index that cannot be opened stops the run (a config error).
        """
        ray = self.ray
        size = self.ex.policy_batch
        queue = [questions[i:i + size] for i in range(0, len(questions), size)][::-1]
        inflight: dict[Any, tuple[str, list[Question]]] = {}
        sols_of: dict[str, list[dict[str, Any]]] = {}
        docs_of: dict[str, list[Document]] = {}
        failed: set[str] = set()
        search: Any = None
        turn = {"solve": 0, "retrieve": 0, "verify": 0}
        cap = self.ex.in_flight * len(self.policies)

        def submit(stage: str, qs: list[Question]) -> None:
            pool = {"solve": self.policies, "retrieve": self.retrievers,
                    "verify": self.scorers}[stage]
            actor = pool[turn[stage] % len(pool)]
            turn[stage] += 1
            if stage == "solve":
                ref = actor.solve.remote([q.to_dict() for q in qs])
            elif stage == "retrieve":
                ref = actor.search.remote(search.queries(qs))
            else:
                ref = actor.verify.remote([with_docs(q).to_dict() for q in qs],
                                          [sols_of[q.id] for q in qs])
            inflight[ref] = (stage, qs)

        def with_docs(q: Question) -> Question:
            return replace(q, documents=docs_of[q.id]) if q.id in docs_of else q

        def finish(q: Question, scores: dict[str, Any]) -> Item:
            item = self._item(with_docs(q), sols_of.pop(q.id), scores)
            docs_of.pop(q.id, None)
            return item

        def ready(qs: list[Question]) -> Iterator[Item]:
            """Score the questions of `qs` that have their solutions (and documents) together,
            in one scorer call, as they came from one policy call."""
            got = [q for q in qs if q.id in sols_of and (not self.retrievers or q.id in docs_of)]
            if got and self.scorers:
                submit("verify", got)
            elif got:
                for q in got:
                    yield finish(q, _NO_SCORES)

        documents = self.documents()
        if documents is not None:
            inflight[self.retrievers[0].fingerprint.remote()] = ("open", questions)
        while queue or inflight:
            while queue and sum(s == "solve" for s, _ in inflight.values()) < cap:
                submit("solve", queue.pop())
            [ref], _ = ray.wait(list(inflight), num_returns=1)
            stage, qs = inflight.pop(ref)
            try:
                out = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - a question's error is its failure
                if stage == "open":
                    raise _cause(e) from e
                if len(qs) > 1:
                    for q in qs:
                        submit(stage, [q])
                elif qs[0].id not in failed:
                    failed.add(qs[0].id)
                    sols_of.pop(qs[0].id, None)
                    docs_of.pop(qs[0].id, None)
                    yield Failed(qs[0].id, stage, error_text(_cause(e)))
                continue
            if stage == "verify":
                for q, scores in zip(qs, out, strict=True):
                    yield finish(q, scores)
                continue
            if stage == "open":
                assert documents is not None
                search = documents.plan(qs, out)
                docs_of.update({i: d for i, d in search.cached().items() if i not in failed})
                for part in search.missing():
                    submit("retrieve", part)
                yield from ready(qs)
                continue
            if stage == "retrieve":
                found = search.record(qs, [[Document.from_dict(d) for d in ds] for ds in out])
                docs_of.update({i: d for i, d in found.items() if i not in failed})
            else:
                sols_of.update({q.id: sols for q, sols in zip(qs, out, strict=True)
                                if q.id not in failed})
            yield from ready(qs)

    @staticmethod
    def _item(q: Question, sols: list[dict[str, Any]], scores: dict[str, Any]) -> Item:
        prm = scores["prm"]
        solutions = [Solution.from_dict(s) for s in sols]
        compute = Compute.kept(solutions, int(scores.get("prm_tokens") or 0))
        return Item(q, solutions,
                    prm=None if prm is None else [StepScores.from_dict(s) for s in prm],
                    orm=scores["orm"], compute=compute.to_dict())

    def stop(self, clock: StageClock | None = None) -> None:
        """Kill the actors, first adding the seconds they were busy to `clock`."""
        if clock is not None:
            for busy in self.ray.get([a.seconds.remote() for a in self.policies + self.scorers]):
                for k, v in busy.items():
                    if k != "startup_s":
                        clock.add(k, v)
        for a in self.policies + self.scorers + self.retrievers:
            self.ray.kill(a)


class RayEngines(RayPipeline):
    """The pipeline's actors serving an adaptive run's rounds (`adaptive.online.Engines`):
    each round's policy calls and scoring spread over the actor pools, then gathered."""

    def solve(self, calls: list[tuple[list[Question], int, int]]) -> list[list[list[Solution]]]:
        refs = [self.policies[i % len(self.policies)].solve.remote([q.to_dict() for q in qs],
                                                                   n, start)
                for i, (qs, n, start) in enumerate(calls)]
        return [[[Solution.from_dict(s) for s in sols] for sols in got]
                for got in _get(self.ray, refs)]

    def stream(self) -> Any:
        """A `SampleStream` over the policy actors (`scheduler.ray_stream`)."""
        from .scheduler.ray_stream import RayStream

        return RayStream(self.ray, self.policies)

    def verify_counted(self, work: list[tuple[Question, list[Solution]]]
                       ) -> list[tuple[list[Any], int]]:
        """Per question: each solution's (StepScores | None, ORM | None), and PRM tokens."""
        out = []
        for (_, sols), (prm, orm), t in zip(work, self.verify(work), self._tokens, strict=True):
            n = len(sols)
            out.append((list(zip(prm or [None] * n, orm or [None] * n, strict=True)), t))
        return out

    def verify(self, work: list[tuple[Question, list[Solution]]]
               ) -> list[tuple[list[StepScores] | None, list[float | None] | None]]:
        k = len(self.scorers)
        parts = [work[i::k] for i in range(k)]
        refs = [a.verify.remote([q.to_dict() for q, _ in part],
                                [[s.to_dict() for s in sols] for _, sols in part])
                for a, part in zip(self.scorers, parts, strict=True) if part]
        by_id, tokens = {}, {}
        for part, got in zip([p for p in parts if p], _get(self.ray, refs), strict=True):
            for (q, _), scores in zip(part, got, strict=True):
                prm = scores["prm"]
                by_id[q.id] = (None if prm is None else [StepScores.from_dict(p) for p in prm],
                               scores["orm"])
                tokens[q.id] = int(scores.get("prm_tokens") or 0)
        self._tokens = [tokens[q.id] for q, _ in work]
        return [by_id[q.id] for q, _ in work]


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

