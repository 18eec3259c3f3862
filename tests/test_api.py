"""The library call: best_of_n / Reranker on one question."""

from __future__ import annotations

import pytest

from bestofn import Question, Reranker, Solution, best_of_n
from bestofn.scorers.prm_hf import HFPRMScorer

OPTIONS = {"A": "flu", "B": "cold", "C": "sepsis"}
TEXTS = ["Step 1: viral. Step 2: the answer is (A).", "Step 1: hm. Step 2: the answer is (B).",
         "Step 1: ok. Step 2: the answer is (B).", "Step 1: no idea."]


def test_majority_needs_no_verifier():
    sel = best_of_n("Which?", TEXTS, options=OPTIONS, method="majority")
    assert sel.answer == "B" and sel.weights == {"A": 1.0, "B": 2.0}


def test_prm_best_of_n_picks_the_top_scored_solution(tiny_llama_special):
    scorer = HFPRMScorer(str(tiny_llama_special), device="cpu")
    q = Question("q", "Which?", OPTIONS)
    sols = [Solution.from_text(t, OPTIONS) for t in TEXTS]
    sel = Reranker(scorer, method="prm_min").select(q, sols)
    mins = [s.aggregate("min") for s in scorer.score(q, None, sols)]
    best = max(i for i in range(3) if mins[i] == max(mins[:3]))
    assert sel.index == best and sel.answer == sols[best].answer
    by_path = best_of_n(q, TEXTS, prm=str(tiny_llama_special), method="prm_min", device="cpu")
    assert by_path.answer == sel.answer and by_path.index == sel.index


def test_bad_method_and_missing_verifier():
    with pytest.raises(ValueError, match="unknown method"):
        best_of_n("Q", TEXTS, method="best")
    with pytest.raises(ValueError, match="needs a verifier"):
        best_of_n("Q", TEXTS, method="prm_min")
    with pytest.raises(ValueError, match="at least one solution"):
        best_of_n("Q", [], method="majority")


def test_orm_best_of_n_uses_the_outcome_reward(tmp_path):
    from bestofn.scorers.orm_hf import HFORMScorer
    from bestofn.testing import build_tiny_llama

    orm = HFORMScorer(str(build_tiny_llama(tmp_path / "orm", num_labels=1)), device="cpu")
    q = Question("q", "Which?", OPTIONS)
    sols = [Solution.from_text(t, OPTIONS) for t in TEXTS]
    rewards = orm.score(q, None, sols)
    sel = Reranker(orm=orm, method="orm_best").select(q, sols)
    best = max(range(3), key=lambda i: rewards[i])
    assert sel.index == best and sel.answer == sols[best].answer
    with pytest.raises(ValueError, match="pass orm=MODEL"):
        Reranker(prm="x", method="orm_weighted")
