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

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bestofn.config import SamplingConfig, default_policy_backend
from bestofn.records import Question, Solution
from bestofn.registry import Registry


@runtime_checkable
class Policy(Protocol):
    def sample(self, questions: Sequence[Question], n: int, params: SamplingConfig,
               start: int = 0) -> list[list[Solution]]: ...


def check_round(n: int, start: int) -> None:
    """A round asks for n >= 1 samples from sample index `start` >= 0."""
    if n < 1 or start < 0:
        raise ValueError(f"a policy round needs n >= 1 and start >= 0, got n={n}, "
                         f"start={start}")


def question_seed(seed: int, *parts: object) -> int:
    """A stable per-question seed, so a question's samples do not depend on batch order."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


POLICIES = Registry("policy")
POLICIES.register("hf", "policies.hf:HFPolicy")
POLICIES.register("vllm", "policies.vllm:VLLMPolicy")
POLICIES.register("openai", "policies.openai:OpenAIPolicy")
POLICIES.register("replay", "policies.replay:ReplayPolicy")


def make_policy(name: str, /, **kwargs: object) -> Policy:
    return POLICIES.create(name, **kwargs)


default_backend = default_policy_backend


from .sample import SampleReport, sample_to_file  # noqa: E402  (needs Policy above)

__all__ = ["POLICIES", "Policy", "SampleReport", "SamplingConfig", "check_round",
           "default_backend",
           "make_policy", "question_seed", "sample_to_file"]
