"""Policies: where the N solutions per question come from.

Add a backend by writing a class with `sample(questions, n, params, start=0)` and registering
it in `POLICIES`. `start` numbers the samples: `sample(qs, R, params, start=k)` returns samples
k..k+R-1 of each question, equal to those of one `sample(qs, N, params)` call (seeds are per
question and per sample index), which is what the scheduler's ordered stream asks of a backend
without a stream of its own (`bestofn.execution.STREAMS`). Backends: `vllm` (offline engine),
`openai` (any OpenAI-compatible server), `hf` (transformers `generate`), `replay` (solutions
read from a file). Med-PRM's step-count filter and top-up (`policies.validity`) is the
fixed-N job's logic, over any of them (`bestofn.execution.sample_file` writes a resumable solutions
JSONL with it).
"""

from __future__ import annotations

from bestofn.config import SamplingConfig
from bestofn.registry import Registry

from .base import Policy, check_round, question_seed

POLICIES = Registry("policy")
POLICIES.register("hf", "policies.hf:HFPolicy")
POLICIES.register("vllm", "policies.vllm:VLLMPolicy")
POLICIES.register("openai", "policies.openai:OpenAIPolicy")
POLICIES.register("replay", "policies.replay:ReplayPolicy")


def make_policy(name: str, /, **kwargs: object) -> Policy:
    return POLICIES.create(name, **kwargs)


__all__ = ["POLICIES", "Policy", "SamplingConfig", "check_round", "make_policy",
           "question_seed"]
