"""Best-of-N with each verifier on the same sampled solutions (issue 21's table), used by
`benchmarks/verifiers.py --solutions RUN/results.jsonl` (a `bestofn run --logprobs K` results
file, so that the policy's confidence is there too): `bestofn evaluate`'s accuracies with
bootstrap intervals for the vote, the confidence methods, and each verifier's PRM best-of-N and
weighted vote."""

from __future__ import annotations

from typing import Any

from bestofn.evaluation.evaluate import evaluate
from bestofn.evaluation.intervals import accuracy_intervals
from bestofn.evaluation.select import label
from bestofn.scorers.prm_files import score_items
from bestofn.text.files import read_items
from bestofn.text.records import Item

BON_METHODS = ("majority", "prm_min", "weighted_min", "confidence_weighted",
               "confidence_filtered", "oracle")


def bon_table(verifiers: dict[str, Any], solutions_path: str) -> list[str]:
    items = read_items(solutions_path)
    variants: dict[str, list[Item]] = {"policy only": items}
    for name, scorer in verifiers.items():
        variants[name] = score_items(items, scorer, use_docs=False, progress=False)
    rows = ["| verifier | method | accuracy | 95% CI |", "|---|---|---:|---|"]
    for name, its in variants.items():
        ci = accuracy_intervals(its)
        acc = evaluate(its).accuracy
        for m in BON_METHODS:
            if m in acc and (name == "policy only") == (m not in ("prm_min", "weighted_min")):
                e = ci[m]
                rows.append(f"| {name} | {label(m)} | {100 * acc[m]:.1f}% | "
                            f"[{100 * e.lo:.1f}, {100 * e.hi:.1f}] |")
    return rows
