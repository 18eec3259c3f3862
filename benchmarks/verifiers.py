"""Every verifier available here, side by side: step-level metrics on labelled steps and
best-of-N accuracy on the same sampled solutions.

Verifiers (each optional, `--skip NAME`):
- `prm`: a PRM (`--prm`, default the embedded SmolLM2 through prm-hf: not trained as a PRM);
- `judge`: a generative judge (`--judge`, default SmolLM2 through prm-judge on vLLM, forced
  mode since it does not keep the reply format);
- `confidence`: the policy's own DeepConf confidence (solutions sampled with `--logprobs`);
  it has no step scores, so it appears in the best-of-N table only.
Step level: `bestofn verifier-eval`'s metrics on `--steps` (default: the bundled ProcessBench-
format sample, constructed from ThoughtSource; see bestofn/data/README.md). Best-of-N: the
`--solutions` file (a `bestofn run --logprobs K` results.jsonl) scored by each verifier, then
`bestofn evaluate`'s accuracies with bootstrap intervals.

    python benchmarks/verifiers.py --solutions runs/x/results.jsonl [--limit-steps 30]

With the embedded models every number is weak; the point is the one command for a user with
real models (`--prm`, `--judge`, `--judge-base-url`).
"""

from __future__ import annotations

import argparse
import time
from importlib import resources
from typing import Any

from bestofn.bootstrap import accuracy_intervals
from bestofn.evaluate import evaluate
from bestofn.files import read_items
from bestofn.labels import read_labelled
from bestofn.records import Item
from bestofn.score import score_items
from bestofn.scorers import make_scorer
from bestofn.select import label
from bestofn.verifier_eval import evaluate_steps, score_labelled

BON_METHODS = ("majority", "prm_min", "weighted_min", "confidence_weighted",
               "confidence_filtered", "oracle")


def build_verifiers(a: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "prm" not in a.skip:
        out["prm"] = make_scorer("prm-hf", model=a.prm, device="cpu", use_docs=False)
    if "judge" not in a.skip:
        out["judge"] = make_scorer("prm-judge", model=a.judge, judge_mode=a.judge_mode,
                                   judge_base_url=a.judge_base_url, max_len=2048,
                                   use_docs=False)
    return out


def step_table(verifiers: dict[str, Any], steps_path: str, limit: int | None) -> list[str]:
    sols = read_labelled(steps_path)[:limit]
    rows = ["| verifier | solutions | F1 @0.5 | acc err / correct | best thr (F1) | step AUROC "
            "[95% CI] | Brier | ECE | outcome AUROC | s |", "|---|---:|---:|---:|---:|---|---:|"
            "---:|---:|---:|"]
    for name, scorer in verifiers.items():
        t = time.perf_counter()
        ev = evaluate_steps(score_labelled(sols, scorer, progress=False), b=1000)
        v, ci = ev.values, ev.intervals.get("step_auroc")

        def f(x: float | None, d: int = 3) -> str:
            return "n/a" if x is None else f"{x:.{d}f}"

        rows.append(f"| {name} | {ev.n} ({ev.n_unscored} unscored) | "
                    f"{f(v['processbench_f1'], 1)} | {f(v['acc_erroneous'], 1)} / "
                    f"{f(v['acc_correct'], 1)} | {f(ev.best_threshold)} ({f(ev.best_f1, 1)}) | "
                    f"{f(v['step_auroc'])} [{f(ci[0]) if ci else '-'}, "
                    f"{f(ci[1]) if ci else '-'}] | {f(v['brier'])} | {f(v['ece'])} | "
                    f"{f(v['outcome_auroc'])} | {time.perf_counter() - t:.0f} |")
    return rows


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_steps = resources.files("bestofn") / "data" / "steps" / "processbench_sample.jsonl"
    ap.add_argument("--steps", default=str(default_steps))
    ap.add_argument("--solutions", default=None, help="a results.jsonl sampled with --logprobs")
    ap.add_argument("--prm", default="smollm2")
    ap.add_argument("--judge", default="smollm2")
    ap.add_argument("--judge-mode", default="forced", choices=("generate", "forced"))
    ap.add_argument("--judge-base-url", default=None)
    ap.add_argument("--skip", action="append", default=[], choices=("prm", "judge"))
    ap.add_argument("--limit-steps", type=int, default=None)
    a = ap.parse_args()
    verifiers = build_verifiers(a)
    print(f"## Step level ({a.steps})\n")
    print("\n".join(step_table(verifiers, a.steps, a.limit_steps)))
    if a.solutions:
        print(f"\n## Best-of-N ({a.solutions})\n")
        print("\n".join(bon_table(verifiers, a.solutions)))


if __name__ == "__main__":
    main()
