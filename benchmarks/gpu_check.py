"""The measuring half of `gpu_check.sh`: prm-hf's throughput against the card's peak, best-of-N
against a beam search on the PRM side, and the H200 roofline rows of RESULTS.md beside them.

Best-of-N is prm-hf's row-batched path (finished solutions, the question's shared prefix
encoded once); the search rows (`search_scoring.measure`: every step of the 64 paths, and
`beam:width=4`) send `Request.partial` requests, which prm-hf scores through its
per-candidate key/value segment cache (`--cache-gb`).

Random weights of a real shape (Llama-3.1-8B by default), bfloat16 on CUDA (float32 on CPU,
for a dry run: `--device cpu --shape tiny`). The workload is `prm_speed.py`'s: MedQA questions
with ~3,000 document tokens in the RAG-PRM prompt and N solutions of 3-9 steps.

  python benchmarks/gpu_check.py                        # CUDA, 8B shape, N=64
  python benchmarks/gpu_check.py --device cpu --shape tiny -n 8 --doc-tokens 300
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from prm_projection import CARDS, LLAMA_8B, Shape, _span, projection_table
from prm_speed import SHAPES, Workload, build_workload, load
from search_scoring import best_of, measure, project

from bestofn.scorers.prm_hf import HFPRMScorer, shared_prefix_len
from bestofn.scorers.prm_prompt import PRMPromptConfig, encode_solutions

DATASHEET_BF16_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0,
                         "GH200": 989.0, "A100": 312.0, "L40S": 362.0, "L40": 181.0,
                         "A10G": 70.0, "A10": 125.0, "L4": 121.0}
"""Dense bf16 tensor-core peak by card name (first match wins: the longer names first)."""


def peak_tflops(device: str) -> tuple[str, float | None, float]:
    """(card name, datasheet dense bf16 TFLOP/s or None, measured bf16 matmul TFLOP/s)."""
    if device != "cuda":
        return "cpu", None, _matmul_tflops(device, torch.float32, 1024, 3)
    name = torch.cuda.get_device_name(0)
    sheet = next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)
    return name, sheet, _matmul_tflops(device, torch.bfloat16, 8192, 20)


def _matmul_tflops(device: str, dtype: torch.dtype, size: int, reps: int) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * size**3 * reps / (time.perf_counter() - t) / 1e12


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def shape_of(name: str) -> Shape:
    s = SHAPES[name]
    return Shape(hidden=s["hidden_size"], layers=s["num_layers"], heads=s["num_heads"],
                 kv_heads=s["num_kv_heads"], head_dim=s["hidden_size"] // s["num_heads"],
                 ffn=s["intermediate_size"], vocab=s["vocab_size"])


def throughput(model: Any, tok: Any, work: list, a: argparse.Namespace) -> dict[str, float]:
    """Best-of-N scoring of the workload by prm-hf (`search_scoring.best_of`: finished
    solutions, the row-batched path with the question's shared prefix encoded once): seconds,
    solutions/s, tokens computed and the FLOPs of that work (backbone matmuls and causal
    attention over the shared prefix once and each solution's rest, padding not counted; the
    two-row head is negligible)."""
    kw = dict(tokenizer=tok, device=a.device, max_len=a.max_len, batch_size=a.batch_size)
    best_of(HFPRMScorer(model, **kw), work[:1], a.device)  # warm-up
    prm = HFPRMScorer(model, **kw)
    seconds, tokens = best_of(prm, work, a.device)
    shape, flops, solutions = shape_of(a.shape), 0.0, 0
    for q, docs, sols in work:
        items = [e for e in prm.encode(q, docs, sols) if not e.reason]
        prefix = shared_prefix_len(items) if prm.share_prefix and len(items) > 1 else 0
        if prefix < prm.min_shared_prefix:
            prefix = 0
        flops += _span(shape, 0, prefix)[0] + sum(_span(shape, prefix, len(e.input_ids))[0]
                                                  for e in items)
        solutions += len(items)
    return {"seconds": seconds, "solutions": solutions, "solutions_s": solutions / seconds,
            "tokens": tokens, "tflops": flops / seconds / 1e12}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama-8b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--questions", type=int, default=1)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--doc-tokens", type=int, default=3000)
    ap.add_argument("--max-len", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=16,
                    help="prm-hf: rows per forward pass of best-of-N (row-batched)")
    ap.add_argument("--cache-gb", type=float, default=16.0,
                    help="prm-hf's key/value cache bound for the beam's partial solutions (the "
                         "64 independent paths of the 8B shape need ~5 GiB; the default "
                         "leaves room)")
    a = ap.parse_args()
    name, sheet, measured = peak_tflops(a.device)
    peak = sheet or measured
    print(f"card: {name}; bf16 peak {sheet or 'unknown'} TFLOP/s (datasheet, dense), "
          f"{measured:.0f} TFLOP/s measured (8192^3 matmul)" if a.device == "cuda" else
          f"card: cpu (dry run); float32 matmul {measured:.2f} TFLOP/s")
    model, tok, folder = load(a.shape, a.device)
    work = build_workload(tok, Workload(a.questions, a.n, a.doc_tokens))
    r = throughput(model, tok, work, a)
    print(f"\n## prm-hf throughput: shape={a.shape} device={a.device} dtype={model.dtype} "
          f"questions={a.questions} N={a.n} doc_tokens~{a.doc_tokens}\n")
    print("| solutions | seconds | solutions/s | tokens computed | TFLOP/s (matmul + attention) "
          "| fraction of peak |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {r['solutions']:.0f} | {r['seconds']:.2f} | {r['solutions_s']:.1f} | "
          f"{r['tokens']:.0f} | {r['tflops']:.3g} | {r['tflops'] / peak:.3f} |")
    a.skip_scratch = True
    rows = measure("prm-hf", model, tok, folder, work, a)
    print("\n## PRM side of a search against best-of-N (prm-hf: best-of-N row-batched; the "
          "search's partial solutions through its per-candidate cache, --cache-gb "
          f"{a.cache_gb:g})\n")
    print("| PRM work (measured) | seconds | x best-of-N | PRM tokens computed | x best-of-N |")
    print("|---|---:|---:|---:|---:|")
    base_s, base_t = rows[0][1], rows[0][2]
    for row, s, t, _ in rows:
        print(f"| {row} | {s:.2f} | {s / base_s:.2f} | {t} | {t / base_t:.2f} |")
    # the workload's tokenizer is the CPU benchmark model's for every shape (prm_speed.load),
    # so these are the token counts RESULTS.md's projections were made from
    cfg = PRMPromptConfig(max_len=a.max_len)
    groups = [[e for e in encode_solutions(tok, q, d, s, cfg, a.max_len) if not e.reason]
              for q, d, s in work]
    print("\n## RESULTS.md's H200 roofline rows (a MODEL, Llama-3.1-8B) beside the measurement"
          f"\n\nmeasured here ({name}, shape {a.shape}): prm-hf {r['solutions_s']:.1f} "
          f"solutions/s, {r['tflops'] / peak:.3f} of peak\n")
    print(projection_table(groups, CARDS["h200"], LLAMA_8B))
    project(tok, work, a)


if __name__ == "__main__":
    main()
