"""`bestofn prefs`: preference accuracy of an outcome reward model on a pairs file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..config import ORMOptions, ReportOptions, RunConfig, default_of
from .options import add_loading_options, add_orm_options, orm_options


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = sub.add_parser("prefs", help="preference accuracy of an ORM on chosen/rejected pairs")
    p.add_argument("--pairs", required=True,
                   help="JSONL of {prompt, chosen, rejected} (strings or message lists)")
    add_orm_options(p, required=True, short=True)
    p.add_argument("--device", default=default_of(ORMOptions, "device"),
                   help="cpu | cuda | auto (default)")
    add_loading_options(p, what="conversations")
    p.add_argument("--bootstrap", type=int, default=default_of(ReportOptions, "bootstrap"),
                   help="bootstrap draws for the CI")
    p.add_argument("--seed", type=int, default=default_of(RunConfig, "seed"),
                   help="seed of the bootstrap")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return {"prefs": cmd_prefs}


def cmd_prefs(a: argparse.Namespace) -> int:
    from ..evaluation.prefs import evaluate_pairs, format_prefs, read_pairs
    from ..execution.engines import build_orm

    pairs = read_pairs(a.pairs)
    res = evaluate_pairs(pairs, build_orm(orm_options(a)), bootstrap=a.bootstrap,
                         seed=a.seed)
    print(json.dumps(res.to_json()) if a.json else format_prefs(res))
    print(f"{len(pairs)} pairs from {a.pairs}, model {a.orm}"
          + (f" + adapter {a.adapter}" if a.adapter else ""), file=sys.stderr)
    return 0
