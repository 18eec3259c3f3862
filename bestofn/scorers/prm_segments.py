"""Where prm-hf cuts a prompt into the segments it computes one after another.

Every prompt is computed in the same segments whether or not any is cached, so a score never
depends on what the cache holds: the question's prefix (the tokens before the solution, shared
by every solution of the question), then one segment per step from the token after the
previous marker to the step's own marker (P(+) is read at the segment's last token). A segment
longer than `max_tokens` is computed in pieces of `max_tokens` from its start (bounding one
forward pass's memory). Where the cuts fall depends only on the prompt's own tokens.

A segment's key hashes the previous segment's key, its length and its tokens: equal keys mean
equal tokens from the prompt's start, cut at the same places, hence the same keys and values
bit for bit. A search's partial solution after step t is the same prompt as after step t-1
plus one segment, so only that segment is computed (as prm-vllm's prefix cache does).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from .prm_prompt import EncodedPrompt


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    marker: bool
    """It ends at a step marker (its last token's P(+) is that step's score)."""
    key: bytes


def prefix_length(e: EncodedPrompt, share: bool, min_tokens: int) -> int:
    """The question prefix computed as a segment of its own (0: none): the tokens before the
    solution (`EncodedPrompt.solution_start`), never past the first marker, when at least
    `min_tokens` long."""
    if not share or not e.marker_positions:
        return 0
    n = min(e.solution_start, e.marker_positions[0])
    return n if n >= min_tokens else 0


def segments(e: EncodedPrompt, prefix: int, max_tokens: int) -> list[Segment]:
    """The prompt's segments in order: the prefix (if any), then one per step, each cut into
    pieces of at most `max_tokens`."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    cuts = ([(prefix, False)] if prefix else []) + [(p + 1, True) for p in e.marker_positions]
    out: list[Segment] = []
    key, start = b"", 0
    for end, marker in cuts:
        for a in range(start, end, max_tokens):
            b = min(a + max_tokens, end)
            key = chain_key(key, e.input_ids[a:b])
            out.append(Segment(a, b, marker and b == end, key))
        start = end
    return out


def chain_key(previous: bytes, ids: Sequence[int]) -> bytes:
    h = hashlib.blake2b(previous, digest_size=16)
    h.update(len(ids).to_bytes(8, "little"))
    h.update(array("q", ids).tobytes())
    return h.digest()
