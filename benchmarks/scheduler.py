"""The streaming scheduler against today's batched calls, on one vLLM engine, in one run.

Three measurements of the sampling stage (scoring is left out: it is the same work either way),
each against batched `VLLMPolicy.sample` (one `n=N` request per question, all questions in
one call) timed in the same run on the same engine with the prefix cache reset before every
timed run:

1. fixed N through the scheduler (every sample its own request, the engine kept full): the
   throughput ratio, and a check that the texts are the batched call's;
2. adaptive where nothing settles early (`beta` with `min_n = N`): the wall-time ratio, i.e.
   what streaming and the rule cost when they save nothing;
3. adaptive where samples agree (low temperature, `beta`): samples saved, generated tokens
   saved (aborted tokens counted as spent) and wall time saved, with the ratio
   (wall saved) / (samples saved) that the target puts at >= 0.8.

Each timed configuration runs `--repeats` times, alternating with the baseline; the table shows
medians. Run on the embedded SmolLM2 (CPU) by default:

  python benchmarks/scheduler.py                                   # 8 questions, N=16
  python benchmarks/scheduler.py -q 16 -n 16 --temperature 0.3 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from typing import Any

from bestofn.adaptive import parse_rule
from bestofn.execution import Budget, Compute, make_stream
from bestofn.execution.jobs import run_jobs
from bestofn.jobs.adaptive import StreamJob
from bestofn.text.datasets import load_questions
from policies import SamplingConfig
from policies.vllm import VLLMPolicy


def batched(policy: VLLMPolicy, qs: list, n: int, params: SamplingConfig) -> dict[str, Any]:
    policy.llm.reset_prefix_cache()
    t0 = time.perf_counter()
    out = policy.sample(qs, n, params)
    dt = time.perf_counter() - t0
    return {"s": dt, "samples": sum(map(len, out)),
            "tokens": sum(int(s.meta["tokens"]) for sols in out for s in sols),
            "texts": {(q.id, k): s.text for q, sols in zip(qs, out, strict=True)
                      for k, s in enumerate(sols)}}


def streamed(policy: VLLMPolicy, qs: list, rule: Any, params: SamplingConfig,
             budget: Budget) -> dict[str, Any]:
    policy.llm.reset_prefix_cache()
    stream = make_stream(policy)
    jobs = [StreamJob(q, rule, None, lambda line: None) for q in qs]
    t0 = time.perf_counter()
    done = list(run_jobs(stream, params, jobs, budget))
    dt = time.perf_counter() - t0
    c = Compute.total(j.compute for j in done)
    return {"s": dt, "samples": c.samples_drawn, "tokens": c.tokens_generated,
            "aborted": c.tokens_aborted,
            "texts": {(j.question.id, k): j.samples[k].text for j in done
                      for k in range(j.stop_at or 0)}}


def row(name: str, bs: float, ms: float, bn: int, mn: int, bt: int, mt: int, ab: int,
        same: bool) -> str:
    s_saved, t_saved, w_saved = 1 - mn / bn, 1 - mt / bt, 1 - ms / bs
    eff = f"{w_saved / s_saved:.2f}" if s_saved > 0 else "—"
    return (f"| {name} | {bs:.1f} | {ms:.1f} | {ms / bs:.3f} | {mn}/{bn} | {mt} ({ab}) | "
            f"{100 * s_saved:.0f}% / {100 * t_saved:.0f}% / {100 * w_saved:.0f}% | {eff} | "
            f"{same} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("-q", "--questions", type=int, default=8)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.7,
                    help="sampling temperature of measurements 1 and 2")
    ap.add_argument("--agree-temperature", type=float, default=0.0,
                    help="temperature of measurement 3 (samples agree; 0: greedy)")
    ap.add_argument("--rule", default="beta", help="stopping rule of measurement 3")
    ap.add_argument("--question-in-flight", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-num-batched-tokens", type=int, default=8192)
    a = ap.parse_args()

    policy = VLLMPolicy(a.model, preset="smollm2" if a.model == "smollm2" else "medprm",
                        max_num_batched_tokens=a.max_num_batched_tokens)
    qs = load_questions("medqa", limit=a.questions)
    n = a.n
    params = SamplingConfig(temperature=a.temperature, top_k=50, max_tokens=a.max_tokens)
    agree = replace(params, temperature=a.agree_temperature)
    full = Budget(in_flight=n * len(qs), per_question=n)
    capped = Budget(in_flight=n * len(qs), per_question=a.question_in_flight)
    cases = [
        ("fixed N, streamed", params, parse_rule(f"fixed:max_n={n}"), full),
        ("adaptive, nothing settles", params, parse_rule(f"beta:min_n={n},max_n={n}"), capped),
        (f"adaptive {a.rule}, agreeing (T={a.agree_temperature})", agree,
         parse_rule(f"{a.rule}:max_n={n}"), capped),
    ]
    batched(policy, qs[:1], 2, params)  # warm-up
    rows = []
    for name, p, rule, budget in cases:
        base, mine = [], []
        for _ in range(a.repeats):
            base.append(batched(policy, qs, n, p))
            mine.append(streamed(policy, qs, rule, p, budget))
        b, m = base[-1], mine[-1]
        same = all(b["texts"][key] == text for key, text in m["texts"].items())
        bs, ms = statistics.median(x["s"] for x in base), statistics.median(x["s"] for x in mine)
        rows.append(row(name, bs, ms, b["samples"], m["samples"], b["tokens"], m["tokens"],
                        m["aborted"], same))
        print(rows[-1], flush=True)
    print(f"\n{a.model}, {len(qs)} questions, N={n}, max_tokens={a.max_tokens}, "
          f"question_in_flight={a.question_in_flight}, medians of {a.repeats}\n")
    print("| case | batched s | streamed s | wall ratio | samples kept | tokens generated "
          "(aborted) | saved: samples / tokens / wall | wall saved per sample saved | "
          "texts = batched |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    policy.llm.llm_engine.engine_core.shutdown()


if __name__ == "__main__":
    main()
