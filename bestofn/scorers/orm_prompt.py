"""What an outcome reward model reads: the chat-templated conversation, tokenised once.

Shared by the ORM backends (transformers, vLLM) so that they score the same token ids.

- The conversation is `[user: question with options, assistant: solution]`, rendered with the
  tokenizer's chat template without a generation prompt (the assistant turn is complete), which
  is how Skywork-Reward scores a conversation.
- BOS: templates such as Llama-3.1's and Gemma-2's write BOS into the text, and tokenising that
  text with special tokens adds a second one. Exactly one leading BOS is kept, which is also what
  `apply_chat_template(tokenize=True)` gives.
- Too long (`max_len`): the policy is explicit (`TRUNCATIONS`). The default leaves the solution
  unscored with a reason, as the PRM does, because a cut conversation is not what the model
  judges: cutting the end removes the final answer, cutting the start removes the reasoning.
  `keep_end` drops the response's first tokens (the answer survives), `keep_start` its last
  tokens (the usual right truncation, but the template's closing tokens are kept). Either way
  the template and the question stay whole, and the dropped tokens are a contiguous run of the
  response's own tokenisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..text.records import Question, Solution
from ..text.steps import strip_think
from .protocol import Request, ScoredBatch, TokenCounts

Truncation = Literal["unscored", "keep_end", "keep_start"]
TRUNCATIONS: tuple[str, ...] = ("unscored", "keep_end", "keep_start")
Message = dict[str, str]


@dataclass(frozen=True)
class ORMPromptConfig:
    """How a conversation is built and cut."""

    max_len: int = 4096
    """Token limit of one conversation (clamped to the model's own limit)."""
    truncation: Truncation = "unscored"
    """What to do past `max_len`: see the module docstring."""
    strip_think: bool = False
    """Score the solution without its `<think>` block (off: the raw solution text is scored)."""

    def __post_init__(self) -> None:
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"unknown truncation {self.truncation!r}; known: "
                             f"{', '.join(TRUNCATIONS)}")
        if self.max_len < 2:
            raise ValueError(f"max_len must be at least 2 tokens, got {self.max_len}")


@dataclass(frozen=True)
class EncodedConversation:
    """Token ids of one conversation; `reason` is set when it cannot be scored."""

    input_ids: tuple[int, ...]
    reason: str | None = None
    dropped: int = 0
    """Response tokens removed by truncation."""


@dataclass(frozen=True)
class ORMResult:
    """One conversation's reward (`score`), or None with the `reason`."""

    score: float | None
    reason: str | None = None
    dropped: int = 0


def solution_conversation(question: Question, solution: Solution,
                          cfg: ORMPromptConfig = ORMPromptConfig()) -> list[Message]:
    """`[user: question with options, assistant: solution text]`."""
    text = strip_think(solution.text) if cfg.strip_think else solution.text
    return [{"role": "user", "content": question.text()},
            {"role": "assistant", "content": text}]


def tokenize_once(tokenizer: Any, text: str, offsets: bool = False) -> tuple[list[int], list]:
    """Tokenise rendered template text with special tokens, keeping one leading BOS only."""
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=offsets)
    ids = list(enc["input_ids"])
    spans = [tuple(o) for o in enc["offset_mapping"]] if offsets else []
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) >= 2 and ids[0] == ids[1] == bos:
        ids, spans = ids[1:], spans[1:]
    return ids, spans


def encode_conversation(tokenizer: Any, messages: list[Message], cfg: ORMPromptConfig,
                        model_max_len: int | None = None) -> EncodedConversation:
    """Render, tokenise and (per `cfg.truncation`) cut one conversation."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    ids, _ = tokenize_once(tokenizer, text)
    limit = min(cfg.max_len, model_max_len or cfg.max_len)
    if len(ids) <= limit:
        return EncodedConversation(tuple(ids))
    too_long = f"{len(ids)} tokens, over the maximum length {limit}"
    if cfg.truncation == "unscored":
        return EncodedConversation(tuple(ids), f"{too_long} (truncation 'unscored')")
    return _truncate(tokenizer, text, messages[-1]["content"], limit, cfg.truncation, too_long)


def _truncate(tokenizer: Any, text: str, response: str, limit: int, how: str,
              too_long: str) -> EncodedConversation:
    ids, spans = tokenize_once(tokenizer, text, offsets=True)
    first, last = _response_tokens(text, response, spans)
    drop = len(ids) - limit
    if first is None or last is None or last - first + 1 <= drop:
        return EncodedConversation(tuple(ids), f"{too_long}, and cutting the response "
                                               "cannot make it fit")
    start = first if how == "keep_end" else last + 1 - drop
    kept = ids[:start] + ids[start + drop:]
    assert len(kept) == limit, (len(kept), limit)
    return EncodedConversation(tuple(kept), dropped=drop)


def _response_tokens(text: str, response: str,
                     spans: list[tuple[int, int]]) -> tuple[int | None, int | None]:
    """First and last token lying wholly inside the last occurrence of the response text.

    Templates may trim the content (Llama-3.1's does), so the stripped text is looked for.
    """
    body = response.strip()
    begin = text.rfind(body) if body else -1
    if begin < 0:
        return None, None
    end = begin + len(body)
    inside = [i for i, (s, e) in enumerate(spans) if e > s and s >= begin and e <= end]
    return (inside[0], inside[-1]) if inside else (None, None)


def check_conversation(messages: Any) -> str | None:
    """Why `messages` is not a scorable conversation (None when it is)."""
    if not isinstance(messages, list) or not messages:
        return "expected a non-empty list of {role, content} messages"
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) \
                or not isinstance(m.get("content"), str):
            return f"message {k}: expected {{'role': str, 'content': str}}, got {m!r}"
    if messages[-1]["role"] != "assistant":
        return f"the last message must be the assistant's, got role {messages[-1]['role']!r}"
    return None


class ConversationORM:
    """What both ORM backends share: every question's solutions become conversations, all
    scored by one `score_conversations_counted` call (each backend's own); `prompt` is the
    ORMPromptConfig. Documents are not shown: the published ORMs score a bare conversation."""

    kind = "orm"
    prompt: ORMPromptConfig

    def score_batch(self, requests: Sequence[Request]) -> ScoredBatch:
        """The Scorer protocol: every request's conversations in one scoring call."""
        convs = [solution_conversation(r.question, s, self.prompt)
                 for r in requests for s in r.solutions]
        flat, tokens = self.score_conversations_counted(convs)
        out, start = [], 0
        for r in requests:
            out.append(flat[start:start + len(r.solutions)])
            start += len(r.solutions)
        assert start == len(flat), f"expected {start} ORM results, got {len(flat)}"
        return ScoredBatch(out, tokens)

    def score(self, question: Question, documents: Any, solutions: Any) -> list[float | None]:
        """One question's rewards (a convenience over `score_batch`)."""
        [results] = self.score_batch([Request(question, solutions, None)]).results
        return [r.score for r in results]

    def score_conversations(self, conversations: Sequence[list[Message]],
                            progress: bool = False) -> list[ORMResult]:
        """Rewards of ready-made conversations (preference pairs)."""
        return self.score_conversations_counted(conversations, progress)[0]

    def score_conversations_counted(self, conversations: Sequence[list[Message]],
                                    progress: bool = False
                                    ) -> tuple[list[ORMResult], TokenCounts]:
        raise NotImplementedError


def conversation_tokens(encoded: Sequence[EncodedConversation], results: Sequence[ORMResult],
                        computed: int) -> TokenCounts:
    """The counts of one ORM call: every conversation built, `computed` by the model, the
    rest of the scored ones (duplicates, prefix-cache hits) read from a cache."""
    scored = sum(len(e.input_ids) for e in encoded if not e.reason)
    return TokenCounts(solutions=len(encoded), unscored=sum(r.score is None for r in results),
                       prompt_tokens=sum(len(e.input_ids) for e in encoded),
                       computed_tokens=computed, cached_tokens=scored - computed)
