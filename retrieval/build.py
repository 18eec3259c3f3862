"""Build an index folder: corpus → passages → embeddings → FAISS index + passage store + manifest.

The folder is written into a temporary sibling and renamed into place, so it either does not
exist or is complete. `ensure_index` builds once under a file lock and reuses a matching
folder afterwards; `default_index` does that for the bundled MedQuAD corpus.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bestofn.embedded import cache_dir, file_lock

from .corpus import MEDQUAD_PATH, MEDQUAD_SPEC, CorpusSpec, Passage, file_sha256, prepare_passages
from .embed import DEFAULT_EMBEDDER, EMBED_BATCH, Embedder, canonical_name
from .faiss_index import IndexConfig, build_faiss, faiss_module
from .manifest import INDEX_FILE, MANIFEST, IndexMismatch, Manifest
from .store import BLOB, OFFSETS, write_store

DEFAULT_INDEX_NAME = "medquad-minilm-flat"
DEFAULT_SPEC = CorpusSpec()
FLAT = IndexConfig()


@dataclass(frozen=True)
class EmbeddedCorpus:
    """Passages and their vectors, with what the manifest records about where they came from."""

    passages: Sequence[Passage]
    vectors: np.ndarray
    embedder: dict[str, Any]
    corpus: dict[str, Any]


def embed_corpus(corpus: str | Path, embedder: str | Embedder = DEFAULT_EMBEDDER,
                 spec: CorpusSpec = DEFAULT_SPEC, device: str = "auto",
                 batch_size: int = EMBED_BATCH,
                 progress: bool = True) -> tuple[EmbeddedCorpus, float]:
    """Read, chunk, dedup and embed a corpus file; returns the result and the embedding seconds."""
    emb = embedder if isinstance(embedder, Embedder) else Embedder(embedder, device, batch_size)
    passages, stats = prepare_passages(corpus, spec, emb.tokenizer if spec.chunk_tokens else None)
    start = time.perf_counter()
    with emb.truncated(spec.embed_max_tokens):
        vectors = emb.encode([spec.embedding_input(p) for p in passages], progress=progress)
    seconds = time.perf_counter() - start
    info = {"name": emb.name, "dim": emb.dim, "max_seq_length": emb.max_seq_length}
    corpus_info = {"path": str(Path(corpus).resolve()), "sha256": file_sha256(corpus),
                   "spec": spec.to_dict(), "stats": vars(stats)}
    return EmbeddedCorpus(passages, vectors, info, corpus_info), seconds


def build_index(corpus: str | Path, out: str | Path, embedder: str | Embedder = DEFAULT_EMBEDDER,
                index: IndexConfig = FLAT, spec: CorpusSpec = DEFAULT_SPEC,
                device: str = "auto", batch_size: int = EMBED_BATCH, overwrite: bool = False,
                progress: bool = True) -> Manifest:
    """Build an index folder at `out` from a JSONL corpus; returns its manifest."""
    _check_target(Path(out), overwrite)
    start = time.perf_counter()
    data, embed_seconds = embed_corpus(corpus, embedder, spec, device, batch_size, progress)
    return write_index(out, data, index, overwrite=overwrite, progress=progress,
                       build={"embed_seconds": round(embed_seconds, 3)}, started=start)


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out} exists and is not empty; pass --overwrite to replace it")


def write_index(out: str | Path, data: EmbeddedCorpus, index: IndexConfig = FLAT,
                overwrite: bool = False, progress: bool = True,
                build: dict[str, Any] | None = None, started: float | None = None) -> Manifest:
    """Write an index folder for already embedded passages (row i of `vectors` = passage i).

    `build` adds entries to the manifest's build record; `started` (a `perf_counter` value)
    makes its `seconds` count work done before this call, such as embedding.
    """
    out = Path(out)
    _check_target(out, overwrite)
    n, dim = data.vectors.shape
    assert n == len(data.passages), f"{n} vectors for {len(data.passages)} passages"
    assert dim == data.embedder["dim"], f"vectors of dim {dim}, embedder says {data.embedder}"
    build, started = dict(build or {}), started or time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        manifest = _write_folder(tmp, data, index, progress, build, started)
        _make_readable(tmp)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _write_folder(folder: Path, data: EmbeddedCorpus, cfg: IndexConfig, progress: bool,
                  build: dict[str, Any], started: float) -> Manifest:
    faiss = faiss_module()
    n, dim = data.vectors.shape
    resolved = cfg.resolved(n, dim)
    index_start = time.perf_counter()
    index = build_faiss(data.vectors, cfg, progress=progress)
    faiss.write_index(index, str(folder / INDEX_FILE))
    build["index_seconds"] = round(time.perf_counter() - index_start, 3)
    write_store(folder, data.passages)
    build.update(seconds=round(time.perf_counter() - started, 3),
                 created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 faiss=getattr(faiss, "__version__", "?"))
    manifest = Manifest(
        embedder=dict(data.embedder), corpus=dict(data.corpus),
        index={"kind": cfg.kind, "factory": resolved.factory(), "params": resolved.to_dict(),
               "requested": cfg.to_dict(), "ntotal": int(index.ntotal), "file": INDEX_FILE},
        store={"format": "json-blob+offsets", "files": [BLOB, OFFSETS], "passages": n},
        build=build)
    manifest.save(folder)
    return manifest


def _make_readable(folder: Path) -> None:
    """mkdtemp makes a 0700 folder; give the index the usual umask-based permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


def _swap_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def matches(folder: Path, corpus: Path, spec: CorpusSpec, embedder: str,
            index: IndexConfig) -> bool:
    """Whether `folder` holds a complete index built from exactly these inputs."""
    if not (folder / MANIFEST).is_file():
        return False
    try:
        m = Manifest.load(folder)
        m.check(folder, canonical_name(embedder), file_sha256(corpus), spec.to_dict())
    except IndexMismatch:
        return False
    return m.index.get("requested") == index.to_dict()


def ensure_index(corpus: str | Path, out: str | Path, spec: CorpusSpec = DEFAULT_SPEC,
                 embedder: str = DEFAULT_EMBEDDER, index: IndexConfig = FLAT,
                 device: str = "auto", progress: bool = True) -> Path:
    """`out` if it already matches these inputs, else build it there (once, under a lock).

    Concurrent callers (Ray workers, parallel runs) wait for the one that builds.
    """
    corpus, out = Path(corpus), Path(out)
    if matches(out, corpus, spec, embedder, index):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.parent / f".{out.name}.lock"):
        if not matches(out, corpus, spec, embedder, index):
            for leftover in out.parent.glob(f".{out.name}.tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            build_index(corpus, out, embedder, index, spec, device=device, overwrite=True,
                        progress=progress)
    return out


def default_index_dir() -> Path:
    return cache_dir() / "index" / DEFAULT_INDEX_NAME


def default_index(progress: bool = True) -> Path:
    """The bundled MedQuAD corpus indexed with MiniLM (FlatIP), built on first use and cached."""
    return ensure_index(MEDQUAD_PATH, default_index_dir(), MEDQUAD_SPEC, DEFAULT_EMBEDDER,
                        FLAT, progress=progress)


def index_folder(name: str | Path, progress: bool = True) -> Path:
    """The folder an `--index` value names: `default` is the bundled MedQuAD index (built on
    first use), anything else a folder."""
    return default_index(progress) if str(name) == "default" else Path(name)
