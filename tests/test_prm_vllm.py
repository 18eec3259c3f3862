"""prm-vllm: prefix-cached scores equal uncached ones, prm-hf's and the published loop's.

One engine for the module (slow tests), with a small KV cache (24 blocks of 128 tokens) so that
a question's prefix can be evicted while a batch runs. The step marker ' ки' is split into
several tokens in this model, and documents carry markers that must not be read.
"""

from __future__ import annotations

import random

import pytest
import torch

from bestofn.scorers.batch import Request
from bestofn.scorers.prm_hf import HFPRMScorer
from bestofn.scorers.prm_prompt import EncodedPrompt
from bestofn.scorers.prm_vllm import MarkerMemo, PooledRowsMismatch, marker_probs
from bestofn.testing.samples import WORDS, random_solution_text
from bestofn.text.records import Question, Solution

MAX_LEN, BLOCK = 2048, 128


@pytest.fixture(scope="module")
def vllm_scorer(tiny_llama_split):
    pytest.importorskip("vllm")
    from bestofn.scorers.prm_vllm import VLLMPRMScorer

    scorer = VLLMPRMScorer(str(tiny_llama_split), device="cpu", max_len=MAX_LEN,
                           doc_reserve=1024, kv_cache_blocks=24)
    yield scorer
    del scorer.llm


@pytest.fixture(scope="module")
def hf_scorer(tiny_llama_split):
    return HFPRMScorer(str(tiny_llama_split), device="cpu", max_len=MAX_LEN, doc_reserve=1024)


def _question(rng: random.Random, name: str, n: int) -> tuple[Question, list[str], list[Solution]]:
    q = Question(name, f"Which is most likely in {name}?", {k: rng.choice(WORDS) for k in "ABCD"})
    docs = [" ".join(rng.choices(WORDS, k=150)) + " ки" for _ in range(3)]
    texts = [random_solution_text(rng) for _ in range(n)]
    long_steps = "\n".join(f"Step {i + 1}: " + " ".join(rng.choices(WORDS, k=70))
                           for i in range(3))
    texts += [texts[0],  # a repeated solution
              long_steps + " the answer is (A).",  # two solutions sharing three long steps:
              long_steps + "\nStep 4: " + " ".join(rng.choices(WORDS, k=20)) + " so (B)."]
    sols = [Solution.from_text(t, q.options) for t in texts]
    return q, docs, sols + [Solution("no marker", "no marker", "A")]


def _close(got, want) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.reason == b.reason
        assert len(a.probs) == len(b.probs)
        if b.scored:
            assert len(a.probs) >= 1
            assert max(abs(x - y) for x, y in zip(a.probs, b.probs, strict=True)) < 1e-4


def _prefix_blocks(encoded: list[EncodedPrompt]) -> int:
    from bestofn.scorers.prm_hf import shared_prefix_len

    return shared_prefix_len([e for e in encoded if not e.reason]) // BLOCK * BLOCK


@pytest.mark.slow
def test_two_questions_in_one_call_equal_uncached_and_hf(vllm_scorer, hf_scorer):
    rng = random.Random(5)
    jobs = [_question(rng, "q1", 8), _question(rng, "q2", 8)]
    groups = [vllm_scorer.encode(q, d, s) for q, d, s in jobs]
    batch = vllm_scorer.score_batch([Request(q, s, d) for q, d, s in jobs])
    cached, stats = batch.results, vllm_scorer.stats
    assert batch.tokens.computed_tokens == stats.computed_tokens + stats.rerun_tokens
    assert batch.tokens.cached_tokens == (sum(len(e.input_ids) for g in groups for e in g
                                              if not e.reason) - stats.computed_tokens)
    assert batch.tokens.prompt_tokens == sum(len(e.input_ids) for g in groups for e in g)
    uncached = vllm_scorer.score_encoded_many(groups, read_cache=False)
    assert sum(vllm_scorer.stats.cached_tokens) == 0
    for (q, d, s), c, u in zip(jobs, cached, uncached, strict=True):
        want = hf_scorer.score(q, d, s)
        _close(c, want)
        _close(u, want)
        assert not c[-1].scored and c[-1].reason == "no step marker in the solution"
    # the repeated solution is sent once; each question's prefix is computed by one prompt only
    assert stats.prompts == 2 * (8 + 2)
    start = 0
    for g in groups:
        k, floor = len({e.input_ids for e in g if not e.reason}), _prefix_blocks(g)
        assert floor >= 2 * BLOCK
        assert sum(c < floor for c in stats.cached_tokens[start: start + k]) == 1
        start += k
    assert stats.computed_tokens < 0.6 * stats.prompt_tokens
    assert stats.memo_hits >= 1  # a shared long step's marker lay inside cached blocks


@pytest.mark.slow
def test_prefix_evicted_mid_batch_still_scores(vllm_scorer, hf_scorer):
    rng = random.Random(6)
    (q1, d1, s1), (q2, d2, s2) = _question(rng, "e1", 6), _question(rng, "e2", 10)
    g1, g2 = vllm_scorer.encode(q1, d1, s1), vllm_scorer.encode(q2, d2, s2)
    # q1's first prompt, then q2 (which overflows the 24-block cache), then the rest of q1
    got = vllm_scorer.score_encoded_many([g1[:1], g2, g1[1:]])
    cached = vllm_scorer.stats.cached_tokens
    resumed = len({e.input_ids for e in g2 if not e.reason}) + 1
    assert cached[resumed] < _prefix_blocks(g1), "q1's prefix should have been evicted"
    _close(got[0] + got[2], hf_scorer.score(q1, d1, s1))
    _close(got[1], hf_scorer.score(q2, d2, s2))


@pytest.mark.slow
def test_fully_cached_repeats_use_memo_then_rerun(vllm_scorer, hf_scorer):
    rng = random.Random(7)
    q, d, s = _question(rng, "r1", 6)
    want = hf_scorer.score(q, d, s)
    _close(vllm_scorer.score(q, d, s), want)
    again = vllm_scorer.score(q, d, s)  # every prompt cached up to its last partial block
    stats = vllm_scorer.stats
    assert all(c > 0 for c in stats.cached_tokens) and stats.memo_hits > 0
    _close(again, want)
    vllm_scorer.memo.clear()
    _close(vllm_scorer.score(q, d, s), want)  # markers hidden in the cache: re-run uncached
    assert vllm_scorer.stats.reruns > 0


def test_rows_are_read_after_the_cached_tokens():
    enc = EncodedPrompt(tuple(range(10)), (3, 7, 9))
    rows = torch.stack([torch.arange(4, 10) / 10, torch.zeros(6)], dim=1)  # positions 4..9
    memo = MarkerMemo()
    approx = pytest.approx
    assert marker_probs(enc, rows, 4) == [None, approx(0.7), approx(0.9)]
    memo.put(EncodedPrompt(tuple(range(5)) + (99,), (3, 5)), [0.25, 0.5])  # shares 0..3 only
    assert marker_probs(enc, rows, 4, memo) == [0.25, approx(0.7), approx(0.9)]
    assert marker_probs(EncodedPrompt((0, 1, 2, 7), (3,)), rows[:4], 0) == [approx(0.7)]
    assert marker_probs(EncodedPrompt((0, 1, 2, 7), (3,)), rows[:1], 3, memo) == [approx(0.4)]

@pytest.mark.parametrize("n_rows,cached", [(5, 4), (7, 4), (6, None), (0, 10), (10, 0 - 1)])
def test_mismatched_rows_raise(n_rows, cached):
    enc = EncodedPrompt(tuple(range(10)), (3, 7, 9))
    with pytest.raises(PooledRowsMismatch, match="rows"):
        marker_probs(enc, torch.zeros(n_rows, 2), cached)


@pytest.mark.slow
def test_search_scores_each_new_step_from_the_cache(vllm_scorer, hf_scorer):
    """Incremental step scoring on prm-vllm (the search's scorer path): each partial solution
    scored again after one more step computes at most the new step's tokens plus one cache
    block (the rest: documents, question and earlier steps are read from the cache), and its
    newest step's P(+) is the full-solution scorer's (prm-hf, uncached) number for that step."""
    from bestofn.search import Candidate
    from bestofn.search.scoring import partial_solution, score_candidates

    rng = random.Random(11)
    q = Question("s1", "Which is most likely?", {k: rng.choice(WORDS) for k in "ABCD"})
    docs = [" ".join(rng.choices(WORDS, k=150)) for _ in range(3)]
    steps = [[f"Step {i + 1}: " + " ".join(rng.choices(WORDS, k=rng.randint(8, 40)))
              for i in range(5)] for _ in range(3)]
    cands = [Candidate(q, str(j), j) for j in range(3)]
    before: list[tuple[int, ...]] = [()] * 3
    for k in range(5):
        for c, st in zip(cands, steps, strict=True):
            c.text = "\n".join(st[: k + 1]) + "\nStep"
            c.cut = len(c.text) - len("Step")
        spent = score_candidates(vllm_scorer, cands, {q.id: docs})
        new = 0
        for j, c in enumerate(cands):
            [enc] = vllm_scorer.encode(q, docs, [partial_solution(c.scoring_text)])
            common = next((i for i, (a, b) in enumerate(zip(before[j], enc.input_ids, strict=False))
                           if a != b), min(len(before[j]), len(enc.input_ids)))
            new += len(enc.input_ids) - common
            before[j] = enc.input_ids
            [want] = hf_scorer.score(q, docs, [partial_solution(c.scoring_text)])
            assert len(c.probs) == k + 1
            assert abs(c.probs[-1] - want.probs[-1]) < 1e-4
        if k:
            assert spent <= new + 3 * BLOCK, (k, spent, new)
            assert spent < 0.5 * sum(len(b) for b in before)
