"""The `SampleStream` protocol and its registry: how the scheduler reaches a policy engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bestofn.config import SamplingConfig
from bestofn.registry import Registry

from .requests import Finished, SampleError, SampleKey, SampleRequest, StepOutput, StepRequest


class SampleStream(Protocol):
    """Requests of single samples that run concurrently and can be aborted.

    `submit` starts each `SampleRequest` (sample k of a question: its seed + k); `poll` runs
    the engine until at least one request finished or `timeout` seconds passed, and returns
    the finished ones (a `Finished` sample, or a `StepOutput` of a step request; a
    `SampleError` for a request that failed on its own); `abort` stops running requests and
    returns the tokens they had generated (an aborted request never comes back from `poll`)."""

    def submit(self, requests: Sequence[SampleRequest], params: SamplingConfig) -> None:
        """`params` gives everything but the seed, which each request carries."""

    def submit_steps(self, requests: Sequence[StepRequest], params: SamplingConfig) -> None:
        """Start continuations from token ids (search steps); `params` gives temperature,
        top-p and top-k. A stream that cannot continue from token ids raises
        `NotImplementedError`."""

    def poll(self, timeout: float) -> list[Finished | StepOutput | SampleError]: ...

    def abort(self, keys: Sequence[SampleKey]) -> int: ...

    def pending(self) -> int:
        """Samples submitted and neither finished nor aborted."""

    def close(self) -> None: ...


STREAMS = Registry("sample stream")
STREAMS.register("vllm", "bestofn.execution.vllm_stream:VLLMStream")
STREAMS.register("openai", "bestofn.execution.openai_stream:OpenAIStream")
STREAMS.register("ordered", "bestofn.execution.ordered_stream:OrderedStream")


def make_stream(policy: Any) -> SampleStream:
    """The stream for a policy: its backend's own (`policy.backend`), else the ordered one."""
    name = getattr(policy, "backend", "ordered")
    return STREAMS.create(name if name in STREAMS.names() else "ordered", policy=policy)
