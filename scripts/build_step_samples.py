"""Build the bundled labelled-step samples (`bestofn/data/steps/`) from ThoughtSource.

No public data set bundled here labels medical reasoning steps, so the samples are constructed,
and their labels are true by construction rather than by annotation:
- `correct`: a GPT-4 chain of thought that ThoughtSource marks correct, cut into steps at blank
  lines, every step labelled right (label -1). That the final answer is right does not prove
  every step is: this is the construction's assumption.
- `wrong_conclusion`: the same steps with the last one replaced by a conclusion naming a wrong
  option; the first (and only) wrong step is the last.
- `off_topic`: the same steps with step k (not the first, not the last) replaced by a step of
  another question's chain of thought; the first wrong step is k. In the Med-PRM format the
  later (original) steps stay labelled 1, as Monte-Carlo labels would leave them.
Run: python scripts/build_step_samples.py (writes the two files; deterministic).
"""

from __future__ import annotations

import ast
import gzip
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "data" / "thoughtsource_medqa_cots.json.gz"
OUT = ROOT / "bestofn" / "data" / "steps"
QUESTIONS = 20


def steps_of(cot: str) -> list[str]:
    return [p.strip() for p in cot.split("\n\n") if p.strip()]


def gpt4_correct(q: dict) -> list[str] | None:
    for g in q["generated_cot"]:
        model = g.get("model")  # a dict's repr, e.g. "{'name': 'gpt-4', ...}"
        name = ast.literal_eval(model).get("name") if isinstance(model, str) else None
        if name == "gpt-4" and g["answers"] and g["answers"][0]["correct_answer"]:
            steps = steps_of(g["cot"])
            if 4 <= len(steps) <= 10:
                return steps
    return None


def problem_of(q: dict) -> str:
    opts = "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(q["choices"]))
    return f"{q['question']}\n\n{opts}"


def build() -> tuple[list[dict], list[dict]]:
    with gzip.open(SOURCE, "rt", encoding="utf-8") as f:
        data = json.load(f)
    rng = random.Random(0)
    chosen = [(q, s) for q in data if (s := gpt4_correct(q))][:QUESTIONS + 1]
    pb, mp = [], []
    for j, (q, steps) in enumerate(chosen[:QUESTIONS]):
        n = len(steps)
        wrong = [i for i, c in enumerate(q["choices"]) if c not in q["answer"]]
        w = rng.choice(wrong)
        concl = f"Therefore, the answer is {chr(65 + w)}) {q['choices'][w]}."
        other = chosen[j + 1][1]
        k = rng.randrange(1, n - 1)
        variants = [("correct", steps, -1, [1] * n),
                    ("wrong_conclusion", [*steps[:-1], concl], n - 1, [1] * (n - 1) + [0]),
                    ("off_topic", [*steps[:k], other[min(k, len(other) - 1)], *steps[k + 1:]],
                     k, [1] * k + [0] + [1] * (n - k - 1))]
        for kind, st, label, hard in variants:
            rid = f"thoughtsource-medqa-{q['id']}-{kind}"
            pb.append({"id": rid, "generator": "gpt-4", "problem": problem_of(q), "steps": st,
                       "final_answer_correct": kind != "wrong_conclusion", "label": label,
                       "construction": kind})
            mp.append({"question_id": rid, "question": problem_of(q), "steps": st,
                       "prm_hard_label": hard, "orm_label": int(kind != "wrong_conclusion"),
                       "construction": kind})
    return pb, mp


def main() -> None:
    pb, mp = build()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, rows in (("processbench_sample.jsonl", pb), ("medprm_sample.jsonl", mp)):
        (OUT / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                encoding="utf-8")
        print(f"{len(rows)} records -> {OUT / name}")


if __name__ == "__main__":
    main()
