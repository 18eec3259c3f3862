"""An asyncio micro-batcher in front of the engine.

Requests that arrive while the engine is busy, or within `batch_wait_s` of each other, go to
the engine together (grouped by sample count, sampling parameters and kind, at most
`max_batch` questions), as jobs on the one scheduler loop; requests asking the same question
with the same documents share its samples. A fixed-N group's solutions are scored on the
scoring side beside the loop as they come in, every question waiting for scores in one PRM
call, and each request is answered as soon as its question settles; an adaptive or search
group is scored in one call once drawn. All engine work runs on one worker thread.

A request whose future is cancelled (timeout, client gone) is dropped: its question's running
samples are aborted and its pending scoring skipped once no other request asks it.

The batcher also holds the server's state: `ok`, `draining` (shutting down: new requests are
refused, the admitted ones finish within the drain time) or `dead` (the engine failed as a
whole: every admitted request gets a 503 naming it, and `on_death` runs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..adaptive.rules import format_rule
from ..execution import Compute
from ..execution.scheduler import EngineFailure
from ..text.records import Question
from .config import ServeConfig
from .engine import Ask, Engine, Reranked, Sampled, Verdict
from .metrics import Metrics

T = TypeVar("T")
log = logging.getLogger("bestofn.serve")

DEAD_ERRORS = frozenset({"EngineDeadError", "RayActorError", "ActorDiedError",
                         "ActorUnavailableError", "BrokenProcessPool", "EOFError",
                         "BrokenPipeError"})
"""Error types that mean the engine itself is gone (its process died, its actor was killed),
not that one request was bad."""


class QueueFull(Exception):
    """More requests are admitted than `queue_size`."""


class Unavailable(Exception):
    """The server takes no new requests (draining or dead); `str()` says why."""


class EngineDead(Exception):
    """The engine failed as a whole; the request cannot be answered by this process."""


class ShuttingDown(Exception):
    """The drain time ran out before the request was answered."""


@dataclass(eq=False)
class Pending:
    """One request's work; `future` gets the `Reply` (compared by identity)."""

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
    """Questions in the batch of jobs that sampled this one."""
    compute: dict[str, int] = field(default_factory=dict)
    """What the answer cost (`execution.Compute`)."""
    adaptive: str | None = None
    """The stopping rule it ran under."""
    search: dict[str, Any] | None = None
    """What its search did (`Item.search`)."""


def engine_death(e: BaseException) -> str | None:
    """Why the engine is dead, when `e` says it is (an `EngineFailure` caused by one of
    `DEAD_ERRORS`); None for any other error."""
    if not isinstance(e, EngineFailure):
        return None
    seen: BaseException | None = e.error
    while seen is not None:
        if type(seen).__name__ in DEAD_ERRORS:
            return str(e)
        seen = seen.__cause__ or seen.__context__
    return None


class Batcher:
    def __init__(self, engine: Engine, cfg: ServeConfig, metrics: Metrics,
                 on_death: Callable[[str], None] = lambda reason: None) -> None:
        self.engine, self.cfg, self.metrics, self.on_death = engine, cfg, metrics, on_death
        self.pending = 0
        self.state, self.reason = "ok", ""
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._admitted: set[Pending] = set()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bestofn-engine")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run_forever())

    async def stop(self) -> None:
        self._fail_all(ShuttingDown("the server stopped before the request was answered"))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, job: Pending) -> None:
        """Admit a job; Unavailable when draining or dead, QueueFull past `queue_size`
        admitted and unfinished jobs."""
        if self.state != "ok":
            raise Unavailable(self.reason)
        if self.pending >= self.cfg.queue_size:
            raise QueueFull
        self.pending += 1
        self.metrics.queue_depth = self.pending
        self._admitted.add(job)
        job.future.add_done_callback(lambda _: self._done(job))
        self._queue.put_nowait(job)

    def _done(self, job: Pending) -> None:
        self._admitted.discard(job)
        self.pending -= 1
        self.metrics.queue_depth = self.pending

    async def drain(self, seconds: float) -> int:
        """Stop admitting, wait up to `seconds` for the admitted requests to be answered, then
        answer the rest with 503; returns how many were cut off."""
        if self.state == "ok":
            self.state, self.reason = "draining", "the server is shutting down"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        left = self.pending
        self._fail_all(ShuttingDown(f"the server is shutting down and the request was not "
                                    f"answered within the drain time ({seconds:g} s)"))
        return left

    def _fail_all(self, e: BaseException) -> None:
        for j in list(self._admitted):
            _fail(j, e)

    def _die(self, reason: str) -> None:
        if self.state == "dead":
            return
        self.state, self.reason = "dead", reason
        log.error("engine dead: %s", reason)
        self._fail_all(EngineDead(reason))
        self.on_death(reason)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _run_forever(self) -> None:
        while True:
            batch = await self._collect()
            try:
                await self._run([j for j in batch if not j.future.done()])
            except Exception as e:  # a bug must fail the batch's requests, not the server
                dead = engine_death(e)
                if dead:
                    self._die(dead)
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
            group = [j for j in group if not j.future.done()]
            if group:
                await self._group(group, n, params, rule, search)

    async def _group(self, group: list[Pending], n: int, params: Any, rule: Any,
                     search: Any) -> None:
        asks: dict[tuple[str, Any], tuple[Ask, list[Pending]]] = {}
        for j in group:
            key = (j.question.id, None if j.documents is None else tuple(j.documents))
            if key not in asks:
                mine: list[Pending] = []
                asks[key] = (Ask(j.question, j.documents,
                                 lambda mine=mine: all(x.future.done() for x in mine)), mine)
            asks[key][1].append(j)
        owners = {id(a): js for a, js in asks.values()}
        t0 = time.perf_counter()
        self.metrics.policy_call(len(asks))
        if rule is None and search is None:
            loop = asyncio.get_running_loop()

            def settle(ask: Ask, drawn: Sampled | Exception) -> None:  # on the engine thread
                self._settle(owners[id(ask)], drawn, None, t0, len(asks), None, loop)

            await self._call(self.engine.draw_fixed, [a for a, _ in asks.values()], n, params,
                             settle)
            return
        drawn = await self._draw([a for a, _ in asks.values()], n, params, rule, search)
        t1 = time.perf_counter()
        todo = [(a, d) for (a, _), d in zip(asks.values(), drawn, strict=True)
                if isinstance(d, Sampled) and not a.gone() and self.engine.needs_scores(d)]
        verdicts = await self._call(self.engine.score_together,
                                    [(a.question, d.solutions, a.documents) for a, d in todo])
        by_ask = {id(a): v for (a, _), v in zip(todo, verdicts, strict=True)}
        for (a, js), d in zip(asks.values(), drawn, strict=True):
            v = by_ask.get(id(a))
            got: Sampled | Exception = v if isinstance(v, Exception) else d
            self._settle(js, got, v if isinstance(v, Verdict) else None, t0, len(asks),
                         (rule, t1), None)

    async def _draw(self, asks: list[Ask], n: int, params: Any, rule: Any,
                    search: Any) -> list[Sampled | Exception]:
        """An adaptive group's samples (as many as the stopping rule draws) or a search's
        finished candidates."""
        qs, docs = [a.question for a in asks], [a.documents for a in asks]
        try:
            if search is not None:
                return list(await self._call(self.engine.sample_search, qs, docs, n, params,
                                             search))
            return list(await self._call(self.engine.sample_adaptive, qs, docs, params, rule))
        except EngineFailure:
            raise
        except Exception as e:
            return [e] * len(asks)

    def _settle(self, jobs: list[Pending], drawn: Sampled | Exception, verdict: Verdict | None,
                t0: float, size: int, adaptive: tuple[Any, float] | None,
                loop: asyncio.AbstractEventLoop | None) -> None:
        """Select and answer each request asking one question (`loop`: called from the
        engine thread, so the answers are handed to the event loop)."""
        def post(fn: Callable[..., None], *args: Any) -> None:
            if loop is None:
                fn(*args)
            else:
                loop.call_soon_threadsafe(fn, *args)

        if isinstance(drawn, Exception):
            for j in jobs:
                post(_fail, j, drawn)
            return
        post(self.metrics.drawn, drawn.compute)
        if drawn.cancelled:
            post(self.metrics.cancel)
            return
        t1 = adaptive[1] if adaptive else time.perf_counter()
        counted = False
        for j in jobs:
            if j.future.done():
                continue
            t2 = time.perf_counter()
            try:
                out = self.engine.select(j.question, drawn, verdict, j.method, j.seed)
            except Exception as e:
                post(_fail, j, e)
                continue
            if not counted:  # the question's scoring, once however many requests asked it
                post(self.metrics.scored, out.scored, out.prm_computed)
                counted = True
            post(self._answer, j, drawn, out, {"queued_s": t0 - j.enqueued,
                                               "sample_s": t1 - t0,
                                               "score_s": time.perf_counter() - t2}, size,
                 adaptive[0] if adaptive else None)

    def _answer(self, j: Pending, drawn: Sampled, out: Reranked, timings: dict[str, float],
                size: int, rule: Any) -> None:
        compute = Compute.from_dict(drawn.compute.to_dict())
        compute.prm_tokens_computed += out.prm_computed
        if not j.future.done():
            j.future.set_result(Reply(out, {k: round(v, 4) for k, v in timings.items()},
                                        size, compute.to_dict(),
                                        None if rule is None else format_rule(rule),
                                        drawn.search))


def _fail(job: Pending, e: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(e)
