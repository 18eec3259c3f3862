"""prm-hf's key/value cache of a search's partial solutions (`Request.partial`): segments, the
byte bound, eviction, the freeing of pruned candidates, and scores that never depend on what
the cache holds (bit for bit against no cache; 1e-5 against the published loop), step by step
as a search scores partial solutions, across pruning and eviction. Full-solution requests
(best-of-N) keep the row-batched path: they neither read nor fill the cache."""

from __future__ import annotations

import random

import pytest
import torch

from bestofn.scorers.batch import Request, score_requests
from bestofn.scorers.kv_store import GIB, KVStore, kv_bytes
from bestofn.scorers.prm_prompt import EncodedPrompt
from bestofn.scorers.prm_segments import prefix_length, segments
from bestofn.search.scoring import partial_solution
from bestofn.testing.samples import WORDS
from bestofn.text.records import Question, Solution
from bestofn.text.steps import split_steps


def _kv(tokens: int, layers: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.zeros(1, 2, tokens, 4), torch.zeros(1, 2, tokens, 4)) for _ in range(layers)]


@pytest.mark.parametrize("seed", range(5))
def test_the_store_never_holds_more_than_its_bound(seed):
    rng = random.Random(seed)
    limit = rng.randint(1, 40) * kv_bytes(_kv(1))
    store = KVStore(limit)
    for i in range(200):
        store.put(i.to_bytes(4, "little"), _kv(rng.randint(1, 12)), None, f"q{rng.randint(0, 3)}")
        assert store.bytes <= limit
        assert store.bytes == sum(e.nbytes for e in store._entries.values())
    assert store.evicted > 0


def test_least_recently_used_is_evicted_first_and_an_oversized_entry_is_not_kept():
    one = kv_bytes(_kv(1))
    store = KVStore(3 * one)
    for k in (b"a", b"b", b"c"):
        store.put(k, _kv(1), 0.5, "q")
    assert store.get(b"a", "q") is not None  # a is now the most recently used
    store.put(b"d", _kv(1), None, "q")
    assert b"b" not in store and {b"a", b"c", b"d"} <= set(store._entries)
    store.put(b"big", _kv(4), None, "q")
    assert b"big" not in store and store.bytes == 3 * one


def test_release_frees_what_no_one_keeps():
    store = KVStore(10**9)
    for k in (b"prefix", b"s1", b"s2a", b"s2b"):
        store.put(k, _kv(2), None, "q1")
    store.get(b"prefix", "q2")  # another question claims the same segment
    freed = store.release("q1", keep={b"s1", b"s2a"})
    assert freed == 1 * kv_bytes(_kv(2))  # s2b; the prefix is still q2's
    assert set(store._entries) == {b"prefix", b"s1", b"s2a"}
    store.release("q1")
    assert set(store._entries) == {b"prefix"} and store.owned("q1") == set()
    store.release("q2")
    assert len(store) == 0 and store.bytes == 0


def test_segments_end_at_markers_and_an_extended_prompt_shares_its_keys():
    e = EncodedPrompt(tuple(range(100, 160)), (44, 51), solution_start=40)
    longer = EncodedPrompt(tuple(range(100, 170)), (44, 51, 69), solution_start=40)
    assert prefix_length(e, True, 32) == 40 and prefix_length(e, True, 41) == 0
    assert prefix_length(e, False, 0) == 0
    segs = segments(e, 40, 4096)
    assert [(s.start, s.end, s.marker) for s in segs] == [(0, 40, False), (40, 45, True),
                                                           (45, 52, True)]
    more = segments(longer, 40, 4096)
    assert [s.key for s in more[:3]] == [s.key for s in segs]
    pieces = segments(e, 40, 16)
    assert [(s.start, s.end) for s in pieces] == [(0, 16), (16, 32), (32, 40), (40, 45), (45, 52)]
    assert [s.marker for s in pieces] == [False, False, False, True, True]
    # a different token anywhere before a segment gives it another key
    other = EncodedPrompt((7,) + e.input_ids[1:], e.marker_positions, solution_start=40)
    assert not {s.key for s in segments(other, 40, 4096)} & {s.key for s in segs}


# --- on a tiny random Llama PRM (slow tier) ---

Q = Question("q1", "A 40-year-old man has fever and cough. Which is most likely?",
             {"A": "flu", "B": "cold", "C": "sepsis", "D": "asthma"})


def _texts(rng: random.Random, n: int) -> list[str]:
    """Solutions of 3-5 steps (a search scores each after every step)."""
    return ["\n".join(f"Step {i + 1}: {' '.join(rng.choices(WORDS, k=rng.randint(4, 16)))}"
                      for i in range(rng.randint(3, 5))) + f" the answer is ({rng.choice('AB')})."
            for _ in range(n)]


def _cut(text: str, t: int) -> str:
    return "\n".join(split_steps(text)[: t + 1])


def _search(prm, texts, docs, prune):
    """A search over fixed paths: after step t every live path's first t+1 steps are scored
    in one partial request; `prune(t, live)` says which survive (the others are not sent
    again, so the scorer frees them). Returns every round's live paths, scores and tokens
    computed."""
    live, rounds = list(range(len(texts))), []
    for t in range(max(len(split_steps(x)) for x in texts)):
        live = [i for i in live if t < len(split_steps(texts[i]))]
        if not live:
            break
        sols = [partial_solution(_cut(texts[i], t)) for i in live]
        got = score_requests(prm, [Request(Q, sols, docs, partial=True)])
        rounds.append((list(live), [s.probs for s in got.results[0]],
                       got.tokens.computed_tokens))
        live = prune(t, live)
    return rounds


def _halve(t, live):
    return live[: max(1, len(live) // 2)] if t % 2 == 0 else live


@pytest.mark.slow
@pytest.mark.parametrize("marker", ["special", "split"])
def test_cached_scores_equal_uncached_and_published_scores(marker, request):
    """Scored step by step with the cache (pruning, and a small bound that evicts), the scores
    are those of a scorer with no cache, bit for bit, and the published loop's within 1e-5;
    each round computes only the new steps' tokens (the prefix once)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bestofn.scorers.prm_hf import HFPRMScorer
    from bestofn.testing.references import published_scores

    path = request.getfixturevalue(f"tiny_llama_{marker}")
    rng = random.Random(3)
    texts, docs = _texts(rng, 6), [" ".join(rng.choices(WORDS, k=60)) for _ in range(2)]
    cached = HFPRMScorer(str(path), device="cpu")
    prefix = cached.encode(Q, docs, [partial_solution(texts[0])])[0].solution_start
    cfg = cached.model.config
    per_token = 2 * 4 * cfg.num_hidden_layers * cfg.num_key_value_heads * (
        getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    # room for the prefix and ~40 more tokens: segments are evicted at every step
    small = HFPRMScorer(str(path), device="cpu", cache_gb=per_token * (prefix + 40) / GIB)
    plain = HFPRMScorer(str(path), device="cpu", cache_gb=0)
    a = _search(cached, texts, docs, _halve)
    b = _search(small, texts, docs, _halve)
    c = _search(plain, texts, docs, _halve)
    assert [r[1] for r in a] == [r[1] for r in b] == [r[1] for r in c]
    assert small.store.evicted > 0 and small.store.bytes <= small.store.limit_bytes
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(path)
    for t, (live, probs, _) in enumerate(a):
        for i, p in zip(live, probs, strict=True):
            ref = published_scores(model, tok, Q.text(), partial_solution(_cut(texts[i], t)).marked,
                                   docs)
            assert len(p) == len(ref) == t + 1
            assert max(abs(x - y) for x, y in zip(p, ref, strict=True)) < 1e-5
    # tokens: the first round computes the prefix once and every path's first step; later
    # rounds only each live path's new step (its tokens up to and with its marker)
    for t in range(1, len(a)):
        live = a[t][0]
        new = sum(len(_ids(cached, texts[i], t, docs)) - len(_ids(cached, texts[i], t - 1, docs))
                  for i in live)
        assert a[t][2] == new
        assert c[t][2] > new  # no cache: the prefix and the earlier steps again


def _ids(prm, text, t, docs):
    [e] = prm.encode(Q, docs, [partial_solution(_cut(text, t))])
    return e.input_ids


@pytest.mark.slow
def test_a_pruned_candidate_frees_its_segments(tiny_llama_split):
    """The next partial request of a question keeps only the segments its solutions use: the
    candidates left out (pruned) are freed, the kept one's earlier segments are read."""
    from bestofn.scorers.prm_hf import HFPRMScorer

    prm = HFPRMScorer(str(tiny_llama_split), device="cpu")
    rng = random.Random(5)
    texts, docs = _texts(rng, 4), [" ".join(rng.choices(WORDS, k=40))]
    sols = [partial_solution(_cut(x, 1)) for x in texts]
    score_requests(prm, [Request(Q, sols, docs, partial=True)])
    keys = [set(_keys(prm, e)) for e in prm.encode(Q, docs, sols)]
    assert set.union(*keys) == prm.store.owned(Q.id) == set(prm.store._entries)
    before = prm.store.bytes
    longer = [partial_solution(_cut(texts[0], 2))]  # the other three are pruned
    got = score_requests(prm, [Request(Q, longer, docs, partial=True)])
    [e] = prm.encode(Q, docs, longer)
    assert got.tokens.computed_tokens == len(e.input_ids) - len(prm.encode(Q, docs, sols)[0]
                                                                .input_ids)
    assert keys[0] < set(_keys(prm, e)) == prm.store.owned(Q.id) == set(prm.store._entries)
    assert prm.store.bytes < before


def _keys(prm, e):
    return [s.key for s in segments(e, prefix_length(e, True, prm.min_shared_prefix),
                                    prm.max_batch_tokens)]


@pytest.mark.slow
def test_solutions_of_another_question_are_not_freed(tiny_llama_split):
    from bestofn.scorers.prm_hf import HFPRMScorer

    prm = HFPRMScorer(str(tiny_llama_split), device="cpu")
    other = Question("q2", Q.stem, Q.options)  # same prompt: shares every segment
    sol = [Solution.from_text("Step 1: fever so flu.\nStep 2: the answer is (A).")]
    first = score_requests(prm, [Request(Q, sol, None, partial=True),
                                 Request(other, sol, None, partial=True)])
    assert first.tokens.computed_tokens == len(prm.encode(Q, None, sol)[0].input_ids)
    assert first.request_tokens == [first.tokens.computed_tokens, 0]
    n = len(prm.store)
    new = [Solution.from_text("Step 1: cough so cold.\nStep 2: the answer is (B).")]
    score_requests(prm, [Request(Q, new, None, partial=True)])
    assert set(prm.store.owned(other.id)) <= set(prm.store._entries)  # still q2's
    assert len(prm.store) > n
    prm.store.release(other.id)
    prm.store.release(Q.id)
    assert len(prm.store) == 0 and prm.store.bytes == 0


@pytest.mark.slow
def test_full_solutions_keep_the_row_batched_path(tiny_llama_split):
    """A best-of-N request (not partial) is scored as before the cache, bit for bit, and
    neither reads nor fills it; its scores and the partial path's agree within 1e-5."""
    from bestofn.scorers.prm_hf import HFPRMScorer

    rng = random.Random(9)
    texts, docs = _texts(rng, 5), [" ".join(rng.choices(WORDS, k=40))]
    sols = [Solution.from_text(x, Q.options) for x in texts]
    prm = HFPRMScorer(str(tiny_llama_split), device="cpu")
    plain = HFPRMScorer(str(tiny_llama_split), device="cpu", cache_gb=0)
    partial = score_requests(prm, [Request(Q, sols, docs, partial=True)])
    stored = set(prm.store._entries)
    full = score_requests(prm, [Request(Q, sols, docs)])
    assert set(prm.store._entries) == stored
    alone = score_requests(plain, [Request(Q, sols, docs)])
    assert [s.probs for s in full.results[0]] == [s.probs for s in alone.results[0]]
    assert full.tokens == alone.tokens and len(plain.store) == 0
    for a, b in zip(full.results[0], partial.results[0], strict=True):
        assert max(abs(x - y) for x, y in zip(a.probs, b.probs, strict=True)) < 1e-5
