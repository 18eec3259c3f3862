"""Retrieval for RAG-PRM: a FAISS index over a passage corpus, built and queried with a
sentence-transformers embedder, whose documents go into the PRM prompt.

    from retrieval import build_index, FaissRetriever, attach_documents, default_index
    build_index("corpus.jsonl", "indexes/mine")                 # flat inner-product index
    FaissRetriever("indexes/mine").search(["fever and rash"], k=5)
    questions = attach_documents(questions, default_index(), k=5, cache_dir="runs/x")

Add a retriever backend by writing a class with `search(queries, k)` and registering it in
`RETRIEVERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bestofn.registry import Registry
from bestofn.text.records import Document

from .attach import attach_documents, question_query
from .build import (
    build_index,
    default_index,
    default_index_dir,
    ensure_index,
    index_folder,
    write_index,
)
from .corpus import MEDQUAD_PATH, MEDQUAD_SPEC, CorpusSpec, Passage, prepare_passages
from .embed import DEFAULT_EMBEDDER, Embedder, embed_sharded
from .faiss_index import INDEX_KINDS, IndexConfig
from .faiss_retriever import FaissRetriever
from .manifest import IndexMismatch, Manifest


@runtime_checkable
class Retriever(Protocol):
    def search(self, queries: Sequence[str], k: int) -> list[list[Document]]: ...


RETRIEVERS = Registry("retriever")
RETRIEVERS.register("faiss", "retrieval.faiss_retriever:FaissRetriever")

__all__ = ["DEFAULT_EMBEDDER", "INDEX_KINDS", "MEDQUAD_PATH", "MEDQUAD_SPEC", "RETRIEVERS",
           "CorpusSpec", "Embedder", "FaissRetriever", "IndexConfig", "IndexMismatch", "Manifest",
           "Passage", "Retriever", "attach_documents", "build_index", "default_index",
           "default_index_dir", "embed_sharded", "ensure_index", "index_folder", "prepare_passages",
           "question_query", "write_index"]
