"""`bestofn verifier-eval`: step-level metrics of a verifier on labelled steps (ProcessBench
F1, step AUROC, Brier, ECE, outcome AUROC), from scores in the file or from a PRM run here."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .options import add_prm_options, prm_options


def register(sub: Any) -> dict[str, Any]:
    v = sub.add_parser("verifier-eval", help="step-level metrics of a verifier on labelled steps")
    v.add_argument("--input", required=True,
                   help="labelled steps: ProcessBench (steps, label) or Med-PRM (steps, "
                        "prm_hard_label[, prm_soft_label]) JSONL/JSON, or `bestofn score` output")
    v.add_argument("--prm", default=None, metavar="MODEL",
                   help="score the steps with this PRM (folder, Hugging Face id or 'smollm2'); "
                        "default: read PRM_score_list from the file")
    v.add_argument("--backend", default="prm-hf", help="scorer backend (default prm-hf)")
    v.add_argument("--threshold", type=float, default=0.5,
                   help="a step is predicted wrong when its score is below this (default 0.5)")
    v.add_argument("--aggregation", default="min", choices=("min", "final", "mean", "prod"),
                   help="solution score for the outcome AUROC (default min)")
    v.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                   help="bootstrap resamples for the intervals (0: none)")
    v.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draw")
    v.add_argument("--to-labelled", default=None, metavar="OUT",
                   help="write the records (with their scores) as flat labelled JSONL and exit "
                        "without metrics: converts `bestofn score` output")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    add_prm_options(v)
    return {"verifier-eval": cmd_verifier_eval}


def cmd_verifier_eval(a: argparse.Namespace) -> int:
    from ..labels import read_labelled, write_labelled
    from ..verifier_eval import evaluate_steps, format_report, score_labelled

    if not 0 <= a.threshold <= 1:
        raise ValueError(f"--threshold must be in [0, 1], got {a.threshold}")
    sols = read_labelled(a.input)
    if a.prm:
        from ..scorers import make_scorer

        scorer = make_scorer(a.backend, model=a.prm, **prm_options(a).scorer_kwargs(False))
        sols = score_labelled(sols, scorer, progress=not a.json)
    if a.to_labelled:
        write_labelled(a.to_labelled, sols)
        print(f"wrote {len(sols)} labelled solutions -> {a.to_labelled}")
        return 0
    ev = evaluate_steps(sols, threshold=a.threshold, aggregation=a.aggregation,
                        b=a.bootstrap, seed=a.seed)
    print(json.dumps(ev.to_json()) if a.json else format_report(ev))
    return 0
