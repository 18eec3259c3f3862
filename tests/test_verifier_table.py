"""Several inputs in one `verifier-eval` table: the threshold calibrated on one input and applied
to every input, against a plain reference loop; the unweighted mean of the files' F1; the JSON
shape; percent on one-class files; the bundled ProcessBench samples."""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

import pytest

from bestofn.cli import main
from bestofn.evaluation.labels import read_labelled
from bestofn.evaluation.verifier_table import unweighted_mean

SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")


def ref_f1(recs: list[dict], t: float) -> float | None:
    """ProcessBench's scripts: predicted first error = first score below t; F1 of the two
    accuracies in percent; None with an empty class."""
    err, cor = [], []
    for r in recs:
        pred = -1
        for i, s in enumerate(r["PRM_score_list"]):
            if s < t:
                pred = i
                break
        (cor if r["label"] == -1 else err).append(pred == r["label"])
    if not err or not cor:
        return None
    a1, a2 = 100 * sum(err) / len(err), 100 * sum(cor) / len(cor)
    return 0.0 if a1 + a2 == 0 else 2 * a1 * a2 / (a1 + a2)


def ref_calibrate(recs: list[dict]) -> float:
    """Every distinct score and one value above the largest, the first of the best F1."""
    scores = sorted({s for r in recs for s in r["PRM_score_list"]})
    best_t, best = None, -1.0
    for t in [*scores, scores[-1] + 1e-9]:
        f = ref_f1(recs, t)
        if f is not None and f > best:
            best_t, best = t, f
    return best_t  # type: ignore[return-value]


def gen(rng: random.Random, n: int, shift: float) -> list[dict]:
    out = []
    for k in range(n):
        m = rng.randint(1, 7)
        label = -1 if rng.random() < 0.45 else rng.randrange(m)
        scores = [round(min(1.0, max(0.0, rng.random() * (0.5 if i == label else 1.0)
                                     + shift)), 2) for i in range(m)]
        out.append({"id": f"x{k}", "problem": "p", "steps": [f"s{i}" for i in range(m)],
                    "label": label, "PRM_score_list": scores})
    return out


def write(path: Path, recs: list[dict]) -> Path:
    path.write_text(json.dumps(recs))
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["verifier-eval", *args, "--bootstrap", "0", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, tuple[Path, list[dict]]]:
    rng = random.Random(2024)
    sizes = {"gsm8k": 80, "math": 150, "olympiadbench": 60, "omnimath": 200}
    shifts = {"gsm8k": 0.0, "math": 0.1, "olympiadbench": -0.1, "omnimath": 0.2}
    d = tmp_path / "pb"
    d.mkdir()
    return {k: (write(d / f"{k}.json", recs), recs)
            for k, n in sizes.items() for recs in [gen(rng, n, shifts[k])]}


def test_calibration_equals_a_reference_loop(capsys, files) -> None:
    args = [a for p, _ in files.values() for a in ("--input", str(p))]
    got = run_json(capsys, *args, "--calibrate-on", "gsm8k")
    t = ref_calibrate(files["gsm8k"][1])
    assert got["calibrated_threshold"] == pytest.approx(t)
    assert got["calibrated_on"] == str(files["gsm8k"][0])
    assert [r["input"] for r in got["inputs"]] == [str(p) for p, _ in files.values()]
    for row, (_, recs) in zip(got["inputs"], files.values(), strict=True):
        assert row["processbench_f1"] == pytest.approx(ref_f1(recs, 0.5), abs=1e-9)
        assert row["processbench_f1_calibrated"] == pytest.approx(ref_f1(recs, t), abs=1e-9)
    # the calibrated threshold is the best on GSM8K, not necessarily on the others
    assert got["inputs"][0]["processbench_f1_calibrated"] == pytest.approx(
        max(ref_f1(files["gsm8k"][1], c) for c in (0.1, 0.3, 0.5, 0.7, t)))


def test_unweighted_mean_and_json_shape(capsys, files) -> None:
    args = [a for p, _ in files.values() for a in ("--input", str(p))]
    got = run_json(capsys, *args, "--calibrate-on", "gsm8k")
    assert set(got) == {"inputs", "mean_f1", "mean_f1_calibrated", "calibrated_threshold",
                        "calibrated_on"}
    f1s = [ref_f1(recs, 0.5) for _, recs in files.values()]
    assert got["mean_f1"] == pytest.approx(sum(f1s) / 4, abs=1e-9)
    t = got["calibrated_threshold"]
    cal = [ref_f1(recs, t) for _, recs in files.values()]
    assert got["mean_f1_calibrated"] == pytest.approx(sum(cal) / 4, abs=1e-9)
    # unweighted: not the F1 of all solutions pooled (the files differ in size)
    pooled = ref_f1([r for _, recs in files.values() for r in recs], 0.5)
    assert abs(got["mean_f1"] - pooled) > 0.1
    # a folder gives the same rows, in name order
    folder = run_json(capsys, "--input", str(files["gsm8k"][0].parent), "--calibrate-on",
                      "gsm8k")
    assert folder["mean_f1"] == got["mean_f1"]
    assert [Path(r["input"]).stem for r in folder["inputs"]] == sorted(files)
    # one input keeps the single-file keys
    one = run_json(capsys, "--input", str(files["math"][0]))
    assert "inputs" not in one and one["processbench_f1"] == got["inputs"][1]["processbench_f1"]


def test_calibrate_on_a_file_outside_the_inputs(capsys, files, tmp_path) -> None:
    got = run_json(capsys, "--input", str(files["math"][0]), "--calibrate-on",
                   str(files["gsm8k"][0]))
    t = ref_calibrate(files["gsm8k"][1])
    assert got["calibrated_threshold"] == pytest.approx(t)
    assert got["processbench_f1_calibrated"] == pytest.approx(ref_f1(files["math"][1], t))
    assert main(["verifier-eval", "--input", str(files["math"][0]), "--calibrate-on",
                 "nothing"]) == 2
    assert "--calibrate-on 'nothing'" in capsys.readouterr().err


def test_mean_is_undefined_with_a_one_class_file(capsys, tmp_path, files) -> None:
    recs = [r for r in files["gsm8k"][1] if r["label"] != -1]
    one = write(tmp_path / "errors_only.json", recs)
    got = run_json(capsys, "--input", str(one), "--input", str(files["math"][0]))
    assert got["inputs"][0]["processbench_f1"] is None and got["mean_f1"] is None
    assert main(["verifier-eval", "--input", str(one), "--input", str(files["math"][0]),
                 "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert "| mean of 2 (unweighted) | | | | n/a |" in text
    assert unweighted_mean([10.0, 20.0, 60.0]) == 30.0 and unweighted_mean([]) is None


def test_percent_on_one_class_files(capsys, tmp_path, files) -> None:
    """Only erroneous (or only correct) solutions: the accuracy is still in percent."""
    recs = files["gsm8k"][1]
    for keep, key, other in ((lambda r: r["label"] != -1, "acc_erroneous", "acc_correct"),
                             (lambda r: r["label"] == -1, "acc_correct", "acc_erroneous")):
        sub = [r for r in recs if keep(r)]
        f = write(tmp_path / f"{key}.json", sub)
        want = 100 * sum(ref_f1_match(r, 0.5) for r in sub) / len(sub)
        got = run_json(capsys, "--input", str(f))
        assert got[key] == pytest.approx(want) and want > 1
        assert got[other] is None and got["processbench_f1"] is None
        assert main(["verifier-eval", "--input", str(f), "--bootstrap", "50"]) == 0
        text = capsys.readouterr().out
        assert f"{want:.1f}" in text and "F1                     n/a" in text
        boot = run_json(capsys, "--input", str(f))  # no intervals (b = 0) but same values
        assert boot[key] == got[key]


def ref_f1_match(r: dict, t: float) -> bool:
    pred = next((i for i, s in enumerate(r["PRM_score_list"]) if s < t), -1)
    return pred == r["label"]


@pytest.mark.parametrize("name", SUBSETS)
def test_bundled_processbench_samples(name: str) -> None:
    path = Path(str(resources.files("bestofn") / "data" / "processbench" / f"{name}.json"))
    raw = json.loads(path.read_text(encoding="utf-8"))
    sols = read_labelled(path)
    assert len(sols) == len(raw) == 100
    assert sum(s.first_error != -1 for s in sols) == sum(r["label"] != -1 for r in raw)
    assert sum(s.first_error == -1 for s in sols) == sum(r["label"] == -1 for r in raw)
    assert [s.first_error for s in sols] == [r["label"] for r in raw]
    assert all(s.label_source == "label" and s.steps == r["steps"]
               for s, r in zip(sols, raw, strict=True))
    readme = (path.parent.parent / "README.md").read_text()
    n_err = sum(r["label"] != -1 for r in raw)
    assert f"`processbench/{name}.json` | 100 of " in readme
    assert f"({n_err} / {100 - n_err})" in readme
    assert "ProcessBench, Zheng et al. 2024, Apache-2.0." in readme


def test_bundled_samples_are_the_published_records() -> None:
    """Each sampled record is byte-for-byte a record of the full file, where it is here."""
    full = Path(__file__).resolve().parents[2] / "shared" / "data" / "processbench"
    if not full.is_dir():
        pytest.skip("the full ProcessBench files are not on this machine")
    for name in SUBSETS:
        published = {r["id"]: r for r in json.loads((full / f"{name}.json").read_text())}
        sample = json.loads((Path(str(resources.files("bestofn"))) / "data" / "processbench"
                             / f"{name}.json").read_text())
        assert all(published[r["id"]] == r for r in sample)
