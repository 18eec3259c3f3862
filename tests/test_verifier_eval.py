"""`bestofn verifier-eval` against straightforward references: ProcessBench's formula written as
their script writes it, pairwise AUROC, loop Brier/ECE, on generated files with known answers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from bestofn.cli import main
from bestofn.evaluation.labels import read_labelled
from bestofn.evaluation.step_metrics import (
    auroc,
    best_threshold,
    ece,
    match_interval,
    threshold_candidates,
)
from bestofn.evaluation.verifier_eval import evaluate_steps

# ---- references ------------------------------------------------------------------------


def ref_processbench(records: list[tuple[list[float], int]], t: float) -> tuple[float, ...]:
    """ProcessBench's run_eval scripts: prediction, match, acc1/acc2 in percent, F1."""
    res = []
    for scores, label in records:
        pred = -1
        for i, s in enumerate(scores):
            if s < t:
                pred = i
                break
        res.append({"label": label, "match": pred == label})
    data1 = [e for e in res if e["label"] != -1]
    data2 = [e for e in res if e["label"] == -1]
    acc1 = np.mean([e["match"] for e in data1]) * 100
    acc2 = np.mean([e["match"] for e in data2]) * 100
    f1 = 2 * acc1 * acc2 / (acc1 + acc2)
    return float(acc1), float(acc2), float(f1)


def ref_auroc(scores: list[float], labels: list[int]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return total / (len(pos) * len(neg))


def ref_ece(scores: list[float], targets: list[float], bins: int = 10) -> float:
    out = 0.0
    for b in range(bins):
        idx = [i for i, s in enumerate(scores) if min(int(s * bins), bins - 1) == b]
        if idx:
            ms = sum(scores[i] for i in idx) / len(idx)
            mt = sum(targets[i] for i in idx) / len(idx)
            out += len(idx) / len(scores) * abs(ms - mt)
    return out


# ---- generated files -------------------------------------------------------------------


def gen_records(rng: random.Random, n: int) -> list[dict]:
    """Solutions with 1-8 steps; scores on a coarse grid so that ties and exact threshold hits
    occur; the wrong step tends to score lower."""
    out = []
    for k in range(n):
        m = rng.randint(1, 8)
        label = -1 if rng.random() < 0.45 else rng.randrange(m)
        hard = [1] * m if label == -1 else [1] * label + [0] + [rng.randint(0, 1)
                                                               for _ in range(m - label - 1)]
        scores = [round(rng.random() * (0.6 if h == 0 else 1.0), 1) for h in hard]
        soft = [round(rng.random() * 0.5 + 0.5 * h, 3) for h in hard]
        out.append({"id": f"s{k}", "label": label, "hard": hard, "scores": scores,
                    "soft": soft, "steps": [f"Step {i + 1}: claim {k}.{i}" for i in range(m)]})
    return out


def write_processbench(path: Path, recs: list[dict]) -> None:
    path.write_text("".join(json.dumps(
        {"id": r["id"], "problem": f"q{r['id']}", "steps": r["steps"], "label": r["label"],
         "final_answer_correct": r["label"] == -1, "PRM_score_list": r["scores"]}) + "\n"
        for r in recs))


def write_medprm_flat(path: Path, recs: list[dict]) -> None:
    path.write_text("".join(json.dumps(
        {"question": f"q{r['id']}", "steps": r["steps"], "prm_hard_label": r["hard"],
         "prm_soft_label": r["soft"], "PRM_score_list": r["scores"]}) + "\n" for r in recs))


def write_medprm_nested(path: Path, recs: list[dict]) -> None:
    """Med-PRM's published structure, as `bestofn score` writes it back."""
    qs = []
    for j in range(0, len(recs), 4):
        sols = [{"solution": " ".join(r["steps"]),
                 "prm_processed_solution": " ".join(s + " ки" for s in r["steps"]),
                 "prm_hard_label": r["hard"], "prm_soft_label": r["soft"],
                 "orm_label": r["hard"][-1], "PRM_score_list": r["scores"],
                 "PRM_min_score": min(r["scores"])} for r in recs[j:j + 4]]
        qs.append({"question_id": f"q{j}", "question": "Q?", "solutions": sols})
    path.write_text(json.dumps(qs))


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["verifier-eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def recs() -> list[dict]:
    return gen_records(random.Random(7), 300)


# ---- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.5, 0.3, 0.7])
def test_processbench_format_matches_reference(tmp_path: Path, capsys, recs, t) -> None:
    f = tmp_path / "pb.jsonl"
    write_processbench(f, recs)
    got = run_json(capsys, "--input", str(f), "--threshold", str(t), "--bootstrap", "0")
    acc1, acc2, f1 = ref_processbench([(r["scores"], r["label"]) for r in recs], t)
    assert got["n"] == len(recs)
    assert got["acc_erroneous"] == pytest.approx(acc1, abs=1e-9)
    assert got["acc_correct"] == pytest.approx(acc2, abs=1e-9)
    assert got["processbench_f1"] == pytest.approx(f1, abs=1e-9)
    # ProcessBench labels only up to the first error
    upto = [len(r["steps"]) if r["label"] == -1 else r["label"] + 1 for r in recs]
    sc = [s for r, u in zip(recs, upto, strict=True) for s in r["scores"][:u]]
    hl = [h for r, u in zip(recs, upto, strict=True) for h in r["hard"][:u]]
    assert got["step_auroc"] == pytest.approx(ref_auroc(sc, hl), abs=1e-12)
    assert got["n_steps"] == len(sc)
    out_s = [min(r["scores"]) for r in recs]
    assert got["outcome_auroc"] == pytest.approx(
        ref_auroc(out_s, [r["label"] == -1 for r in recs]), abs=1e-12)
    assert got["calibration_target"] == "hard"


def test_medprm_formats_match_reference(tmp_path: Path, capsys, recs) -> None:
    flat, nested = tmp_path / "m.jsonl", tmp_path / "m.json"
    write_medprm_flat(flat, recs)
    write_medprm_nested(nested, recs)
    first = [next((i for i, h in enumerate(r["hard"]) if h == 0), -1) for r in recs]
    acc1, acc2, f1 = ref_processbench([(r["scores"], f) for r, f in
                                       zip(recs, first, strict=True)], 0.5)
    sc = [s for r in recs for s in r["scores"]]
    hl = [h for r in recs for h in r["hard"]]
    soft = [x for r in recs for x in r["soft"]]
    for f in (flat, nested):
        got = run_json(capsys, "--input", str(f), "--bootstrap", "0")
        assert (got["acc_erroneous"], got["acc_correct"]) == pytest.approx((acc1, acc2), abs=1e-9)
        assert got["processbench_f1"] == pytest.approx(f1, abs=1e-9)
        assert got["step_auroc"] == pytest.approx(ref_auroc(sc, hl), abs=1e-12)
        assert got["calibration_target"] == "soft"
        assert got["brier"] == pytest.approx(np.mean((np.array(sc) - soft) ** 2), abs=1e-12)
        assert got["ece"] == pytest.approx(ref_ece(sc, soft), abs=1e-12)
    # the nested file's outcome label is orm_label (the last hard label)
    assert got["outcome_auroc"] == pytest.approx(
        ref_auroc([min(r["scores"]) for r in recs], [r["hard"][-1] for r in recs]), abs=1e-12)


def test_known_answers_by_hand(tmp_path: Path, capsys) -> None:
    f = tmp_path / "k.jsonl"
    rows = [([0.9, 0.2, 0.1], 1), ([0.9, 0.8, 0.1], 1), ([0.9, 0.9], -1), ([0.4, 0.9], -1)]
    f.write_text("".join(json.dumps({"steps": ["a"] * len(s), "label": lab,
                                     "PRM_score_list": s}) + "\n" for s, lab in rows))
    got = run_json(capsys, "--input", str(f), "--bootstrap", "0")
    # erroneous: predicted 1 (match), predicted 2 (miss); correct: -1 (match), 0 (miss)
    assert got["acc_erroneous"] == 50.0 and got["acc_correct"] == 50.0
    assert got["processbench_f1"] == 50.0
    # the second and fourth cannot both match (t in (0.8, 0.9] vs t <= 0.4): the best F1 is
    # 2 * 50 * 100 / 150, first reached at t = 0.4 (0.4 itself is not below 0.4)
    assert got["best_threshold"] == 0.4 and got["best_f1"] == pytest.approx(200 / 3)


def test_best_threshold_against_a_scan(recs) -> None:
    lab = np.array([r["label"] for r in recs])
    iv = [match_interval(r["scores"], r["label"]) for r in recs]
    lo, hi = np.array([a for a, _ in iv]), np.array([b for _, b in iv])
    cands = threshold_candidates(np.array([s for r in recs for s in r["scores"]]))
    t, f1 = best_threshold(lo, hi, lab != -1, cands)
    scan = [(ref_processbench([(r["scores"], r["label"]) for r in recs], c)[2], -c)
            for c in cands]
    best = max(scan)
    assert f1 == pytest.approx(best[0], abs=1e-9) and t == pytest.approx(-best[1])
    # nothing between the candidates does better
    for c in np.linspace(0, 1.05, 43):
        assert ref_processbench([(r["scores"], r["label"]) for r in recs], c)[2] <= f1 + 1e-9


def test_auroc_weighted_equals_repeated_and_pairwise() -> None:
    rng = np.random.default_rng(3)
    s = rng.integers(0, 6, 80) / 5
    y = rng.integers(0, 2, 80)
    w = rng.integers(0, 4, 80)
    assert auroc(s, y) == pytest.approx(ref_auroc(list(s), list(y)), abs=1e-12)
    rep_s, rep_y = np.repeat(s, w), np.repeat(y, w)
    assert auroc(s, y, w) == pytest.approx(ref_auroc(list(rep_s), list(rep_y)), abs=1e-12)
    assert auroc(s, np.ones(80)) is None
    assert ece(s, y.astype(float), w) == pytest.approx(ref_ece(list(rep_s), list(rep_y)))


def test_bootstrap_equals_resampling_records(tmp_path: Path, recs) -> None:
    """The weighted bootstrap is the same as evaluating the drawn records themselves."""
    from bestofn.evaluation.intervals import draws

    f = tmp_path / "pb.jsonl"
    write_processbench(f, recs[:60])
    sols = read_labelled(f)
    ev = evaluate_steps(sols, b=50, seed=5)
    f1s, aucs = [], []
    for idx in draws(len(sols), b=50, seed=5):
        sub = evaluate_steps([sols[i] for i in idx], b=0)
        f1s.append(sub.values["processbench_f1"])
        aucs.append(sub.values["step_auroc"])
    lo, hi = np.percentile([x for x in f1s if x is not None], [2.5, 97.5])
    assert ev.intervals["processbench_f1"] == pytest.approx((lo, hi))
    assert ev.intervals["step_auroc"] == pytest.approx(tuple(np.percentile(aucs, [2.5, 97.5])))
    assert lo <= ev.values["processbench_f1"] <= hi


@pytest.mark.parametrize(("line", "field"), [
    ({"steps": ["a", "b"], "label": 2}, "label"),
    ({"steps": ["a", "b"], "label": "1"}, "label"),
    ({"steps": ["a", "b"], "prm_hard_label": [1]}, "prm_hard_label"),
    ({"steps": ["a", "b"], "prm_hard_label": [1, 2]}, "prm_hard_label"),
    ({"steps": ["a"], "prm_hard_label": [1], "prm_soft_label": [1.5]}, "prm_soft_label"),
    ({"steps": ["a", "b"], "label": 0, "PRM_score_list": [0.1]}, "PRM_score_list"),
    ({"steps": [], "label": -1}, "steps"),
    ({"steps": ["a"]}, "label"),
    ({"problem": "x"}, "steps"),
])
def test_bad_label_files_get_one_line_errors(tmp_path: Path, capsys, line, field) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"steps": ["a"], "label": -1, "PRM_score_list": [0.9]}) + "\n"
                 + json.dumps(line) + "\n")
    assert main(["verifier-eval", "--input", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{f}: line 2: field '{field}'" in err, err


def test_converter_from_scored_output(tmp_path: Path, capsys, recs) -> None:
    """A Med-PRM JSON as `bestofn score` writes it -> flat labelled JSONL -> same metrics;
    unscored solutions are counted and left out."""
    nested, flat = tmp_path / "scored.json", tmp_path / "flat.jsonl"
    write_medprm_nested(nested, recs[:40])
    data = json.loads(nested.read_text())
    data[0]["solutions"][0].update(PRM_score_list=[], PRM_min_score=None, PRM_reason="too long")
    nested.write_text(json.dumps(data))
    assert main(["verifier-eval", "--input", str(nested), "--to-labelled", str(flat)]) == 0
    capsys.readouterr()
    a = run_json(capsys, "--input", str(nested), "--bootstrap", "0")
    b = run_json(capsys, "--input", str(flat), "--bootstrap", "0")
    assert a["n_unscored"] == b["n_unscored"] == 1 and a["n"] == b["n"] == 39
    for k in ("acc_erroneous", "acc_correct", "processbench_f1", "step_auroc", "brier",
              "outcome_auroc"):
        assert a[k] == pytest.approx(b[k], abs=1e-12), k


def test_project_jsonl_keeps_labels_through_score_files(tmp_path: Path, capsys) -> None:
    """The project's JSONL (Item.to_dict) carries the training labels in solution meta."""
    from bestofn.text.files import read_items, write_items
    from bestofn.text.records import StepScores

    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"question_id": "1", "question": "Q?", "correct_answer": "A",
                                "solutions": [{"solution": "Step 1: x. Step 2: the answer is A",
                                               "prm_hard_label": [1, 0], "answer": "A"}]}]))
    items = read_items(src)
    items[0].prm = [StepScores((0.9, 0.2))]
    out = tmp_path / "out.jsonl"
    write_items(out, items)
    got = read_labelled(out)
    assert got[0].hard == [1, 0] and got[0].first_error == 1 and got[0].scores == [0.9, 0.2]
    assert got[0].outcome is True  # its answer equals the gold one


def test_scores_with_a_prm(tmp_path: Path, capsys, tiny_llama_single: Path) -> None:
    f = tmp_path / "pb.jsonl"
    write_processbench(f, gen_records(random.Random(1), 12))
    got = run_json(capsys, "--input", str(f), "--prm", str(tiny_llama_single),
                   "--bootstrap", "20")
    assert got["n"] + got["n_unscored"] == 12 and got["n"] > 0
    assert got["intervals"]["acc_correct"] is not None
    sols = read_labelled(f)
    from bestofn.evaluation.verifier_eval import score_labelled
    from bestofn.scorers import make_scorer

    scored = score_labelled(sols, make_scorer("prm-hf", model=str(tiny_llama_single),
                                              device="cpu"), progress=False)
    assert all(len(s.scores) == len(s.steps) and all(0 <= x <= 1 for x in s.scores)
               for s in scored if s.scores is not None)
    # scores come from the model, not from the file
    assert any(s.scores != r.scores for s, r in zip(scored, sols, strict=True))
