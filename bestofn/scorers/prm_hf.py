"""Med-PRM step scoring with transformers.

Only the work the scores need: the backbone runs to the last step marker of each solution, and
the LM head is evaluated for the two rows (' +', ' -') at the marker positions only, never over
the full vocabulary.

Two paths, chosen per request:

- Full solutions (best-of-N; `Request.partial` False): solutions are grouped by length into
  batches bounded by a token budget, each question's shared prefix computed once (and the last
  few kept: `prefix_cache`).
- A search's partial solutions (`Request.partial` True): each prompt is computed on its own in
  fixed segments (`prm_segments`): the question's prefix, then one segment per step ending at
  its marker, each over the keys/values of the ones before. Segments are kept in a key/value
  cache bounded in bytes (`kv_store`, `cache_gb`), so a partial solution scored again after
  one more step computes only the new step's tokens. After each partial request the question's
  segments that none of its solutions uses are freed (the search's pruned candidates). The
  segments and the shapes of every forward pass are the same whether or not a segment was
  cached, so a score never depends on what the cache holds (bit for bit on CPU float32,
  tested); it equals the full-solution path's to float32 rounding (not bit for bit: the
  shapes differ).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..config import PRMOptions, default_of
from ..text.records import StepScores
from ..torch_utils import resolve_device, resolve_dtype
from .kv_store import GIB, KV, KVStore
from .prm_prompt import EncodedPrompt, PRMPromptConfig, PromptedPRM, scored_tokens
from .prm_segments import Segment, prefix_length, segments
from .protocol import Request, TokenCounts


@dataclass(frozen=True)
class PRMTokens:
    """The label tokens whose logits make the 2-way softmax."""

    plus: str = " +"
    minus: str = " -"


MEDPRM_TOKENS = PRMTokens()


def label_token_id(tokenizer: Any, text: str) -> int:
    """The single token id of `text`; a label that splits into several tokens is an error."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"PRM label {text!r} is {len(ids)} tokens {ids} in this tokenizer; "
                         "a 2-way softmax needs each label to be one token")
    return ids[0]


def length_batches(lengths: Sequence[int], max_tokens: int, max_size: int,
                   overhead: int = 0) -> Iterator[list[int]]:
    """Indices grouped longest first so that size x (longest + overhead) <= max_tokens and
    size <= max_size. `overhead` is the shared prefix every row attends to (its keys and values
    are expanded per row). A single sequence over the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for i in order:
        longest = (lengths[batch[0]] if batch else lengths[i]) + overhead
        if batch and (len(batch) + 1 > max_size or (len(batch) + 1) * longest > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def shared_prefix_len(encoded: Sequence[EncodedPrompt]) -> int:
    """Tokens every prompt shares, cut before the earliest marker so every marker's hidden
    state is computed in the per-solution pass."""
    ids = [e.input_ids for e in encoded]
    n = min(min(len(x) for x in ids), min(e.marker_positions[0] for e in encoded))
    first = ids[0]
    for k in range(n):
        if any(x[k] != first[k] for x in ids[1:]):
            return k
    return n


class HFPRMScorer(PromptedPRM):
    """A causal-LM process reward model run with transformers (float32 on CPU, bf16 on GPU)."""

    def __init__(self, model: str | Any, *, tokenizer: Any = None, device: str = "auto",
                 dtype: str = "auto", max_len: int = 4096, doc_reserve: int = 1024,
                 use_docs: bool = True, double_bos: bool = True, published: bool = False,
                 batch_size: int = 16,
                 max_batch_tokens: int | None = None, tokens: PRMTokens = MEDPRM_TOKENS,
                 attn_implementation: str | None = None, share_prefix: bool = True,
                 min_shared_prefix: int = 32, prefix_cache: int = 8,
                 cache_gb: float = default_of(PRMOptions, "cache_gb")) -> None:
        """`model` is a name/path to load, or an already-loaded causal LM (then `tokenizer` is
        required; benchmarks use this for random-weight models of real shapes).

        `max_batch_tokens` caps rows x (shared prefix + longest suffix) per forward pass, which
        bounds the expanded key/value cache and attention memory; default 4,096 on CPU (one
        3k-prefix row at a time: measured to keep peak memory near a quarter of the published
        loop's at the same speed) and 131,072 on GPU.

        `prefix_cache` keeps the key/values of the last few shared prefixes (0: none), reused
        when a later call's shared prefix is exactly a kept one: a search scores the same
        question after every step, and its system prompt, documents and question are then
        computed once, not once per step. Only exact matches are reused (never extended), so
        a kept prefix's key/values are the ones a fresh computation gives and scores do not
        depend on what the cache held.

        `cache_gb` bounds the key/value cache of prompt segments of the partial-solution path
        (`kv_store.KVStore`; 0: nothing kept between calls, a question's prefix still computed
        once per call). Least recently used segments are evicted first. The full-solution
        path neither reads nor fills it.
        """
        self.prompt = PRMPromptConfig(max_len=max_len, doc_reserve=doc_reserve,
                                      use_docs=use_docs, double_bos=double_bos,
                                      published=published)
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.share_prefix, self.min_shared_prefix = share_prefix, min_shared_prefix
        self.prefix_cache = prefix_cache
        self._prefixes: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = (
            OrderedDict())
        self.store = KVStore(int(cache_gb * GIB))
        if isinstance(model, str):
            self.model_name = model
            self.device = resolve_device(device)
            self.dtype = resolve_dtype(dtype, self.device)
            self.tokenizer, self.model = _load(model, self.dtype, attn_implementation)
            self.model.to(self.device)
        else:
            if tokenizer is None:
                raise ValueError("a loaded model needs its tokenizer: pass tokenizer=...")
            self.model_name, self.model, self.tokenizer = type(model).__name__, model, tokenizer
            self.device, self.dtype = model.device, model.dtype
        self.model.eval()
        if self.max_batch_tokens is None:
            self.max_batch_tokens = 131072 if self.device.type == "cuda" else 4096
        self.plus_id = label_token_id(self.tokenizer, tokens.plus)
        self.minus_id = label_token_id(self.tokenizer, tokens.minus)
        self._head = _TwoRowHead(self.model, self.plus_id, self.minus_id)

    @property
    def model_max_len(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def score_groups(self, groups: Sequence[Sequence[EncodedPrompt]], *,
                     requests: Sequence[Request] | None = None,
                     ) -> tuple[list[list[StepScores]], TokenCounts, list[int]]:
        """Each question's prompts on their own: full solutions row-batched (the question's
        shared prefix encoded once), a search's partial solutions in cached segments."""
        out, tokens, per_group = [], TokenCounts(), []
        for i, g in enumerate(groups):
            r = requests[i] if requests is not None else None
            scores, computed = (self._score_partial(g, r.question.id) if r is not None
                                and r.partial else self._score_question(g))
            out.append(scores)
            per_group.append(computed)
            tokens += TokenCounts(computed_tokens=computed,
                                  cached_tokens=scored_tokens(g) - computed)
        return out, tokens, per_group

    @torch.inference_mode()
    def _score_question(self, encoded: Sequence[EncodedPrompt]) -> tuple[list[StepScores], int]:
        """Scores for one question's prompts and the tokens computed: the shared prefix
        (system prompt, documents, question) is encoded once and its keys/values reused by
        every solution's suffix."""
        out: list[StepScores | None] = [
            StepScores.unscored(e.reason) if e.reason else None for e in encoded]
        todo = [i for i, e in enumerate(encoded) if not e.reason]
        items = [encoded[i] for i in todo]
        prefix = shared_prefix_len(items) if self.share_prefix and len(items) > 1 else 0
        if prefix < self.min_shared_prefix:
            prefix = 0
        kv, computed = self._encode_prefix(items[0].input_ids[:prefix]) if prefix else (None, 0)
        lengths = [len(e.input_ids) - prefix for e in items]
        for batch in length_batches(lengths, self.max_batch_tokens, self.batch_size, prefix):
            rows = [items[j] for j in batch]
            for j, probs in zip(batch, self._score_batch(rows, prefix, kv), strict=True):
                out[todo[j]] = StepScores(probs=tuple(probs))
        assert all(s is not None for s in out), "every solution gets a score or a reason"
        return out, computed + sum(lengths)  # type: ignore[return-value]

    @torch.inference_mode()
    def _score_partial(self, encoded: Sequence[EncodedPrompt], owner: str
                       ) -> tuple[list[StepScores], int]:
        """Scores of one question's partial solutions and the tokens computed, segment by
        segment; then the question's cached segments that none of them uses are freed."""
        out, computed, used = [], 0, set()
        shared: dict[bytes, tuple[KV, float | None]] = {}
        for e in encoded:
            if e.reason:
                out.append(StepScores.unscored(e.reason))
                continue
            prefix = prefix_length(e, self.share_prefix, self.min_shared_prefix)
            segs = segments(e, prefix, self.max_batch_tokens)  # type: ignore[arg-type]
            probs, n = self._score_segments(e, segs, prefix, owner, shared)
            out.append(StepScores(probs=tuple(probs)))
            computed += n
            used.update(s.key for s in segs)
        self.store.release(owner, used)
        return out, computed

    def _score_segments(self, e: EncodedPrompt, segs: Sequence[Segment], prefix: int,
                        owner: str, shared: dict[bytes, tuple[KV, float | None]]
                        ) -> tuple[list[float], int]:
        """P(+) at each marker and the tokens computed: segments are read from the cache (or
        the prefix computed earlier in this call) where there, else computed in order."""
        past: list[KV] = []
        probs: list[float] = []
        computed = 0
        for s in segs:
            hit = self.store.get(s.key, owner)
            got = (hit.kv, hit.prob) if hit is not None else shared.get(s.key)
            if got is None:
                kv, hidden = self._forward(e.input_ids[s.start:s.end], s.start, past)
                got = (kv, float(self._head.plus_prob(hidden)[0]) if s.marker else None)
                computed += s.end - s.start
                self.store.put(s.key, *got, owner)
                if s.end <= prefix:
                    shared[s.key] = got
            past.append(got[0])
            if s.marker:
                assert got[1] is not None
                probs.append(got[1])
        return probs, computed

    def _forward(self, ids: Sequence[int], start: int, past: Sequence[KV]
                 ) -> tuple[KV, torch.Tensor]:
        """One segment over the keys/values of the segments before it: its own keys/values
        (copies) and the last token's hidden state ([1, hidden])."""
        from transformers import DynamicCache

        cache = None
        if past:
            layers = range(len(past[0]))
            cache = DynamicCache([(torch.cat([p[j][0] for p in past], dim=2),
                                   torch.cat([p[j][1] for p in past], dim=2)) for j in layers],
                                 config=self.model.config)
        x = torch.tensor([list(ids)], device=self.device)
        pos = torch.arange(start, start + len(ids), device=self.device).unsqueeze(0)
        got = self._head.backbone(input_ids=x, position_ids=pos, past_key_values=cache,
                                  use_cache=True)
        kv = [(layer.keys[:, :, start:].clone(), layer.values[:, :, start:].clone())
              for layer in got.past_key_values.layers]
        return kv, got.last_hidden_state[:, -1]

    def _encode_prefix(self, ids: Sequence[int]
                       ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
        """The prefix's key/values and the tokens computed for them (0: a kept prefix)."""
        key = tuple(ids)
        if key in self._prefixes:
            self._prefixes.move_to_end(key)
            return self._prefixes[key], 0
        x = torch.tensor([list(ids)], device=self.device)
        cache = self._head.backbone(input_ids=x, use_cache=True).past_key_values
        kv = [(layer.keys, layer.values) for layer in cache.layers]
        if self.prefix_cache > 0:
            self._prefixes[key] = kv
            while len(self._prefixes) > self.prefix_cache:
                self._prefixes.popitem(last=False)
        return kv, len(key)

    def _score_batch(self, items: Sequence[EncodedPrompt], prefix: int,
                     kv: list[tuple[torch.Tensor, torch.Tensor]] | None) -> list[list[float]]:
        n, width = len(items), max(len(e.input_ids) for e in items) - prefix
        ids = torch.full((n, width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((n, prefix + width), dtype=torch.long)
        mask[:, :prefix] = 1
        for r, e in enumerate(items):
            ids[r, : len(e.input_ids) - prefix] = torch.tensor(e.input_ids[prefix:])
            mask[r, prefix: len(e.input_ids)] = 1
        kwargs = {}
        if kv is not None:
            kwargs = {"past_key_values": _expanded_cache(kv, n, self.model.config),
                      "position_ids": torch.arange(prefix, prefix + width,
                                                   device=self.device).expand(n, -1),
                      "use_cache": True}
        hidden = self._head.backbone(input_ids=ids.to(self.device),
                                     attention_mask=mask.to(self.device), **kwargs
                                     ).last_hidden_state
        rows = torch.cat([torch.full((len(e.marker_positions),), r)
                          for r, e in enumerate(items)])
        cols = torch.cat([torch.tensor(e.marker_positions) - prefix for e in items])
        p = self._head.plus_prob(hidden[rows.to(self.device), cols.to(self.device)])
        return [chunk.tolist() for chunk in torch.split(p.double().cpu(),
                                                        [len(e.marker_positions) for e in items])]


def _load(name: str, dtype: torch.dtype, attn: str | None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..embedded import resolve_model
    from ..torch_utils import MODEL_BUILD

    with MODEL_BUILD:
        path = resolve_model(name)
        kw = {"attn_implementation": attn} if attn else {}
        return (AutoTokenizer.from_pretrained(path),
                AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kw))


def _expanded_cache(kv: list[tuple[torch.Tensor, torch.Tensor]], n: int, config: Any) -> Any:
    """A fresh cache whose keys/values are the prefix's, broadcast (not copied) to `n` rows."""
    from transformers import DynamicCache

    return DynamicCache([(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in kv],
                        config=config)


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
