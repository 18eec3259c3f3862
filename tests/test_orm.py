"""Outcome reward models: scoring against the plain transformers forward, padding, BOS, LoRA,
truncation, ORM selection methods, ORM scores in files and through `bestofn score`."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bestofn.cli import main
from bestofn.evaluation.evaluate import evaluate, format_table
from bestofn.evaluation.select import orm_weights, select_all
from bestofn.scorers import make_scorer
from bestofn.scorers.orm_hf import HFORMScorer
from bestofn.scorers.orm_prompt import ORMPromptConfig, encode_conversation, tokenize_once
from bestofn.testing import EOT
from bestofn.testing.orm import build_tiny_lora, build_tiny_orm
from bestofn.testing.references import reference_scores
from bestofn.testing.samples import QUESTION, random_solution
from bestofn.text.files import InputError, read_items, write_items
from bestofn.text.records import Item, Question, Solution


def conversation(q: Question, text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": q.text()}, {"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def orm_dir(tmp_path_factory) -> Path:
    return build_tiny_orm(tmp_path_factory.mktemp("tiny_orm"))


@pytest.fixture(scope="module")
def lora_dir(orm_dir, tmp_path_factory) -> Path:
    return build_tiny_lora(orm_dir, tmp_path_factory.mktemp("tiny_orm_lora"))


@pytest.fixture(scope="module")
def solutions() -> list[Solution]:
    rng = random.Random(0)
    return [random_solution(rng) for _ in range(10)]


@pytest.fixture(scope="module")
def reference(orm_dir, solutions) -> list[float]:
    model = AutoModelForSequenceClassification.from_pretrained(orm_dir).eval()
    tok = AutoTokenizer.from_pretrained(orm_dir)
    return reference_scores(model, tok, [conversation(QUESTION, s.text) for s in solutions])


@pytest.mark.parametrize("side", ["right", "left"])
def test_batched_padded_scores_equal_one_at_a_time(orm_dir, solutions, reference, side):
    one = HFORMScorer(str(orm_dir), device="cpu", batch_size=1)
    many = HFORMScorer(str(orm_dir), device="cpu", batch_size=10, max_batch_tokens=10**6,
                       padding_side=side)
    got_one, got_many = one.score(QUESTION, None, solutions), many.score(QUESTION, None, solutions)
    lengths = {len(e.input_ids) for e in many.encode(
        [conversation(QUESTION, s.text) for s in solutions])}
    assert len(lengths) > 3, "the batch must really be padded"
    assert max(abs(a - b) for a, b in zip(got_one, got_many, strict=True)) < 1e-5
    assert max(abs(a - b) for a, b in zip(got_many, reference, strict=True)) < 1e-5
    assert max(reference) - min(reference) > 0.5, "scores should differ between solutions"


def test_pad_token_equal_to_end_of_turn_is_handled(orm_dir, solutions, reference):
    """Llama-3 tokenizers often pad with <|eot_id|>, which closes every conversation: the
    model's own pooling then reads the wrong token; ours reads the attention mask."""
    scorer = HFORMScorer(str(orm_dir), device="cpu", batch_size=10, max_batch_tokens=10**6)
    scorer.tokenizer.pad_token = EOT
    eot = scorer.tokenizer.pad_token_id
    got = scorer.score(QUESTION, None, solutions)
    assert max(abs(a - b) for a, b in zip(got, reference, strict=True)) < 1e-5

    model = AutoModelForSequenceClassification.from_pretrained(orm_dir).eval()
    model.config.pad_token_id = eot
    ids = scorer.encode([conversation(QUESTION, solutions[0].text)])[0].input_ids
    assert ids[-1] == eot
    with torch.no_grad():
        naive = model(input_ids=torch.tensor([ids])).logits[0][0].item()
    assert abs(naive - reference[0]) > 1e-3, "the trap this scorer avoids is real"


def test_exactly_one_bos(orm_dir):
    tok = AutoTokenizer.from_pretrained(orm_dir)
    conv = conversation(QUESTION, "Step 1: fever. the answer is (A).")
    text = tok.apply_chat_template(conv, tokenize=False)
    assert tok(text)["input_ids"][:2] == [tok.bos_token_id] * 2, "the trap: BOS twice"
    enc = encode_conversation(tok, conv, ORMPromptConfig())
    assert enc.input_ids.count(tok.bos_token_id) == 1 and enc.input_ids[0] == tok.bos_token_id
    template_ids = tok.apply_chat_template(conv, tokenize=True, return_dict=True)["input_ids"]
    assert list(enc.input_ids) == list(template_ids)
    tok.chat_template = tok.chat_template.replace("{{ bos_token }}", "")
    enc = encode_conversation(tok, conv, ORMPromptConfig())
    assert enc.input_ids.count(tok.bos_token_id) == 1 and enc.input_ids[0] == tok.bos_token_id


def test_adapter_changes_scores_and_merging_keeps_them(orm_dir, lora_dir, solutions, reference):
    from peft import PeftModel

    plain = HFORMScorer(str(orm_dir), device="cpu", adapter=str(lora_dir), batch_size=4,
                        padding_side="left").score(QUESTION, None, solutions)
    assert min(abs(a - b) for a, b in zip(plain, reference, strict=True)) > 1e-3
    # Merging reorders the float arithmetic (x(W + BA) against xW + (xA)B); in float32 the
    # scores then differ by ~1e-5 depending on the CPU's kernels, so the equality is checked
    # in float64, where rounding cannot hide a real difference.
    unmerged64, merged64 = (
        HFORMScorer(str(orm_dir), device="cpu", dtype="float64", adapter=str(lora_dir),
                    merge_adapter=merge, batch_size=4).score(QUESTION, None, solutions)
        for merge in (False, True))
    assert max(abs(a - b) for a, b in zip(unmerged64, merged64, strict=True)) < 1e-10
    assert max(abs(a - b) for a, b in zip(plain, unmerged64, strict=True)) < 1e-4
    base = AutoModelForSequenceClassification.from_pretrained(orm_dir).eval()
    ref = reference_scores(PeftModel.from_pretrained(base, lora_dir).eval(),
                           AutoTokenizer.from_pretrained(orm_dir),
                           [conversation(QUESTION, s.text) for s in solutions])
    assert max(abs(a - b) for a, b in zip(plain, ref, strict=True)) < 1e-5


def test_merge_without_adapter_is_an_error(orm_dir):
    with pytest.raises(ValueError, match="needs an adapter"):
        HFORMScorer(str(orm_dir), device="cpu", merge_adapter=True)


def test_truncation_policies(orm_dir):
    tok = AutoTokenizer.from_pretrained(orm_dir)
    long = " ".join(["fever cough"] * 60) + " the answer is (B)."
    conv = conversation(QUESTION, long)
    full = list(encode_conversation(tok, conv, ORMPromptConfig()).input_ids)
    limit = len(full) - 25
    unscored = encode_conversation(tok, conv, ORMPromptConfig(max_len=limit))
    assert unscored.reason and f"over the maximum length {limit}" in unscored.reason
    head_ids, _ = tokenize_once(tok, tok.apply_chat_template(conv[:1], tokenize=False))
    answer_tail = tok(" the answer is (B).", add_special_tokens=False)["input_ids"]
    for how in ("keep_end", "keep_start"):
        enc = encode_conversation(tok, conv, ORMPromptConfig(max_len=limit, truncation=how))
        ids = list(enc.input_ids)
        assert enc.reason is None and enc.dropped == 25 and len(ids) == limit
        cut = next(i for i in range(limit) if ids[i] != full[i])
        assert ids == full[:cut] + full[cut + 25:], "a contiguous run is dropped"
        assert cut > len(head_ids), "template and question stay whole"
        assert ids[-1] == full[-1] == tok.convert_tokens_to_ids(EOT)
        ends_with_answer = ids[-1 - len(answer_tail):-1] == answer_tail
        assert ends_with_answer == (how == "keep_end")
    tiny = encode_conversation(tok, conv, ORMPromptConfig(max_len=10, truncation="keep_end"))
    assert tiny.reason and "cannot make it fit" in tiny.reason
    with pytest.raises(ValueError, match="unknown truncation"):
        ORMPromptConfig(truncation="middle")  # type: ignore[arg-type]


def test_unscored_solutions_get_none_and_a_reason(orm_dir, solutions):
    tok = AutoTokenizer.from_pretrained(orm_dir)
    lengths = [len(encode_conversation(tok, conversation(QUESTION, s.text),
                                       ORMPromptConfig()).input_ids) for s in solutions]
    limit = sorted(lengths)[len(lengths) // 2]
    scorer = make_scorer("orm-hf", model=str(orm_dir), device="cpu", max_len=limit)
    assert scorer.kind == "orm"
    from bestofn.scorers.batch import Request, score_requests

    batch = score_requests(scorer, [Request(QUESTION, solutions)])
    [detailed] = batch.results
    scored = [n for n in lengths if n <= limit]
    assert batch.tokens.unscored == len(lengths) - len(scored)
    assert batch.tokens.prompt_tokens == sum(lengths)
    assert batch.tokens.computed_tokens + batch.tokens.cached_tokens == sum(scored)
    for n, r in zip(lengths, detailed, strict=True):
        assert (r.score is None) == (n > limit)
        assert (r.reason is not None) == (n > limit)
    assert any(r.score is None for r in detailed) and any(r.score is not None for r in detailed)


def test_strip_think_option(orm_dir):
    q = QUESTION
    sol = Solution.from_text("<think>long musing</think>Step 1: fever. the answer is (A).")
    bare = Solution.from_text("Step 1: fever. the answer is (A).")
    raw = HFORMScorer(str(orm_dir), device="cpu").score(q, None, [sol, bare])
    stripped = HFORMScorer(str(orm_dir), device="cpu", strip_think=True).score(q, None, [sol])
    assert abs(raw[0] - raw[1]) > 1e-4, "the raw solution text is scored by default"
    assert abs(stripped[0] - raw[1]) < 1e-5


# ---- selection ----------------------------------------------------------------------------

def orm_item(rng: random.Random, i: int) -> Item:
    sols, orm = [], []
    for _ in range(rng.randint(1, 8)):
        sols.append(Solution("t", "t ки", rng.choice(["A", "B", "C", "D", None])))
        orm.append(rng.gauss(-2, 3) if rng.random() < 0.85 else None)
    return Item(Question(str(i), "q", {k: k for k in "ABCD"}, answer=rng.choice("ABCD")),
                sols, orm=orm)


def test_orm_weights_are_a_softmax():
    rng = random.Random(3)
    scores = [rng.gauss(-5, 4) for _ in range(7)] + [None]
    w = orm_weights(scores)
    z = math.fsum(math.exp(s) for s in scores if s is not None)
    for s, x in zip(scores, w, strict=True):
        assert (x is None) if s is None else x == pytest.approx(math.exp(s) / z, rel=1e-12)
    assert math.fsum(x for x in w if x is not None) == pytest.approx(1.0)
    assert orm_weights([None, None]) == [None, None]
    assert orm_weights([1000.0, 999.0])[0] == pytest.approx(1 / (1 + math.exp(-1)))


@pytest.mark.parametrize("seed", range(4))
def test_orm_selection_equals_direct_computation(seed):
    rng = random.Random(seed)
    items = [orm_item(rng, i) for i in range(40)]
    ev = evaluate(items, seed=seed)
    best = vote = 0
    for it in items:
        cands = [(v, s.answer) for s, v in zip(it.solutions, it.orm, strict=True)
                 if v is not None and s.answer is not None]
        if not cands:
            continue
        best += max(cands)[1] == it.question.answer
        mass: dict[str, float] = {}
        for v, a in cands:
            mass[a] = mass.get(a, 0.0) + math.exp(v)
        vote += max(mass, key=mass.get) == it.question.answer
        sel = select_all(it, seed=seed)
        assert sel["orm_best"].index is not None
        assert it.orm[sel["orm_best"].index] == max(cands)[0]
    assert ev.accuracy["orm_best"] == pytest.approx(best / 40)
    assert ev.accuracy["orm_weighted"] == pytest.approx(vote / 40)
    assert "prm_min" not in ev.accuracy, "no PRM scores, no PRM methods"
    assert ev.n_orm_unscored == sum(v is None for it in items for v in it.orm)
    assert {"orm_best", "orm_weighted", "n_orm_unscored", "majority"} <= set(ev.to_json())
    assert "ORM best-of-N" in format_table(ev)


# ---- files and the score command ------------------------------------------------------------

def test_orm_scores_round_trip_in_medprm_files(tmp_path):
    q = Question("q0", "Which?", {"A": "a", "B": "b"}, answer="A")
    sols = [Solution("Step 1: a. the answer is (A).", "m ки", "A", meta={}),
            Solution("Step 1: b. the answer is (B).", "m ки", "B", meta={"orm_reason": "long"})]
    path = tmp_path / "o.json"
    write_items(path, [Item(q, sols, orm=[-1.5, None])])
    written = json.loads(path.read_text())[0]["solutions"]
    assert written[0]["ORM_score"] == -1.5 and "ORM_reason" not in written[0]
    assert written[1]["ORM_score"] is None and written[1]["ORM_reason"] == "long"
    back = read_items(path)[0]
    assert back.orm == [-1.5, None] and back.solutions[1].meta["orm_reason"] == "long"
    written[0]["ORM_score"] = "high"
    path.write_text(json.dumps([{**json.loads(path.read_text())[0], "solutions": written}]))
    with pytest.raises(InputError, match=r"solutions\[0\]\.ORM_score"):
        read_items(path)


def medprm_file(path: Path, rng: random.Random) -> None:
    recs = []
    for i in range(3):
        sols = [{"solution": f"Step 1: fever {rng.random():.3f}\nStep 2: so the answer is "
                             f"({letter}).", "answer": letter}
                for letter in rng.choices("ABCD", k=4)]
        recs.append({"question_id": f"q{i}", "question": "Which?\n\n(A) a\n(B) b\n(C) c\n(D) d",
                     "correct_answer": "B", "related_docs": ["doc"], "solutions": sols})
    path.write_text(json.dumps(recs))


def test_score_command_with_orm(tmp_path, orm_dir, capsys):
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    medprm_file(src, random.Random(0))
    assert main(["score", "--input", str(src), "--orm", str(orm_dir), "--output", str(out),
                 "--device", "cpu", "--batch-size", "3"]) == 0
    scored = json.loads(out.read_text())
    scorer = HFORMScorer(str(orm_dir), device="cpu")
    for item, rec in zip(read_items(src), scored, strict=True):
        want = scorer.score(item.question, None, item.solutions)
        got = [s["ORM_score"] for s in rec["solutions"]]
        assert got == pytest.approx(want, abs=1e-5)
        assert all("PRM_score_list" not in s for s in rec["solutions"])
    assert not (tmp_path / "out.json.orm.partial.jsonl").exists()
    capsys.readouterr()
    assert main(["evaluate", "--input", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == evaluate(read_items(out)).to_json() and "orm_weighted" in got


def test_score_command_with_prm_and_orm_and_resume(tmp_path, orm_dir, tiny_llama_special):
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    medprm_file(src, random.Random(1))
    args = ["score", "--input", str(src), "--prm", str(tiny_llama_special), "--orm",
            str(orm_dir), "--output", str(out), "--device", "cpu", "--solutions", "3"]
    assert main(args) == 0
    full = json.loads(out.read_text())
    assert all(len(r["solutions"]) == 3 for r in full)
    assert all({"PRM_score_list", "ORM_score"} <= set(s) for r in full for s in r["solutions"])
    # a stopped run left question 0's ORM scores (made up here, so their use is visible)
    partial = tmp_path / "out.json.orm.partial.jsonl"
    partial.write_text(json.dumps({"index": 0, "id": "q0", "orm": [7.0, 8.0, None],
                                   "reasons": [None, None, "gone"]}) + "\n")
    out.unlink()
    assert main(args) == 0
    again = json.loads(out.read_text())
    assert [s["ORM_score"] for s in again[0]["solutions"]] == [7.0, 8.0, None]
    assert again[0]["solutions"][2]["ORM_reason"] == "gone"
    assert again[1:] == full[1:]


def test_score_command_needs_a_verifier(tmp_path, capsys):
    src = tmp_path / "in.json"
    medprm_file(src, random.Random(2))
    assert main(["score", "--input", str(src), "--output", str(tmp_path / "o.json")]) == 2
    assert "--prm MODEL, --orm MODEL or both" in capsys.readouterr().err
