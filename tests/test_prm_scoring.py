"""PRM scoring: prompt, document budget, marker positions and scores against the published loop."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from bestofn.scorers.prm_hf import HFPRMScorer, length_batches, shared_prefix_len
from bestofn.scorers.prm_prompt import (
    EncodedPrompt,
    PRMPromptConfig,
    encode_prompt,
    fit_documents,
    question_documents,
)
from bestofn.testing.references import PLAIN, RAG, published_scores
from bestofn.testing.samples import WORDS, random_solution_text
from bestofn.text.records import Question, Solution


@pytest.fixture(scope="module", params=["special", "split", "single"])
def prm_dir(request, tiny_llama_special, tiny_llama_split, tiny_llama_single):
    return {"special": tiny_llama_special, "split": tiny_llama_split,
            "single": tiny_llama_single}[request.param]


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_equal_the_published_loop(prm_dir, seed):
    rng = random.Random(seed)
    scorer = HFPRMScorer(str(prm_dir), device="cpu", batch_size=5, max_batch_tokens=4000)
    model = AutoModelForCausalLM.from_pretrained(prm_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(prm_dir)
    q = Question("q1", "A 40-year-old man has fever. Which is most likely?",
                 {k: rng.choice(WORDS) for k in "ABCD"})
    docs = [" ".join(rng.choices(WORDS, k=rng.randint(5, 60))) for _ in range(4)]
    sols = [Solution.from_text(random_solution_text(rng), q.options) for _ in range(12)]
    got = scorer.score(q, docs, sols)
    for s, g in zip(sols, got, strict=True):
        ref = published_scores(model, tok, q.text(), s.marked, docs)
        assert g.scored and len(g.probs) == len(ref) == s.marked.count(" ки")
        assert max(abs(a - b) for a, b in zip(g.probs, ref, strict=True)) < 1e-5


def test_batching_does_not_change_scores(tiny_llama_special):
    rng = random.Random(7)
    q = Question("q", "Which?", {"A": "x", "B": "y"})
    sols = [Solution.from_text(random_solution_text(rng), q.options) for _ in range(9)]
    one = HFPRMScorer(str(tiny_llama_special), device="cpu", batch_size=1).score(q, None, sols)
    many = HFPRMScorer(str(tiny_llama_special), device="cpu", batch_size=9,
                       max_batch_tokens=10**6).score(q, None, sols)
    for a, b in zip(one, many, strict=True):
        assert max(abs(x - y) for x, y in zip(a.probs, b.probs, strict=True)) < 1e-5


def test_marker_token_is_the_tag_or_its_last_piece(tiny_llama_special, tiny_llama_split):
    for path in (tiny_llama_special, tiny_llama_split):
        tok = AutoTokenizer.from_pretrained(path)
        enc = encode_prompt(tok, "Q?", "Step 1: a ки Step 2: b ки", [], PRMPromptConfig())
        assert len(enc.marker_positions) == 2
        for p in enc.marker_positions:
            piece = tok.decode([enc.input_ids[p]])
            assert piece.endswith("и") or piece.endswith("ки") or "\ufffd" in piece
        assert enc.input_ids[-1] == enc.input_ids[enc.marker_positions[-1]]
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)
    tag_id = tok.convert_tokens_to_ids(" ки")
    enc = encode_prompt(tok, "Q?", "Step 1: a ки Step 2: b ки", [], PRMPromptConfig())
    assert [enc.input_ids[p] for p in enc.marker_positions] == [tag_id, tag_id]


def test_markers_in_documents_or_question_are_not_scored(tiny_llama_special):
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)
    enc = encode_prompt(tok, "Why ки?", "Step 1: a ки", ["doc ки ки"], PRMPromptConfig())
    assert len(enc.marker_positions) == 1


def test_double_bos_is_the_default_and_can_be_turned_off(tiny_llama_special):
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)
    on = encode_prompt(tok, "Q?", "Step 1: a ки", [], PRMPromptConfig())
    off = encode_prompt(tok, "Q?", "Step 1: a ки", [], PRMPromptConfig(double_bos=False))
    bos = tok.bos_token_id
    assert on.input_ids[:2] == (bos, bos) and off.input_ids[0] == bos != off.input_ids[1]
    assert len(on.input_ids) == len(off.input_ids) + 1


def test_no_marker_and_markers_past_max_len_are_unscored_with_a_reason(tiny_llama_special):
    scorer = HFPRMScorer(str(tiny_llama_special), device="cpu", max_len=1100, doc_reserve=1000)
    q = Question("q", "Which?")
    long = "Step 1: " + "fever " * 1500 + "Step 2: so B"
    sols = [Solution("x", "no marker here", "A"), Solution(long, long.replace(
        "Step 2", "ки Step 2") + " ки", "B"), Solution.from_text("Step 1: ok", None)]
    got = scorer.score(q, None, sols)
    assert not got[0].scored and "no step marker" in got[0].reason
    assert not got[1].scored and "past the maximum length" in got[1].reason
    assert got[2].scored and got[2].aggregate("min") is not None
    assert got[1].aggregate("min") is None


def test_document_budget_matches_a_plain_reference(tiny_llama_special):
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)
    rng = random.Random(3)
    for _ in range(30):
        n_docs = rng.randint(0, 8)
        docs = [" ".join(rng.choices(WORDS, k=rng.randint(1, 80))) for _ in range(n_docs)]
        max_len = rng.randint(1030, 1400)
        lens = [len(tok(d, add_special_tokens=False)["input_ids"]) for d in docs]
        n, total = 0, 0
        while n < len(docs) and total + lens[n] + 1 <= max_len - 1024:
            total += lens[n] + 1
            n += 1
        assert fit_documents(docs, tok, max_len, 1024) == docs[:n]


@pytest.mark.parametrize("seed", range(5))
def test_length_batches_cover_every_index_within_the_budget(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 500) for _ in range(rng.randint(1, 60))]
    cap, size = rng.randint(400, 3000), rng.randint(1, 10)
    batches = list(length_batches(lengths, cap, size))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= size
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= cap


def test_shared_prefix_path_equals_the_unshared_path(tiny_llama_split):
    rng = random.Random(11)
    q = Question("q", "A febrile child. Which is most likely?", {k: k for k in "ABCD"})
    docs = [" ".join(rng.choices(WORDS, k=50)) for _ in range(3)]
    sols = [Solution.from_text(random_solution_text(rng), q.options) for _ in range(10)]
    sols.append(sols[0])  # duplicates: the common prefix runs into the markers
    shared = HFPRMScorer(str(tiny_llama_split), device="cpu", batch_size=4)
    plain = HFPRMScorer(str(tiny_llama_split), device="cpu", share_prefix=False)
    enc = shared.encode(q, docs, sols)
    assert shared_prefix_len(enc) >= 100
    for a, b in zip(shared.score_encoded(enc), plain.score_encoded(enc), strict=True):
        assert max(abs(x - y) for x, y in zip(a.probs, b.probs, strict=True)) < 1e-5


@pytest.mark.parametrize("seed", range(10))
def test_shared_prefix_len_is_the_common_prefix_before_any_marker(seed):
    rng = random.Random(seed)
    base = [rng.randint(0, 5) for _ in range(rng.randint(1, 30))]
    encs = []
    for _ in range(rng.randint(1, 5)):
        ids = base[: rng.randint(0, len(base))] + [rng.randint(0, 5) for _ in range(5)]
        marks = sorted(rng.sample(range(len(ids)), rng.randint(1, min(3, len(ids)))))
        encs.append(EncodedPrompt(tuple(ids), tuple(marks)))
    k = shared_prefix_len(encs)
    assert all(e.input_ids[:k] == encs[0].input_ids[:k] for e in encs)
    assert all(k <= e.marker_positions[0] for e in encs)
    longer = k + 1
    assert (any(len(e.input_ids) < longer or e.marker_positions[0] < longer for e in encs)
            or len({e.input_ids[k] for e in encs}) > 1)


def test_length_batches_count_the_shared_prefix_per_row():
    batches = list(length_batches([10] * 8, max_tokens=100, max_size=99, overhead=40))
    assert [len(b) for b in batches] == [2, 2, 2, 2]


def test_published_prompt_mode_matches_the_published_scorers_choices(tiny_llama_special):
    """--published-prompt: the RAG system prompt whenever documents are on (even none fits),
    and markers past max_len scored while the model's context takes them."""
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)

    def text(enc: EncodedPrompt) -> str:
        return tok.decode(list(enc.input_ids))

    cfg = PRMPromptConfig(max_len=1100, doc_reserve=1000)
    fitted = question_documents(["fever " * 3000], tok, cfg)  # no document fits the budget
    assert fitted == []
    ours = encode_prompt(tok, "Q?", "Step 1: a ки", fitted, cfg)
    pub = encode_prompt(tok, "Q?", "Step 1: a ки", fitted,
                        PRMPromptConfig(max_len=1100, doc_reserve=1000, published=True))
    rag_only = "the relevant documents, the question"
    assert PLAIN in text(ours) and rag_only not in text(ours)
    assert RAG.strip() in text(pub)
    no_rag = encode_prompt(tok, "Q?", "Step 1: a ки", [],
                           PRMPromptConfig(use_docs=False, published=True))
    assert PLAIN in text(no_rag)
    long = "Step 1: " + "fever " * 1500 + "ки Step 2: so B ки"
    cut = encode_prompt(tok, "Q?", long, [], PRMPromptConfig(max_len=1100, doc_reserve=1000))
    full = encode_prompt(tok, "Q?", long, [], PRMPromptConfig(max_len=1100, doc_reserve=1000,
                                                              published=True),
                         model_max_len=8192)
    assert cut.reason and "past the maximum length" in cut.reason
    assert full.reason is None and len(full.marker_positions) == 2
    assert full.marker_positions[-1] >= 1100
    over = encode_prompt(tok, "Q?", long, [], PRMPromptConfig(published=True),
                         model_max_len=1100)
    assert over.reason and "past the maximum length" in over.reason


def test_a_kept_prefix_is_reused_exactly(tiny_llama_split):
    """Scoring a question again reads its shared prefix's key/values from the prefix cache:
    the prefix's tokens are not computed again and the scores are bit for bit the same."""
    from bestofn.scorers.batch import Request

    rng = random.Random(12)
    q = Question("q", "A febrile child. Which is most likely?", {k: k for k in "ABCD"})
    docs = [" ".join(rng.choices(WORDS, k=50)) for _ in range(3)]
    sols = [Solution.from_text(random_solution_text(rng), q.options) for _ in range(6)]
    prm = HFPRMScorer(str(tiny_llama_split), device="cpu", batch_size=4)
    prefix = shared_prefix_len(prm.encode(q, docs, sols))
    assert prefix >= 100
    first = prm.score_batch([Request(q, sols, docs)])
    again = prm.score_batch([Request(q, sols[::-1], docs)])
    assert again.tokens.computed_tokens == first.tokens.computed_tokens - prefix
    assert [s.probs for s in again.results[0]] == [s.probs for s in first.results[0][::-1]]
    fresh = HFPRMScorer(str(tiny_llama_split), device="cpu", batch_size=4, prefix_cache=0)
    plain = fresh.score_batch([Request(q, sols, docs)])
    assert [s.probs for s in plain.results[0]] == [s.probs for s in first.results[0]]
    assert fresh.score_batch([Request(q, sols, docs)]).tokens == plain.tokens


def test_a_questions_prm_tokens_do_not_depend_on_what_it_was_scored_with(tiny_llama_special):
    """prm-hf computes each question apart, so a question's count is the same alone or batched
    with another (a resumed run scores the rest of the questions without those already done)."""
    from bestofn.execution.scoring import Verifiers, score_pairs

    rng = random.Random(7)
    work = []
    for i, words in enumerate((8, 40)):
        q = Question(f"q{i}", " ".join(rng.choices(WORDS, k=words)),
                     {k: rng.choice(WORDS) for k in "ABCD"})
        work.append((q, [Solution.from_text(random_solution_text(rng), q.options)
                         for _ in range(2 + i)]))

    def fresh() -> Verifiers:
        return Verifiers(prm=HFPRMScorer(str(tiny_llama_special), device="cpu"))

    together = score_pairs(fresh(), work, use_docs=False)
    alone = [score_pairs(fresh(), [w], use_docs=False)[0] for w in work]
    assert [s.prm_tokens for s in together] == [s.prm_tokens for s in alone]
    assert together[0].prm_tokens != together[1].prm_tokens  # not an even split
    assert [s.scores for s in together] == [s.scores for s in alone]
