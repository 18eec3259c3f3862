"""The records a stream passes back: which sample finished, and with what."""

from __future__ import annotations

from dataclasses import dataclass

from bestofn.text.records import Question, Solution


@dataclass(frozen=True, order=True)
class SampleKey:
    """Sample `index` of question `question` (the unit a stream submits and aborts)."""

    question: str
    index: int


@dataclass(frozen=True)
class SampleRequest:
    """Sample `k` of a question under run seed `seed` (vLLM's k-th child of an `n` request
    seeded `question_seed(seed, question.id)`: seed + k). The key routes what comes back; it
    differs from `k` where one job draws under several seeds (the validity filter's top-up)."""

    key: SampleKey
    question: Question
    k: int
    seed: int


@dataclass
class Finished:
    """A sample that ran to its end; `tokens` is what the engine generated for it."""

    key: SampleKey
    solution: Solution
    tokens: int


@dataclass(frozen=True)
class StepRequest:
    """Continue a partial solution from token ids: prompt ids plus the tokens accepted so far,
    up to the next stop string (a search step). The key's index is the job's own numbering."""

    key: SampleKey
    token_ids: tuple[int, ...]
    seed: int
    max_tokens: int
    stop: tuple[str, ...]
    min_tokens: int = 0


@dataclass(frozen=True)
class StepOutput:
    """What a step request generated: its token ids (a stop string's tokens included) and why
    it ended (`stop_reason`: the stop string matched, None at the end of the answer)."""

    key: SampleKey
    token_ids: tuple[int, ...]
    stop_reason: str | None
    finish_reason: str | None


@dataclass
class SampleError:
    """A sample the engine could not produce: the error its request raised."""

    key: SampleKey
    error: Exception
