"""Sampling with transformers `generate`: the CPU fallback and the reference policy backend."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bestofn.prompts import MEDPRM_POLICY_SYSTEM
from bestofn.records import Question, Solution
from bestofn.torch_utils import resolve_device, resolve_dtype

from . import SamplingConfig, question_seed


def chat_messages(question: Question, system: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": question.text()}]


class HFPolicy:
    """N sampled solutions per question, in chunks of `batch_size` sequences."""

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 16, system_prompt: str = MEDPRM_POLICY_SYSTEM) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from bestofn.embedded import resolve_model

        path = resolve_model(model)
        self.model_name, self.system_prompt, self.batch_size = model, system_prompt, batch_size
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=resolve_dtype(dtype, self.device)).to(self.device).eval()

    def sample(self, questions: Sequence[Question], n: int,
               params: SamplingConfig) -> list[list[Solution]]:
        return [self._sample_one(q, n, params) for q in questions]

    @torch.inference_mode()
    def _sample_one(self, q: Question, n: int, params: SamplingConfig) -> list[Solution]:
        ids = self.tokenizer.apply_chat_template(
            chat_messages(q, self.system_prompt), add_generation_prompt=True,
            return_tensors="pt", return_dict=True)["input_ids"].to(self.device)
        out: list[Solution] = []
        for chunk, start in enumerate(range(0, n, self.batch_size)):
            k = min(self.batch_size, n - start)
            seed = question_seed(params.seed, q.id, chunk)
            torch.manual_seed(seed)
            gen = self.model.generate(
                ids, do_sample=params.temperature > 0, temperature=params.temperature or None,
                top_k=params.top_k or None, top_p=params.top_p, max_new_tokens=params.max_tokens,
                num_return_sequences=k, pad_token_id=self.tokenizer.pad_token_id
                or self.tokenizer.eos_token_id)
            for row in gen[:, ids.shape[1]:]:
                n_tokens = int((row != (self.tokenizer.pad_token_id or -1)).sum())
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                out.append(Solution.from_text(text, q.options or None, model=self.model_name,
                                              seed=seed, tokens=n_tokens))
        assert len(out) == n, f"expected {n} solutions for question {q.id}, got {len(out)}"
        return out
