"""Retrieval quality and search speed on PubMedQA: each question should find its own abstract.

Workload: PubMedQA PQA-L (1,000 questions, each with the abstract it was written from). The
corpus is the 1,000 abstracts (CONTEXTS joined); each QUESTION is a query; the right passage is
its own abstract. Everything goes through the library (corpus file → `embed_corpus` →
`write_index` → `FaissRetriever`); the abstracts are embedded once and every index is built
from the same vectors, so the indexes differ only in how they search:

  flat   IndexFlatIP, exact (the baseline)
  hnsw   HNSW graph (--hnsw-m, --ef-search)
  ivf    inverted lists (nlist automatic, --nprobe)

It prints recall@1/5/10 and MRR@10 of the own abstract, search queries/s on precomputed query
vectors (one batch of all queries, and one query at a time), each against flat, and the
end-to-end rate with query embedding.

  python benchmarks/retrieval_eval.py [--data ../shared/data/pubmedqa/ori_pqal.json]
      [--embedder minilm] [--kinds flat,hnsw,ivf] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from retrieval import FaissRetriever, IndexConfig, write_index
from retrieval.build import embed_corpus
from retrieval.embed import Embedder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa" / "ori_pqal.json"


def load(path: Path) -> tuple[list[str], list[str], list[str]]:
    """(pmids, abstracts, questions) in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    pmids = list(data)
    return (pmids, [" ".join(data[p]["CONTEXTS"]) for p in pmids],
            [data[p]["QUESTION"] for p in pmids])


def metrics(ranked: list[list[str]], gold: list[str]) -> dict[str, float]:
    ranks = [r.index(g) + 1 if g in r else None for r, g in zip(ranked, gold, strict=True)]
    out = {f"recall@{k}": float(np.mean([x is not None and x <= k for x in ranks]))
           for k in (1, 5, 10)}
    out["mrr@10"] = float(np.mean([1 / x if x and x <= 10 else 0.0 for x in ranks]))
    return out


def timed(fn, repeats: int) -> float:
    """Best wall time of `repeats` calls (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def evaluate(r: FaissRetriever, qvec: np.ndarray, gold: list[str], repeats: int) -> dict:
    docs = r.search_vectors(qvec, 10)
    row = metrics([[d.id for d in ds] for ds in docs], gold)
    row["qps_batch"] = len(qvec) / timed(lambda: r.search_vectors(qvec, 10), repeats)
    few = qvec[:200]
    row["qps_single"] = len(few) / timed(lambda: [r.search_vectors(q[None], 10) for q in few],
                                         repeats)
    return row


def write_corpus(folder: Path, pmids: list[str], abstracts: list[str]) -> Path:
    path = folder / "pubmedqa_abstracts.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for pmid, text in zip(pmids, abstracts, strict=True):
            f.write(json.dumps({"id": pmid, "text": text}) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--kinds", default="flat,hnsw,ivf")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-search", type=int, default=128)
    ap.add_argument("--nprobe", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="FAISS threads (0: its default)")
    a = ap.parse_args()
    import faiss

    if a.threads:
        faiss.omp_set_num_threads(a.threads)
    pmids, abstracts, questions = load(a.data)
    emb = Embedder(a.embedder)
    with tempfile.TemporaryDirectory() as tmp:
        data, embed_s = embed_corpus(write_corpus(Path(tmp), pmids, abstracts), emb)
        start = time.perf_counter()
        qvec = emb.encode(questions)
        query_embed_s = time.perf_counter() - start
        rows = {}
        for kind in a.kinds.split(","):
            cfg = IndexConfig(kind=kind, hnsw_m=a.hnsw_m, ef_search=a.ef_search, nprobe=a.nprobe)
            m = write_index(Path(tmp) / kind, data, cfg, progress=False)
            rows[kind] = evaluate(FaissRetriever(Path(tmp) / kind, emb), qvec, pmids, a.repeats)
            rows[kind]["build_s"] = m.build["index_seconds"]
            rows[kind]["factory"] = m.index["factory"]
    report(rows, a, len(pmids), embed_s, query_embed_s, emb)


def report(rows: dict, a: argparse.Namespace, n: int, embed_s: float, query_embed_s: float,
           emb: Embedder) -> None:
    base = rows.get("flat") or next(iter(rows.values()))
    print(f"PubMedQA PQA-L: {n} abstracts, {n} questions; embedder {emb.name} "
          f"({emb.device}, {emb.dim}-d, max {emb.max_seq_length} tokens); "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"embedding: abstracts {n / embed_s:.1f}/s ({embed_s:.1f} s), "
          f"queries {n / query_embed_s:.1f}/s ({query_embed_s:.1f} s)")
    head = (f"{'index':<6} {'factory':<14} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7} "
            f"{'qps batch':>10} {'x flat':>7} {'qps 1-by-1':>10} {'x flat':>7} {'build s':>8}")
    print(head)
    for kind, r in rows.items():
        print(f"{kind:<6} {r['factory']:<14} {r['recall@1']:>6.3f} {r['recall@5']:>6.3f} "
              f"{r['recall@10']:>6.3f} {r['mrr@10']:>7.3f} {r['qps_batch']:>10.0f} "
              f"{r['qps_batch'] / base['qps_batch']:>7.2f} {r['qps_single']:>10.0f} "
              f"{r['qps_single'] / base['qps_single']:>7.2f} {r['build_s']:>8.3f}")
    e2e = n / (query_embed_s + n / base["qps_batch"])
    print(f"end to end (embed queries + flat search): {e2e:.1f} queries/s")


if __name__ == "__main__":
    main()
