"""The vLLM pooling backend scores the same tokens as the transformers backend (slow: engine)."""

from __future__ import annotations

import random

import pytest

from bestofn.records import Question, Solution
from bestofn.scorers.prm_hf import HFPRMScorer

from .test_prm_scoring import WORDS, random_solution

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_scorer(tiny_llama_split):
    pytest.importorskip("vllm")
    from bestofn.scorers.prm_vllm import VLLMPRMScorer

    scorer = VLLMPRMScorer(str(tiny_llama_split), device="cpu", max_len=2048, doc_reserve=1024)
    yield scorer
    del scorer.llm


def test_vllm_and_transformers_backends_agree(vllm_scorer, tiny_llama_split):
    rng = random.Random(5)
    hf = HFPRMScorer(str(tiny_llama_split), device="cpu", max_len=2048, doc_reserve=1024)
    q = Question("q", "Which is most likely?", {k: rng.choice(WORDS) for k in "ABCD"})
    docs = [" ".join(rng.choices(WORDS, k=60)) + " ки" for _ in range(3)]
    sols = [Solution.from_text(random_solution(rng), q.options) for _ in range(16)]
    sols.append(Solution("no marker", "no marker", "A"))
    got, want = vllm_scorer.score(q, docs, sols), hf.score(q, docs, sols)
    assert not got[-1].scored and got[-1].reason == want[-1].reason
    for a, b in zip(got[:-1], want[:-1], strict=True):
        assert len(a.probs) == len(b.probs) >= 1
        assert max(abs(x - y) for x, y in zip(a.probs, b.probs, strict=True)) < 1e-4
