"""Sampling speed: bestofn's vLLM policy against a bare `vllm.LLM.generate`, in one run.

Both use the same engine instance, the same prompts (MedQA questions with Med-PRM's policy
prompt, rendered by the tokenizer's chat template for the bare call), the same `n` and the same
per-question seeds, so they generate the same tokens; the script checks that the texts are
identical. The prefix cache is reset before every timed run, and the order alternates
(bare, bestofn, bestofn, bare, ...). It prints generated tokens/s of each (median over the
repeats), bestofn's overhead (median of the back-to-back pairs' time ratios), and, timed
alone, the work bestofn adds around the engine: rendering the chat template and building the
`Solution`s (step marking, answer extraction). On a busy machine the timed runs vary by more
than that work; the direct timing bounds the true overhead.

With `--per-call 1,4` it instead times the same questions sampled that many questions to a
`VLLMPolicy.sample` call (the pipeline's `--policy-batch`), and checks that the grouping does
not change the texts (seeds are per question).

  python benchmarks/sampling_speed.py                         # embedded SmolLM2, CPU
  python benchmarks/sampling_speed.py --per-call 1,4          # questions per policy call
  python benchmarks/sampling_speed.py --model meta-llama/Llama-3.1-8B-Instruct -q 32 -n 64 \
      --max-tokens 1024 --gpu-memory-utilization 0.9           # GPU
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bestofn.text.datasets import load_questions
from policies import SamplingConfig, question_seed
from policies.vllm import VLLMPolicy


def bare_inputs(policy: VLLMPolicy, questions, n: int, params: SamplingConfig):
    """Token-id prompts and SamplingParams exactly as bestofn sends them."""
    tok = policy.llm.get_tokenizer()
    prompts = [{"prompt_token_ids": tok.apply_chat_template(
        policy.preset.messages(q), add_generation_prompt=True, tokenize=True,
        return_dict=True)["input_ids"]} for q in questions]
    sps = [policy.sampling_params(n, params, question_seed(params.seed, q.id))
           for q in questions]
    return prompts, sps


def run_bare(policy: VLLMPolicy, prompts, sps) -> tuple[float, int, list[list[str]]]:
    policy.llm.reset_prefix_cache()
    t0 = time.perf_counter()
    outs = policy.llm.generate(prompts, sps, use_tqdm=False)
    dt = time.perf_counter() - t0
    texts = [[o.text for o in sorted(r.outputs, key=lambda o: o.index)] for r in outs]
    return dt, sum(len(o.token_ids) for r in outs for o in r.outputs), texts


def run_bestofn(policy: VLLMPolicy, questions, n: int,
                params: SamplingConfig) -> tuple[float, int, list[list[str]]]:
    policy.llm.reset_prefix_cache()
    t0 = time.perf_counter()
    sols = policy.sample(questions, n, params)
    dt = time.perf_counter() - t0
    return dt, sum(s.meta["tokens"] for x in sols for s in x), [[s.text for s in x] for x in sols]


def own_work_seconds(policy: VLLMPolicy, questions, texts: list[list[str]]) -> float:
    """Time of what bestofn does besides generating: chat rendering and Solution building."""
    tok = policy.llm.get_tokenizer()
    t0 = time.perf_counter()
    for q, row in zip(questions, texts, strict=True):
        tok.apply_chat_template(policy.preset.messages(q), add_generation_prompt=True,
                                tokenize=True)
        for text in row:
            policy.preset.make_solution(text, q)
    return time.perf_counter() - t0


def measure(policy: VLLMPolicy, a: argparse.Namespace) -> dict[str, Any]:
    questions = load_questions("medqa", limit=a.questions)
    params = SamplingConfig(temperature=0.7, top_k=50, max_tokens=a.max_tokens, seed=a.seed)
    prompts, sps = bare_inputs(policy, questions, a.n, params)
    run_bare(policy, prompts[:1], sps[:1])  # warm-up
    times: dict[str, list[float]] = {"bare": [], "bestofn": []}
    tokens, texts = {}, {}
    for r in range(a.repeats):
        for name in (("bare", "bestofn") if r % 2 == 0 else ("bestofn", "bare")):
            dt, tokens[name], texts[name] = (run_bare(policy, prompts, sps) if name == "bare"
                                             else run_bestofn(policy, questions, a.n, params))
            times[name].append(dt)
    return {"times": times, "tokens": tokens, "same_texts": texts["bare"] == texts["bestofn"],
            "own_work": own_work_seconds(policy, questions, texts["bestofn"])}


def report(res: dict[str, Any], a: argparse.Namespace) -> None:
    med = {k: statistics.median(v) for k, v in res["times"].items()}
    print(f"model {a.model}: {a.questions} questions x n={a.n} x max {a.max_tokens} tokens, "
          f"{a.repeats} alternating repeats; identical outputs: {res['same_texts']}")
    print(f"{'method':<10}{'tokens':>8}{'median s':>10}{'tok/s':>9}{'ratio':>8}  all runs (s)")
    for k in ("bare", "bestofn"):
        runs = " ".join(f"{t:.2f}" for t in res["times"][k])
        print(f"{k:<10}{res['tokens'][k]:>8}{med[k]:>10.2f}{res['tokens'][k] / med[k]:>9.1f}"
              f"{med[k] / med['bare']:>8.3f}  {runs}")
    pairs = statistics.median(b / a for a, b in zip(*res["times"].values(), strict=True))
    print(f"bestofn overhead: {100 * (med['bestofn'] / med['bare'] - 1):+.1f}% (medians), "
          f"{100 * (pairs - 1):+.1f}% (median of pair ratios); target < 5%")
    print(f"bestofn's own work, timed alone: {1000 * res['own_work']:.1f} ms = "
          f"{100 * res['own_work'] / med['bare']:.2f}% of the bare run")


def measure_grouping(policy: VLLMPolicy, a: argparse.Namespace) -> None:
    """Tokens/s when the questions go to the engine `b` at a time, for each b in --per-call."""
    questions = load_questions("medqa", limit=a.questions)
    params = SamplingConfig(temperature=0.7, top_k=50, max_tokens=a.max_tokens, seed=a.seed)
    sizes = [int(x) for x in a.per_call.split(",")]
    policy.sample(questions[:1], 1, params)  # warm-up
    times: dict[int, list[float]] = {b: [] for b in sizes}
    tokens, texts = {}, {}
    for r in range(a.repeats):
        for b in (sizes if r % 2 == 0 else sizes[::-1]):
            policy.llm.reset_prefix_cache()
            t0 = time.perf_counter()
            sols = [x for i in range(0, len(questions), b)
                    for x in policy.sample(questions[i:i + b], a.n, params)]
            times[b].append(time.perf_counter() - t0)
            tokens[b] = sum(s.meta["tokens"] for x in sols for s in x)
            texts[b] = [[s.text for s in x] for x in sols]
    same = all(texts[b] == texts[sizes[0]] for b in sizes)
    print(f"model {a.model}: {a.questions} questions x n={a.n} x max {a.max_tokens} tokens, "
          f"{a.repeats} alternating repeats; identical texts for every grouping: {same}")
    med = {b: statistics.median(v) for b, v in times.items()}
    base = tokens[sizes[0]] / med[sizes[0]]
    print(f"{'per call':>8}{'sequences':>11}{'tokens':>8}{'median s':>10}{'tok/s':>9}"
          f"{'ratio':>8}  all runs (s)")
    for b in sizes:
        rate = tokens[b] / med[b]
        runs = " ".join(f"{t:.2f}" for t in times[b])
        print(f"{b:>8}{b * a.n:>11}{tokens[b]:>8}{med[b]:>10.2f}{rate:>9.1f}"
              f"{rate / base:>8.2f}  {runs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("-q", "--questions", type=int, default=4)
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--kv-cache-gb", type=float, default=None)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    ap.add_argument("--per-call", default=None,
                    help="comma-separated questions per call (e.g. 1,4): time the grouping "
                         "instead of the overhead")
    a = ap.parse_args()
    policy = VLLMPolicy(a.model, max_model_len=a.max_model_len, kv_cache_gb=a.kv_cache_gb,
                        gpu_memory_utilization=a.gpu_memory_utilization)
    if a.per_call:
        measure_grouping(policy, a)
    else:
        report(measure(policy, a), a)


if __name__ == "__main__":
    main()
