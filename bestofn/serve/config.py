"""Every setting of `bestofn serve`, with its default defined once (the CLI reads them here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """What the server accepts, how it samples and how it batches. The engines are built apart
    and passed to `create_app`: the policy, and a `Reranker` whose verifiers score, whose
    method and seed are the defaults of requests that do not set `bestofn.method` / `seed`."""

    model_id: str = "bestofn"
    """The one model id `/v1/models` lists; requests naming another model get 404."""
    n: int = 8
    """Samples per question when the request does not set `bestofn.samples`."""
    max_n: int = 64
    """Most samples a request may ask for (`bestofn.samples`); more is refused with 400."""
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    """New tokens per solution: the default and the most a request may ask for. These four
    sampling settings default to the preset's (filled in when the config is made)."""
    preset: str = "medprm"
    """Policy preset (prompt, answer format), as in `bestofn run`."""
    k: int = 5
    """Documents retrieved per question when the server has an index and the request gives none."""
    adaptive: str | None = None
    """The stopping rule of requests that set neither `bestofn.adaptive` nor `bestofn.search`
    (None: fixed N)."""
    search: str | None = None
    """The search strategy of requests that set neither `bestofn.search` nor
    `bestofn.adaptive` (None: best-of-N; needs the vllm policy backend and a PRM)."""
    max_batch: int = 16
    """Most questions one policy call carries."""
    batch_wait_s: float = 0.01
    """How long the batcher waits for more requests after the first one arrives."""
    queue_size: int = 64
    """Most requests admitted at once (waiting or running); past it, 429 with Retry-After."""
    retry_after_s: int = 1
    timeout_s: float = 600.0
    """Seconds a request may wait for its answer before 504 (its work is then cancelled)."""
    max_body_bytes: int = 1_000_000
    """Largest request body; larger gets 413."""
    max_messages: int = 64
    max_documents: int = 32
    max_document_chars: int = 200_000
    """Total characters of `bestofn.documents` in one request."""
    api_key: str | None = None
    """When set, every /v1 request needs `Authorization: Bearer <api_key>`."""
    max_per_key: int | None = None
    """Most requests one API key (the bearer token a request presents; none presented counts
    as one key) may have in progress; past it, 429 with Retry-After (None: no limit)."""
    drain_s: float = 30.0
    """On SIGTERM or Ctrl-C: new requests get 503 with Retry-After, the admitted ones have this
    long to be answered (the rest get 503), then the server exits."""
    host: str = "127.0.0.1"
    port: int = 8100

    def __post_init__(self) -> None:
        from ..execution.engines import SAMPLING_FIELDS, resolve_preset_sampling

        _, sampling = resolve_preset_sampling("", self.preset, 0, **{
            k: getattr(self, k) for k in SAMPLING_FIELDS})
        for k in SAMPLING_FIELDS:
            object.__setattr__(self, k, getattr(sampling, k))
        if not 1 <= self.n <= self.max_n:
            raise ValueError(f"need 1 <= n <= max_n, got n={self.n}, max_n={self.max_n}")
        for name in ("max_tokens", "max_batch", "queue_size", "max_body_bytes", "max_messages"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.search:
            from ..search import parse_strategy

            parse_strategy(self.search)
            if self.adaptive:
                raise ValueError(f"search={self.search!r} and adaptive={self.adaptive!r} "
                                 "cannot be combined: set one")
        if self.max_per_key is not None and self.max_per_key < 1:
            raise ValueError(f"max_per_key must be >= 1 or None, got {self.max_per_key}")
        if self.drain_s < 0:
            raise ValueError(f"drain_s must be >= 0, got {self.drain_s}")
        if self.timeout_s <= 0 or self.batch_wait_s < 0:
            raise ValueError(f"need timeout_s > 0 and batch_wait_s >= 0, got "
                             f"{self.timeout_s}, {self.batch_wait_s}")
