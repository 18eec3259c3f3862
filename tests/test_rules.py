"""`--rules medprm` against a direct implementation of the published Med-PRM reporting loops,
on generated Med-PRM files with ties, None/"" answers, -Infinity scores and labels that disagree
with the gold letter; and the benchmark columns with their macro averages."""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict

import pytest

from bestofn.cli import main
from bestofn.evaluation.columns import COLUMNS
from bestofn.evaluation.evaluate import evaluate
from bestofn.evaluation.select import MEDPRM
from bestofn.text.files import read_items

NEG_INF = float("-inf")
SOURCES = ["med_qa_4op", "med_qa", "medmc_qa", "mmlu_anatomy", "mmlu_college_biology", "ddxplus",
           "nejm", "osce", "pubmed_qa", "other_set"]


def published_best_of_n(sols, key):
    valid = [s for s in sols if s.get(key, NEG_INF) != NEG_INF]
    if not valid:
        return False
    return max(valid, key=lambda s: s[key]).get("score", 0) == 1


def published_sc(sols):
    top, _ = Counter(s["answer"] for s in sols).most_common(1)[0]
    return any(s.get("score", 0) == 1 for s in sols if s["answer"] == top)


def published_hybrid(sols, key):
    sums: dict = defaultdict(float)
    for s in sols:
        if s.get(key, NEG_INF) != NEG_INF:
            sums[s["answer"]] += s[key]
    if not sums:
        return False
    top = max(sums, key=sums.get)
    return any(s.get("score", 0) == 1 for s in sols if s["answer"] == top)


def make_file(rng: random.Random, n_questions: int) -> list[dict]:
    """Med-PRM scored records: step scores from a few values (ties), some solutions unscored
    (-Infinity), None and "" answers, labels drawn independently of the gold letter."""
    records = []
    for i in range(n_questions):
        gold = rng.choice("ABCD")
        sols = []
        for _ in range(rng.randint(1, 9)):
            answer = rng.choice(["A", "B", "C", "D", "A", None, ""])
            if rng.random() < 0.15:
                steps, lo, fin = [], NEG_INF, NEG_INF
            else:
                steps = [rng.choice([0.25, 0.5, 0.75, 1.0]) for _ in range(rng.randint(1, 3))]
                lo, fin = min(steps), steps[-1]
            sols.append({"solution": f"Step 1: think. ки\nThe answer is {answer}. ки",
                         "prm_processed_solution": "Step 1: think. ки\nThe answer is x. ки",
                         "answer": answer, "score": int(rng.random() < 0.4),
                         "PRM_min_score": lo, "PRM_score": fin, "PRM_score_list": steps})
        records.append({"question_id": f"q{i}", "data_source": rng.choice(SOURCES),
                        "question": f"Question {i}?\n(A) a\n(B) b\n(C) c\n(D) d",
                        "correct_answer": gold, "solutions": sols})
    return records


@pytest.mark.parametrize("seed", range(4))
def test_medprm_rules_equal_the_published_loops(tmp_path, seed):
    records = make_file(random.Random(seed), 120)
    path = tmp_path / "scored.json"
    path.write_text(json.dumps(records))  # writes -Infinity, as the published scorer does
    ev = evaluate(read_items(path), rules=MEDPRM)
    n = len(records)
    want = {"prm_min": sum(published_best_of_n(r["solutions"], "PRM_min_score") for r in records),
            "prm_final": sum(published_best_of_n(r["solutions"], "PRM_score") for r in records),
            "majority": sum(published_sc(r["solutions"]) for r in records),
            "weighted_min": sum(published_hybrid(r["solutions"], "PRM_min_score")
                                for r in records),
            "weighted_final": sum(published_hybrid(r["solutions"], "PRM_score")
                                  for r in records)}
    for method, correct in want.items():
        assert ev.accuracy[method] * n == pytest.approx(correct), method
    strict = evaluate(read_items(path))
    assert any(strict.accuracy[m] != ev.accuracy[m] for m in want), "the rules should differ"


def test_medprm_without_labels_grades_by_gold_and_says_so(tmp_path, capsys):
    records = make_file(random.Random(9), 30)
    for r in records:
        for s in r["solutions"]:
            del s["score"]
    path = tmp_path / "nolabels.json"
    path.write_text(json.dumps(records))
    assert main(["evaluate", "--input", str(path), "--rules", "medprm", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["n_unlabelled"] == sum(len(r["solutions"]) for r in records)
    items = read_items(path)
    direct = 0
    for it, r in zip(items, records, strict=True):
        valid = [s for s in r["solutions"] if s["PRM_min_score"] != NEG_INF]
        if valid:
            best = max(valid, key=lambda s: s["PRM_min_score"])
            direct += best["answer"] == it.question.answer
    assert got["prm_min"] * len(records) == pytest.approx(direct)


def test_benchmark_columns_and_macro_averages(tmp_path):
    records = make_file(random.Random(3), 200)
    path = tmp_path / "scored.json"
    path.write_text(json.dumps(records))
    assert main(["report", str(path), "--rules", "medprm", "--bootstrap", "20", "--draws", "2",
                 "--no-plot", "--out", str(tmp_path / "rep")]) == 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["rules"] == "medprm"
    table = rep["benchmarks"]
    by_col: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        for col, names in COLUMNS.items():
            if r["data_source"] in names:
                by_col[col].append(r)
    assert set(by_col) <= set(table) and "other_set" not in json.dumps(table)
    for col, recs in by_col.items():
        correct = sum(published_best_of_n(r["solutions"], "PRM_min_score") for r in recs)
        assert table[col]["n_questions"] == len(recs)
        assert table[col]["correct"]["prm_min"] == correct
    present = [c for c in COLUMNS if c in by_col]
    mean = sum(table[c]["accuracy"]["majority"] for c in present) / len(present)
    assert math.isclose(table["Average"]["accuracy"]["majority"], mean)
    medqa = [table[c]["accuracy"]["prm_min"] for c in ("MedQA-4", "MedQA-5")]
    assert math.isclose(table["MedQA average"]["accuracy"]["prm_min"], sum(medqa) / 2)
    assert "Benchmark columns" in (tmp_path / "rep" / "report.md").read_text()
