"""Retrieved documents for questions: the cached search behind `bestofn.execution.documents` (every
execution's documents stage) and the library's `attach_documents`.

The query is the question stem, plus its rendered options when `with_options` (the default).
The documents land in `Question.documents` best first; the PRM scorer then keeps them in order
while they fit its token budget (`bestofn.scorers.prm_prompt.fit_documents`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from bestofn.text.records import Document, Question

from .cache import CacheKey, SearchCache
from .embed import EMBED_BATCH, Embedder
from .faiss_retriever import FaissRetriever, index_fingerprint
from .manifest import Manifest


def question_query(q: Question, with_options: bool = True) -> str:
    """The text searched for a question (a stem that already holds its options keeps them)."""
    return q.text() if with_options else q.stem


SEARCH_CHUNK = 64
"""Queries per search call, in question order. The in-process path and the Ray pipeline's
retrieval actor search the same chunks, so both embed the same batches and find bit-identical
documents; the cache is written after each chunk."""


class CachedSearch:
    """The bookkeeping of a cached search over questions, apart from the search itself: the
    query and cache key of each question, the documents already cached, the chunks still to
    search, and the cache writes as results come in. `fill` runs the searches in turn (the
    documents stage, `bestofn.execution.documents`, in this process or through the retrieval actor);
    the Ray pipeline's driver calls `missing` and `record` itself while the actor searches
    beside sampling."""

    def __init__(self, questions: Sequence[Question], fingerprint: str, k: int,
                 cache_dir: str | Path | None = None, with_options: bool = True) -> None:
        self.cache = SearchCache(cache_dir) if cache_dir is not None else None
        self.query = {q.id: question_query(q, with_options) for q in questions}
        self.key = {q.id: CacheKey.of(q.id, fingerprint, k, self.query[q.id])
                    for q in questions}
        self.questions = list(questions)

    def cached(self) -> dict[str, list[Document]]:
        if self.cache is None:
            return {}
        hits = {q.id: self.cache.get(self.key[q.id]) for q in self.questions}
        return {i: docs for i, docs in hits.items() if docs is not None}

    def missing(self) -> list[list[Question]]:
        """The questions not in the cache, in chunks of `SEARCH_CHUNK`."""
        todo = [q for q in self.questions
                if self.cache is None or self.cache.get(self.key[q.id]) is None]
        return [todo[i:i + SEARCH_CHUNK] for i in range(0, len(todo), SEARCH_CHUNK)]

    def queries(self, qs: Sequence[Question]) -> list[str]:
        return [self.query[q.id] for q in qs]

    def record(self, qs: Sequence[Question],
               found: Sequence[list[Document]]) -> dict[str, list[Document]]:
        """Cache one chunk's results; returns them by question id."""
        pairs = list(zip(qs, found, strict=True))
        if self.cache is not None:
            self.cache.put_many([(self.key[q.id], docs) for q, docs in pairs])
        return {q.id: docs for q, docs in pairs}

    def fill(self, search: Callable[[list[str], bool], list[list[Document]]],
             progress: bool = False) -> dict[str, list[Document]]:
        """Every question's documents: the cached ones, and the missing chunks searched with
        `search(queries, progress)` in turn, each chunk cached as it comes back."""
        docs = self.cached()
        parts = self.missing()
        for part in tqdm(parts, desc="retrieval", unit="chunk",
                         disable=not progress or len(parts) == 1):
            docs.update(self.record(part, search(self.queries(part),
                                                 progress and len(parts) == 1)))
        return docs


def attach_documents(questions: Sequence[Question], index_dir: str | Path, k: int,
                     cache_dir: str | Path | None = None, with_options: bool = True,
                     embedder: str | Embedder | None = None, device: str = "auto",
                     batch_size: int = EMBED_BATCH, progress: bool = False) -> list[Question]:
    """Copies of `questions` with `.documents` set to their top-k passages from `index_dir`.

    With `cache_dir` (the run folder), results are cached per question and the index and
    embedder are not even loaded when every question is cached. A given embedder is checked
    against the index manifest.
    """
    retriever: FaissRetriever | None = None
    if embedder is not None or cache_dir is None:
        retriever = FaissRetriever(index_dir, embedder, device=device, batch_size=batch_size)
    fingerprint = (retriever.fingerprint if retriever
                   else index_fingerprint(Manifest.load(index_dir)))
    plan = CachedSearch(questions, fingerprint, k, cache_dir, with_options)

    def search(queries: list[str], show: bool) -> list[list[Document]]:
        nonlocal retriever
        retriever = retriever or FaissRetriever(index_dir, device=device, batch_size=batch_size)
        return retriever.search(queries, k, progress=show)

    docs = plan.fill(search, progress)
    return [replace(q, documents=docs[q.id]) for q in questions]
