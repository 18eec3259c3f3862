"""Per-question search results cached as JSONL in a run folder.

A line is keyed by question id, the retriever's fingerprint (index manifest hash + search
parameters), k and a hash of the query text, so a rebuilt index, another k or an edited
question never reuses stale documents. Lines are appended and flushed; a torn last line from a
crash is cut off when the cache is read (that question is searched again). One process (the
driver) owns the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bestofn.text.files import resume_lines
from bestofn.text.records import Document

CACHE_FILE = "retrieval_cache.jsonl"


@dataclass(frozen=True)
class CacheKey:
    question_id: str
    index: str
    k: int
    query_sha: str

    @classmethod
    def of(cls, question_id: str, index: str, k: int, query: str) -> CacheKey:
        return cls(str(question_id), index, k, hashlib.sha256(query.encode()).hexdigest()[:16])


class SearchCache:
    """Documents by `CacheKey`, read from and appended to `folder/retrieval_cache.jsonl`."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / CACHE_FILE
        self._docs: dict[CacheKey, list[Document]] = {}
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        for d in resume_lines(self.path):
            key = CacheKey(d["question_id"], d["index"], int(d["k"]), d["query_sha"])
            self._docs[key] = [Document.from_dict(x) for x in d["documents"]]

    def __len__(self) -> int:
        return len(self._docs)

    def get(self, key: CacheKey) -> list[Document] | None:
        return self._docs.get(key)

    def put_many(self, entries: list[tuple[CacheKey, list[Document]]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for key, docs in entries:
                row = {"question_id": key.question_id, "index": key.index, "k": key.k,
                       "query_sha": key.query_sha, "documents": [d.to_dict() for d in docs]}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                self._docs[key] = docs
