"""Corpus ingestion: JSONL passages → `Passage` records, with field mapping, chunking and dedup.

A corpus line is one JSON object. `CorpusSpec` says which fields hold the id, the title and the
text (several text fields are joined), whether long passages are cut into overlapping token
windows of the embedder's tokenizer, and whether repeated texts are dropped. Every problem in a
file raises `InputError` naming the file, the line and the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bestofn.text.files import InputError, json_objects

DATA_DIR = Path(__file__).parent / "data"
MEDQUAD_PATH = DATA_DIR / "medquad_passages.jsonl.gz"
DUPLICATE_ID_POLICIES = ("suffix", "error")


@dataclass(frozen=True)
class Passage:
    id: str
    text: str
    title: str = ""


@dataclass(frozen=True)
class CorpusSpec:
    """How corpus lines become passages (saved in the index manifest: it shapes the index)."""

    id_field: str = "id"
    title_field: str | None = "title"
    """A missing title field gives an empty title; None never reads one."""
    text_fields: tuple[str, ...] = ("text",)
    """Joined with `joiner`; every one must be present in every line."""
    joiner: str = "\n"
    chunk_tokens: int = 0
    """Cut passages longer than this many embedder tokens into windows; 0 keeps them whole."""
    chunk_overlap: int = 0
    dedup: bool = True
    """Drop passages whose text repeats an earlier one (case and whitespace ignored)."""
    duplicate_ids: str = "suffix"
    """'suffix' renames a repeated id to `id~2`, `id~3`, …; 'error' refuses the corpus."""
    embed_title: bool = False
    """Embed `title + newline + text` instead of the text alone."""
    embed_max_tokens: int = 0
    """Embed only the first this many tokens of each passage (0: the embedder's own limit).
    Embedding cost grows with tokens; the stored passage is never cut."""

    def __post_init__(self) -> None:
        if not self.text_fields:
            raise ValueError("CorpusSpec needs at least one text field")
        if self.chunk_tokens < 0 or not 0 <= self.chunk_overlap < max(self.chunk_tokens, 1):
            raise ValueError(f"need chunk_tokens >= 0 and 0 <= chunk_overlap < chunk_tokens, "
                             f"got chunk_tokens={self.chunk_tokens}, "
                             f"chunk_overlap={self.chunk_overlap}")
        if self.embed_max_tokens < 0:
            raise ValueError(f"embed_max_tokens must be >= 0, got {self.embed_max_tokens}")
        if self.duplicate_ids not in DUPLICATE_ID_POLICIES:
            raise ValueError(f"duplicate_ids must be one of {DUPLICATE_ID_POLICIES}, "
                             f"got {self.duplicate_ids!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text_fields"] = list(self.text_fields)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CorpusSpec:
        return cls(**{**d, "text_fields": tuple(d["text_fields"])})

    def embedding_input(self, p: Passage) -> str:
        return f"{p.title}\n{p.text}" if self.embed_title and p.title else p.text


MEDQUAD_SPEC = CorpusSpec(id_field="id", title_field="focus", text_fields=("question", "answer"),
                          embed_max_tokens=128)
"""The bundled MedQuAD corpus: question + answer as text, the focus (disease) as title. Each
passage is embedded by its first 128 tokens (the question and the start of the answer, which
opens with a summary): that cuts the one-off CPU build to about a third of embedding whole
256-token windows of chunks (5.2M tokens), and the stored passage stays whole."""


@dataclass
class CorpusStats:
    records: int = 0
    passages: int = 0
    chunked_records: int = 0
    duplicates_dropped: int = 0
    ids_renamed: int = 0


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSONL(.gz) file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such corpus file")
    return json_objects(p)


def passage_from_record(rec: dict[str, Any], spec: CorpusSpec, path: Path, line: int) -> Passage:
    where = f"line {line}"
    if spec.id_field not in rec:
        raise InputError(path, where, spec.id_field, "missing (set the id field with --id-field)")
    pid = rec[spec.id_field]
    if not isinstance(pid, str | int) or isinstance(pid, bool) or str(pid) == "":
        raise InputError(path, where, spec.id_field, f"expected a non-empty string or integer id, "
                                                     f"got {pid!r}")
    parts = [_text_field(rec, name, path, where) for name in spec.text_fields]
    text = spec.joiner.join(x for x in parts if x)
    if not text.strip():
        raise InputError(path, where, "+".join(spec.text_fields), "empty text")
    title = rec.get(spec.title_field) if spec.title_field else ""
    if title is not None and not isinstance(title, str):
        raise InputError(path, where, str(spec.title_field),
                         f"expected a string, got {type(title).__name__}")
    return Passage(id=str(pid), text=text, title=title or "")


def _text_field(rec: dict[str, Any], name: str, path: Path, where: str) -> str:
    if name not in rec:
        raise InputError(path, where, name, "missing (set the text fields with --text-field)")
    value = rec[name]
    if not isinstance(value, str):
        raise InputError(path, where, name, f"expected a string, got {type(value).__name__}")
    return value.strip()


def read_passages(path: str | Path, spec: CorpusSpec) -> Iterator[Passage]:
    """Passages exactly as the lines map them (no id renaming, chunking or dedup)."""
    p = Path(path)
    for line, rec in read_records(p):
        yield passage_from_record(rec, spec, p, line)


def chunk_text(text: str, tokenizer: Any, size: int, overlap: int) -> list[str]:
    """Windows of `size` tokens every `size - overlap` tokens, cut from the original text."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                        verbose=False)["offset_mapping"]
    if len(offsets) <= size:
        return [text]
    out, step = [], size - overlap
    for start in range(0, len(offsets), step):
        window = offsets[start:start + size]
        out.append(text[window[0][0]:window[-1][1]])
        if start + size >= len(offsets):
            break
    return out


def _dedup_key(text: str) -> str:
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()


def prepare_passages(path: str | Path, spec: CorpusSpec,
                     tokenizer: Any = None) -> tuple[list[Passage], CorpusStats]:
    """Read, give repeated ids a suffix (or refuse them), chunk and dedup a corpus file."""
    if spec.chunk_tokens and tokenizer is None:
        raise ValueError("chunking needs the embedder's tokenizer")
    stats, seen_ids, seen_texts, out = CorpusStats(), {}, set(), []
    p = Path(path)
    for line, rec in read_records(p):
        stats.records += 1
        passage = _unique_id(passage_from_record(rec, spec, p, line), seen_ids, spec, p, line,
                             stats)
        pieces = _chunks(passage, spec, tokenizer)
        stats.chunked_records += len(pieces) > 1
        for piece in pieces:
            key = _dedup_key(piece.text)
            if spec.dedup and key in seen_texts:
                stats.duplicates_dropped += 1
                continue
            seen_texts.add(key)
            out.append(piece)
    stats.passages = len(out)
    return out, stats


def _unique_id(p: Passage, seen: dict[str, int], spec: CorpusSpec, path: Path, line: int,
               stats: CorpusStats) -> Passage:
    count = seen.get(p.id, 0) + 1
    seen[p.id] = count
    if count == 1:
        return p
    if spec.duplicate_ids == "error":
        raise InputError(path, f"line {line}", spec.id_field,
                         f"id {p.id!r} repeats an earlier line's id")
    stats.ids_renamed += 1
    new = f"{p.id}~{count}"
    while new in seen:
        count += 1
        new = f"{p.id}~{count}"
    seen[new] = 1
    return Passage(id=new, text=p.text, title=p.title)


def _chunks(p: Passage, spec: CorpusSpec, tokenizer: Any) -> list[Passage]:
    if not spec.chunk_tokens:
        return [p]
    texts = chunk_text(p.text, tokenizer, spec.chunk_tokens, spec.chunk_overlap)
    if len(texts) == 1:
        return [p]
    return [Passage(id=f"{p.id}#{i}", text=t, title=p.title) for i, t in enumerate(texts)]
