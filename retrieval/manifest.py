"""The manifest saved with an index: what built it, so that a stale or foreign index is refused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
FORMAT = 1


class IndexMismatch(ValueError):
    """An index folder that does not match the requested embedder or corpus."""


@dataclass
class Manifest:
    """`embedder`: name, dim, max_seq_length. `corpus`: path, sha256, spec, stats.
    `index`: kind, factory, params, ntotal, file. `store`: format, files, passages.
    `build`: timings and versions (not part of the identity)."""

    embedder: dict[str, Any]
    corpus: dict[str, Any]
    index: dict[str, Any]
    store: dict[str, Any]
    build: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT

    def identity(self) -> dict[str, Any]:
        """What determines search results (not where the corpus was, not how long it took)."""
        corpus = {k: v for k, v in self.corpus.items() if k not in ("path", "stats")}
        return {"format": self.format, "embedder": self.embedder, "corpus": corpus,
                "index": self.index, "store": self.store}

    def hash(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def save(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: not an index folder (no {MANIFEST}); build one "
                                    f"with `bestofn index build`")
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("format") != FORMAT:
            raise IndexMismatch(f"{path}: index format {d.get('format')!r}, this bestofn reads "
                                f"format {FORMAT}; rebuild the index")
        return cls(**d)

    def check(self, folder: Path, embedder: str | None = None, corpus_sha256: str | None = None,
              corpus_spec: dict[str, Any] | None = None) -> None:
        """Raise `IndexMismatch` naming what differs from the requested embedder or corpus."""
        have = self.embedder["name"]
        if embedder is not None and embedder != have:
            raise IndexMismatch(f"{folder}: index was built with embedder {have!r} "
                                f"(dim {self.embedder['dim']}), not {embedder!r}; rebuild it "
                                f"with --embedder {embedder!r} or search with {have!r}")
        built_from = self.corpus.get("path", "?")
        if corpus_sha256 is not None and corpus_sha256 != self.corpus["sha256"]:
            raise IndexMismatch(f"{folder}: index was built from a different corpus "
                                f"({built_from}, sha256 {self.corpus['sha256'][:12]}…; requested "
                                f"sha256 {corpus_sha256[:12]}…); rebuild it")
        if corpus_spec is not None and corpus_spec != self.corpus["spec"]:
            diff = {k: (self.corpus["spec"].get(k), v) for k, v in corpus_spec.items()
                    if self.corpus["spec"].get(k) != v}
            raise IndexMismatch(f"{folder}: index was built with other corpus settings "
                                f"(built, requested): {diff}; rebuild it")
