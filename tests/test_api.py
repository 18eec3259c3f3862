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


@pytest.mark.slow  # loads a model
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


# ---- the returned scores, score without select, many questions, PRM and ORM together ------

@pytest.fixture(scope="module")
def tiny_orm(tmp_path_factory):
    from bestofn.testing import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("orm"), num_labels=1)


def _questions(n: int = 3) -> list[tuple[Question, list[Solution]]]:
    out = []
    for i in range(n):
        q = Question(f"q{i}", f"Which fits case {i}?", OPTIONS)
        out.append((q, [Solution.from_text(t.replace("viral", f"viral {i}"), OPTIONS)
                        for t in TEXTS]))
    return out


def test_library_scores_equal_what_score_writes(tmp_path, tiny_llama_special, tiny_orm):
    import random

    from bestofn.cli import main
    from bestofn.testing.samples import medprm_file
    from bestofn.text.files import read_items

    src, out = tmp_path / "in.json", tmp_path / "out.json"
    medprm_file(src, random.Random(1))
    assert main(["score", "--input", str(src), "--prm", str(tiny_llama_special), "--orm",
                 str(tiny_orm), "--output", str(out), "--device", "cpu"]) == 0
    rr = Reranker(str(tiny_llama_special), orm=str(tiny_orm), device="cpu")
    written = read_items(out)
    for it, sel in zip(written, rr.select_many(read_items(src)), strict=True):
        got = rr.score(it.question, it.solutions)
        assert [s.step_probs for s in got] == [s.probs for s in it.prm]
        assert [s.aggregate for s in got] == [s.aggregate("min") for s in it.prm]
        assert [s.orm for s in got] == it.orm
        assert [s.answer for s in got] == it.answers
        assert sel.scores is not None
        assert [s.step_probs for s in sel.scores] == [s.step_probs for s in got]
        assert [s.orm for s in sel.scores] == pytest.approx([s.orm for s in got], abs=1e-5)


def test_select_reports_every_solution_and_matches_select_many(tiny_llama_special, tiny_orm):
    rr = Reranker(str(tiny_llama_special), orm=str(tiny_orm), method="weighted_final",
                  device="cpu")
    items = _questions()
    many = rr.select_many(items)
    for (q, sols), sel in zip(items, many, strict=True):
        one = rr.select(q, sols)
        assert (one.answer, one.index, one.tied) == (sel.answer, sel.index, sel.tied)
        assert one.weights == pytest.approx(sel.weights, abs=1e-6)
        assert len(one.scores) == len(sols) == len(sel.scores)
        for a, b in zip(one.scores, sel.scores, strict=True):
            assert a.step_probs == b.step_probs and a.answer == b.answer
            assert a.orm == pytest.approx(b.orm, abs=1e-5)
            assert a.aggregation == "final" and a.aggregate == a.step_probs[-1]
    # the reported weights are the step aggregates summed per answer
    sel = many[0]
    want: dict[str, float] = {}
    for s in sel.scores:
        if s.answer is not None:
            want[s.answer] = want.get(s.answer, 0.0) + s.aggregate
    assert sel.weights == pytest.approx(want)


def test_prm_and_orm_both_reported_method_decides(tiny_llama_special, tiny_orm):
    prm = HFPRMScorer(str(tiny_llama_special), device="cpu")
    from bestofn.scorers.orm_hf import HFORMScorer

    orm = HFORMScorer(str(tiny_orm), device="cpu")
    q, sols = _questions(1)[0]
    for method in ("prm_min", "orm_best", "majority"):
        both = Reranker(prm, orm=orm, method=method).select(q, sols)
        alone = Reranker(**{"prm": prm} if method == "prm_min" else {},
                         **{"orm": orm} if method == "orm_best" else {}, method=method
                         ).select(q, sols)
        assert (both.answer, both.index) == (alone.answer, alone.index)
        assert all(s.orm is not None for s in both.scores)
        assert all(s.step_probs for s in both.scores[:3])  # the 4th has no Step 2: 1 step
        assert [s.orm for s in both.scores] == orm.score(q, None, sols)
    assert Reranker(prm, method="prm_min").score(q, sols)[0].orm is None
    assert Reranker(orm=orm, method="orm_best").score(q, sols)[0].step_probs == ()


def test_cross_question_batching_splits_back_per_question(tiny_llama_special):
    from bestofn.scorers.batch import Request, TokenCounts, score_requests

    scorer = HFPRMScorer(str(tiny_llama_special), device="cpu")
    reqs = [Request(q, sols, ["a document"]) for q, sols in _questions()]
    per_question = [scorer.score(r.question, r.documents, r.solutions) for r in reqs]
    total = TokenCounts()
    batch = score_requests(scorer, reqs, total)  # every question in one call
    together = batch.results
    assert [len(x) for x in together] == [len(r.solutions) for r in reqs]
    # token counts: every prompt built; computed + cached = the scored prompts' tokens
    encoded = [e for r in reqs for e in scorer.encode(r.question, r.documents, r.solutions)]
    assert total == batch.tokens
    assert batch.tokens.solutions == len(encoded)
    assert batch.tokens.unscored == sum(e.reason is not None for e in encoded)
    assert batch.tokens.prompt_tokens == sum(len(e.input_ids) for e in encoded)
    scored = sum(len(e.input_ids) for e in encoded if not e.reason)
    assert batch.tokens.computed_tokens + batch.tokens.cached_tokens == scored
    assert batch.tokens.cached_tokens > 0  # each question's shared prefix was encoded once
    for a, b in zip(per_question, together, strict=True):
        for x, y in zip(a, b, strict=True):
            assert x.probs == pytest.approx(y.probs, abs=1e-5)


def test_selection_json_unchanged_without_scores():
    import json

    sel = best_of_n("Which?", TEXTS, options=OPTIONS, method="majority")
    assert set(sel.to_dict()) == {"answer", "method", "weights", "index", "tied", "reason",
                                  "scores"}
    assert [s.answer for s in sel.scores] == ["A", "B", "B", None]
    assert sel.scores[0].step_probs == () and sel.scores[0].orm is None
    json.dumps(sel.to_dict())
    from dataclasses import replace

    assert set(replace(sel, scores=None).to_dict()) == {"answer", "method", "weights", "index",
                                                       "tied", "reason"}


def test_select_many_refuses_a_bad_item():
    q, sols = _questions(1)[0]
    with pytest.raises(TypeError, match=r"items\[1\]"):
        Reranker(method="majority").select_many([(q, sols), "not an item"])
