"""Sampling from any OpenAI-compatible `/v1/chat/completions` server (`vllm serve`, SGLang).

Requests run in a thread pool of `concurrency` workers (the bound on requests in flight). A
429, a 5xx, a timeout or a dropped connection is retried with exponential backoff (or the
server's `Retry-After`), at most `RetryConfig.attempts` times; any other error raises with the
status and the response body. Each question is one request with `n` samples and the seed
`question_seed(seed, question_id)`; a server that rejects or ignores `n` is detected on the
first such request and then asked for one sample per request, seeds `seed + k` (what vLLM
gives its k-th sample of an `n` request, so both paths draw the same samples from vLLM).
A round starting at sample k (`start=k`) asks with seed + k and numbers its samples from k.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from bestofn.config import SamplingConfig
from bestofn.registry import require
from bestofn.text.confidence import meta_of as confidence_meta
from bestofn.text.records import Question, Solution

from .base import check_round, question_seed
from .presets import Preset, get_preset


@dataclass(frozen=True)
class RetryConfig:
    """Bounded exponential backoff: delay = base * 2**attempt (capped), with 10% jitter."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None:
            try:
                return min(float(retry_after), self.max_delay)
            except ValueError:
                pass
        wait = min(self.base_delay * 2**attempt, self.max_delay)
        return wait * (1 + 0.1 * random.random())


class ServerError(RuntimeError):
    """A request the server answered with an error (after the retries, if retryable)."""

    def __init__(self, url: str, status: int | None, body: str, attempts: int = 1) -> None:
        self.url, self.status, self.body = url, status, body
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"{url}: HTTP {status}{tries}: {body[:2000]}")


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def completions_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return f"{base if base.endswith('/v1') else base + '/v1'}/chat/completions"


@dataclass(frozen=True)
class Unit:
    """One request: `k` samples of question `qi`, seed `seed`, filling slots from `first`;
    its samples are numbered from `start + first` (`start`: the round's first sample)."""

    qi: int
    k: int
    seed: int
    first: int = 0
    start: int = 0


class OpenAIPolicy:
    """N solutions per question from a served model (`model` is the name the server serves)."""

    backend = "openai"
    """Its streaming scheduler backend (`bestofn.execution.STREAMS`)."""

    def __init__(self, model: str, *, base_url: str = "http://127.0.0.1:8000/v1",
                 api_key: str | None = None, preset: str | Preset = "medprm",
                 concurrency: int = 16, timeout: float = 600.0, retry: RetryConfig | None = None,
                 n_per_request: bool | None = None, extra_body: dict[str, Any] | None = None,
                 progress: bool = False, device: object = None) -> None:
        """`n_per_request`: None detects whether the server honours `n`; `device` is accepted
        and ignored (the server owns the hardware)."""
        httpx = require("httpx", "httpx")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.model_name, self.preset = model, get_preset(preset)
        self.url, self.concurrency = completions_url(base_url), concurrency
        self.retry, self.extra_body = retry or RetryConfig(), dict(extra_body or {})
        self.n_per_request, self.progress = n_per_request, progress
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers,
                                   limits=httpx.Limits(max_connections=concurrency))
        self._lock = threading.Lock()

    def close(self) -> None:
        self.client.close()

    def sample(self, questions: Sequence[Question], n: int, params: SamplingConfig,
               start: int = 0) -> list[list[Solution]]:
        check_round(n, start)
        seeds = [question_seed(params.seed, q.id) for q in questions]
        slots: list[list[Solution | None]] = [[None] * n for _ in questions]
        units = [Unit(i, n, s + start, 0, start) for i, s in enumerate(seeds)]
        if self.n_per_request is False:
            units = [u for unit in units for u in self._singles(unit)]
        bar = tqdm(total=len(questions) * n, desc="samples", disable=not self.progress)
        with ThreadPoolExecutor(self.concurrency) as pool:
            for unit, sols in zip(units, pool.map(
                    lambda u: self._run(questions[u.qi], u, params), units), strict=True):
                slots[unit.qi][unit.first:unit.first + len(sols)] = sols
                bar.update(len(sols))
        bar.close()
        assert all(s is not None for row in slots for s in row), "a sample slot was not filled"
        return [list(row) for row in slots]  # type: ignore[arg-type]

    @staticmethod
    def _singles(unit: Unit) -> list[Unit]:
        return [Unit(unit.qi, 1, unit.seed + j, unit.first + j, unit.start)
                for j in range(unit.k)]

    def _run(self, q: Question, unit: Unit, params: SamplingConfig) -> list[Solution]:
        """A unit's samples; an `n` request the server refuses or cuts short goes on as single
        requests (and the policy remembers that)."""
        if unit.k == 1 or self.n_per_request is False:
            return [s for u in self._singles(unit) for s in self._request(q, u, params)]
        try:
            got = self._request(q, unit, params)
        except ServerError as e:
            if e.status != 400 or self.n_per_request:
                raise
            got = []
        with self._lock:
            self.n_per_request = len(got) == unit.k
        rest = [s for u in self._singles(unit)[len(got):] for s in self._request(q, u, params)]
        return got + rest

    def _request(self, q: Question, unit: Unit, params: SamplingConfig) -> list[Solution]:
        return self.read(q, unit, self.post(self.body(q, unit, params)), params)

    def body(self, q: Question, unit: Unit, params: SamplingConfig) -> dict[str, Any]:
        """The request body of one unit (also what the streaming scheduler sends)."""
        body = {"model": self.model_name, "messages": self.preset.messages(q), "n": unit.k,
                "temperature": params.temperature, "top_p": params.top_p,
                "max_tokens": params.max_tokens, "seed": unit.seed, **self.extra_body}
        if params.top_k > 0:
            body.setdefault("top_k", params.top_k)  # vLLM / SGLang extension
        if params.logprobs is not None:
            body.update(logprobs=True, top_logprobs=params.logprobs)
        return body

    def read(self, q: Question, unit: Unit, response: dict[str, Any],
             params: SamplingConfig | None = None) -> list[Solution]:
        """A unit's solutions from the server's response; a single-sample request records its
        token count from `usage.completion_tokens`, and `params` with `logprobs` the
        confidence of each."""
        choices = sorted(response["choices"], key=lambda c: c.get("index", 0))
        meta_seed = unit.seed if unit.k == 1 else unit.seed - unit.start - unit.first
        tokens = (response.get("usage") or {}).get("completion_tokens") if unit.k == 1 else None
        return [self._solution(q, c, meta_seed, unit.start + unit.first + j, tokens, params)
                for j, c in enumerate(choices[:unit.k])]

    def _solution(self, q: Question, choice: dict[str, Any], seed: int, index: int,
                  tokens: int | None = None, params: SamplingConfig | None = None) -> Solution:
        msg = choice.get("message") or {}
        text = msg.get("content") or ""
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if reasoning:  # servers with a reasoning parser split the <think> block off
            text = f"<think>{reasoning}</think>{text}"
        meta = {} if tokens is None else {"tokens": int(tokens)}
        if params is not None:
            meta.update(choice_confidence(choice, params))
        return self.preset.make_solution(text, q, model=self.model_name, seed=seed, index=index,
                                         finish_reason=choice.get("finish_reason"), **meta)

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST with bounded retries on 429/5xx/timeouts/connection errors."""
        import httpx

        attempts = self.retry.attempts
        for attempt in range(attempts):
            retry_after = None
            try:
                r = self.client.post(self.url, json=body)
            except httpx.TransportError as e:  # timeouts, refused or dropped connections
                err = ServerError(self.url, None, f"{type(e).__name__}: {e}", attempt + 1)
            else:
                if r.status_code == 200:
                    return r.json()
                err = ServerError(self.url, r.status_code, r.text, attempt + 1)
                if not retryable(r.status_code):
                    raise err
                retry_after = r.headers.get("retry-after")
            if attempt + 1 < attempts:
                time.sleep(self.retry.delay(attempt, retry_after))
        raise err


def choice_confidence(choice: dict[str, Any], params: SamplingConfig) -> dict[str, Any]:
    """DeepConf summaries of a chat choice's `logprobs.content`: at each position the
    `top_logprobs` and the sampled token's own log-probability when it is not among them (what
    vLLM's offline `logprobs=k` returns)."""
    content = (choice.get("logprobs") or {}).get("content") if params.logprobs is not None else None
    if not content:
        return {}
    positions = []
    for pos in content:
        top = {t["token"]: t["logprob"] for t in pos.get("top_logprobs") or []}
        top.setdefault(pos["token"], pos["logprob"])
        positions.append(list(top.values()))
    return confidence_meta(positions, window=params.confidence_window, k=params.logprobs)
