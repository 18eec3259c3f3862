"""`bestofn prefs`: preference figures against a direct computation; pair-file errors."""

from __future__ import annotations

import json
import random
import statistics

import numpy as np
import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bestofn.cli import main
from bestofn.evaluation.prefs import pref_metrics, read_pairs
from bestofn.testing.orm import build_tiny_lora, build_tiny_orm
from bestofn.testing.references import reference_scores
from bestofn.testing.samples import WORDS
from bestofn.text.files import InputError


@pytest.fixture(scope="module")
def orm_dir(tmp_path_factory):
    return build_tiny_orm(tmp_path_factory.mktemp("prefs_orm"))


def pairs_file(path, rng: random.Random) -> list[dict]:
    """Every accepted shape: prompt + strings, full conversations, response-only lists, a
    message-list prompt, and one tie (chosen == rejected)."""
    def text(k: int) -> str:
        return " ".join(rng.choices(WORDS, k=k))

    recs: list[dict] = []
    for i in range(12):
        prompt = f"Question {i}: {text(8)}?"
        shape = i % 4
        if shape == 0:
            recs.append({"prompt": prompt, "chosen": text(12), "rejected": text(20)})
        elif shape == 1:
            user = {"role": "user", "content": prompt}
            recs.append({"chosen": [user, {"role": "assistant", "content": text(9)}],
                         "rejected": [user, {"role": "assistant", "content": text(15)}]})
        elif shape == 2:
            recs.append({"prompt": prompt,
                         "chosen": [{"role": "assistant", "content": text(7)}],
                         "rejected": [{"role": "assistant", "content": text(11)}]})
        else:
            recs.append({"prompt": [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": prompt}],
                         "chosen": text(10), "rejected": text(6)})
    same = text(10)
    recs.append({"prompt": "tie?", "chosen": same, "rejected": same})
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return recs


def full_conversation(rec: dict, side: str) -> list[dict]:
    prompt = rec.get("prompt")
    head = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    value = rec[side]
    if isinstance(value, str):
        return [*head, {"role": "assistant", "content": value}]
    return value if value[0]["role"] != "assistant" else [*head, *value]


def direct(chosen: list[float], rejected: list[float]) -> dict:
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {"accuracy": sum(m > 0 for m in margins) / len(margins),
            "n_ties": sum(m == 0 for m in margins),
            "mean_margin": statistics.fmean(margins),
            "margin_std": statistics.pstdev(margins),
            "score_std": statistics.pstdev(chosen + rejected)}


@pytest.mark.parametrize("adapter", [False, True])
def test_prefs_equal_a_direct_computation(tmp_path, orm_dir, capsys, adapter):
    path = tmp_path / "pairs.jsonl"
    recs = pairs_file(path, random.Random(0))
    model = AutoModelForSequenceClassification.from_pretrained(orm_dir).eval()
    args = ["prefs", "--pairs", str(path), "--orm", str(orm_dir), "--device", "cpu",
            "--batch-size", "5", "--json", "--seed", "3"]
    if adapter:
        from peft import PeftModel

        lora = build_tiny_lora(orm_dir, tmp_path / "lora")
        model = PeftModel.from_pretrained(model, lora).eval()
        args += ["--adapter", str(lora)]
    tok = AutoTokenizer.from_pretrained(orm_dir)
    chosen = reference_scores(model, tok, [full_conversation(r, "chosen") for r in recs])
    rejected = reference_scores(model, tok, [full_conversation(r, "rejected") for r in recs])
    assert main(args) == 0
    got = json.loads(capsys.readouterr().out)
    want = direct(chosen, rejected)
    assert got["n_pairs"] == len(recs) and got["n_unscored"] == 0
    assert got["n_ties"] == want["n_ties"] == 1
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)
    assert 0 < got["accuracy"] < 1, "a mixed result makes the check meaningful"
    for k in ("mean_margin", "margin_std", "score_std"):
        assert got[k] == pytest.approx(want[k], abs=1e-5)
    assert got["ci_low"] <= got["accuracy"] <= got["ci_high"]


def test_metrics_ties_unscored_and_bootstrap():
    rng = random.Random(5)
    chosen = [rng.gauss(1, 2) for _ in range(50)] + [1.0, None, 2.0]
    rejected = [rng.gauss(0, 2) for _ in range(50)] + [1.0, 0.0, None]
    res = pref_metrics(chosen, rejected, bootstrap=400, seed=7)
    correct = np.array([c is not None and r is not None and c > r
                        for c, r in zip(chosen, rejected, strict=True)], dtype=float)
    assert res.n_pairs == 53 and res.n_unscored == 2 and res.n_ties == 1
    assert res.accuracy == pytest.approx(correct.mean()) and res.n_correct == correct.sum()
    rng = np.random.default_rng(7)
    means = [correct[rng.integers(0, 53, size=53)].mean() for _ in range(400)]
    assert (res.ci_low, res.ci_high) == pytest.approx(
        (np.percentile(means, 2.5), np.percentile(means, 97.5)))
    assert pref_metrics(chosen, rejected, bootstrap=400, seed=7) == res
    assert pref_metrics(chosen, rejected, bootstrap=400, seed=8).ci_low != res.ci_low or \
        pref_metrics(chosen, rejected, bootstrap=400, seed=8).ci_high != res.ci_high
    both = [(c, r) for c, r in zip(chosen, rejected, strict=True)
            if c is not None and r is not None]
    assert res.mean_margin == pytest.approx(statistics.fmean(c - r for c, r in both))
    assert res.score_std == pytest.approx(statistics.pstdev([x for p in both for x in p]))
    none = pref_metrics([None], [1.0], bootstrap=10)
    assert none.accuracy == 0 and none.mean_margin is None and none.n_unscored == 1


@pytest.mark.parametrize("line, field", [
    ({"prompt": "q", "chosen": "a"}, "rejected"),
    ({"chosen": "a", "rejected": "b"}, "prompt"),
    ({"prompt": "q", "chosen": [{"role": "user", "content": "q"}], "rejected": "b"}, "chosen"),
    ({"prompt": "q", "chosen": "a", "rejected": [{"role": "assistant", "content": 3}]},
     "rejected"),
    ({"prompt": 5, "chosen": "a", "rejected": "b"}, "prompt"),
    ({"chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}, "prompt"),
    ([1, 2], "(line)"),
])
def test_bad_pairs_name_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "pairs.jsonl"
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(line) + "\n")
    with pytest.raises(InputError) as e:
        read_pairs(path)
    assert str(e.value).startswith(f"{path}: line 3: field '{field}'")


def test_malformed_line_through_the_cli(tmp_path, orm_dir, capsys):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": \n')
    assert main(["prefs", "--pairs", str(path), "--orm", str(orm_dir), "--device", "cpu"]) == 2
    assert f"{path}: line 2: field '(line)': malformed JSON" in capsys.readouterr().err


def test_long_pairs_are_unscored_and_counted_wrong(tmp_path, orm_dir, capsys):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([{"prompt": "q", "chosen": "fever " * 200, "rejected": "b"},
                                {"prompt": "q", "chosen": "a", "rejected": "cough"}]))
    assert main(["prefs", "--pairs", str(path), "--orm", str(orm_dir), "--device", "cpu",
                 "--max-len", "64", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["n_unscored"] == 1 and got["n_pairs"] == 2 and got["n_correct"] <= 1
    assert main(["prefs", "--pairs", str(path), "--orm", str(orm_dir), "--device", "cpu",
                 "--max-len", "64", "--truncation", "keep_start"]) == 0
    assert "unscored pairs 0" in capsys.readouterr().out
