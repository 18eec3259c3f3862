"""Search a saved index: batched queries → top-k `Document`s with their inner-product scores."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bestofn.text.records import Document

from .corpus import CorpusSpec, file_sha256
from .embed import EMBED_BATCH, Embedder, canonical_name
from .faiss_index import IndexConfig, faiss_module, search_index, set_search_params
from .manifest import IndexMismatch, Manifest
from .store import PassageStore


class FaissRetriever:
    """A saved index folder, checked against the requested embedder and corpus when given.

    `embedder` is a name/path or a loaded `Embedder` (default: the one in the manifest, loaded
    on the first text query). `nprobe`/`ef_search` override the saved search parameters.
    """

    def __init__(self, folder: str | Path, embedder: str | Embedder | None = None,
                 corpus: str | Path | None = None, corpus_spec: CorpusSpec | None = None,
                 nprobe: int | None = None, ef_search: int | None = None,
                 device: str = "auto", batch_size: int = EMBED_BATCH) -> None:
        self.folder = Path(folder)
        self.manifest = Manifest.load(self.folder)
        name = embedder.name if isinstance(embedder, Embedder) else embedder
        self.manifest.check(self.folder, None if name is None else canonical_name(name),
                            None if corpus is None else file_sha256(corpus),
                            None if corpus_spec is None else corpus_spec.to_dict())
        self.config = _search_config(self.manifest, nprobe, ef_search)
        self.index = faiss_module().read_index(str(self.folder / self.manifest.index["file"]))
        set_search_params(self.index, self.config)
        self.store = PassageStore(self.folder)
        self._check_sizes()
        self._embedder = embedder if isinstance(embedder, Embedder) else None
        self._embedder_args = (name or self.manifest.embedder["name"], device, batch_size)

    def _check_sizes(self) -> None:
        counts = {"index": int(self.index.ntotal), "store": len(self.store),
                  "manifest": int(self.manifest.index["ntotal"])}
        if len(set(counts.values())) != 1:
            raise IndexMismatch(f"{self.folder}: damaged index folder, passage counts differ: "
                                f"{counts}; rebuild it")
        if self.index.d != self.manifest.embedder["dim"]:
            raise IndexMismatch(f"{self.folder}: index dimension {self.index.d} differs from the "
                                f"manifest's embedder dimension {self.manifest.embedder['dim']}")

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(*self._embedder_args)
        if self._embedder.dim != self.index.d:
            raise IndexMismatch(f"{self.folder}: embedder {self._embedder.name!r} gives "
                                f"{self._embedder.dim}-d vectors, the index holds {self.index.d}-d")
        return self._embedder

    @property
    def fingerprint(self) -> str:
        """Identifies the results this retriever gives: manifest hash + search parameters."""
        return index_fingerprint(self.manifest, self.config.nprobe, self.config.ef_search)

    def search(self, queries: Sequence[str], k: int,
               progress: bool = False) -> list[list[Document]]:
        """Top-k passages for each query, best first."""
        if not queries:
            return []
        return self.search_vectors(self.embedder.encode(list(queries), progress=progress), k)

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[Document]]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        scores, rows = search_index(self.index, vectors, k)
        return [[self._document(int(r), float(s)) for s, r in zip(ss, rr, strict=True) if r >= 0]
                for ss, rr in zip(scores, rows, strict=True)]

    def _document(self, row: int, score: float) -> Document:
        p = self.store[row]
        return Document(text=p.text, id=p.id, title=p.title, score=score)


def _search_config(manifest: Manifest, nprobe: int | None, ef_search: int | None) -> IndexConfig:
    params: dict[str, Any] = dict(manifest.index["params"])
    cfg = IndexConfig(**params)
    overrides = {k: v for k, v in (("nprobe", nprobe), ("ef_search", ef_search)) if v is not None}
    return replace(cfg, **overrides)


def index_fingerprint(manifest: Manifest, nprobe: int | None = None,
                      ef_search: int | None = None) -> str:
    """Manifest hash + effective search parameters: equal fingerprints give equal results."""
    cfg = _search_config(manifest, nprobe, ef_search)
    text = f"{manifest.hash()}:{cfg.nprobe}:{cfg.ef_search}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
