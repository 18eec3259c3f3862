"""`bestofn evaluate`: the accuracy table of every selection method on a scored file, and with
`--adaptive RULE` the same file replayed under a stopping rule next to the fixed-N figures."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..config import RunConfig, default_of
from .options import add_rules_option


def register(sub: Any) -> dict[str, Any]:
    e = sub.add_parser("evaluate", help="accuracy table of every selection method")
    e.add_argument("--input", required=True, help="a scored file")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--seed", type=int, default=default_of(RunConfig, "seed"),
                   help="seed of the tie-breaking draw (and of --draws' permutations)")
    add_rules_option(e)
    e.add_argument("--adaptive", default=None, metavar="RULE[:k=v,...]",
                   help="replay each question's solutions in file order under a stopping rule "
                        "(esc | beta | dirichlet | prm | confidence | fixed) and report "
                        "accuracy and mean samples next to fixed N")
    e.add_argument("--draws", type=int, default=None,
                   help="with --adaptive: average over D seeded permutations of each "
                        "question's solutions (default: file order)")
    e.add_argument("--round", dest="round_size", type=int, default=1,
                   help="with --adaptive: ask the rule every R samples, as a run in rounds does")
    return {"evaluate": cmd_evaluate}


def cmd_evaluate(a: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate, format_table
    from ..evaluation.select import get_rules
    from ..text.files import read_items

    rules = get_rules(a.rules)
    if a.adaptive is None and a.draws is not None:
        raise ValueError("--draws needs --adaptive RULE")
    items = read_items(a.input)
    adaptive = _replay(items, a) if a.adaptive else None
    ev = evaluate(items, seed=a.seed, rules=rules)
    if a.json:
        print(json.dumps({**ev.to_json(), **(adaptive.to_json() if adaptive else {})}))
        return 0
    print(format_table(ev))
    if adaptive is not None:
        print(adaptive_table(adaptive, ev.accuracy, ev.n_solutions / max(ev.n_questions, 1)))
    return 0


def _replay(items: list[Any], a: argparse.Namespace) -> Any:
    from ..adaptive import parse_rule
    from ..evaluation.adaptive_replay import replay

    if a.rules != "strict":
        raise ValueError("--adaptive replays under the strict rules only")
    if a.draws is not None and a.draws < 1:
        raise ValueError(f"--draws must be >= 1, got {a.draws}")
    return replay(items, parse_rule(a.adaptive), draws=a.draws, seed=a.seed,
                  round_size=a.round_size)


def adaptive_table(res: Any, fixed: dict[str, float], fixed_samples: float) -> str:
    """Fixed N against the rule: accuracy with its interval, and mean samples per question."""
    from ..evaluation.select import label

    ci = res.intervals()
    lines = ["", f"adaptive {res.rule} ({res.draws} draw(s)): {res.mean_samples:.2f} samples "
             f"per question vs {fixed_samples:.2f} fixed "
             f"({100 * res.mean_samples / max(fixed_samples, 1e-9):.1f}%)"
             + (f", {res.mean_tokens:.0f} tokens" if res.mean_tokens is not None else ""),
             f"{'method':<28} {'fixed N':>9} {'adaptive':>9}  95% CI", "-" * 62]
    for m, v in res.accuracy.items():
        if m in fixed:
            e = ci[m]
            lines.append(f"{label(m):<28} {100 * fixed[m]:>8.2f}% {100 * v:>8.2f}%  "
                         f"[{100 * e.lo:.2f}, {100 * e.hi:.2f}]")
    return "\n".join(lines)
