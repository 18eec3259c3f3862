"""ORM scoring speed: the published one-conversation-at-a-time usage against bestofn's backend.

Workload: MedQA questions with N solutions of 100-400 tokens made of MedQA sentences, scored by
a random-weight Llama sequence classifier (hidden 512, 4 layers; SmolLM2's tokenizer and chat
template) with a PEFT LoRA adapter of MedArena's size (r=16, alpha=32) on every linear layer.
All methods score identical token ids in this one process:

  reference   the model card's usage: PeftModel, one conversation per forward
  unmerged    bestofn orm-hf, adapter unmerged: length-bucketed batches under a token budget
  merged      bestofn orm-hf with --merge-adapter
  no-adapter  bestofn orm-hf on the base model (the adapter's cost, for scale)

It prints conversations/s, the ratio against the reference and the largest score difference
from it (the no-adapter row differs by design).

  python benchmarks/orm_speed.py [--questions 2] [-n 32] [--batch-size 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bestofn.embedded import smollm2_path
from bestofn.scorers.orm_hf import HFORMScorer
from bestofn.scorers.orm_prompt import EncodedConversation, solution_conversation
from bestofn.text.datasets import load_questions
from bestofn.text.records import Solution

SHAPE = dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=8,
             intermediate_size=1408)


def build_model(out: Path) -> tuple[Path, Path]:
    """A random Llama classifier with SmolLM2's tokenizer, and a LoRA adapter for it."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(smollm2_path())
    config = LlamaConfig(vocab_size=len(tok), num_labels=1, pad_token_id=tok.pad_token_id,
                         max_position_embeddings=4096, **SHAPE)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config).eval()
    model.save_pretrained(out / "base")
    tok.save_pretrained(out / "base")
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=16, lora_alpha=32,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                      "up_proj", "down_proj"])
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    peft_model.save_pretrained(out / "lora")
    return out / "base", out / "lora"


def workload(tok: Any, questions: int, n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    qs = load_questions("medqa", limit=400)
    sents = [s.strip() + "." for q in qs for s in q.stem.split(".") if len(s) > 20]
    convs = []
    for q in qs[:questions]:
        for _ in range(n):
            target, parts = rng.randint(100, 400), []
            while len(tok(" ".join(parts))["input_ids"]) < target:
                parts.append(rng.choice(sents))
            text = " ".join(parts) + f" The answer is ({rng.choice('ABCD')})."
            convs.append(solution_conversation(q, Solution(text, text, None)))
    return convs


def reference(model: Any, encoded: list[EncodedConversation]) -> list[float]:
    out = []
    with torch.inference_mode():
        for e in encoded:
            out.append(model(input_ids=torch.tensor([e.input_ids])).logits[0][0].item())
    return out


def timed(fn: Any) -> tuple[list[float], float]:
    start = time.perf_counter()
    got = fn()
    return got, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=int, default=2)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-batch-tokens", type=int, default=16384)
    ap.add_argument("--rounds", type=int, default=2, help="repeat, keep each method's best")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base, lora = build_model(Path(tmp))
        kw = dict(device="cpu", batch_size=a.batch_size, max_batch_tokens=a.max_batch_tokens)
        scorers = {"unmerged": HFORMScorer(str(base), adapter=str(lora), **kw),
                   "merged": HFORMScorer(str(base), adapter=str(lora), merge_adapter=True, **kw),
                   "no-adapter": HFORMScorer(str(base), **kw)}
        convs = workload(scorers["merged"].tokenizer, a.questions, a.n)
        encoded = scorers["merged"].encode(convs)
        tokens = sum(len(e.input_ids) for e in encoded)
        methods = {"reference": lambda: reference(scorers["unmerged"].model, encoded)}
        for name, s in scorers.items():
            methods[name] = lambda s=s: [r.score for r in s.score_encoded(encoded)]
        rows: dict[str, tuple[list[float], float]] = {}
        for _ in range(a.rounds):  # interleaved rounds, best time kept: the CPU is shared
            for name, fn in methods.items():
                got, secs = timed(fn)
                rows[name] = (got, min(secs, rows.get(name, (got, secs))[1]))
    ref, ref_s = rows["reference"]
    print(f"{len(encoded)} conversations, {tokens} tokens "
          f"({min(len(e.input_ids) for e in encoded)}-{max(len(e.input_ids) for e in encoded)} "
          f"each), batch {a.batch_size}, budget {a.max_batch_tokens}, "
          f"{torch.get_num_threads()} threads, best of {a.rounds} rounds")
    print(f"{'method':<12} {'conv/s':>8} {'seconds':>8} {'vs reference':>13} {'max |diff|':>11}")
    for name, (got, secs) in rows.items():
        diff = max(abs(x - y) for x, y in zip(got, ref, strict=True))
        print(f"{name:<12} {len(encoded) / secs:>8.2f} {secs:>8.2f} {ref_s / secs:>12.2f}x "
              f"{diff:>11.2e}")


if __name__ == "__main__":
    main()
