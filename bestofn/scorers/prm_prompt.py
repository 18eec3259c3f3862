"""Med-PRM's prompt, exactly as its published scorer builds it, and where its step markers land.

Shared by every PRM backend so that they score the same tokens. The published scorer renders the
chat template as text (`add_generation_prompt=True`) and tokenises it again *with* special
tokens, so Llama-3.1's BOS appears twice; the reward model was trained that way, so that is the
default here (`double_bos=False` tokenises without adding special tokens).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..text.prompts import MEDPRM_RAG_SYSTEM, MEDPRM_SYSTEM, prm_user_message
from ..text.records import StepScores
from ..text.steps import STEP_TAG
from .protocol import Request, ScoredBatch, TokenCounts


@dataclass(frozen=True)
class PRMPromptConfig:
    """How a PRM prompt is built and cut."""

    max_len: int = 4096
    """Token limit of one prompt; markers past it leave the solution unscored."""
    doc_reserve: int = 1024
    """Tokens kept free for question and solution: documents fill `max_len - doc_reserve`."""
    use_docs: bool = True
    """Put the question's documents in the prompt (Med-PRM's RAG variant)."""
    double_bos: bool = True
    """Tokenise the rendered template with special tokens, as the published scorer does."""
    step_tag: str = STEP_TAG
    published: bool = False
    """The published scorer's two choices where they differ: the RAG system prompt whenever
    `use_docs` is on (even when no document fits the budget), and no `max_len` limit on where
    markers may fall (every marker the model's own context takes is scored)."""

    def __post_init__(self) -> None:
        if self.doc_reserve >= self.max_len:
            raise ValueError(f"doc_reserve ({self.doc_reserve}) must be below max_len "
                             f"({self.max_len}); lower doc_reserve or raise --max-len")


@dataclass(frozen=True)
class EncodedPrompt:
    """Token ids of one (question, solution) prompt and the token index of each step marker.

    `reason` is set when the solution cannot be scored (no marker, markers past `max_len`).
    """

    input_ids: tuple[int, ...]
    marker_positions: tuple[int, ...]
    reason: str | None = None
    solution_start: int = 0
    """Tokens before the solution, less a margin of `SOLUTION_MARGIN` (a token that may merge
    with the solution's first characters): the question's prefix, the same for every solution
    of a question (prm-hf's segment path computes it once and shares it)."""


SOLUTION_MARGIN = 2


def fit_documents(docs: list[str], tokenizer: Any, max_len: int, reserve: int) -> list[str]:
    """Keep documents in order while their token counts (each +1) fit in `max_len - reserve`."""
    kept, used, budget = [], 0, max_len - reserve
    for doc in docs:
        n = len(tokenizer(doc, add_special_tokens=False)["input_ids"])
        if used + n + 1 > budget:
            break
        kept.append(doc)
        used += n + 1
    return kept


def render_prompt(tokenizer: Any, question_text: str, marked: str, docs: list[str],
                  rag: bool | None = None) -> str:
    """The chat-templated prompt text, RAG system prompt when documents are given (or when
    `rag` says so: the published scorer's choice with RAG on and no document)."""
    system = MEDPRM_RAG_SYSTEM if (docs if rag is None else rag) else MEDPRM_SYSTEM
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": prm_user_message(question_text, marked, docs)}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def marker_token_positions(offsets: list[tuple[int, int]], marker_ends: list[int]) -> list[int]:
    """For each marker ending at character `e`, the last token that starts before `e`.

    That is the marker's own token when it is one token (an added special token), and the
    marker's last piece when the tokenizer splits it. Zero-width tokens (BOS) are skipped.
    """
    real = [(i, s) for i, (s, e) in enumerate(offsets) if e > s]
    starts = [s for _, s in real]
    out = []
    for end in marker_ends:
        j = bisect_left(starts, end) - 1
        assert j >= 0, f"marker ending at {end} precedes every token"
        out.append(real[j][0])
    return out


def encode_prompt(tokenizer: Any, question_text: str, marked: str, docs: list[str],
                  cfg: PRMPromptConfig, model_max_len: int | None = None) -> EncodedPrompt:
    """Render, tokenise and locate the step markers of one solution's PRM prompt."""
    text = render_prompt(tokenizer, question_text, marked, docs,
                         rag=cfg.use_docs if cfg.published else None)
    enc = tokenizer(text, add_special_tokens=cfg.double_bos, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    ends = _marker_ends(text, marked, cfg.step_tag)
    if not ends:
        return EncodedPrompt(tuple(ids), (), "no step marker in the solution")
    positions = marker_token_positions(offsets, ends)
    limit = (model_max_len or len(ids)) if cfg.published else min(cfg.max_len,
                                                                  model_max_len or cfg.max_len)
    past = sum(p >= limit for p in positions)
    if past:
        return EncodedPrompt(tuple(ids), (),
                             f"{past} of {len(positions)} step markers fall past the maximum "
                             f"length ({limit} tokens; prompt has {len(ids)})")
    return EncodedPrompt(tuple(ids[: positions[-1] + 1]), tuple(positions),
                         solution_start=_tokens_before(offsets, text.rfind(marked)))


def _tokens_before(offsets: list[tuple[int, int]], char: int) -> int:
    """Tokens that end at or before character `char`, less `SOLUTION_MARGIN`."""
    n = 0
    while n < len(offsets) and offsets[n][1] <= char:
        n += 1
    return max(n - SOLUTION_MARGIN, 0)


def _marker_ends(text: str, marked: str, tag: str) -> list[int]:
    """Character end of every tag inside the explanation (never inside documents/question)."""
    base = text.rfind(marked) if marked else -1
    if base < 0:
        return []
    ends, i = [], marked.find(tag)
    while i >= 0:
        ends.append(base + i + len(tag))
        i = marked.find(tag, i + len(tag))
    return ends


def encode_solutions(tokenizer: Any, question: Any, documents: list[str] | None,
                     solutions: Any, cfg: PRMPromptConfig,
                     model_max_len: int | None = None) -> list[EncodedPrompt]:
    """Every solution's encoded prompt for one question (documents fitted to the budget once)."""
    docs = question_documents(documents, tokenizer, cfg)
    text = question.text()
    return [encode_prompt(tokenizer, text, s.marked, docs, cfg, model_max_len) for s in solutions]


def question_documents(docs: list[str] | None, tokenizer: Any, cfg: PRMPromptConfig) -> list[str]:
    """The documents that go into the prompt under `cfg` (none when `use_docs` is off)."""
    if not cfg.use_docs or not docs:
        return []
    return fit_documents(docs, tokenizer, cfg.max_len, cfg.doc_reserve)


class PromptedPRM:
    """What both PRM backends share: encode each question's solutions, then score the encoded
    prompts of several questions with `score_groups` (each backend's own).

    Subclasses set `tokenizer`, `prompt` and `model_max_len` and implement `score_groups`.
    """

    kind = "prm"
    tokenizer: Any
    prompt: PRMPromptConfig
    model_max_len: int | None

    def encode(self, question: Any, documents: Any, solutions: Any) -> list[EncodedPrompt]:
        return encode_solutions(self.tokenizer, question, list(documents or []), solutions,
                                self.prompt, self.model_max_len)

    def score_batch(self, requests: Sequence[Request]) -> ScoredBatch:
        """The Scorer protocol: step scores for every request's solutions, and the tokens."""
        groups = [self.encode(r.question, r.documents, r.solutions) for r in requests]
        results, tokens, per_group = self.score_groups(groups, requests=requests)
        flat = [e for g in groups for e in g]
        tokens = replace(tokens, solutions=len(flat),
                         unscored=sum(not s.scored for r in results for s in r),
                         prompt_tokens=sum(len(e.input_ids) for e in flat))
        return ScoredBatch(results, tokens, per_group)

    def score(self, question: Any, documents: Any, solutions: Any) -> list[StepScores]:
        """One question's step scores (a convenience over `score_batch`)."""
        return self.score_batch([Request(question, solutions, documents)]).results[0]

    def score_encoded_many(self, groups: Sequence[Sequence[EncodedPrompt]]
                           ) -> list[list[StepScores]]:
        return self.score_groups(groups)[0]

    def score_encoded(self, encoded: Sequence[EncodedPrompt]) -> list[StepScores]:
        return self.score_encoded_many([encoded])[0]

    def score_groups(self, groups: Sequence[Sequence[EncodedPrompt]], *,
                     requests: Sequence[Request] | None = None,
                     ) -> tuple[list[list[StepScores]], TokenCounts, list[int] | None]:
        """Scores of several questions' encoded prompts (a group per question), the tokens
        computed and read from a cache (the other counts are filled in by `score_batch`), and
        the tokens computed per group where groups are computed apart
        (`ScoredBatch.request_tokens`). `requests` are the groups' requests when known (a
        backend reads `Request.partial` and the question id from them)."""
        raise NotImplementedError


def scored_tokens(encoded: Sequence[EncodedPrompt]) -> int:
    """Tokens of the prompts that are scored (those without a reason)."""
    return sum(len(e.input_ids) for e in encoded if not e.reason)
