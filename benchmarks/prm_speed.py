"""PRM scoring speed: the published per-solution loop against bestofn's backends, in one run.

Workload: questions with a ~3,000-token document prefix and N solutions of 200-600 tokens each,
text taken from the bundled MedQA questions. Each method runs in its own process (so that peak
memory is its own) on identical encoded prompts:

  reference  the published Med-PRM loop: one solution at a time, full forward, full logits
  bestofn    bestofn's transformers backend: shared prefix once, two LM-head rows, batches
  vllm       bestofn's vLLM pooling backend (when vLLM is installed): each question's prefix
             read from vLLM's prefix cache, `--per-call` questions per engine call
  vllm-nocache  the same backend with prefix caching off (every prompt computed in full)

It prints solutions/s, prefill tokens actually computed, peak memory above the loaded model,
the ratios against the reference, and the largest score difference from the reference.

  python benchmarks/prm_speed.py                      # CPU: random Llama, hidden 512, 4 layers
  python benchmarks/prm_speed.py --shape llama-8b --device cuda   # Llama-3.1-8B shapes, bf16
  python benchmarks/prm_speed.py --project h200       # roofline MODEL for Llama-3.1-8B on an H200
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch

from bestofn.scorers.prm_prompt import (
    EncodedPrompt,
    PRMPromptConfig,
    encode_solutions,
    question_documents,
    render_prompt,
)
from bestofn.text.datasets import load_questions
from bestofn.text.records import Question, Solution

SHAPES: dict[str, dict[str, int]] = {
    "cpu": dict(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=8,
                intermediate_size=1408, vocab_size=32000),
    "tiny": dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2,
                 intermediate_size=256, vocab_size=2048),
    "llama-8b": dict(hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=8,
                     intermediate_size=14336, vocab_size=128256),
}
"""Model shapes. `llama-8b` is Llama-3.1-8B's; its random weights are built in memory on GPU."""


@dataclass(frozen=True)
class Workload:
    questions: int = 1
    n: int = 64
    doc_tokens: int = 3000
    min_tokens: int = 200
    max_tokens: int = 600
    seed: int = 0


def _sentences() -> list[str]:
    out = []
    for q in load_questions("medqa", limit=400):
        out += [s.strip() + "." for s in q.stem.replace("\n", " ").split(".") if len(s) > 20]
    return out


def _text_of(tok: Any, sents: list[str], rng: random.Random, target: int) -> str:
    parts, n = [], 0
    while n < target:
        s = rng.choice(sents)
        parts.append(s)
        n += len(tok(" " + s, add_special_tokens=False)["input_ids"])
    return " ".join(parts)


def _solution(tok: Any, sents: list[str], rng: random.Random, target: int) -> str:
    steps = rng.randint(3, 9)
    body = [f"Step {i + 1}: {_text_of(tok, sents, rng, target // steps)}" for i in range(steps)]
    return "\n".join(body) + f" So the answer is ({rng.choice('ABCD')})."


def build_workload(tok: Any, w: Workload) -> list[tuple[Question, list[str], list[Solution]]]:
    """Deterministic questions, documents and marked solutions."""
    rng, sents = random.Random(w.seed), _sentences()
    out = []
    for q in load_questions("medqa", limit=w.questions):
        docs = [_text_of(tok, sents, rng, 290) for _ in range(w.doc_tokens // 300)]
        sols = [Solution.from_text(_solution(tok, sents, rng, rng.randint(w.min_tokens,
                                                                          w.max_tokens)),
                                   q.options) for _ in range(w.n)]
        out.append((q, docs, sols))
    return out


class PeakMemory:
    """Peak resident memory of this process and its children (vLLM's engine), sampled."""

    def __init__(self, device: str) -> None:
        self.proc, self.device, self.peak, self._stop = psutil.Process(), device, 0, False

    def _rss(self) -> int:
        total = self.proc.memory_info().rss
        for c in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child may exit while we read it
                total += c.memory_info().rss
        return total

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self._rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop = True
            self._thread.join()
            self.peak = max(self.peak, self._rss())

    @property
    def used_mb(self) -> float:
        return max(0, self.peak - self.base) / 2**20


def model_folder(shape: str) -> Path:
    from bestofn.embedded import cache_dir
    from bestofn.testing import build_tiny_llama

    out = cache_dir() / "bench" / f"prm-{shape}"
    if not (out / "config.json").exists():
        build_tiny_llama(out, marker="special", max_position_embeddings=8192, **SHAPES[shape])
    return out


def load(shape: str, device: str) -> tuple[Any, Any, str | None]:
    """(model, tokenizer, folder): random weights, float32 on CPU, bfloat16 on GPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if shape != "llama-8b":
        folder = model_folder(shape)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
        return model, AutoTokenizer.from_pretrained(folder), str(folder)
    s = SHAPES[shape]
    cfg = LlamaConfig(hidden_size=s["hidden_size"], num_hidden_layers=s["num_layers"],
                      num_attention_heads=s["num_heads"], num_key_value_heads=s["num_kv_heads"],
                      intermediate_size=s["intermediate_size"], vocab_size=s["vocab_size"],
                      max_position_embeddings=8192, rope_theta=500000.0,
                      tie_word_embeddings=False)
    with torch.device(device):
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg).to(dtype).eval()
    return model, AutoTokenizer.from_pretrained(model_folder("cpu")), None


def matmul_params(model: Any) -> int:
    """Weights a token's forward pass multiplies by (the embedding lookup and LM head excluded):
    useful FLOPs = 2 x this x prefill tokens, attention scores not counted."""
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in skip)


def worker(method: str, args: argparse.Namespace) -> dict[str, Any]:
    model, tok, folder = load(args.shape, args.device)
    weights = matmul_params(model)
    cfg = PRMPromptConfig(max_len=args.max_len)
    work = build_workload(tok, Workload(args.questions, args.n, args.doc_tokens))
    encoded = [encode_solutions(tok, q, d, s, cfg, args.max_len) for q, d, s in work]
    for (_, _, sols), encs in zip(work, encoded, strict=True):  # keep what fits in max_len
        keep = [i for i, e in enumerate(encs) if not e.reason]
        sols[:], encs[:] = [sols[i] for i in keep], [encs[i] for i in keep]
    run = {"reference": _run_reference, "bestofn": _run_bestofn, "vllm": _run_vllm,
           "vllm-nocache": _run_vllm}[method]
    out = run(model, tok, folder, work, encoded, args)
    out["useful_tflops"] = 2 * weights * out["prefill_tokens"] / out["seconds"] / 1e12
    return out


def _run_reference(model, tok, folder, work, encoded, args) -> dict[str, Any]:
    from bestofn.scorers.prm_hf import label_token_id
    from bestofn.testing.prm_reference import reference_step_scores

    plus, minus = label_token_id(tok, " +"), label_token_id(tok, " -")
    jobs = []
    for (q, docs, sols), encs in zip(work, encoded, strict=True):
        for s, e in list(zip(sols, encs, strict=True))[: args.ref_solutions]:
            text = render_prompt(tok, q.text(), s.marked,
                                 question_documents(docs, tok, PRMPromptConfig(args.max_len)))
            full = tuple(tok(text, add_special_tokens=True)["input_ids"])
            jobs.append(EncodedPrompt(full, e.marker_positions))
    with PeakMemory(args.device) as mem:
        t = time.perf_counter()
        scores = [reference_step_scores(model, j, plus, minus).probs for j in jobs]
        _sync(args.device)
        dt = time.perf_counter() - t
    return {"solutions": len(jobs), "seconds": dt, "memory_mb": mem.used_mb,
            "prefill_tokens": sum(len(j.input_ids) for j in jobs), "scores": scores,
            "per_question": [min(args.ref_solutions, len(e)) for e in encoded]}


def _run_bestofn(model, tok, folder, work, encoded, args) -> dict[str, Any]:
    from bestofn.scorers.prm_hf import HFPRMScorer, shared_prefix_len

    scorer = HFPRMScorer(model, tokenizer=tok, max_len=args.max_len,
                         batch_size=args.batch_size, max_batch_tokens=args.max_batch_tokens)
    scorer.score_encoded(encoded[0][:2])  # warm-up
    with PeakMemory(args.device) as mem:
        t = time.perf_counter()
        scores = [s.probs for encs in encoded for s in scorer.score_encoded(encs)]
        _sync(args.device)
        dt = time.perf_counter() - t
    prefill = sum(shared_prefix_len(e) + sum(len(x.input_ids) - shared_prefix_len(e) for x in e)
                  for e in encoded)
    return {"solutions": len(scores), "seconds": dt, "memory_mb": mem.used_mb,
            "prefill_tokens": prefill, "scores": scores,
            "per_question": [len(e) for e in encoded]}


def _run_vllm(model, tok, folder, work, encoded, args) -> dict[str, Any]:
    from bestofn.scorers.prm_vllm import VLLMPRMScorer

    del model
    scorer = VLLMPRMScorer(folder, device=args.device, max_len=args.max_len,
                           prefix_caching=args.worker != "vllm-nocache")
    scorer.score_encoded([encoded[0][0]])  # warm-up (its prefix is cleared from the cache below)
    scorer.llm.reset_prefix_cache()
    scorer.memo.clear()
    scores, computed = [], 0
    with PeakMemory(args.device) as mem:
        t = time.perf_counter()
        for i in range(0, len(encoded), args.per_call):
            for g in scorer.score_encoded_many(encoded[i: i + args.per_call]):
                scores += [s.probs for s in g]
            computed += scorer.stats.computed_tokens
        dt = time.perf_counter() - t
    return {"solutions": len(scores), "seconds": dt, "memory_mb": mem.used_mb,
            "prefill_tokens": computed, "scores": scores,
            "per_question": [len(e) for e in encoded]}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _spawn(method: str, argv: list[str]) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--worker", method, *argv]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ,
                                                                  "TOKENIZERS_PARALLELISM": "0"})
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode or not lines:
        print(f"{method}: failed (exit {p.returncode})\n{p.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def _max_diff(ref: dict[str, Any], other: dict[str, Any]) -> float:
    """Largest score difference on the solutions both scored (the reference's first k of each
    question)."""
    got, start = [], 0
    for k, n in zip(ref["per_question"], other["per_question"], strict=True):
        got += other["scores"][start: start + k]
        start += n
    return max(abs(a - b) for x, y in zip(ref["scores"], got, strict=True)
               for a, b in zip(x, y, strict=True))


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    ref = results["reference"]
    rows = ["| method | solutions/s | prefill tokens/solution | peak memory MB | speed-up | "
            "memory ratio | max |score diff| | useful TFLOP/s |",
            "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        sps = r["solutions"] / r["seconds"]
        ratio_mem = r["memory_mb"] / ref["memory_mb"] if ref["memory_mb"] else float("nan")
        rows.append(f"| {name} | {sps:.2f} | {r['prefill_tokens'] / r['solutions']:.0f} | "
                    f"{r['memory_mb']:.0f} | {sps / (ref['solutions'] / ref['seconds']):.1f}x | "
                    f"{ratio_mem:.2f} | {_max_diff(ref, r):.1e} | {r['useful_tflops']:.3f} |")
    peak = f" (card bf16 peak: {args.peak_tflops} TFLOP/s)" if args.peak_tflops else ""
    head = (f"shape={args.shape} device={args.device} questions={args.questions} n={args.n} "
            f"doc_tokens~{args.doc_tokens} reference solutions/question={args.ref_solutions} "
            f"vllm questions/call={args.per_call}{peak}")
    return head + "\n\n" + "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="cpu")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--questions", type=int, default=1)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--doc-tokens", type=int, default=3000)
    ap.add_argument("--max-len", type=int, default=4096,
                    help="PRM prompt limit; solutions whose markers fall past it are dropped")
    ap.add_argument("--ref-solutions", type=int, default=16,
                    help="solutions per question the slow reference scores (rate is per solution)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-batch-tokens", type=int, default=None)
    ap.add_argument("--per-call", type=int, default=4,
                    help="questions per vLLM engine call (the scorer's cross-question batch)")
    ap.add_argument("--methods", default="reference,bestofn,vllm",
                    help="comma-separated: reference, bestofn, vllm, vllm-nocache")
    ap.add_argument("--project", choices=["h200", "h100"], default=None,
                    help="print a roofline MODEL for Llama-3.1-8B on this card instead of running")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="the card's measured bf16 matmul TFLOP/s, printed for comparison")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args, argv = ap.parse_args(), sys.argv[1:]
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    if args.project:
        print(project(args))
        return
    results = {}
    for m in args.methods.split(","):
        if m.startswith("vllm") and (args.shape == "llama-8b" or _no_vllm()):
            print("vllm: skipped (not installed, or random in-memory weights)", file=sys.stderr)
            continue
        print(f"running {m} ...", file=sys.stderr)
        if (r := _spawn(m, argv)) is not None:
            results[m] = r
    print(report(results, args))


def project(args: argparse.Namespace) -> str:
    """The roofline table on this benchmark's workload (token counts from the CPU tokenizer)."""
    from prm_projection import CARDS, projection_table
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_folder("cpu"))
    cfg = PRMPromptConfig(max_len=args.max_len)
    work = build_workload(tok, Workload(args.questions, args.n, args.doc_tokens))
    groups = [[e for e in encode_solutions(tok, q, d, s, cfg, args.max_len) if not e.reason]
              for q, d, s in work]
    return projection_table(groups, CARDS[args.project])


def _no_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is None


if __name__ == "__main__":
    main()
