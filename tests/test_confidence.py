"""DeepConf confidence: summaries, selection methods and the `confidence` stopping rule against
straightforward references on random log-probabilities; the hf policy's stored confidences
against an independent forward pass; the methods through evaluate and report."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bestofn.adaptive import parse_rule
from bestofn.adaptive.rules import Drawn
from bestofn.cli import main
from bestofn.evaluation.evaluate import evaluate
from bestofn.evaluation.select import METHODS, STRICT
from bestofn.text.confidence import KEEP_FRACTION, META_KEY, SELECT_SUMMARY, summarize
from bestofn.text.records import Item, Question, Solution

# ---- references ------------------------------------------------------------------------


def ref_summary(positions: list[list[float]], window: int) -> dict[str, float]:
    """DeepConf's helper/analysis functions, written out with plain loops (no rounding)."""
    confs = [-sum(p) / len(p) for p in positions if p]
    if len(confs) < window:
        groups = [sum(confs) / len(confs)]
    else:
        groups = [sum(confs[i:i + window]) / window for i in range(len(confs) - window + 1)]
    n_bottom = max(1, int(len(groups) * 0.1))
    bottom = sorted(groups)[:n_bottom]
    tail = confs[-2048:]
    return {"mean": sum(confs) / len(confs), "lowest_group": min(groups),
            "bottom10_group": sum(bottom) / len(bottom), "tail": sum(tail) / len(tail)}


def ref_percentile(values: list[float], q: float) -> float:
    """numpy's default (linear) percentile, by hand."""
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def ref_weighted_winner(answers: list, weights: list) -> set:
    tot: dict = {}
    for a, w in zip(answers, weights, strict=True):
        if a is not None and w is not None:
            tot[a] = tot.get(a, 0.0) + w
    if not tot:
        return set()
    top = max(tot.values())
    return {a for a, w in tot.items() if w == top}


def random_positions(rng: random.Random, n: int, k: int) -> list[list[float]]:
    return [[math.log(rng.random() + 1e-9) for _ in range(rng.randint(k, k + 1))]
            for _ in range(n)]


# ---- summaries and selection -------------------------------------------------------------


@pytest.mark.parametrize(("n", "window"), [(1, 4), (3, 4), (4, 4), (37, 4), (300, 16),
                                           (2100, 2048), (2500, 64)])
def test_summaries_match_reference(n: int, window: int) -> None:
    rng = random.Random(n * 7 + window)
    pos = random_positions(rng, n, 5)
    pos.insert(n // 2, [])  # a position with no log-probability is skipped
    got = summarize(pos, window=window, k=5)
    ref = ref_summary(pos, window)
    assert got is not None and got.tokens == n and got.k == 5
    for key, v in ref.items():
        assert getattr(got, key) == pytest.approx(v, rel=1e-9, abs=1e-12), key
    assert summarize([[], []]) is None


def test_selection_methods_match_reference() -> None:
    rng = random.Random(11)
    for trial in range(300):
        n = rng.randint(1, 12)
        answers = [rng.choice(["A", "B", "C", None]) for _ in range(n)]
        confs = [None if rng.random() < 0.1 else round(rng.uniform(0.5, 3), 1) for _ in range(n)]
        item = Item(Question(f"q{trial}", "?"), [
            Solution("", "", a, meta={} if c is None else {META_KEY: {SELECT_SUMMARY: c}})
            for a, c in zip(answers, confs, strict=True)])
        if all(c is None for c in confs):
            continue

        def pick(name: str, item: Item = item):
            return METHODS[name].select(item, STRICT.answers(item.solutions), seed=0,
                                        key=item.question.id, rules=STRICT)

        w = pick("confidence_weighted")
        want = ref_weighted_winner(answers, confs)
        assert (w.answer in want) if want else w.answer is None
        keep = KEEP_FRACTION
        voting = [c for a, c in zip(answers, confs, strict=True) if a is not None and c is not None]
        kept = [c if a is not None and c is not None and voting
                and c >= ref_percentile(voting, 100 * (1 - keep)) else None
                for a, c in zip(answers, confs, strict=True)]
        f = pick("confidence_filtered")
        want = ref_weighted_winner(answers, kept)
        assert (f.answer in want) if want else f.answer is None, (answers, confs, keep)
        if want:  # the kept solutions' weights, nothing else
            assert f.weights == pytest.approx(
                {a: sum(c for b, c in zip(answers, kept, strict=True) if b == a and c)
                 for a in {b for b, c in zip(answers, kept, strict=True) if c is not None}})


# ---- the stopping rule ---------------------------------------------------------------


def ref_confidence_stop(answers: list, confs: list, warmup: int, keep: float, tau: float,
                        max_n: int) -> int:
    for k in range(1, len(answers) + 1):
        if k >= max_n:
            return k
        if k < warmup:
            continue
        warm = [c for c in confs[:warmup] if c is not None]
        if not warm:
            continue
        bar = ref_percentile(warm, 100 * (1 - keep))
        tot: dict = {}
        for a, c in zip(answers[:k], confs[:k], strict=True):
            if a is not None and c is not None and c >= bar:
                tot[a] = tot.get(a, 0.0) + c
        if tot and max(tot.values()) / sum(tot.values()) >= tau:
            return k
    return len(answers)


def test_confidence_rule_matches_reference() -> None:
    rng = random.Random(5)
    for _ in range(300):
        n = rng.randint(1, 30)
        answers = [rng.choice(["A", "A", "A", "B", None]) for _ in range(n)]
        confs = [None if rng.random() < 0.05 else rng.uniform(0.5, 3) for _ in range(n)]
        warmup, keep = rng.randint(1, 8), rng.choice([0.1, 0.5, 0.9])
        tau, max_n = rng.choice([0.6, 0.8, 0.95]), rng.randint(warmup, 32)
        rule = parse_rule(f"confidence:warmup={warmup},keep={keep},tau={tau},max_n={max_n}")
        got = rule.first_stop(Drawn(answers, None, confs))
        assert got == ref_confidence_stop(answers, confs, warmup, keep, tau, max_n)
    with pytest.raises(ValueError, match="--logprobs"):
        parse_rule("confidence:warmup=1").stop(Drawn(["A"]))
    with pytest.raises(ValueError, match="keep"):
        parse_rule("confidence:keep=0")


# ---- through evaluate, report and the adaptive replay ------------------------------------


def conf_items(seed: int, q: int = 12, n: int = 8) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(q):
        gold = rng.choice("ABC")
        sols = []
        for _ in range(n):
            right = rng.random() < 0.5
            ans = gold if right else rng.choice([x for x in "ABC" if x != gold])
            s = summarize(random_positions(rng, 20, 3), window=8, k=3)
            meta = {META_KEY: replace(s, lowest_group=s.lowest_group + (1 if right else 0))
                    .to_dict(), "tokens": 20}
            sols.append(Solution("t", "t ки", ans, meta=meta))
        items.append(Item(Question(f"q{i}", "stem", {k: k for k in "ABC"}, answer=gold), sols))
    return items


def test_methods_through_evaluate_report_and_replay(tmp_path: Path, capsys) -> None:
    items = conf_items(0)
    ev = evaluate(items)
    assert {"confidence_weighted", "confidence_filtered"} <= set(ev.accuracy)
    # confidence is informative here (right answers +1): both beat the majority vote
    assert ev.accuracy["confidence_filtered"] >= ev.accuracy["majority"]
    f = tmp_path / "conf.jsonl"
    f.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in items))
    assert main(["evaluate", "--input", str(f), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["confidence_filtered"] == ev.accuracy["confidence_filtered"]
    assert main(["evaluate", "--input", str(f), "--json",
                 "--adaptive", "confidence:warmup=4,tau=0.8"]) == 0
    ad = json.loads(capsys.readouterr().out)
    stops = [ref_confidence_stop([s.answer for s in it.solutions],
                                 [s.meta[META_KEY]["lowest_group"] for s in it.solutions],
                                 4, 0.9, 0.8, 64) for it in items]
    assert ad["adaptive_mean_samples"] == pytest.approx(sum(stops) / len(stops))
    assert min(stops) < 8  # it does stop early somewhere
    assert main(["report", str(f), "--out", str(tmp_path / "rep"), "--bootstrap", "30",
                 "--draws", "5", "--no-plot"]) == 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["accuracy"]["confidence_weighted"] == ev.accuracy["confidence_weighted"]
    assert "Confidence top-10% vote" in (tmp_path / "rep" / "report.md").read_text()


def test_replay_refuses_a_file_without_confidences(tmp_path: Path, capsys) -> None:
    items = conf_items(1, q=3)
    for s in items[1].solutions:
        s.meta.pop(META_KEY)
    f = tmp_path / "c.jsonl"
    f.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in items))
    assert main(["evaluate", "--input", str(f), "--adaptive", "confidence"]) == 2
    assert "--logprobs" in capsys.readouterr().err


# ---- a real policy -----------------------------------------------------------------------


def test_hf_policy_confidence_equals_an_independent_forward_pass(tiny_llama_split: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bestofn.config import SamplingConfig
    from policies.hf import HFPolicy

    pol = HFPolicy(str(tiny_llama_split), device="cpu", batch_size=2, preset="smollm2")
    params = SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, max_tokens=12, seed=3,
                            logprobs=4, confidence_window=5)
    q = Question("q1", "Which?", {"A": "x", "B": "y"})
    sols = pol.sample([q], 3, params)[0]
    plain = pol.sample([q], 3, replace(params, logprobs=None))[0]
    assert [s.text for s in sols] == [s.text for s in plain]  # asking does not change samples
    assert all(META_KEY not in s.meta for s in plain)
    tok = AutoTokenizer.from_pretrained(tiny_llama_split)
    net = AutoModelForCausalLM.from_pretrained(tiny_llama_split, dtype=torch.float32).eval()
    prompt = tok.apply_chat_template(pol.preset.messages(q), add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)["input_ids"][0]
    # regenerate the token ids of each sample the same way, then score them in one forward pass
    for s in sols:
        c = s.meta[META_KEY]
        assert c["tokens"] == s.meta["tokens"] and c["k"] == 4 and c["window"] == 5
    rows = _sample_rows(pol, q, params)
    for s, row in zip(sols, rows, strict=True):
        n = s.meta["tokens"]
        ids = torch.cat([prompt, row[:n]])[None]
        with torch.no_grad():
            lp = torch.log_softmax(net(ids).logits[0, len(prompt) - 1:-1].double(), -1)
        pos = []
        for t in range(n):
            top = lp[t].topk(4)
            vals = top.values.tolist()
            if int(row[t]) not in top.indices.tolist():
                vals.append(float(lp[t, int(row[t])]))
            pos.append(vals)
        ref = ref_summary(pos, 5)
        for key, v in ref.items():
            assert s.meta[META_KEY][key] == pytest.approx(v, rel=1e-4), key


def _sample_rows(pol, q, params):
    """The generated token ids of samples 0..2 (same seed and chunking as the policy)."""
    import torch

    from policies import question_seed

    ids = pol.tokenizer.apply_chat_template(pol.preset.messages(q), add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
    rows = []
    for chunk in range(2):
        torch.manual_seed(question_seed(params.seed, q.id, chunk))
        gen = pol.model.generate(ids, do_sample=True, temperature=1.0, top_k=None, top_p=1.0,
                                 max_new_tokens=params.max_tokens, num_return_sequences=2,
                                 pad_token_id=pol.tokenizer.pad_token_id
                                 or pol.tokenizer.eos_token_id)
        rows += list(gen[:, ids.shape[1]:])
    return rows[:3]


def test_group_confidence_clips_window_to_length() -> None:
    from bestofn.text.confidence import group_confidences

    c = np.arange(5.0)
    assert group_confidences(c, 2048).tolist() == [2.0]
    assert group_confidences(c, 2).tolist() == [0.5, 1.5, 2.5, 3.5]


def test_run_with_logprobs_and_the_confidence_rule(tmp_path: Path, tiny_llama_special: Path
                                                   ) -> None:
    """`bestofn run --logprobs K` stores confidences, reports the methods, and an adaptive run
    under `confidence` stops where the rule says on the confidences it stored."""
    from bestofn.run import RunConfig, run

    base = dict(questions=2, n=4, policy=str(tiny_llama_special), prm=None,
                policy_backend="hf", max_tokens=12, device="cpu", min_steps=0, max_steps=0,
                logprobs=3)
    rep = run(RunConfig.from_settings(out=str(tmp_path / "fixed"), **base), progress=False)
    assert {"confidence_weighted", "confidence_filtered"} <= set(rep["accuracy"])
    lines = [json.loads(x) for x in (tmp_path / "fixed" / "results.jsonl").read_text()
             .splitlines()]
    assert all(s["meta"][META_KEY]["k"] == 3 for x in lines for s in x["solutions"])
    rule = "confidence:warmup=2,keep=0.9,tau=0.5"
    ad = run(RunConfig.from_settings(out=str(tmp_path / "ad"), adaptive=rule, **base),
             progress=False)
    got = [json.loads(x) for x in (tmp_path / "ad" / "results.jsonl").read_text().splitlines()]
    for x in got:
        sols = x["solutions"]
        full = [s["meta"][META_KEY]["lowest_group"] for s in sols]
        want = ref_confidence_stop([s["answer"] for s in sols], full, 2, 0.9, 0.5, 4)
        assert len(sols) == want
    assert ad["n_questions"] == 2
    with pytest.raises(ValueError, match="--logprobs"):
        run(RunConfig.from_settings(out=str(tmp_path / "x"), adaptive=rule,
                                    **{**base, "logprobs": None}), progress=False)
