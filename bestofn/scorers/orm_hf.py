"""Outcome reward models (Skywork-Reward style sequence classifiers) run with transformers.

The reward is the classification head's single logit at the conversation's last real token.
The model's own forward finds that token by comparing ids with `pad_token_id`, which goes wrong
when the pad token is also the end-of-turn token that closes every conversation, so here the
backbone runs once per batch and the head is read at the last position of the attention mask,
with position ids from the mask as well, so left and right padding give the same scores as
unpadded inputs. An optional PEFT LoRA adapter (e.g. Skywork MedArena LoRA v2) is applied on
top, merged into the weights when asked (faster; same scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from tqdm import tqdm

from ..registry import require
from ..torch_utils import resolve_device, resolve_dtype
from .orm_prompt import (
    ConversationORM,
    EncodedConversation,
    Message,
    ORMPromptConfig,
    ORMResult,
    Truncation,
    conversation_tokens,
    encode_conversation,
)
from .prm_hf import length_batches
from .protocol import TokenCounts


class HFORMScorer(ConversationORM):
    """A sequence-classification reward model (`num_labels=1`): one float per solution.

    Documents are not shown to the model: the published ORMs score a bare conversation.
    `max_batch_tokens` caps rows x longest row per forward pass (default 8,192 on CPU,
    131,072 on GPU, as for the PRM).
    """

    def __init__(self, model: str, *, adapter: str | None = None, merge_adapter: bool = False,
                 device: str = "auto", dtype: str = "auto", max_len: int = 4096,
                 truncation: Truncation = "unscored", strip_think: bool = False,
                 padding_side: Literal["right", "left"] = "right",
                 attn_implementation: str | None = None, batch_size: int = 16,
                 max_batch_tokens: int | None = None) -> None:
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        from transformers import AutoTokenizer

        from ..embedded import resolve_model

        path = resolve_model(model)
        self.model_name, self.adapter = model, adapter
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.prompt = ORMPromptConfig(max_len=max_len, truncation=truncation,
                                      strip_think=strip_think)
        self.padding_side = padding_side
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens or (
            131072 if self.device.type == "cuda" else 8192)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = load_classifier(path, adapter, merge_adapter, self.dtype,
                                     attn_implementation).to(self.device).eval()
        self._backbone, self._head = backbone_and_head(self.model)

    @property
    def model_max_len(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def encode(self, conversations: Sequence[list[Message]]) -> list[EncodedConversation]:
        return [encode_conversation(self.tokenizer, c, self.prompt, self.model_max_len)
                for c in conversations]

    def score_conversations_counted(self, conversations: Sequence[list[Message]],
                                    progress: bool = False
                                    ) -> tuple[list[ORMResult], TokenCounts]:
        encoded = self.encode(conversations)
        results = self.score_encoded(encoded, progress=progress)
        computed = sum(len(u) for u in dict.fromkeys(e.input_ids for e in encoded
                                                     if not e.reason))
        return results, conversation_tokens(encoded, results, computed)

    @torch.inference_mode()
    def score_encoded(self, encoded: Sequence[EncodedConversation],
                      progress: bool = False) -> list[ORMResult]:
        """Scores of encoded conversations; identical inputs are run once and share a score
        (duplicate solutions are common, and a tie must stay an exact tie)."""
        unique = list(dict.fromkeys(e.input_ids for e in encoded if not e.reason))
        values: dict[tuple[int, ...], float] = {}
        bar = tqdm(total=len(unique), desc="ORM scoring", unit="conv", disable=not progress)
        for batch in length_batches([len(u) for u in unique], self.max_batch_tokens,
                                    self.batch_size):
            seqs = [unique[j] for j in batch]
            values.update(zip(seqs, self._score_batch(seqs), strict=True))
            bar.update(len(batch))
        bar.close()
        return [ORMResult(None, e.reason) if e.reason else
                ORMResult(values[e.input_ids], dropped=e.dropped) for e in encoded]

    def _score_batch(self, seqs: Sequence[Sequence[int]]) -> list[float]:
        ids, mask = pad_batch(seqs, self.tokenizer.pad_token_id or 0, self.padding_side)
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = self._backbone(input_ids=ids, attention_mask=mask,
                                position_ids=positions).last_hidden_state
        last = mask.shape[1] - 1 - mask.flip(-1).argmax(-1)
        rows = torch.arange(len(seqs), device=self.device)
        return self._head(hidden[rows, last])[:, 0].double().cpu().tolist()


def pad_batch(seqs: Sequence[Sequence[int]], pad: int,
              side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ids and attention mask (1 on real tokens), padding on `side`."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        cols = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        ids[r, cols] = torch.tensor(list(s), dtype=torch.long)
        mask[r, cols] = 1
    return ids, mask


def load_classifier(path: str, adapter: str | None, merge: bool, dtype: torch.dtype,
                    attn_implementation: str | None) -> Any:
    """The sequence classifier (`num_labels=1`), with the PEFT adapter applied when given."""
    from transformers import AutoModelForSequenceClassification

    from ..torch_utils import MODEL_BUILD

    if adapter is None and merge:
        raise ValueError("merge_adapter needs an adapter (--adapter PATH_OR_ID)")
    kw = {"attn_implementation": attn_implementation} if attn_implementation else {}
    with MODEL_BUILD:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1,
                                                                   dtype=dtype, **kw)
        if adapter is None:
            return model
        peft = require("peft", "peft  (or: pip install -e '.[orm]')")
        model = peft.PeftModel.from_pretrained(model, adapter)
        return model.merge_and_unload() if merge else model


def backbone_and_head(model: Any) -> tuple[Any, Any]:
    """The transformer body and the `score` head of a (possibly PEFT-wrapped) classifier.

    An unmerged PEFT model keeps the transformers model inside with its LoRA layers injected
    in place, so calling its body and head directly applies the adapter.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = getattr(base, "score", None)
    if head is None:
        raise ValueError(f"{type(base).__name__} has no `score` head; orm-hf supports decoder "
                         "sequence classifiers (Llama, Gemma-2, Qwen2, Mistral, ...)")
    out = getattr(head, "out_features", None) or base.config.num_labels
    if out != 1:
        raise ValueError(f"an outcome reward model has one output; this head has {out}")
    return getattr(base, base.base_model_prefix), head
