"""Fuzzing the HTTP API of `bestofn serve`: random JSON bodies (valid requests damaged as
`bestofn.testing.fuzzing` damages files), random bytes, oversized bodies, wrong content types and
authorization headers, other paths and methods.

The property: every request gets 200 with a well-formed completion, or a 4xx carrying OpenAI's
error object whose `param` names the field at fault (a chat request) — never a 5xx, never a
dropped connection — and the server keeps serving (`/health` answers after every request).
The server is the real app (`create_app`) on FastAPI's in-process test client, with the
cheapest engines: a replay policy over a few stored questions and majority vote (no model).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..text.records import Item, Question, Solution
from .fuzzing import Crash, any_text, damaged, dumps

OPTIONS = {"A": "aspirin", "B": "heparin", "C": "insulin"}
STEMS = [f"Case {i}: which drug thins the blood?" for i in range(3)]
API_KEY = "fuzz-key"
CHAT = "/v1/chat/completions"


def prompt(i: int) -> str:
    return STEMS[i] + "\n" + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items())


def replay_file(path: Path) -> Path:
    """Six stored solutions for each of the questions `prompt` asks."""
    from ..serve import question_id

    lines = []
    for stem in STEMS:
        q = Question(id=question_id(stem, OPTIONS), stem=stem, options=OPTIONS)
        sols = [Solution.from_text(f"Step 1: think {j}. The answer is ({'ABCA'[j % 4]}).",
                                   OPTIONS, tokens=5) for j in range(6)]
        lines.append(json.dumps(Item(q, sols).to_dict()))
    path.write_text("\n".join(lines) + "\n")
    return path


def request_body(r: random.Random) -> dict[str, Any]:
    """A valid request, with a random choice of the optional fields."""
    body: dict[str, Any] = {"model": "bestofn", "messages": [
        {"role": "system", "content": "Be brief."}] * r.randint(0, 1) + [
        {"role": "user", "content": prompt(r.randrange(len(STEMS)))}]}
    optional = {"n": r.randint(1, 4), "max_tokens": r.randint(1, 64), "seed": r.randint(0, 9),
                "temperature": r.choice([0, 0.7, 2]), "top_p": r.choice([0.5, 1]),
                "stream": r.random() < 0.5, "stream_options": {"include_usage": True},
                "bestofn": {"samples": r.randint(4, 8), "method": "majority",
                            "documents": ["a passage"]}}
    for key in r.sample(list(optional), r.randint(0, len(optional))):
        body[key] = optional[key]
    return body


def request(r: random.Random, max_body: int) -> tuple[str, str, bytes, dict[str, str]]:
    """(method, path, body, headers) of one fuzzed request."""
    headers = {"authorization": f"Bearer {API_KEY}",
               "content-type": r.choice(["application/json"] * 4 + ["text/plain", ""])}
    if r.random() < 0.1:
        headers["authorization"] = r.choice(["", "Bearer wrong", API_KEY, "Basic x",
                                             "Bearer " + API_KEY + " "])
    if r.random() < 0.08:
        method, path = r.choice([("GET", "/v1/models"), ("GET", "/metrics"), ("GET", "/health"),
                                 ("GET", CHAT), ("PUT", CHAT), ("GET", "/" + any_text(r, 8)),
                                 ("POST", "/v1/completions")])
        return method, quote(path.encode("utf-8", "surrogatepass"), safe="/"), b"", headers
    kind = r.random()
    if kind < 0.08:
        body = bytes(r.randrange(256) for _ in range(r.randrange(64)))
    elif kind < 0.12:
        body = b"{" + b"x" * (max_body + r.randint(0, 2 * max_body))
    else:
        data = damaged(request_body(r), r)
        body = dumps(data).encode("utf-8", "surrogatepass")
        if r.random() < 0.05:
            body = body[:r.randrange(len(body) + 1)]
    return "POST", CHAT, body, headers


def check_response(status: int, text: str, method: str, path: str, stream: bool) -> str:
    """"ok" (200, a completion) or "refused" (a 4xx error object naming the field); `Crash`
    for anything else."""
    if status == 200:
        if path == CHAT and stream:
            if not text.rstrip().endswith("data: [DONE]"):
                raise Crash(f"stream without [DONE]: {text[-200:]!r}")
        elif path == CHAT and not json.loads(text).get("choices"):
            raise Crash(f"200 without choices: {text[:200]!r}")
        return "ok"
    if not 400 <= status < 500:
        raise Crash(f"{method} {path}: status {status}: {text[:300]!r}")
    try:
        err = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        raise Crash(f"{method} {path}: {status} without an error object: {text[:300]!r}") \
            from None
    if set(err) != {"message", "type", "param", "code"}:
        raise Crash(f"{method} {path}: {status} error object {err!r}")
    if method == "POST" and path == CHAT and status != 429 and not err["param"]:
        raise Crash(f"{status} naming no field: {err!r}")
    return "refused"


@contextmanager
def http_target(folder: Path) -> Iterator[Callable[[random.Random], str]]:
    """A served app and a function sending it one fuzzed request: "ok" or "refused"."""
    from fastapi.testclient import TestClient

    from policies import make_policy

    from ..api import Reranker
    from ..serve import ServeConfig, create_app

    cfg = ServeConfig(n=4, max_n=8, max_tokens=64, batch_wait_s=0.0, max_body_bytes=4000,
                      max_documents=2, timeout_s=30, api_key=API_KEY)
    app = create_app(cfg, Reranker(None, method="majority"),
                     make_policy("replay", model=str(replay_file(folder / "replay.jsonl"))))
    with TestClient(app, raise_server_exceptions=False) as client:
        def one(r: random.Random) -> str:
            method, path, body, headers = request(r, cfg.max_body_bytes)
            resp = client.request(method, path, content=body, headers=headers)
            stream = b'"stream": true' in body
            result = check_response(resp.status_code, resp.text, method, path, stream)
            if client.get("/health").status_code != 200:
                raise Crash("the server stopped serving")
            return result

        yield one
