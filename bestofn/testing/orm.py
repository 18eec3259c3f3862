"""Tiny outcome reward models for the tests: a random Llama sequence classifier with a spread
head, and a PEFT LoRA adapter that really changes its scores."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from . import build_tiny_llama


def build_tiny_orm(out: Path) -> Path:
    """A tiny Llama reward model whose head spreads scores over a few units, like real RMs
    (the default init gives scores within ~0.2 of each other, too close to catch errors)."""
    path = build_tiny_llama(out, num_labels=1)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        model.score.weight.copy_(torch.randn(model.score.weight.shape, generator=g) * 0.5)
    model.save_pretrained(path)
    return path


def build_tiny_lora(base: Path, out: Path) -> Path:
    """A PEFT LoRA adapter (SEQ_CLS, so the `score` head is saved too) with non-zero B
    matrices and a changed head copy, so the adapter really changes the scores."""
    from peft import LoraConfig, TaskType, get_peft_model

    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16,
                     target_modules=["q_proj", "v_proj", "o_proj", "up_proj"])
    with torch.random.fork_rng():
        torch.manual_seed(3)  # PEFT draws lora_A from the global generator
        peft_model = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif "modules_to_save" in name and "score" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.2)
    peft_model.save_pretrained(out)
    return out
