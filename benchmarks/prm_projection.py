"""A roofline MODEL (not a measurement) of PRM scoring on a GPU, for `prm_speed.py --project`.

For each method it counts, per solution, the FLOPs (matmuls, causal attention, LM head) and the
HBM bytes (weights per forward step shared by the solutions in it, KV cache written and read,
logits) of Llama-3.1-8B in bfloat16, on the token counts of the benchmark's own workload (its
prompts are tokenised by the CPU benchmark model's tokenizer, so lengths approximate
Llama-3's). Solutions/s = 1 / max(FLOPs / peak FLOP/s, bytes / bandwidth): an upper bound that
ignores kernel efficiency, launch overheads and activations, so the first GPU run can be checked
against it (expect a measured rate below these, in about the same ratios).
"""

from __future__ import annotations

from dataclasses import dataclass

from bestofn.scorers.prm_hf import shared_prefix_len
from bestofn.scorers.prm_prompt import EncodedPrompt


@dataclass(frozen=True)
class Card:
    name: str
    tflops: float
    """Dense bf16 matmul peak, TFLOP/s (datasheet)."""
    tb_s: float
    """HBM bandwidth, TB/s (datasheet)."""


CARDS = {"h200": Card("H200 SXM", 989.0, 4.8), "h100": Card("H100 SXM", 989.0, 3.35)}


@dataclass(frozen=True)
class Shape:
    hidden: int = 4096
    layers: int = 32
    heads: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    ffn: int = 14336
    vocab: int = 128256

    @property
    def matmul_params(self) -> int:
        """Backbone weights a token multiplies by (embedding and LM head excluded)."""
        h, kv = self.hidden, self.kv_heads * self.head_dim
        return self.layers * (2 * h * h + 2 * h * kv + 3 * h * self.ffn)

    @property
    def weight_bytes(self) -> int:
        return 2 * (self.matmul_params + 2 * self.vocab * self.hidden)

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * 2


LLAMA_8B = Shape()
BLOCK = 16
"""vLLM's KV block on CUDA: cached prefixes are whole blocks."""
VLLM_STEP_TOKENS = 8192
"""Tokens per vLLM forward step (its default `max_num_batched_tokens` for pooling on GPU)."""
HF_BATCH = 16
"""prm-hf's default batch size (rows sharing one weight read)."""
ATTN_TILE = 128
"""Query rows per attention tile: the context's keys/values are read once per tile."""


def _span(s: Shape, start: int, end: int) -> tuple[float, float]:
    """(FLOPs, KV bytes) to compute positions start..end-1 with keys/values 0..end-1 cached."""
    n = end - start
    attn = 4 * s.heads * s.head_dim * s.layers * (end * end - start * start) / 2
    kv = s.kv_bytes_per_token * (n + -(-n // ATTN_TILE) * end)
    return 2 * s.matmul_params * n + attn, kv


def per_solution(groups: list[list[EncodedPrompt]], s: Shape = LLAMA_8B
                 ) -> dict[str, tuple[float, float, float]]:
    """Method -> (computed tokens, FLOPs, bytes) per solution, averaged over the workload."""
    acc = {m: [0.0, 0.0, 0.0] for m in ("reference", "prm-hf", "prm-vllm", "prm-vllm-nocache")}
    n_sol = sum(len(g) for g in groups)

    def add(m: str, tokens: float, flops: float, nbytes: float) -> None:
        a = acc[m]
        a[0], a[1], a[2] = a[0] + tokens, a[1] + flops, a[2] + nbytes

    for g in groups:
        p = shared_prefix_len(g)
        f, kv = _span(s, 0, p)
        add("prm-hf", p, f, kv + s.weight_bytes)
        for i, e in enumerate(g):
            n, m = len(e.input_ids), len(e.marker_positions)
            f, kv = _span(s, 0, n)
            logits = 8 * n * s.vocab  # bf16 logits written and read, float32 copy written
            add("reference", n, f + 2 * s.hidden * s.vocab * n, kv + s.weight_bytes + logits)
            add("prm-vllm-nocache", n, f + 4 * s.hidden * n,
                kv + s.weight_bytes * n / VLLM_STEP_TOKENS)
            f, kv = _span(s, p, n)
            add("prm-hf", n - p, f + 4 * s.hidden * m,
                kv + s.weight_bytes / HF_BATCH + s.kv_bytes_per_token * p)  # expanded prefix
            start = 0 if i == 0 else p // BLOCK * BLOCK
            f, kv = _span(s, start, n)
            add("prm-vllm", n - start, f + 4 * s.hidden * (n - start),
                kv + s.weight_bytes * (n - start) / VLLM_STEP_TOKENS)
    return {m: (t / n_sol, f / n_sol, b / n_sol) for m, (t, f, b) in acc.items()}


def projection_table(groups: list[list[EncodedPrompt]], card: Card, s: Shape = LLAMA_8B) -> str:
    rows = ["| method | tokens computed/solution | GFLOP/solution | GB/solution | FLOP/byte | "
            "bound | roofline solutions/s | vs reference |", "|---|---|---|---|---|---|---|---|"]
    rates = {}
    for m, (t, f, b) in per_solution(groups, s).items():
        compute, memory = f / (card.tflops * 1e12), b / (card.tb_s * 1e12)
        rates[m] = 1 / max(compute, memory)
        rows.append(f"| {m} | {t:.0f} | {f / 1e9:.0f} | {b / 1e9:.2f} | {f / b:.0f} | "
                    f"{'compute' if compute >= memory else 'bandwidth'} | {rates[m]:.1f} | "
                    f"{rates[m] / rates['reference']:.1f}x |")
    head = (f"MODEL, not a measurement: Llama-3.1-8B shapes, bf16, one {card.name} "
            f"({card.tflops:.0f} TFLOP/s dense bf16, {card.tb_s} TB/s); "
            f"{sum(len(g) for g in groups)} solutions in {len(groups)} question(s). "
            "Roofline upper bounds; activations, kernel efficiency and overheads ignored.")
    return head + "\n\n" + "\n".join(rows)
