"""FAISS indexes over normalised embeddings (inner product = cosine): flat, IVF, HNSW, IVF-PQ.

`flat` is exact. `ivf` clusters the vectors into `nlist` lists and searches `nprobe` of them;
`hnsw` walks a graph (`hnsw_m` links per node, `ef_search` candidates per query); `ivfpq`
additionally compresses each vector to `pq_m` bytes (at 8 bits) for corpora whose float32
vectors do not fit in memory. Build parameters are fixed in the saved index; search parameters
(`nprobe`, `ef_search`) can be changed when it is loaded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from bestofn.registry import require

INDEX_KINDS = ("flat", "ivf", "hnsw", "ivfpq")
_ADD_BLOCK = 65_536


def faiss_module() -> Any:
    return require("faiss", "faiss-cpu")


@dataclass(frozen=True)
class IndexConfig:
    """Which FAISS index and its parameters (0 means: chosen from the corpus size)."""

    kind: str = "flat"
    nlist: int = 0
    """IVF lists; 0 → about 4·sqrt(n), at most n/39 (FAISS wants 39 training points a list)."""
    nprobe: int = 16
    """IVF lists searched per query (search time)."""
    hnsw_m: int = 32
    """HNSW links per node (memory grows by about 2·m·4 bytes a vector)."""
    ef_construction: int = 200
    ef_search: int = 128
    """HNSW candidate list per query (search time)."""
    pq_m: int = 0
    """IVF-PQ sub-quantizers (bytes a vector at 8 bits); 0 → dim/8. Must divide dim."""
    pq_bits: int = 8
    train_size: int = 0
    """Vectors sampled to train IVF/PQ; 0 → min(n, max(50·nlist, 10,000 for PQ))."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; known: {', '.join(INDEX_KINDS)}")
        bad = {k: v for k, v in asdict(self).items() if isinstance(v, int) and v < 0}
        if bad or self.nprobe < 1 or self.hnsw_m < 2 or self.ef_search < 1:
            raise ValueError(f"bad index parameters {bad or asdict(self)}: need nprobe >= 1, "
                             f"hnsw_m >= 2, ef_search >= 1 and no negative values")

    def resolved(self, n: int, dim: int) -> IndexConfig:
        """The same config with the automatic (0) values filled in for `n` vectors of `dim`."""
        cfg = self
        if self.kind in ("ivf", "ivfpq") and not self.nlist:
            cfg = replace(cfg, nlist=max(1, min(int(4 * math.sqrt(n)), n // 39)))
        if self.kind == "ivfpq" and not self.pq_m:
            cfg = replace(cfg, pq_m=max(1, dim // 8))
        if self.kind in ("ivf", "ivfpq") and not self.train_size:
            floor = 10_000 if self.kind == "ivfpq" else 0
            cfg = replace(cfg, train_size=min(n, max(50 * cfg.nlist, floor)))
        return cfg

    def factory(self) -> str:
        if self.kind == "flat":
            return "Flat"
        if self.kind == "hnsw":
            return f"HNSW{self.hnsw_m},Flat"
        if self.kind == "ivf":
            return f"IVF{self.nlist},Flat"
        return f"IVF{self.nlist},PQ{self.pq_m}x{self.pq_bits}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_buildable(cfg: IndexConfig, n: int, dim: int) -> None:
    if n == 0:
        raise ValueError("cannot build an index over an empty corpus")
    if cfg.kind in ("ivf", "ivfpq") and cfg.nlist > n:
        raise ValueError(f"nlist={cfg.nlist} exceeds the {n} vectors; lower --nlist or use flat")
    if cfg.kind == "ivfpq":
        if dim % cfg.pq_m:
            raise ValueError(f"pq_m={cfg.pq_m} must divide the embedding dimension {dim}")
        if cfg.train_size < 2 ** cfg.pq_bits:
            raise ValueError(f"IVF-PQ with {cfg.pq_bits} bits needs at least {2 ** cfg.pq_bits} "
                             f"training vectors, got {cfg.train_size}; use ivf or flat")


def build_faiss(vectors: np.ndarray, cfg: IndexConfig, progress: bool = True) -> Any:
    """A trained index holding `vectors` (float32, n x dim, already normalised) in row order."""
    faiss = faiss_module()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = x.shape
    cfg = cfg.resolved(n, dim)
    _check_buildable(cfg, n, dim)
    index = faiss.index_factory(dim, cfg.factory(), faiss.METRIC_INNER_PRODUCT)
    if cfg.kind == "hnsw":
        index.hnsw.efConstruction = cfg.ef_construction
    if cfg.kind == "ivfpq":
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        # Polysemous codes only serve Hamming-filtered search, which is not used; training
        # them takes minutes even on a few thousand vectors.
        ivf.do_polysemous_training = False
        # Each of the pq_m codebooks is a k-means in a few dimensions, slow per point in FAISS:
        # 64 points a centroid (16k at 8 bits) instead of 256 cuts PQ training fourfold.
        ivf.pq.cp.max_points_per_centroid = 64
    if not index.is_trained:
        rows = np.random.default_rng(cfg.seed).choice(n, cfg.train_size, replace=False)
        index.train(x[np.sort(rows)])
    with tqdm(total=n, desc=f"index {cfg.kind}", unit="vec", disable=not progress) as bar:
        for start in range(0, n, _ADD_BLOCK):
            index.add(x[start:start + _ADD_BLOCK])
            bar.update(min(_ADD_BLOCK, n - start))
    set_search_params(index, cfg)
    return index


def set_search_params(index: Any, cfg: IndexConfig) -> None:
    """Apply the search-time parameters (`nprobe`, `ef_search`) of `cfg` to a built index."""
    faiss = faiss_module()
    if cfg.kind in ("ivf", "ivfpq"):
        faiss.extract_index_ivf(index).nprobe = cfg.nprobe
    elif cfg.kind == "hnsw":
        index.hnsw.efSearch = cfg.ef_search


def search_index(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows), each n_queries x k; rows are -1 where fewer than k were found."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != index.d:
        raise ValueError(f"queries of shape {q.shape} do not match the index dimension {index.d}")
    return index.search(q, k)
