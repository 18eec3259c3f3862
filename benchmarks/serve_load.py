"""Serving under load: `bestofn serve` held at 1, 4, 16 and 64 concurrent clients for a fixed
time each, then a soak; what it answered, how fast, and whether its memory grows.

One vLLM policy engine and one PRM are loaded once; the server runs on loopback in a thread
(uvicorn) and K client threads call it with the official `openai` client for `--duration-s`
seconds per level, each sending its next request as soon as it has an answer (bounded
concurrency: K requests at most in flight). Every `--adaptive-every`-th request is adaptive
(`bestofn.adaptive`), the rest fixed N. A 429 is counted and its `Retry-After` honoured. Per
level: requests/s (answered 200), p50/p95/p99 latency of the 200s, responses by status, the
largest policy batch and the largest PRM batch (questions in one verifier call: requests
scored together). The soak holds `--soak-clients` clients for `--soak-s` seconds and reports
the resident memory of the server's process and its children (the vLLM engine core) after a
warm-up and at the end.

Targets (issue 30): no 5xx; past `--queue-size`, 429s with Retry-After and every admitted
request answered; at 16 clients at least 2x the requests/s of 1 client; RSS growth under 5%
across the soak.

  PYTHONPATH=. python benchmarks/serve_load.py                  # SmolLM2 policy, tiny PRM
  PYTHONPATH=. python benchmarks/serve_load.py --duration-s 20 --soak-s 60 --prm smollm2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai

from bestofn import Reranker
from bestofn.scorers import make_scorer
from bestofn.serve import ServeConfig, create_app
from bestofn.serve.thread import serve_in_thread
from bestofn.text.datasets import load_questions


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def rss_mb() -> float:
    """Resident memory of this process and its children (the vLLM engine core), MB."""
    import psutil

    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):  # a child that just exited
            total += p.memory_info().rss
    return total / 2**20


def level(url: str, texts: list[str], clients: int, seconds: float, adaptive_every: int,
          rule: str) -> dict[str, Any]:
    """`clients` threads sending requests for `seconds`; what came back."""
    stop = time.monotonic() + seconds
    lat: list[float] = []
    statuses: Counter[str] = Counter()
    retry_after: Counter[str] = Counter()
    lock = threading.Lock()
    counter = iter(range(10**9))

    def client(c: int) -> None:
        api = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
        while time.monotonic() < stop:
            k = next(counter)
            ext = {"adaptive": rule} if adaptive_every and k % adaptive_every == 0 else {}
            t = time.perf_counter()
            try:
                api.chat.completions.create(
                    model="bestofn", extra_body={"bestofn": ext} if ext else None,
                    messages=[{"role": "user", "content": texts[k % len(texts)]}])
                with lock:
                    lat.append(time.perf_counter() - t)
                    statuses["200"] += 1
            except openai.APIStatusError as e:
                with lock:
                    statuses[str(e.status_code)] += 1
                    retry_after[str(e.response.headers.get("retry-after"))] += 1
                if e.status_code == 429:
                    time.sleep(float(e.response.headers.get("retry-after") or 1))
            except openai.APIConnectionError:
                with lock:
                    statuses["connection"] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    return {"clients": clients, "wall_s": round(wall, 1), "answered": statuses["200"],
            "req_per_s": round(statuses["200"] / wall, 3), "p50_s": round(pct(lat, 50), 2),
            "p95_s": round(pct(lat, 95), 2), "p99_s": round(pct(lat, 99), 2),
            "statuses": dict(statuses), "retry_after": dict(retry_after)}


def tiny_prm() -> str:
    from bestofn.testing import build_tiny_llama

    return str(build_tiny_llama(Path(tempfile.mkdtemp(prefix="bench_prm_")), marker="special"))


def build(a: argparse.Namespace) -> tuple[Any, Any]:
    from policies.vllm import VLLMPolicy

    policy_model = tiny_policy() if a.policy == "tiny" else a.policy
    policy = VLLMPolicy(policy_model, device=a.device, max_model_len=2048, kv_cache_gb=1)
    prm = make_scorer("prm-hf", model=tiny_prm() if a.prm == "tiny" else a.prm,
                      device=a.device)
    return policy, prm


def tiny_policy() -> str:
    from bestofn.testing import build_tiny_llama

    return str(build_tiny_llama(Path(tempfile.mkdtemp(prefix="bench_policy_")),
                                marker="split"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="smollm2", help="vLLM policy (smollm2, a folder, or "
                    "tiny: a random tiny Llama)")
    ap.add_argument("--prm", default="tiny", help="PRM (tiny: a random tiny Llama, smollm2, "
                    "a folder)")
    ap.add_argument("-q", "--questions", type=int, default=64)
    ap.add_argument("-n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--method", default="prm_min")
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--duration-s", type=float, default=60.0, help="seconds per level")
    ap.add_argument("--soak-s", type=float, default=600.0, help="seconds of the soak (0: none)")
    ap.add_argument("--soak-clients", type=int, default=16)
    ap.add_argument("--warmup-s", type=float, default=20.0,
                    help="seconds of the soak before its first RSS reading")
    ap.add_argument("--queue-size", type=int, default=32)
    ap.add_argument("--adaptive-every", type=int, default=4,
                    help="every k-th request is adaptive (0: none)")
    ap.add_argument("--rule", default="esc:w=2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="write the rows here too")
    a = ap.parse_args()
    texts = [q.text() for q in load_questions("medqa", limit=a.questions)]
    policy, prm = build(a)
    cfg = ServeConfig(n=a.n, max_tokens=a.max_tokens, max_batch=64, queue_size=a.queue_size,
                      batch_wait_s=0.01)
    app = create_app(cfg, Reranker(prm, method=a.method), policy)
    m = app.state.metrics
    rows = []
    with serve_in_thread(app) as url:
        level(url, texts, 1, 5, 0, a.rule)  # warm-up: compilation, caches
        for k in map(int, a.clients.split(",")):
            m.policy_batch_max = m.prm_batch_max = 0
            row = level(url, texts, k, a.duration_s, a.adaptive_every, a.rule)
            row |= {"policy_batch_max": m.policy_batch_max, "prm_batch_max": m.prm_batch_max,
                    "prm_batch_solutions_max": m.prm_batch_solutions_max}
            rows.append(row)
            print(json.dumps(row), flush=True)
        soak = None
        if a.soak_s > 0:
            level(url, texts, a.soak_clients, a.warmup_s, a.adaptive_every, a.rule)
            start = rss_mb()
            row = level(url, texts, a.soak_clients, a.soak_s, a.adaptive_every, a.rule)
            end = rss_mb()
            soak = row | {"rss_start_mb": round(start), "rss_end_mb": round(end),
                          "rss_growth_pct": round(100 * (end - start) / start, 2)}
            print(json.dumps(soak), flush=True)
    report(a, rows, soak)
    if a.json:
        Path(a.json).write_text(json.dumps({"levels": rows, "soak": soak}, indent=1))
    policy.llm.llm_engine.engine_core.shutdown()


def report(a: argparse.Namespace, rows: list[dict[str, Any]], soak: dict[str, Any] | None) -> None:
    print(f"\npolicy {a.policy} (vllm), PRM {a.prm} (prm-hf), n={a.n} x {a.max_tokens} tokens, "
          f"{a.method}, every {a.adaptive_every}th request adaptive ({a.rule}), "
          f"queue {a.queue_size}, {a.duration_s:g} s per level")
    print("| clients | req/s | p50 s | p95 s | p99 s | responses by status | largest policy "
          "batch | largest PRM batch (questions / solutions) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clients']} | {r['req_per_s']} | {r['p50_s']} | {r['p95_s']} | "
              f"{r['p99_s']} | {r['statuses']} | {r['policy_batch_max']} | "
              f"{r['prm_batch_max']} / {r['prm_batch_solutions_max']} |")
    one = next((r for r in rows if r["clients"] == 1), None)
    six = next((r for r in rows if r["clients"] == 16), None)
    if one and six and one["req_per_s"]:
        print(f"\n16 clients / 1 client: {six['req_per_s'] / one['req_per_s']:.2f}x")
    fives = sum(v for r in rows + ([soak] if soak else []) for s, v in r["statuses"].items()
                if s.startswith("5"))
    print(f"5xx responses: {fives}")
    if soak:
        print(f"soak: {soak['clients']} clients for {soak['wall_s']} s, {soak['answered']} "
              f"answered, {soak['req_per_s']} req/s, statuses {soak['statuses']}; RSS "
              f"{soak['rss_start_mb']} MB after warm-up -> {soak['rss_end_mb']} MB "
              f"({soak['rss_growth_pct']:+}%)")


if __name__ == "__main__":
    main()
