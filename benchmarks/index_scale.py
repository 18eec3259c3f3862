"""Index build time, memory and search speed per 100k passages: flat vs IVF vs HNSW vs IVF-PQ.

Workload: N synthetic unit vectors of MiniLM's size (384-d): a mixture of N/10 clusters with
within-cluster spread in a 64-d subspace. A query's nearest neighbour then has cosine ~0.7 and
its 10th ~0.4 while random pairs are ~0, roughly like MiniLM on real passages; pure noise in
384-d would be the worst case for every approximate index, and few tight clusters the
easiest. Build and search cost depend on the vectors' count and size, not on what they mean.
Each index kind is built by the library's `build_faiss` in its own process (so peak memory is
its own):

  flat   IndexFlatIP (exact; the baseline)
  ivf    IVF, nlist ≈ 4·sqrt(N), searched with nprobe 16 and 64 (--nprobe)
  hnsw   HNSW, M 32, efConstruction 200, efSearch 128
  ivfpq  IVF-PQ, same lists, 48 bytes a vector (PQ48x8), same nprobe values

It prints build seconds, the saved index size and the peak memory the build added (sampled),
scaled to 100k vectors, batched search queries/s (k=10) and recall@10 against exact search,
each with its ratio to flat. Embedding throughput is measured separately on real MedQuAD
passages with the embedded MiniLM, since random vectors say nothing about it.

  python benchmarks/index_scale.py [--n 100000] [--kinds flat,ivf,hnsw,ivfpq] [--threads 1]
      [--embed-sample 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

DIM = 384


def synthetic(n: int, seed: int, clusters: int, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(0)  # the same clusters for corpus and queries
    centres = rng.standard_normal((clusters, dim))
    basis = np.linalg.qr(rng.standard_normal((dim, 64)))[0] * np.sqrt(dim / 64)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)] + 0.8 * rng.standard_normal((n, 64)) @ basis.T
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Samples this process's resident memory every few milliseconds while the block runs."""

    def __enter__(self) -> PeakRSS:
        self.peak, self._stop = rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def run_one(kind: str, n: int, queries: int, threads: int, nprobes: list[int]) -> list[dict]:
    """Build one index kind in this process; one row of measurements per search setting."""
    import faiss

    from retrieval.faiss_index import IndexConfig, build_faiss

    if threads:
        faiss.omp_set_num_threads(threads)
    clusters = max(100, n // 10)
    x, q = synthetic(n, 1, clusters), synthetic(queries, 2, clusters)
    base = rss_mb()
    with PeakRSS() as mem:
        start = time.perf_counter()
        index = build_faiss(x, IndexConfig(kind=kind), progress=False)
        build_s = time.perf_counter() - start
    truth = faiss.knn(q, x, 10, metric=faiss.METRIC_INNER_PRODUCT)[1]
    common = {"build_s": build_s, "index_mb": faiss.serialize_index(index).nbytes / 2**20,
              "added_mb": mem.peak - base}
    settings = nprobes if kind in ("ivf", "ivfpq") else [0]
    return [{"kind": f"{kind} np{p}" if p else kind, **common, **_search(index, q, truth, p)}
            for p in settings]


def _search(index, q: np.ndarray, truth: np.ndarray, nprobe: int) -> dict:
    import faiss

    if nprobe:
        faiss.extract_index_ivf(index).nprobe = nprobe
    seconds = min(_timed(lambda: index.search(q, 10)) for _ in range(3))
    rows = index.search(q, 10)[1]
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, truth, strict=True)]))
    return {"qps": len(q) / seconds, "recall": recall}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def embedding_rate(sample: int) -> list[tuple[int, float, float]]:
    """(max tokens, passages/s, tokens/s) of the embedded MiniLM on random MedQuAD passages."""
    import random

    from retrieval import MEDQUAD_PATH, MEDQUAD_SPEC, Embedder, prepare_passages

    emb = Embedder("minilm", device="auto")
    passages, _ = prepare_passages(MEDQUAD_PATH, MEDQUAD_SPEC)
    texts = [p.text for p in random.Random(0).sample(passages, sample)]
    out = []
    for limit in (128, 256):
        with emb.truncated(limit):
            tokens = sum(min(limit, len(emb.tokenizer(t, verbose=False)["input_ids"]))
                         for t in texts)
            seconds = _timed(lambda: emb.encode(texts))
        out.append((limit, sample / seconds, tokens / seconds))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--kinds", default="flat,ivf,hnsw,ivfpq")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0, help="FAISS threads (0: its default)")
    ap.add_argument("--nprobe", default="16,64", help="IVF nprobe values to search with")
    ap.add_argument("--embed-sample", type=int, default=256, help="0 skips the embedding rate")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        nprobes = [int(x) for x in a.nprobe.split(",")]
        print(json.dumps(run_one(a.one, a.n, a.queries, a.threads, nprobes)))
        return
    rows = [row for kind in a.kinds.split(",") for row in _child(kind, a)]
    report(rows, a)
    if a.embed_sample:
        for limit, pps, tps in embedding_rate(a.embed_sample):
            print(f"MiniLM embedding, MedQuAD passages cut at {limit} tokens: {pps:.1f} "
                  f"passages/s, {tps:.0f} tokens/s -> {1e6 / pps / 3600:.1f} h per 1M passages")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _child(kind: str, a: argparse.Namespace) -> list[dict]:
    cmd = [sys.executable, __file__, "--one", kind, "--n", str(a.n), "--queries",
           str(a.queries), "--threads", str(a.threads), "--nprobe", a.nprobe]
    # A fixed mmap threshold turns off glibc's adaptive one, under which freed temporaries stay
    # resident and get reused by the build, hiding its memory from the RSS samples.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def report(rows: list[dict], a: argparse.Namespace) -> None:
    scale = 100_000 / a.n
    base = next((r for r in rows if r["kind"] == "flat"), rows[0])
    print(f"{a.n} synthetic {DIM}-d vectors, {a.queries} queries, k=10, FAISS threads "
          f"{a.threads or 'default'}; per-100k columns scaled by {scale:g}")
    print(f"{'index':<10} {'build s/100k':>12} {'x flat':>8} {'index MB/100k':>13} "
          f"{'build +MB/100k':>14} {'qps':>8} {'x flat':>7} {'recall@10':>9}")
    for r in rows:
        print(f"{r['kind']:<10} {r['build_s'] * scale:>12.2f} "
              f"{r['build_s'] / max(base['build_s'], 1e-9):>8.1f} {r['index_mb'] * scale:>13.1f} "
              f"{r['added_mb'] * scale:>14.1f} {r['qps']:>8.0f} {r['qps'] / base['qps']:>7.2f} "
              f"{r['recall']:>9.3f}")


if __name__ == "__main__":
    main()
