"""A PEFT LoRA adapter on a tiny policy model, for the policies' adapter tests."""

from __future__ import annotations

import torch


def make_lora(base, out, *, nonzero: bool):
    """A PEFT LoRA adapter on the tiny Llama; `nonzero` initialises B randomly too (PEFT's
    default B = 0 makes the adapter a no-op)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, init_lora_weights=not nonzero,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"])
    get_peft_model(model, cfg).save_pretrained(out)
    return str(out)
