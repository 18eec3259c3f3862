"""The Ray pipeline (slow: real local Ray, real actors, tiny models).

- its results equal the same run done stage by stage in this process, with and without
  retrieval (the retrieval actor searches beside sampling; the driver keeps the search cache);
- a driver killed with SIGKILL at a random point and restarted ends with an identical report;
- a worker killed mid-run is restarted by Ray and the run completes;
- a question that fails every attempt is recorded and the run goes on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bestofn.execution.ray_workers import ExecConfig
from bestofn.run import RunConfig, run
from bestofn.testing.kill import wait_for
from bestofn.testing.reports import report_without_timing, without_compute
from bestofn.testing.seeds import seeded_rng
from bestofn.text.files import write_jsonl
from bestofn.text.records import Item

pytestmark = pytest.mark.slow

Q, N = 4, 3


def cfg(out: Path, model: Path, **over) -> RunConfig:
    base = dict(out=str(out), questions=Q, n=N, policy=str(model), prm=str(model),
                policy_backend="hf", max_tokens=12, device="cpu", min_steps=0, max_steps=0)
    return RunConfig.from_settings(**{**base, **over})


def cli(out: Path, model: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bestofn.cli", "run", "--out", str(out), "--questions", str(Q),
            "-n", str(N), "--policy", str(model), "--prm", str(model), "--max-tokens", "12",
            "--device", "cpu", "--policy-backend", "hf", "--valid-steps", "off", *extra]


def items_of(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    ids = [json.loads(x)["question"]["id"] for x in lines]
    assert len(ids) == len(set(ids)), f"duplicated questions: {ids}"
    return {json.loads(x)["question"]["id"]: without_compute(json.loads(x)) for x in lines}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_llama_special):
    out = tmp_path_factory.mktemp("ref") / "run"
    run(cfg(out, tiny_llama_special), progress=False)
    return out


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # a run of another module started one and left it up
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def test_pipeline_equals_in_process_run(local_ray, reference, tmp_path, tiny_llama_special):
    """The same jobs on the same loop, the engines on actors: the same items."""
    out = tmp_path / "ray"
    rep = run(cfg(out, tiny_llama_special), progress=False, ex=ExecConfig())
    assert rep["failed"] == 0 and rep["n_questions"] == Q
    assert items_of(out) == items_of(reference)
    assert report_without_timing(out / "report.json") == report_without_timing(
        reference / "report.json")


@pytest.mark.parametrize("adaptive", [{}, {"adaptive": "esc:w=2"}], ids=["fixed", "streamed"])
def test_failing_question_is_recorded_and_the_run_goes_on(local_ray, reference, tmp_path,
                                                          adaptive):
    """The bad question's samples fail alone; the other questions finish, and the run driver
    tries the bad one again (fixed N and a streamed adaptive run alike)."""
    stored = [Item.from_dict(d) for d in items_of(reference).values()]
    replay = tmp_path / "replay.jsonl"
    write_jsonl(replay, stored[:-1])  # the last question has no stored solutions
    out = tmp_path / "run"
    rep = run(cfg(out, replay, policy_backend="replay", prm=None, **adaptive), progress=False,
              ex=ExecConfig(max_attempts=2))
    assert rep["failed"] == 1 and rep["n_questions"] == Q - 1
    [fail] = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert fail["question_id"] == stored[-1].question.id and fail["attempts"] == 2
    assert fail["stage"] == "solve" and fail["error"].startswith("MissingQuestion: ")
    assert "no solutions for question" in fail["error"]


@pytest.fixture(scope="module")
def small_index(tmp_path_factory) -> Path:
    from retrieval import build_index

    folder = tmp_path_factory.mktemp("index")
    corpus = folder / "corpus.jsonl"
    topics = ["tendon injury", "ethics of disclosure", "renal failure", "pneumonia", "anemia",
              "myocardial infarction", "meningitis"]
    corpus.write_text("".join(json.dumps({"id": str(i), "text": f"Passage {i} about {t}."}) + "\n"
                              for i, t in enumerate(topics)))
    build_index(corpus, folder / "index", "minilm", progress=False)
    return folder / "index"


def test_pipeline_with_an_index_equals_in_process_run(local_ray, tmp_path, tiny_llama_special,
                                                      small_index):
    rag = dict(index=str(small_index), k=2, use_docs=True)
    ref, out = tmp_path / "ref", tmp_path / "ray"
    run(cfg(ref, tiny_llama_special, **rag), progress=False)
    rep = run(cfg(out, tiny_llama_special, **rag), progress=False,
              ex=ExecConfig())
    assert rep["failed"] == 0 and rep["n_questions"] == Q
    got = items_of(out)
    assert all(len(d["question"]["documents"]) == 2 for d in got.values())
    assert got == items_of(ref)
    assert report_without_timing(out / "report.json") == report_without_timing(
        ref / "report.json")
    stages = [w["stage"] for w in json.loads((out / "workers.json").read_text())]
    assert stages == ["policy", "scorer", "retriever"]
    cache = out / "retrieval" / "retrieval_cache.jsonl"
    assert len(cache.read_text().splitlines()) == Q

    # a run folder that already holds search results reads them instead of searching
    again = tmp_path / "again"
    (again / "retrieval").mkdir(parents=True)
    rows = [json.loads(x) for x in cache.read_text().splitlines()]
    for r in rows:
        r["documents"][0]["text"] = f"cached for {r['question_id']}"
    (again / "retrieval" / cache.name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    run(cfg(again, tiny_llama_special, **{**rag, "prm": None}), progress=False,
        ex=ExecConfig())
    for qid, d in items_of(again).items():
        assert d["question"]["documents"][0]["text"] == f"cached for {qid}"


def test_an_index_that_cannot_be_opened_stops_the_run(local_ray, tmp_path, tiny_llama_special):
    missing = tmp_path / "no-index"
    missing.mkdir()  # a folder, so the run starts and the retrieval actor fails to open it
    with pytest.raises(FileNotFoundError, match="not an index folder"):
        run(cfg(tmp_path / "run", tiny_llama_special, index=str(missing), use_docs=True),
            progress=False, ex=ExecConfig())


def _lines(out: Path) -> int:
    p = out / "results.jsonl"
    return len(p.read_text().splitlines()) if p.exists() else 0


def _kill_group(proc: subprocess.Popen) -> None:
    with_pg = os.getpgid(proc.pid)
    os.killpg(with_pg, signal.SIGKILL)
    proc.wait()


def test_driver_killed_at_random_point_resumes_identically(reference, tmp_path,
                                                           tiny_llama_special):
    out = tmp_path / "run"
    rng = seeded_rng("kill point")
    stop_after = rng.randint(0, Q - 1)
    proc = subprocess.Popen(cli(out, tiny_llama_special), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _lines(out) >= stop_after, 600, proc)
    time.sleep(rng.random())
    _kill_group(proc)
    done = subprocess.run(cli(out, tiny_llama_special), capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert items_of(out) == items_of(reference)
    assert report_without_timing(out / "report.json") == report_without_timing(
        reference / "report.json")


def test_killed_worker_is_restarted_and_the_run_completes(reference, tmp_path,
                                                          tiny_llama_special):
    out = tmp_path / "run"
    proc = subprocess.Popen(cli(out, tiny_llama_special), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (out / "workers.json").exists(), 600, proc)
    policy_pid = json.loads((out / "workers.json").read_text())[0]["pid"]
    os.kill(policy_pid, signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == 0, err[-2000:]
    assert items_of(out) == items_of(reference)


def test_readme_main_job_path_samples_with_vllm_on_ray(tmp_path, tiny_llama_special):
    """The main job's path: default policy backend (vLLM here) inside a Ray actor."""
    pytest.importorskip("vllm")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bestofn.cli", "run", "--out", str(out), "--questions", "2",
           "-n", "3", "--policy", str(tiny_llama_special), "--prm", str(tiny_llama_special),
           "--max-tokens", "12", "--device", "cpu", "--valid-steps", "off"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "config.json").read_text())["policy_backend"] == "vllm"
    items = items_of(out)
    assert sorted(items) == ["0", "1"]
    assert all(len(it["solutions"]) == 3 and len(it["prm"]) == 3 for it in items.values())
    assert all(s["meta"].get("finish_reason") for it in items.values() for s in it["solutions"])
    assert (out / "accuracy_vs_n.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


_DRIVER = ("import json, sys\n"
           "from bestofn.cli import main\n"
           "rc = main(sys.argv[1:])\n"
           "print(json.dumps({'rc': rc, 'loaded': sorted(m for m in ('faiss', "
           "'sentence_transformers') if m in sys.modules)}))\n")
"""A run in a fresh process that reports which retrieval libraries the driver loaded."""


def test_an_adaptive_run_on_ray_retrieves_on_the_actor_and_reuses_the_cache(
        local_ray, reference, tmp_path, small_index):
    """The driver of an adaptive Ray run loads neither FAISS nor the embedder: the retrieval
    actor searches, the driver writes the run folder's search cache, and a resumed run reads
    its documents from that cache."""
    stored = [Item.from_dict(d) for d in items_of(reference).values()]
    replay = tmp_path / "replay.jsonl"
    write_jsonl(replay, stored)
    out = tmp_path / "run"
    args = ["run", "--out", str(out), "--questions", str(Q), "-n", str(N), "--policy",
            str(replay), "--policy-backend", "replay", "--prm", "none", "--adaptive",
            "esc:w=2", "--index", str(small_index), "-k", "2"]

    def driver() -> None:
        done = subprocess.run([sys.executable, "-c", _DRIVER, *args], capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.splitlines()[-1]) == {"rc": 0, "loaded": []}

    driver()
    stages = [w["stage"] for w in json.loads((out / "workers.json").read_text())]
    assert stages == ["policy", "retriever"]
    got = items_of(out)
    assert sorted(got) == sorted(it.question.id for it in stored)
    assert all(len(d["question"]["documents"]) == 2 for d in got.values())
    cache = out / "retrieval" / "retrieval_cache.jsonl"
    rows = [json.loads(x) for x in cache.read_text().splitlines()]
    assert sorted(r["question_id"] for r in rows) == sorted(got)
    assert all(r["documents"] == got[r["question_id"]]["question"]["documents"] for r in rows)

    # a resume finds every question's documents in the run folder's cache
    for r in rows:
        r["documents"][0]["text"] = f"cached for {r['question_id']}"
    cache.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("results.jsonl", "rounds.jsonl"):
        (out / name).unlink()
    driver()
    assert len(cache.read_text().splitlines()) == Q, "nothing searched again"
    for qid, d in items_of(out).items():
        assert d["question"]["documents"][0]["text"] == f"cached for {qid}"
