"""Passage store: one UTF-8 blob of JSON records plus an int64 offsets array, both memory-mapped.

Row `i` of the FAISS index is record `i` of the store. Readers map the files lazily, so a
worker holds pages of the blob it has touched, never a Python list of every passage, and a
forked or spawned worker can open the same files without copying them.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .corpus import Passage

BLOB = "passages.bin"
OFFSETS = "offsets.npy"


def write_store(folder: Path, passages: Iterable[Passage]) -> int:
    """Write the passages in order; returns how many were written."""
    offsets = [0]
    with open(folder / BLOB, "wb") as f:
        for p in passages:
            data = json.dumps([p.id, p.title, p.text], ensure_ascii=False).encode()
            f.write(data)
            offsets.append(offsets[-1] + len(data))
    np.save(folder / OFFSETS, np.asarray(offsets, dtype=np.int64))
    return len(offsets) - 1


class PassageStore:
    """Random access to the passages of an index folder by row number."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._offsets = np.load(self.folder / OFFSETS, mmap_mode="r")
        self._blob: mmap.mmap | None = None

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _data(self) -> mmap.mmap | bytes:
        if self._blob is None:
            with open(self.folder / BLOB, "rb") as f:
                if f.seek(0, 2) == 0:
                    return b""
                self._blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return self._blob

    def __getitem__(self, row: int) -> Passage:
        if not 0 <= row < len(self):
            raise IndexError(f"passage row {row} outside 0..{len(self) - 1}")
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        pid, title, text = json.loads(self._data()[start:end])
        return Passage(id=pid, text=text, title=title)

    def __getstate__(self) -> dict[str, str]:
        return {"folder": str(self.folder)}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["folder"])
