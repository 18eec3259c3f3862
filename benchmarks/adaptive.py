"""Adaptive test-time compute on real stored samples: accuracy vs samples drawn, per rule.

Data sets (see benchmarks/data/README.md):
- ThoughtSource (Ott et al. 2023, MIT): real MedQA chains of thought of GPT-4, GPT-3.5,
  Cohere, Flan-T5 and davinci models (`tests/data/thoughtsource_medqa_cots.json.gz`, the
  published file byte for byte). Each CoT is one sample; its answer is extracted by
  `bestofn.text.answers.extract_answer` from the CoT and the model's answer text. Questions with at
  least `--min-cots` CoTs. The file groups CoTs by model, not by sampling order, so the
  replay uses `--draws` seeded permutations. No PRM scores: vote-based rules only.
- SmolLM2-135M-Instruct samples generated once with `bestofn sample` and scored with the
  embedded PRM (`bestofn score --prm smollm2`), replayed in sampling order and in permutations.

For each data set and rule: accuracy (majority, PRM-weighted vote (min) where scored) with 95%
bootstrap intervals over questions, mean samples and tokens per question, the curve over the
rule's parameter, fixed N for N = 1, 2, 4, …, and the samples saved against the smallest fixed
N that reaches the rule's accuracy. "Distinguishable" is a paired bootstrap over questions of
(rule - fixed N_max): its 95% interval excludes 0.

    python benchmarks/adaptive.py [--draws 20] [--write]     (--write: benchmarks/RESULTS.md)
"""

from __future__ import annotations

import argparse
import gzip
import json
import string
import sys
from pathlib import Path

import numpy as np

from bestofn.adaptive import parse_rule
from bestofn.evaluation.adaptive_replay import AdaptiveResult, Replayer, fixed_curve, rule_curve
from bestofn.evaluation.curves import curve_ns
from bestofn.evaluation.intervals import bootstrap_interval
from bestofn.text.answers import extract_answer
from bestofn.text.files import read_items
from bestofn.text.records import Item, Question, Solution

ROOT = Path(__file__).resolve().parent.parent
THOUGHTSOURCE = ROOT / "tests" / "data" / "thoughtsource_medqa_cots.json.gz"
SMOLLM2 = ROOT / "benchmarks" / "data" / "smollm2_medqa40_n16_prm.jsonl"
GRIDS = {"beta": ("eps", [0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001]),
         "dirichlet": ("eps", [0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001]),
         "esc": ("w", [2, 3, 4, 5, 6, 8]),
         "prm": ("eps", [0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.0])}
B = 2000


def thoughtsource_items(path: Path = THOUGHTSOURCE, min_cots: int = 5) -> list[Item]:
    """One Item per question with >= `min_cots` CoTs; each CoT (+ its answer text) a sample."""
    items = []
    for q in json.loads(gzip.decompress(path.read_bytes())):
        if len(q["generated_cot"]) < min_cots:
            continue
        options = dict(zip(string.ascii_uppercase, q["choices"], strict=False))
        gold = q["answer"][0].strip()
        gold = gold.upper() if gold.upper() in options else next(
            k for k, v in options.items() if v.strip() == gold)
        sols = []
        for cot in q["generated_cot"]:
            text = cot["cot"] + "\n" + (cot["answers"][0]["answer"] if cot["answers"] else "")
            sols.append(Solution(text=text, marked="", answer=extract_answer(text, options),
                                 meta={"model": cot["model"]}))
        items.append(Item(Question(id=str(q["id"]), stem=q["question"], options=options,
                                   answer=gold), sols))
    return items


def paired(a: AdaptiveResult, b: AdaptiveResult, method: str) -> tuple[float, float, float]:
    """Mean and 95% bootstrap interval of the per-question difference a - b."""
    d = a.correct[:, a.methods.index(method)] - b.correct[:, b.methods.index(method)]
    lo, hi = bootstrap_interval(d, b=B, seed=0)
    return float(d.mean()), float(lo), float(hi)


def fmt_acc(r: AdaptiveResult, m: str) -> str:
    e = r.intervals(b=B)[m]
    return f"{100 * e.mean:.1f} [{100 * e.lo:.1f}, {100 * e.hi:.1f}]"


def equal_n(fixed: list, acc: float, method: str) -> AdaptiveResult | None:
    """The smallest fixed N whose accuracy reaches `acc` (None: none does)."""
    for p in fixed:
        if p.result.accuracy[method] >= acc - 1e-12:
            return p.result
    return None


def run_dataset(name: str, items: list[Item], draws: int | None, lines: list[str]) -> None:
    rep = Replayer(items, draws=draws)
    n_max = rep.n_solutions
    methods = ["majority"] + (["weighted_min", "prm_min"] if rep.has_scores else [])
    fixed = fixed_curve(rep, curve_ns(n_max))
    full = fixed[-1].result
    single = float(np.mean([np.mean([s.answer == it.question.answer for s in it.solutions])
                            for it in rep.items]))
    agree = float(np.mean([max(sum(s.answer == a for s in it.solutions)
                               for a in {s.answer for s in it.solutions}) / len(it.solutions)
                           for it in rep.items]))
    order = "file (sampling) order" if draws is None else f"{draws} seeded permutations"
    lines += [f"### {name}", "",
              f"{len(rep.items)} questions, up to {n_max} samples each (mean "
              f"{np.mean([len(it.solutions) for it in rep.items]):.1f}); replay in {order}. "
              f"Mean single-sample accuracy {100 * single:.1f}%, mean share of the most "
              f"frequent answer {100 * agree:.1f}%.", "",
              "| rule | " + " | ".join(methods) + " | mean samples | % of fixed N_max | "
              "tokens | fixed N at equal majority acc. | samples saved vs it |",
              "|---|" + "---|" * (len(methods) + 5)]

    def row(label: str, r: AdaptiveResult) -> str:
        eq = equal_n(fixed, r.accuracy["majority"], "majority")
        n_eq = None if eq is None else eq.n_max
        saved = "-" if eq is None else f"{100 * (1 - r.mean_samples / eq.mean_samples):.0f}%"
        toks = "-" if r.mean_tokens is None else f"{r.mean_tokens:.0f}"
        return (f"| {label} | " + " | ".join(fmt_acc(r, m) for m in methods)
                + f" | {r.mean_samples:.2f} | {100 * r.mean_samples / full.mean_samples:.0f}% |"
                  f" {toks} | {n_eq if n_eq is not None else '> N_max'} | {saved} |")

    lines.append(row(f"fixed N = {n_max}", full))
    defaults = {}
    for rule_name in GRIDS:
        rule = parse_rule(rule_name)
        if "scores" in rule.needs and not rep.has_scores:
            continue
        defaults[rule_name] = rep.run(rule)
        lines.append(row(f"{rule_name} (defaults)", defaults[rule_name]))
    lines += ["", "Curves (accuracy % majority"
              + (" / weighted_min" if rep.has_scores else "") + " at mean samples):", ""]
    lines.append("- fixed N: " + ", ".join(
        f"N={int(p.value)}: " + " / ".join(f"{100 * p.result.accuracy[m]:.1f}"
                                            for m in methods[:2]) for p in fixed))
    for rule_name, (param, values) in GRIDS.items():
        if rule_name not in defaults:
            continue
        pts = rule_curve(rep, parse_rule(rule_name), param, values)
        lines.append(f"- {rule_name} over {param}: " + ", ".join(
            f"{param}={p.value:g}: {p.result.mean_samples:.2f} -> " + " / ".join(
                f"{100 * p.result.accuracy[m]:.1f}" for m in methods[:2]) for p in pts))
    lines += ["", "Paired differences against fixed N_max (points, 95% bootstrap interval; "
              "distinguishable when it excludes 0):", ""]
    for rule_name, r in defaults.items():
        for m in methods[:2]:
            d, lo, hi = paired(r, full, m)
            verdict = "distinguishable" if lo > 0 or hi < 0 else "not distinguishable"
            lines.append(f"- {rule_name} {m}: {100 * d:+.1f} [{100 * lo:+.1f}, "
                         f"{100 * hi:+.1f}] ({verdict})")
    lines.append("")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=20, help="seeded permutations per question")
    ap.add_argument("--min-cots", type=int, default=9)
    ap.add_argument("--smollm2", default=str(SMOLLM2), help="scored SmolLM2 samples JSONL")
    ap.add_argument("--write", action="store_true", help="append the section to RESULTS.md")
    a = ap.parse_args(argv)
    lines = ["## Adaptive compute: stopping rules on stored samples", "",
             f"`python benchmarks/adaptive.py --draws {a.draws}{' --write' if a.write else ''}`"
             " (bootstrap B = 2000 over questions; rules at their defaults: beta and "
             "dirichlet eps=0.05, esc w=5, prm eps=0.05, max_n=64).", ""]
    run_dataset("ThoughtSource MedQA CoTs (GPT-4/3.5, Cohere, Flan-T5, davinci)",
                thoughtsource_items(min_cots=a.min_cots), a.draws, lines)
    if Path(a.smollm2).exists():
        items = list(read_items(Path(a.smollm2)))
        run_dataset("SmolLM2-135M-Instruct on MedQA, PRM-scored (file order)", items, None,
                    lines)
        run_dataset("SmolLM2-135M-Instruct on MedQA, PRM-scored (permutations)", items,
                    a.draws, lines)
    else:
        lines.append(f"(no SmolLM2 samples at {a.smollm2})")
    text = "\n".join(lines)
    print(text)
    if a.write:
        path = ROOT / "benchmarks" / "RESULTS.md"
        path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + text + "\n",
                        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
