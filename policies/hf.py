"""Sampling with transformers `generate`: the CPU fallback and the reference policy backend."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bestofn.config import SamplingConfig
from bestofn.registry import require
from bestofn.text.confidence import meta_of as confidence_meta
from bestofn.text.records import Question, Solution
from bestofn.torch_utils import resolve_device, resolve_dtype

from .base import check_round, question_seed
from .presets import Preset, get_preset


class HFPolicy:
    """N sampled solutions per question, in chunks of `batch_size` sequences.

    Chunks are aligned to sample indices: chunk c holds samples c*B..c*B+B-1 (B = batch_size),
    is always generated whole from the seed `question_seed(seed, question_id, c)`, and the
    samples a call asks for are cut out of it. So sample i is the same whichever call (and
    round: `start`) asks for it; the price is up to B - 1 discarded sequences at each end of
    a call that does not start and end on a chunk boundary (choose rounds as multiples of B).

    `lora` names a PEFT adapter folder applied on top of the model (kept unmerged, so the
    same weights as vLLM's `LoRARequest` are used).
    """

    def __init__(self, model: str, *, preset: str | Preset = "medprm", device: str = "auto",
                 dtype: str = "auto", batch_size: int = 16, lora: str | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from bestofn.embedded import resolve_model
        from bestofn.torch_utils import MODEL_BUILD

        self.model_name, self.preset, self.batch_size = model, get_preset(preset), batch_size
        self.device = resolve_device(device)
        with MODEL_BUILD:
            path = resolve_model(model)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            net = AutoModelForCausalLM.from_pretrained(path,
                                                       dtype=resolve_dtype(dtype, self.device))
            if lora is not None:
                peft = require("peft", "peft")
                net = peft.PeftModel.from_pretrained(net, lora)
        self.model = net.to(self.device).eval()
        self.stop_ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None}

    def sample(self, questions: Sequence[Question], n: int, params: SamplingConfig,
               start: int = 0) -> list[list[Solution]]:
        check_round(n, start)
        return [self._sample_one(q, n, params, start) for q in questions]

    @torch.inference_mode()
    def _sample_one(self, q: Question, n: int, params: SamplingConfig,
                    start: int) -> list[Solution]:
        ids = self.tokenizer.apply_chat_template(
            self.preset.messages(q), add_generation_prompt=True,
            return_tensors="pt", return_dict=True)["input_ids"].to(self.device)
        b, end = self.batch_size, start + n
        out: list[Solution] = []
        for chunk in range(start // b, (end - 1) // b + 1):
            seed = question_seed(params.seed, q.id, chunk)
            torch.manual_seed(seed)
            width = b if params.temperature > 0 else 1  # greedy: every sample is the same
            gen = self.model.generate(
                ids, do_sample=params.temperature > 0, temperature=params.temperature or None,
                top_k=params.top_k or None, top_p=params.top_p, max_new_tokens=params.max_tokens,
                num_return_sequences=width, pad_token_id=self.tokenizer.pad_token_id
                or self.tokenizer.eos_token_id, return_dict_in_generate=True,
                output_logits=params.logprobs is not None)
            rows = gen.sequences[:, ids.shape[1]:]
            lps = position_logprobs(gen.logits, rows, params.logprobs) \
                if params.logprobs is not None else None
            out += [self._solution(q, rows[i % width], seed, chunk * b + i, params,
                                   None if lps is None else lps[i % width])
                    for i in range(b) if start <= chunk * b + i < end]
        assert len(out) == n, f"expected {n} solutions for question {q.id}, got {len(out)}"
        return out

    def _solution(self, q: Question, row: torch.Tensor, seed: int, index: int,
                  params: SamplingConfig, lps: list[list[float]] | None = None) -> Solution:
        tokens = row.tolist()
        stop = next((i for i, t in enumerate(tokens) if t in self.stop_ids), None)
        n_tokens = len(tokens) if stop is None else stop + 1
        text = self.tokenizer.decode(tokens[:n_tokens], skip_special_tokens=True)
        reason = "stop" if stop is not None else "length"
        conf = {} if lps is None else confidence_meta(
            lps[:n_tokens], window=params.confidence_window, k=params.logprobs)
        return self.preset.make_solution(text, q, model=self.model_name, seed=seed, index=index,
                                         tokens=n_tokens, finish_reason=reason, **conf)


def position_logprobs(logits: Sequence[torch.Tensor], rows: torch.Tensor,
                      k: int) -> list[list[list[float]]]:
    """Per row and generated position: the top-k log-probabilities of the raw (unwarped)
    logits, plus the generated token's own when it is not among them (vLLM's `logprobs=k`
    with its default raw log-probabilities)."""
    out: list[list[list[float]]] = [[] for _ in range(rows.shape[0])]
    for t, step in enumerate(logits):
        lp = torch.log_softmax(step.float(), dim=-1)
        top_v, top_i = lp.topk(min(k, lp.shape[-1]), dim=-1)
        tok = rows[:, t].to(lp.device)
        own = lp.gather(-1, tok[:, None])[:, 0]
        seen = (top_i == tok[:, None]).any(-1)
        for r in range(rows.shape[0]):
            out[r].append(top_v[r].tolist() + ([] if seen[r] else [float(own[r])]))
    return out
