"""The manifest saved with an index: what built it, so that a stale or foreign index is refused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bestofn.text.files import InputError, load_json

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
        d = load_json(path, dict, "manifest object")
        if d.get("format") != FORMAT:
            raise IndexMismatch(f"{path}: index format {d.get('format')!r}, this bestofn reads "
                                f"format {FORMAT}; rebuild the index")
        check_shape(d, path)
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


SHAPE: dict[str, dict[str, type | tuple[type, ...]]] = {
    "embedder": {"name": str, "dim": int},
    "corpus": {"sha256": str, "spec": dict},
    "index": {"file": str, "ntotal": int, "params": dict},
    "store": {},
    "build": {},
}
"""The manifest's sections and the fields a reader of the index uses, with their types."""


def check_shape(d: dict[str, Any], path: Path) -> None:
    """A manifest whose every section and used field has its type (the search parameters
    included), else `InputError` naming the field: a hand-edited manifest is refused here,
    not later in the middle of a search."""
    from .faiss_index import IndexConfig

    unknown = sorted(set(d) - set(SHAPE) - {"format"})
    if unknown:
        raise InputError(path, "top level", repr(unknown[0]), "unknown manifest field")
    for section, fields in SHAPE.items():
        if section not in d and section != "build":
            raise InputError(path, "top level", section, "missing")
        value = d.get(section, {})
        if not isinstance(value, dict):
            raise InputError(path, "top level", section, f"expected an object, got "
                             f"{type(value).__name__}")
        for name, typ in fields.items():
            got = value.get(name)
            if not isinstance(got, typ) or isinstance(got, bool):
                raise InputError(path, section, f"{section}.{name}", f"expected "
                                 f"{getattr(typ, '__name__', typ)}, got {got!r:.80}")
    if d["embedder"]["dim"] < 1 or d["index"]["ntotal"] < 0:
        raise InputError(path, "embedder", "embedder.dim", "expected a positive dimension and "
                         "ntotal >= 0")
    try:
        IndexConfig(**d["index"]["params"])
    except (TypeError, ValueError) as e:
        raise InputError(path, "index", "index.params", f"not index parameters: {e}") from None
