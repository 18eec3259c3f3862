"""The wire format: OpenAI's chat-completions schema (the part this server uses) plus the
`bestofn` extension field, as pydantic models, and OpenAI's error object.

Requests are validated strictly (a string where a number belongs is refused, not coerced), and
fields this server does not use are ignored, as OpenAI-compatible servers do.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class APIError(Exception):
    """A request the server refuses: HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 type: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.type, self.code, self.headers = type, code, headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content)
        return self.content or ""


class BestofnOptions(_Strict):
    """The extension field: how to rerank this request (every field optional)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    options: dict[str, str] | None = None
    """Option letter → text; default: parsed from the question's `A. …` / `(A) …` lines."""
    samples: int | None = Field(default=None, ge=1)
    """Solutions sampled and reranked (default: the server's `-n`, at most `--max-n`)."""
    method: str | None = None
    documents: list[str] | None = None
    """Passages for the PRM prompt (default: retrieved, when the server has an index)."""
    adaptive: str | None = None
    """A stopping rule (`bestofn.adaptive`): sample until it settles, at most `samples`."""
    search: str | None = None
    """A search strategy (`bestofn.search`, e.g. `beam:width=4`) over `samples` candidates."""


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatCompletionRequest(_Strict):
    model: str | None = None
    messages: list[ChatMessage]
    n: int = Field(default=1, ge=1)
    """Choices returned: the top-n reranked solutions."""
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    bestofn: BestofnOptions | None = None


def parse_request(data: Any) -> ChatCompletionRequest:
    """Validate a decoded JSON body; a bad one raises 400 naming the first bad field."""
    if not isinstance(data, dict):
        raise APIError(400, "body: the request body must be a JSON object", param="body")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        param = ".".join(str(p) for p in err["loc"] if not _union_tag(p))
        kind = "missing" if err["type"] == "missing" else err["msg"]
        raise APIError(400, f"{param}: {kind}", param=param or None) from None


def _union_tag(part: Any) -> bool:
    """A part of pydantic's error location that names a member of a union type (`str`,
    `list[TextPart]`, `TextPart`), not a field."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool", "none")
                                      or "[" in part or part[:1].isupper())


def model_list(model_id: str, created: int) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": model_id, "object": "model", "created": created,
                                        "owned_by": "bestofn"}]}
