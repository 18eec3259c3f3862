"""`bestofn serve` under load and faults (issue 30): 64 concurrent clients with a PRM, a client
that disconnects mid-request, graceful drain on SIGTERM, an engine whose process is killed,
the per-key limit and what error bodies may carry. Real servers on loopback (uvicorn in a
thread, or `bestofn serve` as its own process), the official `openai` client, tiny models."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import openai
import pytest

from bestofn import Reranker, best_of_n
from bestofn.serve import ServeConfig, create_app, make_question
from bestofn.serve.app import scrubbed
from bestofn.serve.thread import serve_in_thread
from bestofn.testing.serving import GatedPolicy, prompt, start_cli_server, texts, write_replay
from policies import make_policy

N_QUESTIONS = 16
CFG = ServeConfig(n=6, max_n=8, max_tokens=64, batch_wait_s=0.05, timeout_s=60)


@pytest.fixture(scope="module")
def replay_file(tmp_path_factory):
    return write_replay(tmp_path_factory.mktemp("faults") / "solutions.jsonl", N_QUESTIONS)


def chat(url, i=0, timeout=60, headers=None, **ext):
    return httpx.post(url + "/v1/chat/completions", timeout=timeout, headers=headers,
                      json={"messages": [{"role": "user", "content": prompt(i)}],
                            **({"bestofn": ext} if ext else {})})


def metric(url, name):
    text = httpx.get(url + "/metrics").text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def wait_until(pred, timeout=30.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_64_clients_with_a_prm_get_200_or_429_and_the_library_answers(replay_file,
                                                                      tiny_llama_special):
    """64 clients at once over 16 questions: every request is answered 200 or
    429 (with Retry-After), never 5xx; each answer is `best_of_n`'s on the same solutions;
    the PRM scored several requests' solutions in one call."""
    from bestofn.scorers.prm_hf import HFPRMScorer

    prm = HFPRMScorer(str(tiny_llama_special), device="cpu")
    cfg = replace(CFG, queue_size=24, max_batch=16)
    app = create_app(cfg, Reranker(prm, method="prm_min"),
                     make_policy("replay", model=str(replay_file)))
    want = {i: best_of_n(make_question(prompt(i)), texts(i), prm=prm, method="prm_min")
            for i in range(N_QUESTIONS)}

    def client_loop(c: int) -> list:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
        out = []
        for i in (c % N_QUESTIONS,):
            try:
                r = client.chat.completions.create(
                    model="bestofn", messages=[{"role": "user", "content": prompt(i)}])
                out.append((200, i, r.model_extra["bestofn"]))
            except openai.RateLimitError as e:
                out.append((429, i, e.response.headers.get("retry-after")))
            except openai.APIStatusError as e:
                out.append((e.status_code, i, e.message))
        return out

    with serve_in_thread(app) as url, ThreadPoolExecutor(64) as pool:
        got = [x for f in [pool.submit(client_loop, c) for c in range(64)] for x in f.result()]
        batch = metric(url, "bestofn_prm_batch_max")
        assert metric(url, "bestofn_queue_depth") == 0
    statuses = [s for s, _, _ in got]
    assert len(got) == 64 and set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 24
    for status, i, ext in got:
        if status == 429:
            assert ext == "1"
            continue
        assert ext["solutions"] == texts(i)
        assert (ext["answer"], ext["index"]) == (want[i].answer, want[i].index), i
    assert batch > 1, "the PRM never scored two requests' solutions in one call"


def test_disconnect_aborts_its_samples_and_the_others_complete(replay_file, tiny_llama_special):
    """Two requests share a batch; one client leaves while the engine is busy with the other's
    samples: its samples are aborted (never sampled), /metrics counts it, and the other
    request and a later one are answered."""
    from bestofn.scorers.prm_hf import HFPRMScorer

    prm = HFPRMScorer(str(tiny_llama_special), device="cpu")
    policy = GatedPolicy(make_policy("replay", model=str(replay_file)))
    cfg = replace(CFG, batch_wait_s=1.0)
    with serve_in_thread(create_app(cfg, Reranker(prm, method="prm_min"), policy)) as url, \
            ThreadPoolExecutor(2) as pool:
        policy.gate.clear()
        first = pool.submit(chat, url, 0)
        wait_until(lambda: httpx.get(url + "/health").json()["pending"] == 1)
        leaving = pool.submit(chat, url, 1, 1.5)  # leaves after 1.5 s
        with pytest.raises(httpx.ReadTimeout):
            leaving.result()
        wait_until(lambda: metric(url, "bestofn_client_disconnects_total") == 1)
        assert len(policy.asked) == 1  # the engine is inside question 0's samples
        policy.gate.set()
        r = first.result()
        assert r.status_code == 200 and r.json()["bestofn"]["solutions"] == texts(0)
        assert chat(url, 2).status_code == 200
        wait_until(lambda: metric(url, "bestofn_requests_cancelled_total") == 1)
        left = make_question(prompt(1)).id
        assert all(left not in ids for ids in policy.asked), policy.asked
        assert metric(url, "bestofn_samples_aborted_total") == CFG.n
        assert metric(url, "bestofn_prm_solutions_scored_total") == 2 * CFG.n
        assert metric(url, 'bestofn_requests_total{status="499"}') == 1


def test_drain_refuses_new_requests_and_answers_the_admitted(replay_file):
    """`app.state.drain`: new requests get 503 with Retry-After and /health says draining;
    an admitted request is answered when it finishes within the drain time, and 503 when it
    does not."""
    for seconds, held_status in ((30.0, 200), (0.3, 503)):
        policy = GatedPolicy(make_policy("replay", model=str(replay_file)))
        app = create_app(CFG, Reranker(None, method="majority"), policy)
        batcher = app.state.batcher
        with serve_in_thread(app) as url, ThreadPoolExecutor(1) as pool:
            policy.gate.clear()
            held = pool.submit(chat, url, 0)
            wait_until(lambda p=policy: len(p.asked) == 1)
            drained = asyncio.run_coroutine_threadsafe(app.state.drain(seconds), batcher._loop)
            wait_until(lambda b=batcher: b.state == "draining")
            r = chat(url, 1)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "server_unavailable"
            health = httpx.get(url + "/health")
            assert health.status_code == 503 and health.json()["status"] == "draining"
            if held_status == 200:
                policy.gate.set()
            assert held.result().status_code == held_status
            if held_status == 503:
                assert held.result().json()["error"]["code"] == "shutting_down"
            assert drained.result(30) == (0 if held_status == 200 else 1)
            policy.gate.set()


def test_per_key_limit_and_error_bodies_carry_no_paths(replay_file):
    """`max_per_key`: a key's second request in progress gets 429 with Retry-After, another
    key is served; a refusal that names a server file (a replay file without the question)
    shows no path."""
    policy = GatedPolicy(make_policy("replay", model=str(replay_file)))
    app = create_app(replace(CFG, max_per_key=1), Reranker(None, method="majority"), policy)
    with serve_in_thread(app) as url, ThreadPoolExecutor(2) as pool:
        policy.gate.clear()
        a = {"Authorization": "Bearer a"}
        held = pool.submit(chat, url, 0, 60, a)
        wait_until(lambda: len(policy.asked) == 1)
        r = chat(url, 1, headers=a)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "concurrency_limit_exceeded"
        other = pool.submit(chat, url, 1, 60, {"Authorization": "Bearer b"})
        policy.gate.set()
        assert held.result().status_code == other.result().status_code == 200
        assert chat(url, 2, headers=a).status_code == 200
        r = httpx.post(url + "/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": "Not stored?"}]})
        assert r.status_code == 404 and str(replay_file.parent) not in r.text
        assert "<path>" in r.json()["error"]["message"]
    assert scrubbed("FileNotFoundError: '/srv/m/x.bin' at https://a.io/b/c") == (
        "FileNotFoundError: '<path>' at https://a.io/b/c")
    assert "Traceback" not in scrubbed("boom\nTraceback (most recent call last):\n  File x")


def admitted(url) -> int:
    """Requests admitted so far: in progress, or answered 200."""
    text = httpx.get(url + "/metrics").text
    done = re.search(r'^bestofn_requests_total\{status="200"\} (\S+)$', text, re.M)
    return httpx.get(url + "/health").json()["pending"] + int(float(done.group(1)) if done
                                                              else 0)


def stderr_of(proc) -> str:
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=30)[1][-3000:]


@pytest.mark.slow
def test_sigterm_answers_requests_in_flight_then_exits(tmp_path, tiny_llama_split,
                                                       tiny_llama_special):
    """SIGTERM with fixed and adaptive requests in flight (transformers policy, tiny PRM):
    new requests get 503 with Retry-After, every admitted request gets its answer, and the
    process exits 0 within --drain-s."""
    drain_s = 120  # generous: the requests take a second on a quiet machine
    proc, url = start_cli_server(tmp_path, [
        "--policy", str(tiny_llama_split), "--policy-backend", "hf", "--prm",
        str(tiny_llama_special), "--method", "prm_min", "-n", "2", "--max-tokens", "16",
        "--batch-wait", "0.05", "--drain-s", str(drain_s)])
    try:
        with ThreadPoolExecutor(8) as pool:
            futs = [pool.submit(chat, url, i, drain_s) for i in range(6)] + [
                pool.submit(chat, url, i, drain_s, None, adaptive="esc:w=2")
                for i in range(6, 8)]
            wait_until(lambda: admitted(url) == 8)  # every request in before the signal
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:  # refused while draining (unless the drain is over already)
                r = chat(url, 20)
                assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            except httpx.TransportError:
                assert all(f.done() for f in futs)
            got = [f.result() for f in futs]
        assert [r.status_code for r in got] == [200] * 8, (got[0].text, stderr_of(proc))
        assert all(r.json()["bestofn"]["adaptive"] for r in got[6:])
        assert proc.wait(drain_s) == 0 and time.monotonic() - t0 < drain_s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_killed_engine_answers_503_naming_it_and_exits_non_zero(tmp_path, tiny_llama_split,
                                                                tiny_llama_special):
    """The vLLM engine core's process is killed with requests in flight: each gets a 503
    naming the engine, /health turns 503 with the reason, and the server exits with status 3
    (docs/serving.md: a supervisor restarts it)."""
    pytest.importorskip("vllm")
    psutil = pytest.importorskip("psutil")
    from bestofn.serve.process import ENGINE_DEAD_EXIT

    proc, url = start_cli_server(tmp_path, [
        "--policy", str(tiny_llama_split), "--policy-backend", "vllm", "--prm",
        str(tiny_llama_special), "--method", "prm_min", "-n", "4", "--max-tokens", "400",
        "--temperature", "1.0", "--max-model-len", "1024", "--kv-cache-gb", "0.5"])
    try:
        assert chat(url, 0).status_code == 200
        core = [p for p in psutil.Process(proc.pid).children(recursive=True)
                if "EngineCore" in p.name()]
        assert len(core) == 1, [p.name() for p in psutil.Process(proc.pid).children(True)]
        with ThreadPoolExecutor(3) as pool:
            futs = [pool.submit(chat, url, i) for i in range(1, 4)]
            wait_until(lambda: httpx.get(url + "/health").json()["pending"] == 3)
            core[0].kill()
            got = [f.result() for f in futs]
            health = httpx.get(url + "/health")
        for r in got:
            err = r.json()["error"]
            assert r.status_code == 503 and err["code"] == "engine_dead", r.text
            assert "policy engine" in err["message"] and "EngineDeadError" in err["message"]
        assert health.status_code == 503 and health.json()["status"] == "dead"
        assert "EngineDeadError" in health.json()["reason"]
        assert proc.wait(60) == ENGINE_DEAD_EXIT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lm_eval_task_file_renders_medqa_and_its_requests_are_served(tmp_path):
    """docs/lm_eval/medqa_bestofn.yaml (lm-eval is not installed here): it parses, its prompt
    template renders the bundled MedQA questions into text whose options the server parses,
    a request shaped as lm-eval's local-chat-completions sends it is served, and the task's
    regex reads the served answer."""
    import json
    from pathlib import Path

    import jinja2
    import yaml

    from bestofn import Solution
    from bestofn.text.records import Item

    root = Path(__file__).resolve().parents[1]
    task = yaml.safe_load((root / "docs/lm_eval/medqa_bestofn.yaml").read_text())
    rows = [json.loads(x) for x in (root / task["dataset_kwargs"]["data_files"]["test"])
            .read_text().splitlines()[:3]]
    render = jinja2.Template(task["doc_to_text"])
    texts_ = [render.render(**r) for r in rows]
    questions = [make_question(t) for t in texts_]
    assert [q.options for q in questions] == [r["options"] for r in rows]
    replay = tmp_path / "medqa.jsonl"
    replay.write_text("".join(json.dumps(Item(q, [Solution.from_text(
        f"Step 1: weigh the findings. The answer is ({r['answer_idx']}).", q.options)
        for _ in range(2)]).to_dict()) + "\n" for q, r in zip(questions, rows, strict=True)))
    gen = task["generation_kwargs"]
    cfg = ServeConfig(n=2, max_tokens=gen["max_gen_toks"])
    pattern = re.compile(task["filter_list"][0]["filter"][0]["regex_pattern"])
    app = create_app(cfg, Reranker(None, method="majority"),
                     make_policy("replay", model=str(replay)))
    with serve_in_thread(app) as url:
        for text, row in zip(texts_, rows, strict=True):
            r = httpx.post(url + "/v1/chat/completions", json={
                "messages": [{"role": "user", "content": text}], "model": "bestofn",
                "max_tokens": gen["max_gen_toks"], "temperature": gen["temperature"],
                "stop": ["<|endoftext|>"], "seed": 1234})
            assert r.status_code == 200, r.text
            content = r.json()["choices"][0]["message"]["content"]
            assert pattern.search(content).group(1) == row["answer_idx"]
            assert r.json()["bestofn"]["answer"] == row["answer_idx"]


def test_requests_asking_the_same_question_together_share_its_samples(replay_file):
    """Two requests for the same question in one batch are one job on the loop (they used to
    collide on the question id and both fail with 500): both answered, sampled once."""
    app = create_app(replace(CFG, batch_wait_s=0.3), Reranker(None, method="majority"),
                     make_policy("replay", model=str(replay_file)))
    with serve_in_thread(app) as url, ThreadPoolExecutor(2) as pool:
        got = [f.result() for f in [pool.submit(chat, url, 3) for _ in range(2)]]
        assert [r.status_code for r in got] == [200, 200], got[0].text
        assert got[0].json()["bestofn"]["solutions"] == got[1].json()["bestofn"]["solutions"]
        assert metric(url, "bestofn_samples_total") == CFG.n


def test_only_a_dead_engine_is_engine_death():
    """An engine call that raises is the engine's death only when the error (or its cause)
    says the engine is gone; a refused prompt is not."""
    from bestofn.execution.scheduler import EngineFailure
    from bestofn.serve.batcher import engine_death

    class EngineDeadError(RuntimeError):  # vLLM's name: the check reads type names
        pass

    try:
        try:
            raise EngineDeadError("EngineCore encountered an issue")
        except EngineDeadError as e:
            raise RuntimeError("step failed") from e
    except RuntimeError as e:
        dead = EngineFailure("policy engine (VLLMStream)", e)
    assert "policy engine (VLLMStream)" in engine_death(dead)
    assert engine_death(EngineFailure("policy engine (VLLMStream)",
                                      ValueError("prompt too long"))) is None
    assert engine_death(ValueError("not an engine failure")) is None
