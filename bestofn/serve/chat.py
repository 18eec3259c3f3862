"""Between a validated request and the engine: the job's settings (checked against the
server's limits, each refusal naming its field) and the response built from the outcome."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..evaluation.select import METHODS
from ..text.records import AGGREGATIONS, Question
from .config import ServeConfig
from .engine import Engine
from .protocol import APIError, ChatCompletionRequest


@dataclass(frozen=True)
class Settings:
    """What one request runs with, after defaults and limits."""

    n: int
    samples: int
    params: Any
    method: str
    seed: int
    documents: list[str] | None
    adaptive: Any = None
    """The stopping rule (`bestofn.adaptive.rules`) with `samples` as its `max_n`, or None."""
    search: Any = None
    """The search strategy (`bestofn.search.strategies`) over `samples` candidates, or None."""


def settings(req: ChatCompletionRequest, cfg: ServeConfig, engine: Engine) -> Settings:
    from policies import SamplingConfig

    ext = req.bestofn
    samples = (ext.samples if ext and ext.samples is not None else cfg.n)
    if samples > cfg.max_n:
        raise APIError(400, f"bestofn.samples: {samples} is over this server's limit of "
                       f"{cfg.max_n} (--max-n)", param="bestofn.samples")
    if req.n > samples:
        raise APIError(400, f"n: {req.n} choices asked for but only {samples} solutions are "
                       "sampled (raise bestofn.samples)", param="n")
    field = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    max_tokens = req.max_completion_tokens or req.max_tokens or cfg.max_tokens
    if max_tokens > cfg.max_tokens:
        raise APIError(400, f"{field}: {max_tokens} is over this server's limit of "
                       f"{cfg.max_tokens} (--max-tokens)", param=field)
    asked = (ext.adaptive if ext else None), (ext.search if ext else None)
    if all(asked):
        raise APIError(400, "bestofn.search: cannot be combined with bestofn.adaptive (a "
                       "search keeps its own candidates); set one", param="bestofn.search")
    rule, search = asked if any(asked) else (cfg.adaptive, cfg.search)
    adaptive = _rule(rule, samples, engine)
    strategy = _strategy(search, engine)
    method = ext.method if ext and ext.method else engine.method
    seed = req.seed if req.seed is not None else engine.seed
    _check_method(method, seed, engine)
    documents = _documents(ext.documents if ext else None, cfg)
    params = SamplingConfig(temperature=cfg.temperature if req.temperature is None
                            else req.temperature, top_k=cfg.top_k,
                            top_p=cfg.top_p if req.top_p is None else req.top_p,
                            max_tokens=max_tokens, seed=seed)
    return Settings(req.n, samples, params, method, seed, documents, adaptive, strategy)


def _rule(spec: str | None, samples: int, engine: Engine) -> Any:
    """The request's stopping rule, drawing at most `samples`; 400 naming `bestofn.adaptive`
    for a spec that does not parse or needs a verifier the server lacks."""
    if spec is None:
        return None
    import dataclasses

    from ..adaptive import parse_rule

    try:
        rule = dataclasses.replace(parse_rule(spec), max_n=samples)
    except (KeyError, ValueError) as e:
        msg = e.args[0] if e.args else str(e)
        raise APIError(400, f"bestofn.adaptive: {msg}", param="bestofn.adaptive") from None
    if "scores" in rule.needs and engine.prm is None:
        raise APIError(400, f"bestofn.adaptive: rule {rule.name!r} reads PRM scores and this "
                       "server has no PRM loaded", param="bestofn.adaptive")
    return rule


def _strategy(spec: str | None, engine: Engine) -> Any:
    """The request's search strategy; 400 naming `bestofn.search` for a spec that does not
    parse or a server that cannot search (no PRM, a policy backend other than vllm)."""
    if spec is None:
        return None
    from ..search import parse_strategy

    try:
        strategy = parse_strategy(spec)
    except (KeyError, ValueError) as e:
        msg = e.args[0] if e.args else str(e)
        raise APIError(400, f"bestofn.search: {msg}", param="bestofn.search") from None
    problem = engine.search_problem()
    if problem:
        raise APIError(400, f"bestofn.search: {problem}", param="bestofn.search")
    return strategy


def _check_method(method: str, seed: int, engine: Engine) -> None:
    if method not in METHODS:
        raise APIError(400, f"bestofn.method: unknown method {method!r}; known: "
                       f"{', '.join(METHODS)}", param="bestofn.method")
    try:
        engine.reranker(method, seed)
    except ValueError as e:
        raise APIError(400, f"bestofn.method: {e} (this server has no such verifier loaded)",
                       param="bestofn.method") from None


def _documents(docs: list[str] | None, cfg: ServeConfig) -> list[str] | None:
    if docs is None:
        return None
    chars = sum(len(d) for d in docs)
    if len(docs) > cfg.max_documents or chars > cfg.max_document_chars:
        raise APIError(400, f"bestofn.documents: {len(docs)} documents, {chars} characters; "
                       f"the server takes at most {cfg.max_documents} documents and "
                       f"{cfg.max_document_chars} characters", param="bestofn.documents")
    return list(docs)


def completion(outcome: Any, question: Question, s: Settings, model: str,
               total_s: float) -> dict[str, Any]:
    """The chat.completion body: top-n solutions as choices, usage, and the `bestofn` field."""
    r = outcome.reranked
    sols = r.item.solutions
    choices = [{"index": k, "message": {"role": "assistant", "content": sols[i].text},
                "finish_reason": _finish(sols[i].meta)} for k, i in enumerate(r.ranking[:s.n])]
    sampled = sum(int(x.meta.get("tokens") or 0) for x in sols)
    usage = {"prompt_tokens": r.scored_tokens, "completion_tokens": sampled,
             "total_tokens": sampled + r.scored_tokens, "sampled_tokens": sampled,
             "scored_tokens": r.scored_tokens}
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model, "choices": choices, "usage": usage,
            "bestofn": extension(outcome, question, total_s)}


def extension(outcome: Any, question: Question, total_s: float) -> dict[str, Any]:
    """What the reranking did: answer, method, per-solution answers and scores, votes."""
    r = outcome.reranked
    sel, item = r.selection, r.item
    prm = item.prm
    return {
        "answer": sel.answer, "method": sel.method, "index": r.ranking[0] if r.ranking else None,
        "reason": sel.reason, "question_id": question.id, "options": question.options,
        "samples": len(item.solutions), "answers": item.answers,
        "solutions": [x.text for x in item.solutions], "scores": r.own_scores(),
        "aggregates": None if prm is None else {
            how: [x.aggregate(how) for x in prm] for how in AGGREGATIONS},
        "step_scores": None if prm is None else [list(x.probs) for x in prm],
        "unscored": None if prm is None else [x.reason for x in prm],
        "orm_scores": item.orm, "votes": sel.weights, "tied": sel.tied, "ranking": r.ranking,
        "batch_size": outcome.batch_size, "adaptive": outcome.adaptive,
        "search": outcome.search,
        "compute": outcome.compute,
        "timings": {**outcome.timings, "total_s": round(total_s, 4)},
    }


def _finish(meta: dict[str, Any]) -> str:
    return str(meta.get("finish_reason") or "stop")


def stream_events(body: dict[str, Any], include_usage: bool) -> Iterator[str]:
    """The completion as server-sent events: role, content, then finish (with the `bestofn`
    field), optionally a usage chunk, then `[DONE]`. Sent once the answer is chosen."""
    head = {k: body[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        return f"data: {json.dumps(head | {'choices': choices} | extra)}\n\n"

    for c in body["choices"]:
        yield event([{"index": c["index"], "delta": {"role": "assistant", "content": ""},
                      "finish_reason": None}])
        yield event([{"index": c["index"], "delta": {"content": c["message"]["content"]},
                      "finish_reason": None}])
    yield event([{"index": c["index"], "delta": {}, "finish_reason": c["finish_reason"]}
                 for c in body["choices"]], bestofn=body["bestofn"])
    if include_usage:
        yield event([], usage=body["usage"])
    yield "data: [DONE]\n\n"
