"""`bestofn prefs`: preference accuracy of an outcome reward model on a pairs file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .score_orm import add_orm_args


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = sub.add_parser("prefs", help="preference accuracy of an ORM on chosen/rejected pairs")
    p.add_argument("--pairs", required=True,
                   help="JSONL of {prompt, chosen, rejected} (strings or message lists)")
    add_orm_args(p, required=True, short=True)
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (default)")
    p.add_argument("--dtype", default="auto",
                   help="auto (float32 on CPU, bfloat16 on GPU) | float32 | bfloat16")
    p.add_argument("--batch-size", type=int, default=16, help="conversations per forward pass")
    p.add_argument("--max-batch-tokens", type=int, default=None,
                   help="cap on padded tokens per forward pass; bounds memory "
                        "(default 8192 on CPU, 131072 on GPU)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws for the CI")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return {"prefs": cmd_prefs}


def cmd_prefs(a: argparse.Namespace) -> int:
    from .prefs import evaluate_pairs, format_prefs, read_pairs
    from .score_orm import build_orm_scorer

    pairs = read_pairs(a.pairs)
    res = evaluate_pairs(pairs, build_orm_scorer(a), bootstrap=a.bootstrap, seed=a.seed)
    print(json.dumps(res.to_json()) if a.json else format_prefs(res))
    print(f"{len(pairs)} pairs from {a.pairs}, model {a.orm}"
          + (f" + adapter {a.adapter}" if a.adapter else ""), file=sys.stderr)
    return 0
