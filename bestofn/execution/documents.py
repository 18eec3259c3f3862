"""The documents stage: each question's top-k passages from an index, through a search cache.

One stage wherever retrieval runs. `Documents` owns the top-k, the per-run-folder cache
(`retrieval.cache`: `run/retrieval/retrieval_cache.jsonl`, read on resume, so a question is
searched once per run folder) and a `Lookup` that does the searching:

- `IndexLookup`: the index folder in this process, opened on the first search (a run whose
  documents are all cached never loads the index or the embedder). In-process runs and `serve`
  search with it, and so does the Ray pipeline's retrieval actor. An in-process run with
  questions left to do opens it at start-up, beside the engines (`execution.startup`).
- the retrieval actor seen from the Ray driver (`execution.ray_workers.ActorLookup`): an
  adaptive run on Ray attaches its documents through it, so the driver loads neither the
  index nor the embedder; the fixed-N pipeline searches on the same actor beside sampling,
  planning the chunks with `Documents.plan`.

The cache file is written only where `Documents` runs (the driver), never on an actor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ..text.records import Document, Question

CACHE_DIR = "retrieval"
"""The search cache's folder inside a run folder."""


class Lookup(Protocol):
    def fingerprint(self) -> str:
        """Identifies the results the searches give (index manifest and search parameters)."""

    def search(self, queries: list[str], progress: bool = False) -> list[list[Document]]:
        """Each query's top-k passages, best first."""


class IndexLookup:
    """Top-k search over an index folder (`default`: the bundled one, built on first use),
    the index opened on the first search, or by `open`."""

    def __init__(self, index: str, k: int, device: str | None = None) -> None:
        self.index, self.k, self.device = index, k, device
        self._retriever: Any = None

    def open(self) -> Any:
        if self._retriever is None:
            from .engines import build_retriever

            self._retriever = build_retriever(self.index, self.device)
        return self._retriever

    def fingerprint(self) -> str:
        if self._retriever is not None:
            return str(self._retriever.fingerprint)
        from retrieval import Manifest, index_folder
        from retrieval.faiss_retriever import index_fingerprint

        return index_fingerprint(Manifest.load(index_folder(self.index)))

    def search(self, queries: list[str], progress: bool = False) -> list[list[Document]]:
        return self.open().search(queries, self.k, progress=progress)


@dataclass
class Documents:
    """Attaches documents to questions: cached ones read, missing ones searched in chunks of
    `retrieval.attach.SEARCH_CHUNK` and cached as they come back (no cache without
    `cache_dir`)."""

    lookup: Lookup
    k: int
    cache_dir: Path | None = None
    progress: bool = False

    def plan(self, questions: list[Question], fingerprint: str | None = None) -> Any:
        """The cache bookkeeping of a search over `questions` (`retrieval.attach.CachedSearch`)."""
        from retrieval.attach import CachedSearch

        fp = self.lookup.fingerprint() if fingerprint is None else fingerprint
        return CachedSearch(questions, fp, self.k, self.cache_dir)

    def attach(self, questions: list[Question]) -> list[Question]:
        """Copies of `questions` with `.documents` set to their top-k passages."""
        if not questions:
            return []
        docs = self.plan(questions).fill(self.lookup.search, self.progress)
        return [replace(q, documents=docs[q.id]) for q in questions]

    def texts(self, questions: list[Question]) -> list[list[str]]:
        """Each question's passages as plain text (what a PRM prompt takes)."""
        return [q.document_texts() or [] for q in self.attach(questions)]


def run_documents(index: str | None, k: int, out: Path | None,
                  progress: bool = False) -> Documents | None:
    """A run's documents stage in this process, cached in the run folder `out` (None without
    an index)."""
    if not index:
        return None
    return Documents(IndexLookup(index, k), k, None if out is None else out / CACHE_DIR,
                     progress)
