"""`bestofn evaluate`: the accuracy table of every selection method on a scored file."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .options import add_rules_option


def register(sub: Any) -> dict[str, Any]:
    e = sub.add_parser("evaluate", help="accuracy table of every selection method")
    e.add_argument("--input", required=True, help="a scored file")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--seed", type=int, default=0, help="seed of the tie-breaking draw")
    add_rules_option(e)
    return {"evaluate": cmd_evaluate}


def cmd_evaluate(a: argparse.Namespace) -> int:
    from ..evaluate import evaluate, format_table
    from ..files import read_items
    from ..select import get_rules

    ev = evaluate(read_items(a.input), seed=a.seed, rules=get_rules(a.rules))
    print(json.dumps(ev.to_json()) if a.json else format_table(ev))
    return 0
