"""The HTTP layer: an OpenAI-compatible chat-completions endpoint whose answers are
best-of-N reranked, on FastAPI + uvicorn (both come with vLLM, so serving adds no dependency;
FastAPI gives the async request handling, streaming responses and exception handlers this
needs, and vLLM's own OpenAI server is built the same way).

Handlers only translate between HTTP and the batcher; every 4xx is OpenAI's error object.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from ..api import Reranker
from ..config import EngineOptions
from ..execution.documents import Documents
from ..search import StepFormat
from .batcher import Batcher, EngineDead, Pending, QueueFull, ShuttingDown, Unavailable
from .chat import completion, settings, stream_events
from .config import ServeConfig
from .engine import Engine
from .metrics import Metrics
from .protocol import APIError, model_list, parse_request
from .questions import request_question

log = logging.getLogger("bestofn.serve")

DRAIN_LIMIT = 64 << 20
"""Bytes of an oversized body read and dropped before answering 413, so the client sees the
answer instead of a reset connection."""


PATH = re.compile(r"(?<![\w:/.~])/(?:[\w.\-]+/)+[\w.\-]*")
"""An absolute file path in an error message (URLs are left alone)."""


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def scrubbed(text: str) -> str:
    """An error message as a response body may carry it: no file paths, no traceback."""
    text = text.split("Traceback (most recent call last)")[0].strip()
    return PATH.sub("<path>", text)[:2000]


def create_app(cfg: ServeConfig, reranker: Reranker, policy: Any, *,
               documents: Documents | None = None, engine: EngineOptions | None = None,
               step_format: StepFormat | None = None, validity: Any = None,
               on_engine_death: Any = None) -> Any:
    """The FastAPI app serving `policy` samples reranked by `reranker`'s verifiers.

    `reranker.method` and `reranker.seed` are the defaults of requests that set neither;
    `documents` (the documents stage over an index) supplies documents when a request
    gives none; `engine` (`EngineOptions`) bounds the samples in flight (the scheduler's
    budget); `step_format` is where a search's steps end (default: `Step N:` headers);
    `validity` is Med-PRM's step filter of fixed-N requests (`policies.validity`). A
    server-wide `cfg.search` needs a server that can search (ValueError otherwise).
    `on_engine_death(reason)` runs once the engine has failed as a whole and every admitted
    request has its 503 (the CLI exits non-zero there, for a supervisor to restart it);
    `app.state.drain(seconds)` is the graceful shutdown (the CLI's SIGTERM).
    """
    metrics = Metrics()
    server = Engine(policy, reranker, documents=documents, engine=engine,
                    step_format=step_format, validity=validity, on_score=metrics.verifier_call)
    problem = server.search_problem() if cfg.search else None
    if problem:
        raise ValueError(f"--search {cfg.search}: {problem}")
    batcher = Batcher(server, cfg, metrics, on_death=on_engine_death or (lambda reason: None))
    per_key: Counter[str] = Counter()
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="bestofn", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.metrics, app.state.batcher, app.state.engine = metrics, batcher, server
    app.state.drain = batcher.drain

    def error(e: APIError) -> Any:
        e.message = scrubbed(e.message)
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(APIError)
    async def _api_error(_: Request, e: APIError) -> Any:
        return error(e)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, e: HTTPException) -> Any:
        return error(APIError(e.status_code, str(e.detail), code=str(e.status_code)))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> Any:
        return error(APIError(400, str(e)))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> Any:
        return error(_server_error(e))

    def authorize(request: Request) -> None:
        if cfg.api_key is None:
            return
        got = request.headers.get("authorization", "")
        scheme, _, token = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                  cfg.api_key.encode()):
            raise APIError(401, "invalid or missing API key: send Authorization: Bearer KEY",
                           param="authorization", code="invalid_api_key")

    @app.get("/health")
    async def health() -> Any:
        body = {"status": batcher.state, "pending": batcher.pending}
        if batcher.state == "ok":
            return body
        return JSONResponse(body | {"reason": scrubbed(batcher.reason)}, status_code=503,
                            headers={"Retry-After": str(cfg.retry_after_s)})

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        authorize(request)
        return model_list(cfg.model_id, started)

    @app.get("/metrics")
    async def prometheus(request: Request) -> Any:
        authorize(request)
        return PlainTextResponse(metrics.text(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        t0 = time.perf_counter()
        try:
            response = await _chat(request, t0)
        except APIError as e:
            response = error(e)
        except ClientGone:
            metrics.disconnects += 1
            response = Response(status_code=499)
        except Exception as e:
            response = error(client_error(e) or _server_error(e))
        metrics.request(response.status_code, time.perf_counter() - t0)
        return response

    async def _chat(request: Request, t0: float) -> Any:
        authorize(request)
        if cfg.max_per_key is None:
            return await _admitted(request, t0)
        key = hashlib.sha256(request.headers.get("authorization", "").encode()).hexdigest()
        if per_key[key] >= cfg.max_per_key:
            raise APIError(429, f"this API key has {cfg.max_per_key} requests in progress "
                           f"(--max-per-key); retry after {cfg.retry_after_s} s",
                           type="rate_limit_error", code="concurrency_limit_exceeded",
                           headers={"Retry-After": str(cfg.retry_after_s)})
        per_key[key] += 1
        try:
            return await _admitted(request, t0)
        finally:
            per_key[key] -= 1
            if not per_key[key]:
                del per_key[key]

    async def _admitted(request: Request, t0: float) -> Any:
        req = parse_request(_decode(await _read_body(request, cfg.max_body_bytes)))
        if req.model is not None and req.model != cfg.model_id:
            raise APIError(404, f"model: this server serves {cfg.model_id!r}, not "
                           f"{req.model!r}", param="model", code="model_not_found")
        s = settings(req, cfg, server)
        question = request_question(req, cfg.max_messages)
        job = Pending(question, s.samples, s.params, s.method, s.seed, s.documents,
                  asyncio.get_running_loop().create_future(), adaptive=s.adaptive,
                  search=s.search)
        try:
            batcher.submit(job)
        except QueueFull:
            raise APIError(429, f"the server has {cfg.queue_size} requests in progress "
                           f"(--queue-size); retry after {cfg.retry_after_s} s",
                           type="rate_limit_error", code="rate_limit_exceeded",
                           headers={"Retry-After": str(cfg.retry_after_s)}) from None
        except Unavailable as e:
            raise unavailable(str(e), "server_unavailable") from None
        try:
            outcome = await _wait(job.future, request, cfg.timeout_s)
        except EngineDead as e:
            raise unavailable(f"the engine is dead: {e}", "engine_dead") from None
        except ShuttingDown as e:
            raise unavailable(str(e), "shutting_down") from None
        body = completion(outcome, question, s, cfg.model_id, time.perf_counter() - t0)
        if not req.stream:
            return JSONResponse(body)
        include = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(stream_events(body, include), media_type="text/event-stream")

    def unavailable(message: str, code: str) -> APIError:
        return APIError(503, message, type="server_error", code=code,
                        headers={"Retry-After": str(cfg.retry_after_s)})

    return app


def client_error(e: Exception) -> APIError | None:
    """An engine error that is the request's fault: the exception says so with
    `http_status` and `http_param` (a replay policy with no stored solutions for the question)."""
    status = getattr(e, "http_status", None)
    if not isinstance(status, int):
        return None
    return APIError(status, str(e), param=getattr(e, "http_param", None))


def _server_error(e: Exception) -> APIError:
    """500 naming the error's type only (the message and traceback go to the log: they may
    carry file paths and internals)."""
    log.error("request failed", exc_info=e)
    return APIError(500, f"internal server error ({type(e).__name__}); the server's log has "
                    "the details", type="server_error", code="internal_error")


async def _read_body(request: Any, limit: int) -> bytes:
    """The body, or 413 when it is over `limit` bytes (declared or actual)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT:
            break
    if size > limit:
        raise APIError(413, f"request body: {size} bytes or more, the server takes at most "
                       f"{limit} (--max-body-bytes)", param="body", code="body_too_large")
    return b"".join(chunks)


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise APIError(400, f"body: malformed JSON ({e})", param="body",
                       code="invalid_json") from None


async def _wait(future: asyncio.Future[Any], request: Any, timeout: float) -> Any:
    """The job's outcome; 504 past `timeout`, ClientGone if the client leaves first (the job
    is cancelled in both cases, so the batcher skips its remaining stages)."""
    gone = asyncio.ensure_future(_until_disconnect(request))
    try:
        done, _ = await asyncio.wait({future, gone}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if future in done:
        return future.result()
    future.cancel()
    if gone in done:
        raise ClientGone
    raise APIError(504, f"no answer within {timeout:g} s (--timeout); the work was cancelled",
                   type="timeout_error", code="timeout")


async def _until_disconnect(request: Any) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
