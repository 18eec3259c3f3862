"""prm-hf's key/value cache: the keys and values of prompt segments, bounded in bytes.

A PRM prompt is computed segment by segment (`prm_segments`): the question's prefix (system
prompt, documents, question), then one segment per step, ending at its marker. An entry holds
one segment's keys and values (every layer, that segment's positions only) and, for a step
segment, the P(+) read at its marker. Its key names the segment and everything before it
(`prm_segments.chain_keys`), so an entry is reused only by a prompt that starts with exactly
those tokens, cut at exactly those places.

The store keeps at most `limit_bytes` of tensors: the least recently used entries are evicted
first, and an entry larger than the whole bound is not kept. Each entry records the questions
that used it (its owners); `release(question, keep)` drops a question's claim on every entry
not in `keep`, and an entry no question claims any more is freed at once (prm-hf calls it
after each partial request with the segments that request used: a search's pruned candidates
go). Thread-safe (a scorer shared by several scoring threads).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

KV = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer (keys, values), each [1, kv heads, tokens, head dim]."""

GIB = 1024**3


def kv_bytes(kv: KV) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


@dataclass
class Entry:
    kv: KV
    prob: float | None
    """P(+) at the segment's last token when it ends at a step marker (else None)."""
    nbytes: int
    owners: set[str] = field(default_factory=set)


class KVStore:
    """Segments' keys/values by chain key, least recently used evicted past `limit_bytes`."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes < 0:
            raise ValueError(f"the PRM cache bound must be >= 0 bytes, got {limit_bytes}")
        self.limit_bytes = limit_bytes
        self.bytes = 0
        self.evicted = 0
        """Entries evicted for room so far (not those freed by `release`)."""
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._owned: dict[str, set[bytes]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def get(self, key: bytes, owner: str) -> Entry | None:
        """The entry (now most recently used, and claimed by `owner`), or None."""
        with self._lock:
            e = self._entries.get(key)
            if e is not None:
                self._entries.move_to_end(key)
                self._claim(key, e, owner)
            return e

    def put(self, key: bytes, kv: KV, prob: float | None, owner: str) -> None:
        """Keep a segment (unless it alone is over the bound), evicting the least recently
        used entries until the store is within its bound."""
        size = kv_bytes(kv)
        with self._lock:
            if key in self._entries or size > self.limit_bytes:
                return
            e = Entry(kv, prob, size)
            self._entries[key] = e
            self.bytes += size
            self._claim(key, e, owner)
            while self.bytes > self.limit_bytes:
                old, _ = next(iter(self._entries.items()))
                self._drop(old)
                self.evicted += 1

    def release(self, owner: str, keep: Iterable[bytes] = ()) -> int:
        """`owner` no longer needs its entries outside `keep`; those no other owner claims are
        freed. Returns the bytes freed."""
        keep = set(keep)
        freed = 0
        with self._lock:
            for key in list(self._owned.get(owner, ())):
                if key in keep:
                    continue
                self._owned[owner].discard(key)
                e = self._entries[key]
                e.owners.discard(owner)
                if not e.owners:
                    freed += e.nbytes
                    self._drop(key)
            if not self._owned.get(owner):
                self._owned.pop(owner, None)
        return freed

    def owners(self) -> set[str]:
        """The owners that still claim an entry."""
        with self._lock:
            return set(self._owned)

    def owned(self, owner: str) -> set[bytes]:
        with self._lock:
            return set(self._owned.get(owner, ()))

    def _claim(self, key: bytes, e: Entry, owner: str) -> None:
        e.owners.add(owner)
        self._owned.setdefault(owner, set()).add(key)

    def _drop(self, key: bytes) -> None:
        e = self._entries.pop(key)
        self.bytes -= e.nbytes
        for o in e.owners:
            keys = self._owned.get(o)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._owned[o]
