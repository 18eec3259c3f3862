"""Single-sample requests to an OpenAI-compatible server, concurrent and cancellable.

Requests run as asyncio tasks on a private event loop thread (at most the policy's
`concurrency` at once), each the body `OpenAIPolicy` sends for one sample with the seed + k
(what vLLM gives the k-th sample of an `n` request). An abort cancels the task, which closes
its connection; vLLM's server aborts a request whose client went away. The server does not
say how many tokens a cancelled request had generated, so `abort` returns 0 for them and a
server's own metrics hold that count.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.text.records import Question

from .requests import Finished, SampleKey, SampleRequest, StepRequest


class OpenAIStream:
    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bestofn-openai",
                                       daemon=True)
        self.thread.start()
        self.client: Any = asyncio.run_coroutine_threadsafe(self._client(), self.loop).result()
        self.tasks: dict[SampleKey, Future[Any]] = {}
        self.done: queue.Queue[tuple[SampleKey, Any]] = queue.Queue()

    async def _client(self) -> Any:
        import httpx

        self.gate = asyncio.Semaphore(self.policy.concurrency)
        return httpx.AsyncClient(timeout=self.policy.client.timeout,
                                 headers=dict(self.policy.client.headers))

    def submit(self, requests: Sequence[SampleRequest], params: SamplingConfig) -> None:
        from policies import question_seed
        from policies.openai import Unit

        for r in requests:
            unit = Unit(0, 1, question_seed(r.seed, r.question.id) + r.k, 0, r.k)
            key = r.key
            fut = asyncio.run_coroutine_threadsafe(self._one(r.question, unit, params),
                                                   self.loop)
            self.tasks[key] = fut
            fut.add_done_callback(lambda f, key=key: self._finished(key, f))

    def _finished(self, key: SampleKey, fut: Future[Any]) -> None:
        try:
            self.done.put((key, fut.result()))
        except CancelledError:
            pass
        except BaseException as e:  # noqa: BLE001 - raised by `poll` in the caller's thread
            self.done.put((key, e))

    async def _one(self, q: Question, unit: Any, params: SamplingConfig) -> Any:
        from policies.openai import ServerError, retryable

        body = self.policy.body(q, unit, params)
        retry = self.policy.retry
        async with self.gate:
            for attempt in range(retry.attempts):
                r = await self.client.post(self.policy.url, json=body)
                if r.status_code == 200:
                    [sol] = self.policy.read(q, unit, r.json(), params)
                    return sol
                err = ServerError(self.policy.url, r.status_code, r.text, attempt + 1)
                if not retryable(r.status_code) or attempt + 1 == retry.attempts:
                    raise err
                await asyncio.sleep(retry.delay(attempt, r.headers.get("retry-after")))
        raise AssertionError("unreachable")

    def submit_steps(self, requests: Sequence[StepRequest], params: SamplingConfig) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot continue from token ids: "
                                  "search needs the in-process vllm policy backend")

    def poll(self, timeout: float) -> list[Finished]:
        out: list[Finished] = []
        try:
            got = [self.done.get(timeout=timeout)] if self.tasks else []
        except queue.Empty:
            return out
        while True:
            try:
                got.append(self.done.get_nowait())
            except queue.Empty:
                break
        for key, result in got:
            if self.tasks.pop(key, None) is None:
                continue  # aborted after it finished
            if isinstance(result, BaseException):
                raise result
            out.append(Finished(key, result, int(result.meta.get("tokens") or 0)))
        return out

    def abort(self, keys: Sequence[SampleKey]) -> int:
        for key in keys:
            fut = self.tasks.pop(key, None)
            if fut is not None:
                fut.cancel()
        return 0

    def pending(self) -> int:
        return len(self.tasks)

    def close(self) -> None:
        self.abort(list(self.tasks))
        asyncio.run_coroutine_threadsafe(self.client.aclose(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
