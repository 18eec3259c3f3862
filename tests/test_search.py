"""Search strategies (spec parsing, pruning arithmetic) and incremental step scoring against the
full-solution scorer on the tiny Llama PRMs (no engine)."""

from __future__ import annotations

import pytest

from bestofn.scorers.prm_hf import HFPRMScorer
from bestofn.search import Candidate, Live, format_strategy, parse_strategy
from bestofn.search.job import SearchJob
from bestofn.search.scoring import partial_solution, score_candidates
from bestofn.search.stepwise import StepFormat, header_cut
from bestofn.search.strategies import DVTS, Beam, Particles, Reject
from bestofn.text.records import Question, StepScores


def live(*scores: float | None, groups: list[int] | None = None) -> list[Live]:
    return [Live(groups[i] if groups else i, None if s is None else (0.5, s))
            for i, s in enumerate(scores)]


@pytest.mark.parametrize("spec", ["beam", "beam:width=2,agg=min", "dvts:width=4",
                                  "reject:alpha=0.25,every=2", "particles:resample=off"])
def test_specs_round_trip(spec):
    s = parse_strategy(spec)
    assert parse_strategy(format_strategy(s)) == s


def test_last_is_read_as_final():
    """`agg=last`, the former name of the final step's score, reads as `final` (the name every
    other module uses), so older search run folders resume."""
    for name in ("beam", "dvts", "reject"):
        s = parse_strategy(f"{name}:agg=last")
        assert s == parse_strategy(name) and s.agg == "final"
    scores = (0.9, 0.2, 0.6)
    assert Live(0, scores).key("final") == StepScores(scores).aggregate("final") == 0.6
    assert Live(0, scores).key("min") == StepScores(scores).aggregate("min") == 0.2


@pytest.mark.parametrize("spec, message", [
    ("nope", "unknown search strategy 'nope'"),
    ("beam:width=x", "must be an integer"),
    ("beam:depth=2", "unknown parameter 'depth'"),
    ("beam:width=0", "width must be >= 1"),
    ("reject:alpha=1", "alpha < 1"),
    ("reject:alpha", "expected key=value"),
    ("particles:resample=maybe", "resample must be on|off"),
])
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_strategy(spec)


def test_beam_keeps_the_best_and_expands_them():
    assert Beam(width=2).plan(live(0.1, 0.9, 0.5, 0.7), 0) == [0, 2, 0, 2]
    # 5 live, width 2: the best 3 continue, 2 + 2 + 1 children (the pool never grows)
    assert Beam(width=2).plan(live(0.1, 0.9, 0.5, 0.7, 0.2), 0) == [0, 2, 1, 2, 0]
    assert Beam(width=1).plan(live(0.1, None, 0.5), 0) == [1, 1, 1]
    # min aggregation ranks by the weakest step: (0.5, 0.9) beats (0.4, 0.99)
    lv = [Live(0, (0.5, 0.9)), Live(1, (0.4, 0.99))]
    assert Beam(width=2, agg="min").plan(lv, 0) == [2, 0]
    assert Beam(width=2).plan(lv, 0) == [0, 2]


def test_dvts_keeps_one_per_subtree():
    lv = live(0.1, 0.9, 0.5, 0.7, 0.3, groups=[0, 0, 1, 1, 1])
    assert DVTS(width=3).plan(lv, 0) == [0, 2, 0, 3, 0]
    assert DVTS(width=3).groups(9) == 3


def test_reject_drops_the_lowest_fraction_on_its_steps():
    lv = live(0.1, 0.9, None, 0.7, 0.3, 0.5)
    assert Reject(alpha=0.5).plan(lv, 0) == [0, 1, 1, 1, 0, 0]
    assert Reject(alpha=0.5, every=2).plan(lv, 0) == [1] * 6
    assert Reject(alpha=0.5, every=2).plan(lv, 1) == [0, 1, 1, 1, 0, 0]
    assert Reject(alpha=0.0).plan(lv, 0) == [1] * 6
    assert Reject(alpha=0.9).plan(live(0.2), 0) == [1]  # one always survives


def test_header_cut():
    assert header_cut("a.\n## Step", "Step") == 3
    assert header_cut("a.\nStep 2", "Step") == 3
    assert header_cut("a. Steps", "Step") == 3
    assert header_cut("abc", "Step") == 3


Q = Question(id="q1", stem="A patient presents with fever and cough. Most likely diagnosis?",
             options={"A": "pneumonia", "B": "asthma", "C": "sepsis"}, answer="A")
TEXT = ("## Step 1: The patient has fever and cough.\n"
        "## Step 2: Chest x-ray shows consolidation, consistent with infection.\n"
        "## Step 3: Bacterial pneumonia is most likely.\nThe answer is (A).")
DOCS = ["Pneumonia presents with fever, cough and consolidation on chest x-ray.",
        "Asthma causes wheezing and shortness of breath."]


@pytest.mark.slow
@pytest.mark.parametrize("marker", ["special", "split"])
def test_partial_scores_equal_the_full_solution_scores(marker, request):
    path = request.getfixturevalue(f"tiny_llama_{marker}")
    prm = HFPRMScorer(str(path), device="cpu")
    [full] = prm.score(Q, DOCS, [partial_solution(TEXT)])
    assert len(full.probs) == 3
    # partial solutions as step-wise generation leaves them: cut where "\n## Step" begins
    # (the engine stops on "Step"; the completing token may carry a character more)
    cands = []
    for k, end in enumerate([TEXT.index("Step 2") + 5, TEXT.index("Step 3") + 4]):
        cut = header_cut(TEXT[:end], "Step")
        assert TEXT[cut:end].startswith("## Step")
        cands.append(Candidate(Q, str(k), k, text=TEXT[:end], cut=cut))
    cands.append(Candidate(Q, "2", 2, text=TEXT))
    # a second question in the same call: batching across questions changes nothing
    other = Question(id="q2", stem="Which drug lowers glucose?", options={"A": "insulin"})
    o = Candidate(other, "0", 0, text="Step 1: Insulin lowers glucose. The answer is (A).")
    spent = score_candidates(prm, [*cands, o], {"q1": DOCS, "q2": None})
    assert spent > 0
    for k, c in enumerate(cands):
        assert len(c.probs) == k + 1
        assert c.probs[-1] == pytest.approx(full.probs[k], abs=1e-4)
        assert c.probs == pytest.approx(full.probs[: k + 1], abs=1e-4)
    assert o.probs is not None and len(o.probs) == 1
    # unchanged texts are not scored again
    assert score_candidates(prm, cands, {"q1": DOCS}) == 0


@pytest.mark.parametrize("extra, message", [
    (["--search", "beam:width=0"], "width must be >= 1"),
    (["--search", "nope"], "unknown search strategy"),
    (["--search", "beam", "--prm", "none"], "search needs a PRM"),
    (["--search", "beam", "--policy-backend", "hf"], "needs --policy-backend vllm"),
])
def test_run_refuses_bad_search_before_writing(tmp_path, capsys, extra, message):
    from bestofn.cli import main

    out = tmp_path / "r"
    argv = ["run", "--out", str(out), "--questions", "1", "-n", "2", "--policy", "p",
            "--prm", "m", "--valid-steps", "off", "--no-ray", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_particles_resample_by_the_odds_of_the_latest_score():
    lv = live(0.5, 0.99, 0.01, 0.5)
    plan = Particles().plan(lv, 0)
    assert sum(plan) == 4 and plan == Particles().plan(lv, 0)  # seeded: the same draw
    assert Particles(resample="off").plan(lv, 0) == [1, 1, 1, 1]
    # odds 1 : 99 : ~0.01 : 1 -> over many draws the 0.99 particle takes ~97% of the children
    total = [0] * 4
    for step in range(200):
        for i, k in enumerate(Particles(seed=step).plan(lv, step)):
            total[i] += k
    assert total[1] / 800 == pytest.approx(99 / 101.01, abs=0.03) and total[2] <= 2


def _job(strategy, n: int) -> SearchJob:
    from policies import SamplingConfig

    return SearchJob(Question(id="q", stem="s", options={"A": "a"}, answer="A"), strategy, n,
                     SamplingConfig(max_tokens=64), StepFormat(), (), None, None)


def test_particles_keep_finished_particles_in_the_pool():
    """A finished particle with a high score is drawn again (copied); the pool stays N."""
    job = _job(Particles(seed=3), 4)
    for c, p, done in zip(job.live, (0.999, 0.01, 0.01, 0.01), (True, False, False, False),
                          strict=True):
        c.probs, c.done, c.text = (p,), done, f"text {c.lineage}"
    job._plan()
    assert len(job.ended) + len(job.live) == 4
    assert len(job.ended) >= 2 and {c.text for c in job.ended} == {"text 0"}
    assert job.log[0]["finished"] == 1 and job.log[0]["next"] == len(job.live)


def test_beam_drops_finished_candidates_from_the_pool():
    job = _job(Beam(width=2), 4)
    assert job.next_indices(8) == [0, 1, 2, 3]
    for c, p, done in zip(job.live, (0.999, 0.9, 0.2, 0.1), (True, False, False, False),
                          strict=True):
        c.probs, c.done = (p,), done
    job._plan()
    assert [c.lineage for c in job.ended] == ["0"]
    assert [c.lineage for c in job.live] == ["1", "1.0.1", "2"]
    assert job.waiting == [4, 5, 6] and job.log[0]["pruned"] == 1


def test_a_failed_question_settles_as_a_failure_and_ignores_late_scores():
    from bestofn.execution.driver import Failed
    from bestofn.search.scoring import ScoreWork

    job = _job(Beam(width=2), 2)
    job.next_indices(2)
    job.in_scoring = True
    job.fail("verify", ValueError("the scorer broke"))
    assert not job.settled()  # its scoring is still out
    job.scored(ScoreWork.of(job.question, job.live),
               [(StepScores((0.5,)), None), (StepScores((0.5,)), None)], 7)
    assert job.settled() and job.compute.prm_tokens_computed == 0
    out = job.outcome()
    assert isinstance(out, Failed) and out.stage == "verify" and "the scorer broke" in out.error


def test_the_search_marks_its_scoring_requests_partial():
    """A search's scoring requests are `Request.partial` (prm-hf scores them from its segment
    cache); full-solution scoring (best-of-N) is not marked (its row-batched path)."""
    from bestofn.execution.scoring import Verifiers, score_pairs
    from bestofn.scorers.protocol import ScoredBatch, TokenCounts

    seen: list[bool] = []

    class Recording:
        kind = "prm"

        def score_batch(self, requests):
            seen.extend(r.partial for r in requests)
            return ScoredBatch([[StepScores(probs=(0.5,)) for _ in r.solutions]
                                for r in requests], TokenCounts(), None)

    q = Question("q", "Which?", {"A": "x", "B": "y"})
    sols = [partial_solution("Step 1: x.")]
    score_pairs(Verifiers(Recording()), [(q, sols)], False, prm_only=True)
    score_pairs(Verifiers(Recording()), [(q, sols)], False)
    c = Candidate(q, "0", 0)
    c.text, c.cut = "Step 1: x.\nStep", len("Step 1: x.") + 1
    score_candidates(Recording(), [c], {})
    assert seen == [True, False, True]
