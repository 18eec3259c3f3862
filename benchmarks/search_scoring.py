"""What search costs the PRM against best-of-N at N=64, on a PRM of real shape (random weights).

The workload is `prm_speed.py`'s (MedQA questions, ~3,000 tokens of documents in the RAG-PRM
prompt, 64 solutions of 3-9 steps and 200-600 tokens each). A search whose live candidates
follow those 64 paths asks the PRM, after every step, for the newest step's P(+) of every
live candidate. Timed on this machine with prm-hf:

- `best-of-N`: the 64 finished solutions scored once (one `score_requests` call).
- `search, incremental`: after step t every candidate's first t steps are scored through the
  search's scorer path (`bestofn.search.scoring.score_candidates`): prm-hf computes the
  question-and-documents prefix once (its prefix cache keeps it between calls) and reuses
  its key/values for every candidate; each candidate's accepted steps are computed again.
- `search, from scratch`: the same calls with prefix sharing off (`share_prefix=False`):
  every partial solution is a full prompt, as a loop that re-scores each prefix from scratch
  (search-and-learn's) computes it.

Then the roofline MODEL (`prm_projection.py`'s, not a measurement) of the same workload on an
H200 for an 8B RAG-PRM: prm-vllm reads the cached prefix (documents, question and the steps
scored before) of each partial solution from its cache and computes only the rest of its
last 16-token block and the new step. And the policy's side for a Llama-3.1-8B policy: decode
is memory-bound; a search's step requests continue from token ids whose prefix is cached, so
it decodes the same tokens as best-of-N (it adds no prefill beyond partial blocks).

  python benchmarks/search_scoring.py                          # CPU: small random Llama
  python benchmarks/search_scoring.py --shape llama-8b --device cuda --questions 2
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from prm_projection import CARDS, LLAMA_8B, _span
from prm_speed import SHAPES, Workload, build_workload, load

from bestofn.scorers.batch import Request, score_requests
from bestofn.scorers.prm_hf import HFPRMScorer, shared_prefix_len
from bestofn.scorers.prm_prompt import PRMPromptConfig, encode_solutions
from bestofn.search import Candidate
from bestofn.search.scoring import partial_solution, score_candidates
from bestofn.text.records import Question, Solution
from bestofn.text.steps import split_steps

VLLM_BLOCK = 16


def step_texts(sol: Solution) -> list[str]:
    """A solution's text cut after each of its steps (what a search scores after each step)."""
    steps = split_steps(sol.text)
    return ["\n".join(steps[: t + 1]) for t in range(len(steps))]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def best_of(prm: Any, work: list[tuple[Question, list[str], list[Solution]]],
            device: str) -> tuple[float, int]:
    sync(device)
    t0 = time.perf_counter()
    got = score_requests(prm, [Request(q, sols, docs) for q, docs, sols in work])
    sync(device)
    return time.perf_counter() - t0, got.tokens.computed_tokens


def searched(prm: Any, work: list[tuple[Question, list[str], list[Solution]]],
             device: str) -> tuple[float, int, int]:
    """Seconds, PRM tokens computed and partial solutions scored over every step."""
    paths = [(q, docs, step_texts(s)) for q, docs, sols in work for s in sols]
    cands = [Candidate(q, str(i), 0) for i, (q, _, _) in enumerate(paths)]
    docs = {q.id: d for q, d, _ in work}
    seconds, tokens, scored = 0.0, 0, 0
    for t in range(max(len(p) for _, _, p in paths)):
        live = []
        for c, (_, _, texts) in zip(cands, paths, strict=True):
            if t < len(texts):
                c.text, c.cut = texts[t] + "\nStep", len(texts[t]) + 1
                live.append(c)
        sync(device)
        t0 = time.perf_counter()
        tokens += score_candidates(prm, live, docs)
        sync(device)
        seconds += time.perf_counter() - t0
        scored += len(live)
    return seconds, tokens, scored


def projected(tok: Any, work: list[tuple[Question, list[str], list[Solution]]],
              max_len: int, card: str) -> dict[str, float]:
    """H200 seconds (roofline) of prm-vllm scoring: best-of-N and incremental search."""
    cfg, c = PRMPromptConfig(max_len=max_len), CARDS[card]
    flops = {"best-of-N": 0.0, "search": 0.0}
    byts = {"best-of-N": 0.0, "search": 0.0}
    toks = {"best-of-N": 0, "search": 0}
    for q, docs, sols in work:
        full = [e for e in encode_solutions(tok, q, docs, sols, cfg, max_len) if not e.reason]
        prefix = shared_prefix_len(full) // VLLM_BLOCK * VLLM_BLOCK
        for e in full:
            f, b = _span(LLAMA_8B, prefix, len(e.input_ids))
            flops["best-of-N"] += f
            byts["best-of-N"] += b
            toks["best-of-N"] += len(e.input_ids) - prefix
        for m in flops:  # the shared prefix, computed once per question by either
            f, b = _span(LLAMA_8B, 0, prefix)
            flops[m] += f
            byts[m] += b
            toks[m] += prefix
        for s in sols:
            parts = [e for e in encode_solutions(tok, q, docs,
                                                 [partial_solution(t) for t in step_texts(s)],
                                                 cfg, max_len) if not e.reason]
            before = prefix
            for e in parts:
                f, b = _span(LLAMA_8B, before, len(e.input_ids))
                flops["search"] += f
                byts["search"] += b
                toks["search"] += len(e.input_ids) - before
                before = len(e.input_ids) // VLLM_BLOCK * VLLM_BLOCK
    weights = LLAMA_8B.weight_bytes
    out = {}
    for m in flops:
        # one weight read per 8,192-token engine step
        steps = max(1, -(-toks[m] // 8192))
        out[m] = max(flops[m] / (c.tflops * 1e12), (byts[m] + steps * weights) / (c.tb_s * 1e12))
        out[m + " tokens"] = toks[m]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="cpu")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--questions", type=int, default=1)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--doc-tokens", type=int, default=3000)
    ap.add_argument("--max-len", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--skip-scratch", action="store_true",
                    help="leave out the from-scratch baseline (the slowest)")
    ap.add_argument("--project-only", action="store_true",
                    help="only the roofline model (no model is built)")
    a = ap.parse_args()
    if a.project_only:
        from prm_speed import model_folder
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_folder("cpu"))
        project(tok, build_workload(tok, Workload(a.questions, a.n, a.doc_tokens)), a)
        return
    model, tok, _ = load(a.shape, a.device)
    work = build_workload(tok, Workload(a.questions, a.n, a.doc_tokens))
    kw = dict(tokenizer=tok, device=a.device, max_len=a.max_len, batch_size=a.batch_size)
    best_of(HFPRMScorer(model, **kw), work[:1], a.device)  # warm-up (its own prefix cache)
    prm = HFPRMScorer(model, **kw)
    rows = [("best-of-N", *best_of(prm, work, a.device), a.n * len(work))]
    rows.append(("search, incremental", *searched(prm, work, a.device)))
    if not a.skip_scratch:
        rows.append(("search, from scratch",
                     *searched(HFPRMScorer(model, share_prefix=False, **kw), work, a.device)))
    steps = sum(len(step_texts(s)) for _, _, sols in work for s in sols)
    print(f"\nshape={a.shape} device={a.device} questions={len(work)} N={a.n} "
          f"doc_tokens={a.doc_tokens} steps scored by a search={steps}\n")
    print("| PRM work (prm-hf, measured) | seconds | x best-of-N | PRM tokens computed "
          "| x best-of-N |")
    print("|---|---:|---:|---:|---:|")
    base_s, base_t = rows[0][1], rows[0][2]
    for name, s, t, _ in rows:
        print(f"| {name} | {s:.2f} | {s / base_s:.2f} | {t} | {t / base_t:.2f} |")
    project(tok, work, a)


def project(tok: Any, work: list[tuple[Question, list[str], list[Solution]]],
            a: argparse.Namespace) -> None:
    proj = projected(tok, work, a.max_len, "h200")
    print("\n| prm-vllm, 8B RAG-PRM on an H200 (roofline model) | seconds | PRM tokens computed "
          "| x best-of-N |")
    print("|---|---:|---:|---:|")
    for m in ("best-of-N", "search"):
        print(f"| {m} | {proj[m]:.3f} | {proj[m + ' tokens']:.0f} "
              f"| {proj[m + ' tokens'] / proj['best-of-N tokens']:.2f} |")
    gen = sum(len(tok(s.text)["input_ids"]) for _, _, sols in work for s in sols) / len(work)
    weights = LLAMA_8B.weight_bytes
    decode = gen / a.n * (weights + a.n * LLAMA_8B.kv_bytes_per_token * 2000) / (
        CARDS["h200"].tb_s * 1e12)
    print(f"\nLlama-3.1-8B policy, N={a.n} sequences of ~{gen / a.n:.0f} tokens decoded together "
          f"(roofline, ~2,000-token context): {decode:.2f} s per question for best-of-N and "
          "for a search (the same tokens decoded; step requests continue from cached prefixes)")


if __name__ == "__main__":
    main()
