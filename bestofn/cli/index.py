"""`bestofn index build|search`: build a retrieval index over a passage corpus and query it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..config import RunConfig, default_of

Handler = Callable[[argparse.Namespace], int]
_SPEC_FLAGS = {"id_field": "id_field", "title_field": "title_field", "text_field": "text_fields",
               "chunk_tokens": "chunk_tokens", "chunk_overlap": "chunk_overlap",
               "duplicate_ids": "duplicate_ids"}


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("index", help="build or search a retrieval index (FAISS)")
    isub = p.add_subparsers(dest="index_command", required=True)
    _add_build(isub.add_parser("build", help="embed a JSONL corpus and save a FAISS index"))
    _add_search(isub.add_parser("search", help="top-k passages of an index for a query"))
    return {"index": cmd_index}


def _add_build(b: argparse.ArgumentParser) -> None:
    from retrieval.embed import DEFAULT_EMBEDDER, EMBED_BATCH
    from retrieval.faiss_index import IndexConfig

    def ix(name: str) -> Any:
        return default_of(IndexConfig, name)

    b.add_argument("--corpus", required=True,
                   help="JSONL(.gz) of passages, or 'medquad' for the bundled MedQuAD corpus")
    b.add_argument("--out", required=True, help="index folder to write")
    b.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                   help="sentence-transformers model name or folder (default: embedded MiniLM)")
    b.add_argument("--index", default=ix("kind"), choices=["flat", "ivf", "hnsw", "ivfpq"])
    b.add_argument("--nlist", type=int, default=ix("nlist"), help="IVF lists (0: about 4*sqrt(n))")
    b.add_argument("--nprobe", type=int, default=ix("nprobe"), help="IVF lists searched per query")
    b.add_argument("--hnsw-m", type=int, default=ix("hnsw_m"), help="HNSW links per node")
    b.add_argument("--ef-construction", type=int, default=ix("ef_construction"))
    b.add_argument("--ef-search", type=int, default=ix("ef_search"),
                   help="HNSW candidates per query")
    b.add_argument("--pq-m", type=int, default=ix("pq_m"),
                   help="IVF-PQ bytes per vector (0: dim/8)")
    b.add_argument("--pq-bits", type=int, default=ix("pq_bits"))
    b.add_argument("--id-field", default=None, help="field holding the passage id (id)")
    b.add_argument("--title-field", default=None, help="field holding the title (title)")
    b.add_argument("--text-field", action="append", default=None,
                   help="field holding text; repeat to join several (text)")
    b.add_argument("--chunk-tokens", type=int, default=None,
                   help="cut passages into windows of this many embedder tokens (0: keep whole)")
    b.add_argument("--chunk-overlap", type=int, default=None, help="tokens shared by windows")
    b.add_argument("--no-dedup", dest="dedup", action="store_false",
                   help="keep passages whose text repeats an earlier one")
    b.add_argument("--duplicate-ids", default=None, choices=["suffix", "error"],
                   help="repeated ids: rename to id~2, id~3 (suffix) or refuse (error)")
    b.add_argument("--embed-title", action="store_true", default=None,
                   help="embed title + text instead of the text alone")
    b.add_argument("--device", default=default_of(RunConfig, "device"),
                   help="cpu | cuda | auto")
    b.add_argument("--batch-size", type=int, default=EMBED_BATCH,
                   help="passages per embedding batch")
    b.add_argument("--overwrite", action="store_true", help="replace an existing index folder")
    sh = b.add_mutually_exclusive_group()
    sh.add_argument("--shard", default=None, metavar="I/K",
                    help="embed only shard I of K (from 0) into the folder --out; a finished "
                         "shard is skipped, so re-running a preempted job resumes it")
    sh.add_argument("--from-shards", default=None, metavar="DIR",
                    help="build the index at --out from the K finished shards in DIR")


def _add_search(s: argparse.ArgumentParser) -> None:
    s.add_argument("--index", default="default",
                   help="index folder, or 'default' (bundled MedQuAD, built on first use)")
    s.add_argument("--query", action="append", required=True, help="query text; repeatable")
    s.add_argument("-k", type=int, default=default_of(RunConfig, "k"), help="passages per query")
    s.add_argument("--retriever", default="faiss", help="retriever backend (retrieval.RETRIEVERS)")
    s.add_argument("--embedder", default=None, help="must match the index (default: its own)")
    s.add_argument("--nprobe", type=int, default=None, help="override the IVF nprobe")
    s.add_argument("--ef-search", type=int, default=None, help="override the HNSW efSearch")
    s.add_argument("--device", default=default_of(RunConfig, "device"))
    s.add_argument("--json", action="store_true", help="one JSON object per query")


def cmd_index(a: argparse.Namespace) -> int:
    return {"build": cmd_build, "search": cmd_search}[a.index_command](a)


def corpus_args(a: argparse.Namespace) -> tuple[str, Any]:
    """The corpus path and spec: the bundled MedQuAD defaults or plain ones, then the flags."""
    from retrieval import MEDQUAD_PATH, MEDQUAD_SPEC, CorpusSpec

    bundled = a.corpus.lower() == "medquad"
    path, spec = (str(MEDQUAD_PATH), MEDQUAD_SPEC) if bundled else (a.corpus, CorpusSpec())
    given = {field: getattr(a, flag) for flag, field in _SPEC_FLAGS.items()
             if getattr(a, flag) is not None}
    if "text_fields" in given:
        given["text_fields"] = tuple(given["text_fields"])
    if a.embed_title is not None:
        given["embed_title"] = True
    return path, replace(spec, dedup=a.dedup, **given)


def cmd_build(a: argparse.Namespace) -> int:
    from retrieval import IndexConfig, build_index
    from retrieval.shards import build_from_shards, embed_shard, parse_shard

    corpus, spec = corpus_args(a)
    if a.shard is not None:
        shard, shards = parse_shard(a.shard)
        info, fresh = embed_shard(corpus, a.out, shard, shards, a.embedder, spec,
                                  device=a.device, batch_size=a.batch_size)
        lo, hi = info.rows
        print(f"shard {shard}/{shards}: rows {lo}..{hi} -> {a.out}/{info.stem}.npy "
              f"[{'embedded in ' + str(info.embed_seconds) + ' s' if fresh else 'already done'}]",
              file=sys.stderr)
        return 0
    cfg = IndexConfig(kind=a.index, nlist=a.nlist, nprobe=a.nprobe, hnsw_m=a.hnsw_m,
                      ef_construction=a.ef_construction, ef_search=a.ef_search, pq_m=a.pq_m,
                      pq_bits=a.pq_bits)
    if a.from_shards is not None:
        m = build_from_shards(corpus, a.from_shards, a.out, cfg, spec, overwrite=a.overwrite)
    else:
        m = build_index(corpus, a.out, a.embedder, cfg, spec, device=a.device,
                        batch_size=a.batch_size, overwrite=a.overwrite)
    st = m.corpus["stats"]
    print(f"indexed {st['passages']} passages from {st['records']} lines "
          f"({st['duplicates_dropped']} duplicates dropped, {st['ids_renamed']} ids renamed) "
          f"-> {a.out} [{m.index['factory']}, {m.embedder['name']}, {m.build['seconds']} s]",
          file=sys.stderr)
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    from retrieval import RETRIEVERS, index_folder

    r = RETRIEVERS.create(a.retriever, folder=index_folder(a.index), embedder=a.embedder,
                          nprobe=a.nprobe, ef_search=a.ef_search, device=a.device)
    for query, docs in zip(a.query, r.search(a.query, a.k), strict=True):
        if a.json:
            print(json.dumps({"query": query, "documents": [d.to_dict() for d in docs]},
                             ensure_ascii=False))
            continue
        print(f"query: {query}")
        for i, d in enumerate(docs, 1):
            text = " ".join(d.text.split())
            print(f"{i:>3}. {d.score:.4f}  [{d.id}] {d.title}: {text[:160]}")
    return 0
