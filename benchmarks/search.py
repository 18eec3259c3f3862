"""Search strategies against best-of-N at the same N, on one vLLM policy engine and one PRM.

Best-of-N: one batched `VLLMPolicy.sample` call, then every solution scored by the PRM.
Each strategy: `bestofn.search.search_items` (one engine call and one PRM call per step for all
questions). Printed per row: wall seconds (sampling + scoring), generated tokens, PRM tokens
computed, PRM tokens per scored step (best-of-N: per step marker scored; search: per partial
solution scored, each of which adds one newest step), and the answers best-of-N selection
(`min` aggregate) picks, with the accuracy against gold. On the embedded SmolLM2 policy and
PRM this says nothing about medicine (the PRM is not a reward model).

  python benchmarks/search.py                      # 4 MedQA questions, N=8, 256 tokens
  python benchmarks/search.py -q 8 -n 8 --strategies beam:width=4 reject:alpha=0.5
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bestofn.datasets import load_questions
from bestofn.records import Item
from bestofn.scorers.prm_hf import HFPRMScorer
from bestofn.search import parse_strategy, search_items
from bestofn.select import best_of_n, is_correct
from bestofn.steps import count_markers
from policies import SamplingConfig
from policies.vllm import VLLMPolicy


class Counting:
    """A PRM that counts the solutions it scored and their step markers."""

    def __init__(self, prm: Any) -> None:
        self.prm, self.solutions, self.markers = prm, 0, 0

    @property
    def tokens_computed(self) -> int:
        return self.prm.tokens_computed

    def score_many(self, jobs: Any) -> Any:
        for _, _, sols in jobs:
            self.solutions += len(sols)
            self.markers += sum(count_markers(s.marked) for s in sols)
        return self.prm.score_many(jobs)


def picks(items: list[Item]) -> tuple[str, float]:
    answers, right = [], 0
    for it in items:
        scores = [p.aggregate("min") for p in it.prm or []]
        sel = best_of_n(it.answers, scores, key=it.question.id)
        answers.append(sel.answer or "-")
        right += is_correct(sel.answer, it.question.answer)
    return "".join(a[:1] for a in answers), right / max(len(items), 1)


def best_of(policy: VLLMPolicy, prm: Counting, qs: list, n: int,
            params: SamplingConfig) -> dict[str, Any]:
    policy.llm.reset_prefix_cache()
    t0, before = time.perf_counter(), prm.tokens_computed
    out = policy.sample(qs, n, params)
    t1 = time.perf_counter()
    scores = prm.score_many([(q, None, sols) for q, sols in zip(qs, out, strict=True)])
    t2 = time.perf_counter()
    items = [Item(q, sols, prm=list(s)) for q, sols, s in zip(qs, out, scores, strict=True)]
    return {"sample_s": t1 - t0, "score_s": t2 - t1, "items": items,
            "tokens": sum(int(s.meta["tokens"]) for sols in out for s in sols),
            "prm_tokens": prm.tokens_computed - before, "scored_steps": prm.markers}


def searched(policy: VLLMPolicy, prm: Counting, qs: list, n: int, params: SamplingConfig,
             spec: str) -> dict[str, Any]:
    from bestofn.scheduler.ledger import StageClock

    policy.llm.reset_prefix_cache()
    clock, before = StageClock(), prm.tokens_computed
    items = list(search_items(policy, prm, qs, n, params, parse_strategy(spec), clock=clock))
    items.sort(key=lambda it: [q.id for q in qs].index(it.question.id))
    return {"sample_s": clock.seconds["sample_s"], "score_s": clock.seconds["score_s"],
            "items": items, "tokens": sum(it.compute["tokens_generated"] for it in items),
            "prm_tokens": prm.tokens_computed - before, "scored_steps": prm.solutions}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--prm", default="smollm2")
    ap.add_argument("-q", "--questions", type=int, default=4)
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--strategies", nargs="+",
                    default=["beam:width=4", "dvts:width=4", "reject:alpha=0.5"])
    a = ap.parse_args()
    for s in a.strategies:
        parse_strategy(s)
    policy = VLLMPolicy(a.model, preset="smollm2" if a.model == "smollm2" else "medprm")
    prm_model = HFPRMScorer(a.prm, device="cpu")
    qs = load_questions("medqa", limit=a.questions)
    params = SamplingConfig(temperature=a.temperature, top_k=50, max_tokens=a.max_tokens)
    policy.sample(qs[:1], 1, params)  # warm-up
    rows = []
    for name in ["best-of-N", *a.strategies]:
        prm = Counting(prm_model)
        r = (best_of(policy, prm, qs, a.n, params) if name == "best-of-N"
             else searched(policy, prm, qs, a.n, params, name))
        sel, acc = picks(r["items"])
        rows.append((name, r["sample_s"], r["score_s"], r["tokens"], r["prm_tokens"],
                     r["prm_tokens"] / max(r["scored_steps"], 1), sel, acc))
    print(f"\n{len(qs)} questions, N={a.n}, max_tokens={a.max_tokens}, T={a.temperature}, "
          f"policy {a.model}, PRM {a.prm} (prm-hf, CPU)\n")
    print("| run | sample s | score s | total s | generated tokens | PRM tokens "
          "| PRM tokens / scored step | selected | accuracy |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for name, ss, sc, tok, pt, per, sel, acc in rows:
        print(f"| {name} | {ss:.1f} | {sc:.1f} | {ss + sc:.1f} | {tok} | {pt} | {per:.0f} "
              f"| {sel} | {acc:.2f} |")


if __name__ == "__main__":
    main()
