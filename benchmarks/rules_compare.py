"""How far the `strict` and `medprm` selection rules differ on real model outputs.

ThoughtSource (tests/data): 267 MedQA questions with 1,641 real chains of thought of six LLMs and
their recorded correctness (the `score` label under `medprm`). Prints each rule set's accuracy
with its 95% bootstrap interval and how many questions change their outcome.

    .venv/bin/python benchmarks/rules_compare.py
"""

from __future__ import annotations

import gzip
import json
import string
from pathlib import Path

import numpy as np

from bestofn.evaluation.evaluate import evaluate
from bestofn.evaluation.intervals import intervals, matrix_from_rows
from bestofn.evaluation.select import MEDPRM, STRICT
from bestofn.text.answers import extract_answer
from bestofn.text.records import Item, Question, Solution

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "thoughtsource_medqa_cots.json.gz"


def thoughtsource_items() -> list[Item]:
    items = []
    for q in json.loads(gzip.decompress(DATA.read_bytes())):
        options = dict(zip(string.ascii_uppercase, q["choices"], strict=False))
        gold = q["answer"][0].strip()
        gold = gold.upper() if gold.upper() in options else next(
            k for k, v in options.items() if v.strip() == gold)
        sols = [Solution(text=cot["cot"] + "\n" + a["answer"], marked="",
                         answer=extract_answer(cot["cot"] + "\n" + a["answer"], options),
                         meta={"score": int(bool(a["correct_answer"]))})
                for cot in q["generated_cot"] for a in cot["answers"]]
        items.append(Item(Question(id=q["id"], stem=q["question"], options=options,
                                   answer=gold), sols))
    return items


def main() -> None:
    items = thoughtsource_items()
    rows = {}
    print(f"{'rules':<8} {'method':<10} {'accuracy':>9}  95% CI")
    for rules in (STRICT, MEDPRM):
        ev = evaluate(items, rules=rules)
        methods, matrix = matrix_from_rows(ev.per_question)
        ci = intervals(methods, matrix, seed=0)
        rows[rules.name] = np.array([r["majority"] for r in ev.per_question])
        for m in methods:
            print(f"{rules.name:<8} {m:<10} {100 * ev.accuracy[m]:8.2f}%  "
                  f"[{100 * ci[m].lo:.2f}, {100 * ci[m].hi:.2f}]")
    changed = int((rows["strict"] != rows["medprm"]).sum())
    print(f"{len(items)} questions, {sum(len(it.solutions) for it in items)} outputs, "
          f"{sum(a is None for it in items for a in it.answers)} without an answer; "
          f"majority outcome differs on {changed} questions")


if __name__ == "__main__":
    main()
