"""Retrieved documents for questions: what the run command calls before PRM scoring.

The query is the question stem, plus its rendered options when `with_options` (the default).
The documents land in `Question.documents` best first; the PRM scorer then keeps them in order
while they fit its token budget (`bestofn.scorers.prm_prompt.fit_documents`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bestofn.records import Question

from .cache import CacheKey, SearchCache
from .embed import Embedder
from .manifest import Manifest
from .search import FaissRetriever, index_fingerprint


def question_query(q: Question, with_options: bool = True) -> str:
    """The text searched for a question (a stem that already holds its options keeps them)."""
    return q.text() if with_options else q.stem


def attach_documents(questions: Sequence[Question], index_dir: str | Path, k: int,
                     cache_dir: str | Path | None = None, with_options: bool = True,
                     embedder: str | Embedder | None = None, device: str = "auto",
                     batch_size: int = 64, progress: bool = False) -> list[Question]:
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
    queries = [question_query(q, with_options) for q in questions]
    keys = [CacheKey.of(q.id, fingerprint, k, text) for q, text in zip(questions, queries,
                                                                          strict=True)]
    cache = SearchCache(cache_dir) if cache_dir is not None else None
    docs = [cache.get(key) if cache else None for key in keys]
    missing = [i for i, d in enumerate(docs) if d is None]
    if missing:
        retriever = retriever or FaissRetriever(index_dir, device=device, batch_size=batch_size)
        found = retriever.search([queries[i] for i in missing], k, progress=progress)
        for i, d in zip(missing, found, strict=True):
            docs[i] = d
        if cache is not None:
            cache.put_many([(keys[i], d) for i, d in zip(missing, found, strict=True)])
    return [replace(q, documents=d) for q, d in zip(questions, docs, strict=True)]

