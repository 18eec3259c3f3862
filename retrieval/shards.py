"""Embedding a corpus in shards that run as separate jobs, then one index from the shards.

Embedding is the expensive part of indexing (about 17 h per 1M passages on a 2-core CPU), so
large corpora are embedded by K independent jobs (a Ray task each, a SLURM array, machines
with GPUs). Every job reads and prepares the whole corpus, which is cheap and deterministic,
so all of them agree on the passage rows, and embeds only its contiguous slice of rows into
`shard-<i>-of-<K>.npy` with a JSON sidecar naming the corpus checksum, the corpus spec, the
embedder and the rows. A finished shard is never embedded again, so a preempted job is simply
re-run. `build_from_shards` checks that all K sidecars agree with the corpus and each other,
then writes the same index folder (and manifest) that a one-process `build_index` writes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bestofn.text.files import atomic_write_text

from .build import DEFAULT_SPEC, FLAT, EmbeddedCorpus, write_index
from .corpus import CorpusSpec, file_sha256, prepare_passages
from .embed import DEFAULT_EMBEDDER, EMBED_BATCH, Embedder, canonical_name
from .faiss_index import IndexConfig
from .manifest import Manifest


class ShardError(ValueError):
    """A shard folder that cannot make the requested index (missing or mismatched shards)."""


@dataclass(frozen=True)
class ShardInfo:
    shard: int
    shards: int
    rows: tuple[int, int]
    corpus_sha256: str
    spec: dict[str, Any]
    embedder: dict[str, Any]
    stats: dict[str, Any]
    embed_seconds: float

    @property
    def stem(self) -> str:
        return shard_stem(self.shard, self.shards)


def shard_stem(shard: int, shards: int) -> str:
    return f"shard-{shard:05d}-of-{shards:05d}"


def shard_rows(n: int, shard: int, shards: int) -> tuple[int, int]:
    """Row range of `shard` when n rows are cut into `shards` contiguous, near-equal slices."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    bounds = np.linspace(0, n, shards + 1).astype(int)
    return int(bounds[shard]), int(bounds[shard + 1])


def parse_shard(text: str) -> tuple[int, int]:
    """`I/K` (shard I of K, counted from 0) → (I, K)."""
    i, sep, k = text.partition("/")
    try:
        shard, shards = int(i), int(k)
    except ValueError:
        shard, shards = -1, 0
    if not sep or shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"--shard wants I/K with 0 <= I < K, got {text!r}")
    return shard, shards


def embed_shard(corpus: str | Path, out: str | Path, shard: int, shards: int,
                embedder: str | Embedder = DEFAULT_EMBEDDER, spec: CorpusSpec = DEFAULT_SPEC,
                device: str = "auto", batch_size: int = EMBED_BATCH,
                progress: bool = True) -> tuple[ShardInfo, bool]:
    """Embed one shard of `corpus` into folder `out`; returns its info and whether it was
    embedded now (False: an identical finished shard was already there)."""
    folder, sha, stem = Path(out), file_sha256(corpus), shard_stem(shard, shards)
    name = embedder.name if isinstance(embedder, Embedder) else canonical_name(embedder)
    old = _read_info(folder / f"{stem}.json")
    if (old is not None and old.corpus_sha256 == sha and old.spec == spec.to_dict()
            and old.embedder["name"] == name and (folder / f"{stem}.npy").is_file()):
        return old, False
    emb = embedder if isinstance(embedder, Embedder) else Embedder(embedder, device, batch_size)
    passages, stats = prepare_passages(corpus, spec, emb.tokenizer if spec.chunk_tokens else None)
    lo, hi = shard_rows(len(passages), shard, shards)
    start = time.perf_counter()
    with emb.truncated(spec.embed_max_tokens):
        vectors = emb.encode([spec.embedding_input(p) for p in passages[lo:hi]],
                             progress=progress)
    info = ShardInfo(shard, shards, (lo, hi), sha, spec.to_dict(),
                     {"name": emb.name, "dim": emb.dim, "max_seq_length": emb.max_seq_length},
                     vars(stats), round(time.perf_counter() - start, 3))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{stem}.{os.getpid()}.npy"
    np.save(tmp, vectors)
    os.replace(tmp, folder / f"{stem}.npy")
    atomic_write_text(folder / f"{stem}.json", json.dumps(_info_dict(info), indent=2) + "\n")
    return info, True


def build_from_shards(corpus: str | Path, shards_dir: str | Path, out: str | Path,
                      index: IndexConfig = FLAT, spec: CorpusSpec = DEFAULT_SPEC,
                      overwrite: bool = False, progress: bool = True) -> Manifest:
    """The index folder `out` from the finished shards in `shards_dir` (see the module doc)."""
    start = time.perf_counter()
    folder, sha = Path(shards_dir), file_sha256(corpus)
    infos = _complete_set(folder)
    for info in infos:
        where = folder / f"{info.stem}.json"
        if info.corpus_sha256 != sha:
            raise ShardError(f"{where}: embedded from another corpus file (sha256 "
                             f"{info.corpus_sha256[:12]}…, {corpus} has {sha[:12]}…)")
        if info.spec != spec.to_dict():
            raise ShardError(f"{where}: embedded with another corpus spec: {info.spec} "
                             f"(asked: {spec.to_dict()})")
        if info.embedder != infos[0].embedder:
            raise ShardError(f"{where}: embedder {info.embedder} differs from shard 0's "
                             f"{infos[0].embedder}")
    passages, stats = prepare_passages(corpus, spec, _tokenizer_for(spec, infos[0]))
    expected = [shard_rows(len(passages), i, len(infos)) for i in range(len(infos))]
    for info, rows in zip(infos, expected, strict=True):
        if info.rows != rows:
            raise ShardError(f"{folder / info.stem}.json: rows {info.rows}, but the corpus "
                             f"cut into {len(infos)} shards gives {rows}")
    vectors = np.concatenate([np.load(folder / f"{i.stem}.npy", mmap_mode="r") for i in infos])
    corpus_info = {"path": str(Path(corpus).resolve()), "sha256": sha, "spec": spec.to_dict(),
                   "stats": vars(stats)}
    data = EmbeddedCorpus(passages, vectors, dict(infos[0].embedder), corpus_info)
    build = {"embed_seconds": round(sum(i.embed_seconds for i in infos), 3),
             "shards": len(infos), "shards_dir": str(folder.resolve())}
    return write_index(out, data, index, overwrite=overwrite, progress=progress, build=build,
                       started=start)


def _tokenizer_for(spec: CorpusSpec, info: ShardInfo) -> Any:
    """Chunking needs the embedder's tokenizer (loaded only then)."""
    if not spec.chunk_tokens:
        return None
    return Embedder(info.embedder["name"], "cpu").tokenizer


def _complete_set(folder: Path) -> list[ShardInfo]:
    sidecars = sorted(folder.glob("shard-*-of-*.json"))
    if not sidecars:
        raise ShardError(f"{folder}: no shard files (shard-IIIII-of-KKKKK.json/.npy); embed "
                         "them with `bestofn index build --shard I/K`")
    infos = [_read_info(p) for p in sidecars]
    counts = {i.shards for i in infos if i is not None}
    if len(counts) != 1:
        raise ShardError(f"{folder}: shards of different splits ({sorted(counts)} shards); "
                         "keep one split per folder")
    k = counts.pop()
    by_index = {i.shard: i for i in infos if i is not None}
    missing = [s for s in range(k)
               if s not in by_index or not (folder / f"{shard_stem(s, k)}.npy").is_file()]
    if missing:
        shown = ", ".join(f"{s}/{k}" for s in missing[:20])
        raise ShardError(f"{folder}: {len(missing)} of {k} shards not finished: {shown}"
                         f"{' …' if len(missing) > 20 else ''}")
    return [by_index[s] for s in range(k)]


def _info_dict(info: ShardInfo) -> dict[str, Any]:
    return {"shard": info.shard, "shards": info.shards, "rows": list(info.rows),
            "corpus_sha256": info.corpus_sha256, "spec": info.spec, "embedder": info.embedder,
            "stats": info.stats, "embed_seconds": info.embed_seconds}


def _read_info(path: Path) -> ShardInfo | None:
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return ShardInfo(int(d["shard"]), int(d["shards"]), (int(d["rows"][0]), int(d["rows"][1])),
                         str(d["corpus_sha256"]), dict(d["spec"]), dict(d["embedder"]),
                         dict(d["stats"]), float(d["embed_seconds"]))
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise ShardError(f"{path}: not a shard sidecar ({type(e).__name__}: {e})") from None
