"""Serving load: requests/s and p50/p95 latency of `bestofn serve` at 1, 4 and 16 concurrent
clients, against the same work done by sequential `best_of_n` calls in one process.

One vLLM policy engine and one PRM are loaded once and shared: the baseline samples each
question alone (`policy.sample([q])`) and picks with `best_of_n`; the server (uvicorn on
loopback, in a thread) gets the same questions as chat requests from K client threads using
the `openai` client. Each concurrency level runs the whole question set; the script checks
that the server's answers equal the baseline's (seeds are per question, so batching does not
change the samples).

  python benchmarks/serve_load.py                       # SmolLM2 policy + PRM, CPU
  python benchmarks/serve_load.py -q 32 -n 8 --max-tokens 128 --clients 1,4,16,32
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from bestofn import Reranker, best_of_n
from bestofn.scorers import make_scorer
from bestofn.serve import ServeConfig, create_app, make_question
from bestofn.serve.thread import serve_in_thread
from bestofn.text.datasets import load_questions
from policies import SamplingConfig
from policies.vllm import VLLMPolicy


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(name: str, wall: float, lat: list[float]) -> dict[str, Any]:
    return {"mode": name, "requests": len(lat), "wall_s": round(wall, 2),
            "req_per_s": round(len(lat) / wall, 3), "p50_s": round(pct(lat, 50), 2),
            "p95_s": round(pct(lat, 95), 2), "mean_s": round(statistics.mean(lat), 2)}


def sequential(texts: list[str], policy: Any, prm: Any, cfg: ServeConfig, method: str):
    params = SamplingConfig(cfg.temperature, cfg.top_k, cfg.top_p, cfg.max_tokens, 0)
    lat, answers = [], []
    t0 = time.perf_counter()
    for text in texts:
        t = time.perf_counter()
        q = make_question(text)
        [sols] = policy.sample([q], cfg.n, params)
        sel = best_of_n(q, [s.text for s in sols], prm=prm, method=method)
        lat.append(time.perf_counter() - t)
        answers.append((sel.answer, [s.text for s in sols]))
    return summary("sequential best_of_n", time.perf_counter() - t0, lat), answers


def load(url: str, texts: list[str], clients: int):
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=3600)

    def one(text: str) -> tuple[float, Any]:
        t = time.perf_counter()
        r = client.chat.completions.create(model="bestofn",
                                           messages=[{"role": "user", "content": text}])
        ext = r.model_extra["bestofn"]
        return time.perf_counter() - t, (ext["answer"], ext["solutions"], ext["batch_size"])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        got = list(pool.map(one, texts))
    row = summary(f"serve, {clients} clients", time.perf_counter() - t0, [g[0] for g in got])
    row["max_batch"] = max(g[1][2] for g in got)
    return row, [g[1][:2] for g in got]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="smollm2")
    ap.add_argument("--prm", default="smollm2")
    ap.add_argument("-q", "--questions", type=int, default=16)
    ap.add_argument("-n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--method", default="prm_min")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    texts = [q.text() for q in load_questions("medqa", limit=a.questions)]
    policy = VLLMPolicy(a.policy, device=a.device, max_model_len=2048, kv_cache_gb=1)
    prm = make_scorer("prm-hf", model=a.prm, device=a.device)
    cfg = ServeConfig(n=a.n, max_tokens=a.max_tokens, max_batch=16, queue_size=256)
    sequential(texts[:2], policy, prm, cfg, a.method)  # warm-up (compilation, caches)
    rows = []
    base, ref = sequential(texts, policy, prm, cfg, a.method)
    rows.append(base)
    print(json.dumps(base), flush=True)
    app = create_app(cfg, Reranker(prm, method=a.method), policy)
    with serve_in_thread(app) as url:
        for k in map(int, a.clients.split(",")):
            policy.llm.reset_prefix_cache()
            row, got = load(url, texts, k)
            row["same_as_sequential"] = sum(g == r for g, r in zip(got, ref, strict=True))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{a.questions} questions x {a.n} samples x {a.max_tokens} tokens, {a.method}")
    print("| mode | req/s | p50 s | p95 s | wall s | largest policy batch | same answers |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['req_per_s']} | {r['p50_s']} | {r['p95_s']} | "
              f"{r['wall_s']} | {r.get('max_batch', 1)} | "
              f"{r.get('same_as_sequential', len(texts))}/{len(texts)} |")
    policy.llm.llm_engine.engine_core.shutdown()


if __name__ == "__main__":
    main()
