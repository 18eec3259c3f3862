"""Med-PRM step scoring with transformers.

Only the work the scores need: the backbone runs to the last step marker of each solution, and
the LM head is evaluated for the two rows (' +', ' -') at the marker positions only, never over
the full vocabulary. Solutions are grouped by length into batches bounded by a token budget.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..records import Question, Solution, StepScores
from ..torch_utils import resolve_device, resolve_dtype
from .prm_prompt import EncodedPrompt, PRMPromptConfig, encode_prompt, question_documents


@dataclass(frozen=True)
class PRMTokens:
    """The label tokens whose logits make the 2-way softmax."""

    plus: str = " +"
    minus: str = " -"


def label_token_id(tokenizer: Any, text: str) -> int:
    """The single token id of `text`; a label that splits into several tokens is an error."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"PRM label {text!r} is {len(ids)} tokens {ids} in this tokenizer; "
                         "a 2-way softmax needs each label to be one token")
    return ids[0]


def length_batches(lengths: Sequence[int], max_tokens: int, max_size: int) -> Iterator[list[int]]:
    """Indices grouped longest first so that size x longest <= max_tokens and size <= max_size.

    A single sequence longer than `max_tokens` gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for i in order:
        longest = lengths[batch[0]] if batch else lengths[i]
        if batch and (len(batch) + 1 > max_size or (len(batch) + 1) * longest > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


class HFPRMScorer:
    """A causal-LM process reward model run with transformers (float32 on CPU, bf16 on GPU)."""

    kind = "prm"

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto",
                 max_len: int = 4096, doc_reserve: int = 1024, use_docs: bool = True,
                 double_bos: bool = True, batch_size: int = 16, max_batch_tokens: int = 16384,
                 tokens: PRMTokens = PRMTokens(), attn_implementation: str | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..embedded import resolve_model

        path = resolve_model(model)
        self.model_name = model
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.prompt = PRMPromptConfig(max_len=max_len, doc_reserve=doc_reserve,
                                      use_docs=use_docs, double_bos=double_bos)
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        kw = {"attn_implementation": attn_implementation} if attn_implementation else {}
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype, **kw)
        self.model.to(self.device).eval()
        self.plus_id = label_token_id(self.tokenizer, tokens.plus)
        self.minus_id = label_token_id(self.tokenizer, tokens.minus)
        self._head = _TwoRowHead(self.model, self.plus_id, self.minus_id)

    @property
    def model_max_len(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def encode(self, question: Question, documents: Sequence[str] | None,
               solutions: Sequence[Solution]) -> list[EncodedPrompt]:
        docs = question_documents(list(documents or []), self.tokenizer, self.prompt)
        text = question.text()
        return [encode_prompt(self.tokenizer, text, s.marked, docs, self.prompt,
                              self.model_max_len) for s in solutions]

    def score(self, question: Question, documents: Sequence[str] | None,
              solutions: Sequence[Solution]) -> list[StepScores]:
        return self.score_encoded(self.encode(question, documents, solutions))

    @torch.inference_mode()
    def score_encoded(self, encoded: Sequence[EncodedPrompt]) -> list[StepScores]:
        out: list[StepScores | None] = [
            StepScores.unscored(e.reason) if e.reason else None for e in encoded]
        todo = [i for i, e in enumerate(encoded) if not e.reason]
        lengths = [len(encoded[i].input_ids) for i in todo]
        for batch in length_batches(lengths, self.max_batch_tokens, self.batch_size):
            items = [encoded[todo[j]] for j in batch]
            for j, probs in zip(batch, self._score_batch(items), strict=True):
                out[todo[j]] = StepScores(probs=tuple(probs))
        assert all(s is not None for s in out), "every solution gets a score or a reason"
        return out  # type: ignore[return-value]

    def _score_batch(self, items: Sequence[EncodedPrompt]) -> list[list[float]]:
        width = max(len(e.input_ids) for e in items)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(items), width), pad, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for r, e in enumerate(items):
            ids[r, : len(e.input_ids)] = torch.tensor(e.input_ids)
            mask[r, : len(e.input_ids)] = 1
        hidden = self._head.backbone(input_ids=ids.to(self.device),
                                     attention_mask=mask.to(self.device)).last_hidden_state
        rows = torch.cat([torch.full((len(e.marker_positions),), r)
                          for r, e in enumerate(items)])
        cols = torch.cat([torch.tensor(e.marker_positions) for e in items])
        p = self._head.plus_prob(hidden[rows.to(self.device), cols.to(self.device)])
        return [chunk.tolist() for chunk in torch.split(p.double().cpu(),
                                                        [len(e.marker_positions) for e in items])]


class _TwoRowHead:
    """The LM head restricted to the ' +' and ' -' rows, in float32."""

    def __init__(self, model: Any, plus_id: int, minus_id: int) -> None:
        self.backbone = model.get_decoder() if hasattr(model, "get_decoder") else model.model
        head = model.get_output_embeddings()
        idx = torch.tensor([plus_id, minus_id], device=head.weight.device)
        self.weight = head.weight.detach().index_select(0, idx).float()
        bias = getattr(head, "bias", None)
        self.bias = None if bias is None else bias.detach().index_select(0, idx).float()
        self.softcap = getattr(model.config, "final_logit_softcapping", None)

    def plus_prob(self, hidden: torch.Tensor) -> torch.Tensor:
        """P(+): softmax over the two logits, first entry (after softcapping, if any)."""
        logits = hidden.float() @ self.weight.T
        if self.bias is not None:
            logits = logits + self.bias
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return torch.softmax(logits, dim=-1)[:, 0]
