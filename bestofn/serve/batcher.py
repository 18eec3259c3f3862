"""An asyncio micro-batcher in front of the engine.

Requests that arrive while the engine is busy, or within `batch_wait_s` of each other, go to
the policy in one call (grouped by sample count and sampling parameters, at most `max_batch`
questions), as the run pipeline's `--policy-batch` does; each question is then scored and
selected on its own. All engine work runs on one worker thread, in order. A request whose
future is cancelled (timeout, client gone) is dropped before its next stage starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..adaptive.rules import format_rule
from ..execution import Compute
from ..text.records import Question
from .config import ServeConfig
from .engine import Engine, Reranked, Sampled
from .metrics import Metrics

T = TypeVar("T")


class QueueFull(Exception):
    """More requests are admitted than `queue_size`."""


@dataclass
class Pending:
    """One request's work; `future` gets the `Reply`."""

    question: Question
    n: int
    params: Any
    method: str
    seed: int
    documents: list[str] | None
    future: asyncio.Future[Reply]
    enqueued: float = field(default_factory=time.perf_counter)
    adaptive: Any = None
    """A stopping rule: sample on the streaming scheduler until it settles (None: N samples)."""
    search: Any = None
    """A search strategy: search with N candidates on the streaming scheduler (None: sample)."""


@dataclass
class Reply:
    reranked: Reranked
    timings: dict[str, float]
    batch_size: int
    """Questions in the policy call that sampled this one."""
    compute: dict[str, int] = field(default_factory=dict)
    """What the answer cost (`execution.Compute`)."""
    adaptive: str | None = None
    """The stopping rule it ran under."""
    search: dict[str, Any] | None = None
    """What its search did (`Item.search`)."""


class Batcher:
    def __init__(self, engine: Engine, cfg: ServeConfig, metrics: Metrics) -> None:
        self.engine, self.cfg, self.metrics = engine, cfg, metrics
        self.pending = 0
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bestofn-engine")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, job: Pending) -> None:
        """Admit a job, or raise QueueFull past `queue_size` admitted and unfinished jobs."""
        if self.pending >= self.cfg.queue_size:
            raise QueueFull
        self.pending += 1
        self.metrics.queue_depth = self.pending
        job.future.add_done_callback(self._done)
        self._queue.put_nowait(job)

    def _done(self, _: asyncio.Future[Reply]) -> None:
        self.pending -= 1
        self.metrics.queue_depth = self.pending

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _loop(self) -> None:
        while True:
            batch = await self._collect()
            try:
                await self._run([j for j in batch if not j.future.done()])
            except Exception as e:  # a bug must fail the batch's requests, not the server
                for j in batch:
                    _fail(j, e)

    async def _collect(self) -> list[Pending]:
        """The first waiting job, everything queued behind it, and whatever arrives within
        `batch_wait_s`, up to `max_batch` jobs."""
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.batch_wait_s
        while len(batch) < self.cfg.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break
        return batch

    async def _run(self, jobs: list[Pending]) -> None:
        need = [j for j in jobs if j.documents is None and self.engine.docs is not None]
        if need:
            for j, docs in zip(need, await self._call(self.engine.documents,
                                                      [j.question for j in need]), strict=True):
                j.documents = docs
        groups: dict[tuple[int, Any, Any, Any], list[Pending]] = {}
        for j in jobs:
            groups.setdefault((j.n, j.params, j.adaptive, j.search), []).append(j)
        for (n, params, rule, search), group in groups.items():
            await self._sample_and_score(group, n, params, rule, search)

    async def _draw(self, group: list[Pending], n: int, params: Any, rule: Any,
                    search: Any) -> list[Sampled | Exception]:
        """Each job's samples: N of them, as many as the stopping rule draws, or a search's
        finished candidates."""
        qs = [j.question for j in group]
        if rule is None and search is None:
            got = await self._call(self.engine.sample, qs, n, params)
            return [s if isinstance(s, Exception) else Sampled(s, None, Compute.kept(s))
                    for s in got]
        docs = [j.documents for j in group]
        try:
            if search is not None:
                return list(await self._call(self.engine.sample_search, qs, docs, n, params,
                                             search))
            return list(await self._call(self.engine.sample_adaptive, qs, docs, params, rule))
        except Exception as e:
            return [e] * len(group)

    async def _sample_and_score(self, group: list[Pending], n: int, params: Any, rule: Any,
                                search: Any) -> None:
        group = [j for j in group if not j.future.done()]
        if not group:
            return
        t0 = time.perf_counter()
        results = await self._draw(group, n, params, rule, search)
        t1 = time.perf_counter()
        self.metrics.policy_call(len(group))
        for j, drawn in zip(group, results, strict=True):
            if isinstance(drawn, Exception):
                _fail(j, drawn)
                continue
            self.metrics.drawn(drawn.compute)
            if j.future.done():
                continue
            t2 = time.perf_counter()
            try:
                out = await self._call(self.engine.rerank, j.question, drawn.solutions,
                                       j.documents, j.method, j.seed, drawn.prm)
            except Exception as e:
                _fail(j, e)
                continue
            self.metrics.scored(out.scored)
            compute = drawn.compute
            compute.prm_tokens_computed += out.prm_computed
            self.metrics.prm_tokens_computed += out.prm_computed
            timings = {"queued_s": t0 - j.enqueued, "sample_s": t1 - t0,
                       "score_s": time.perf_counter() - t2}
            if not j.future.done():
                j.future.set_result(Reply(out, {k: round(v, 4) for k, v in timings.items()},
                                            len(group), compute.to_dict(),
                                            None if rule is None else format_rule(rule),
                                            drawn.search))


def _fail(job: Pending, e: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(e)
