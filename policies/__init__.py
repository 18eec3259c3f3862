"""Policies: where the N solutions per question come from.

Add a backend by writing a class with `sample(questions, n, params, start=0)` and registering
it in `POLICIES`. `start` serves rounds: `sample(qs, R, params, start=k)` returns samples
k..k+R-1 of each question, equal to those of one `sample(qs, N, params)` call (seeds are per
question and per sample index), so adaptive sampling can ask for more of a question later.
Backends: `vllm` (offline engine), `openai` (any OpenAI-compatible server), `hf` (transformers
`generate`), `replay` (solutions read from a file). `ValidPolicy`
(`policies.validity`) adds Med-PRM's step-count filter and top-up to any of them, and
`sample_to_file` writes a resumable solutions JSONL.
"""

from __future__ import annotations

from bestofn.config import SamplingConfig, default_policy_backend
from bestofn.registry import Registry

from .base import Policy, check_round, question_seed
from .sample import SampleReport, sample_to_file

POLICIES = Registry("policy")
POLICIES.register("hf", "policies.hf:HFPolicy")
POLICIES.register("vllm", "policies.vllm:VLLMPolicy")
POLICIES.register("openai", "policies.openai:OpenAIPolicy")
POLICIES.register("replay", "policies.replay:ReplayPolicy")


def make_policy(name: str, /, **kwargs: object) -> Policy:
    return POLICIES.create(name, **kwargs)


default_backend = default_policy_backend

__all__ = ["POLICIES", "Policy", "SampleReport", "SamplingConfig", "check_round",
           "default_backend",
           "make_policy", "question_seed", "sample_to_file"]
