"""`bestofn serve`: the real server (uvicorn on loopback) called with the official `openai`
client and plain HTTP, with the tiny Llama PRM and a replay policy (vLLM's CPU engine as the
policy in one slow test)."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import openai
import pytest

from bestofn import Question, Reranker, Solution, best_of_n
from bestofn.scorers.prm_hf import HFPRMScorer
from bestofn.serve import ServeConfig, create_app, make_question, parse_options, question_id
from bestofn.serve.thread import serve_in_thread
from bestofn.text.records import Item
from policies import make_policy

OPTIONS = {"A": "pneumonia", "B": "asthma", "C": "sepsis", "D": "stroke"}
ANSWERS = "ABCBDBAC"


def stem(i: int) -> str:
    return f"A patient (case {i}) presents with fever and cough. What is the diagnosis?"


def prompt(i: int) -> str:
    return stem(i) + "\n\n" + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items())


def texts(i: int) -> list[str]:
    """Six solutions with varied step counts and answers (one without an answer)."""
    out = []
    for j in range(6):
        steps = " ".join(f"Step {s}: finding {i}-{j}-{s} points somewhere." for s in
                         range(1, 2 + (i + j) % 4))
        ans = ANSWERS[(i + j) % len(ANSWERS)]
        out.append(f"{steps} The answer is ({ans})." if j != 5 else f"{steps} Unsure.")
    return out


N_QUESTIONS = 16


@pytest.fixture(scope="module")
def replay_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "solutions.jsonl"
    lines = []
    for i in range(N_QUESTIONS):
        q = Question(id=question_id(stem(i), OPTIONS), stem=stem(i), options=OPTIONS)
        lines.append(json.dumps(Item(q, [Solution.from_text(t, OPTIONS, tokens=10 + k)
                                         for k, t in enumerate(texts(i))]).to_dict()))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def prm(tiny_llama_special):
    return HFPRMScorer(str(tiny_llama_special), device="cpu")


class GatedPolicy:
    """A real policy whose calls wait for `gate` (to hold work in flight deterministically)
    and that records each call's question count."""

    def __init__(self, inner):
        self.inner, self.gate, self.calls = inner, threading.Event(), []
        self.gate.set()

    def sample(self, questions, n, params, start=0):
        self.calls.append(len(questions))
        assert self.gate.wait(30), "gate never opened"
        return self.inner.sample(questions, n, params, start=start)


CFG = ServeConfig(n=6, max_n=8, max_tokens=64, batch_wait_s=0.2, max_body_bytes=20_000,
                  max_documents=2, timeout_s=60)


@pytest.fixture(scope="module")
def server(replay_file, prm):
    """One server for the module: (base URL, app, the gated policy)."""
    policy = GatedPolicy(make_policy("replay", model=str(replay_file)))
    app = create_app(CFG, Reranker(prm, method="prm_min"), policy)
    with serve_in_thread(app) as url:
        yield url, app, policy


def client(url, **kw):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, **kw)


def chat(url, i=0, **body):
    return httpx.post(url + "/v1/chat/completions", timeout=60,
                      json={"model": "bestofn", "messages": [{"role": "user",
                                                              "content": prompt(i)}], **body})


def metric(url, name):
    text = httpx.get(url + "/metrics").text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics:\n{text}"
    return float(m.group(1))


def test_parse_options_reads_the_usual_formats():
    for fmt in ("{k}. {v}", "({k}) {v}", "{k}) {v}", "{k}: {v}"):
        text = "Which one?\n" + "\n".join(fmt.format(k=k, v=v) for k, v in OPTIONS.items())
        assert parse_options(text) == ("Which one?", OPTIONS), fmt
    assert parse_options("What causes fever?") == ("What causes fever?", {})
    assert parse_options("Q?\nA. one\nC. three")[1] == {}, "letters must run from A"
    assert parse_options("Q?\nA. only one")[1] == {}
    q = make_question(prompt(3))
    assert q.options == OPTIONS and q.id == question_id(stem(3), OPTIONS)
    assert make_question(stem(3), OPTIONS).id == q.id


@pytest.mark.parametrize("method", ["prm_min", "weighted_min", "majority"])
def test_answer_equals_best_of_n(server, prm, method):
    url, _, _ = server
    r = client(url).chat.completions.create(
        model="bestofn", messages=[{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": prompt(2)}],
        n=3, seed=5, extra_body={"bestofn": {"method": method}})
    ext = r.model_extra["bestofn"]
    q = make_question(prompt(2))
    assert ext["solutions"] == texts(2) and ext["question_id"] == q.id
    sel = best_of_n(q, texts(2), prm=prm, method=method, seed=5)
    assert (ext["answer"], ext["method"]) == (sel.answer, method) and sel.answer is not None
    assert ext["votes"] == pytest.approx(sel.weights)
    top = texts(2)[ext["index"]]
    assert r.choices[0].message.content == top and len(r.choices) == 3
    assert Solution.from_text(top, OPTIONS).answer == sel.answer
    if sel.index is not None:
        assert ext["index"] == sel.index
    assert r.usage.completion_tokens == sum(10 + k for k in range(6))
    # as in the library, every verifier loaded is run and reported, majority vote included
    mins = [min(p) if p else None for p in ext["step_scores"]]
    ref = [s.aggregate("min") for s in prm.score(q, [], [Solution.from_text(t, OPTIONS)
                                                         for t in texts(2)])]
    assert mins == pytest.approx(ref)
    assert r.usage.total_tokens > r.usage.completion_tokens  # the PRM prompts are counted


def test_options_field_and_streaming_give_the_same_answer(server):
    url, _, _ = server
    c = client(url)
    plain = c.chat.completions.create(model="bestofn",
                                      messages=[{"role": "user", "content": prompt(4)}])
    given = c.chat.completions.create(
        model="bestofn", messages=[{"role": "user", "content": stem(4)}],
        extra_body={"bestofn": {"options": OPTIONS}})
    assert given.model_extra["bestofn"]["solutions"] == texts(4)
    assert given.choices[0].message.content == plain.choices[0].message.content
    chunks = list(c.chat.completions.create(
        model="bestofn", messages=[{"role": "user", "content": prompt(4)}], stream=True,
        stream_options={"include_usage": True}))
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert content == plain.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"


def test_models_and_health(server):
    url, _, _ = server
    assert [m.id for m in client(url).models.list()] == ["bestofn"]
    assert httpx.get(url + "/health").json()["status"] == "ok"


def test_concurrent_requests_are_answered_and_batched(server):
    url, _, policy = server
    calls_before = len(policy.calls)
    policy.gate.clear()  # hold the first call so the rest queue up behind it
    with ThreadPoolExecutor(N_QUESTIONS) as pool:
        futs = [pool.submit(chat, url, i) for i in range(N_QUESTIONS)]
        threading.Timer(1.0, policy.gate.set).start()
        got = [f.result() for f in futs]
    assert [r.status_code for r in got] == [200] * N_QUESTIONS
    for i, r in enumerate(got):
        assert r.json()["bestofn"]["solutions"] == texts(i)
    # the requests share one engine batch (jobs on one loop); this backend's ordered stream
    # then samples one question per call
    calls = policy.calls[calls_before:]
    assert set(calls) == {1} and sum(calls) >= N_QUESTIONS, calls
    assert metric(url, "bestofn_policy_batch_max") >= 4


def test_queue_bound_gives_429_then_serves(replay_file, prm):
    policy = GatedPolicy(make_policy("replay", model=str(replay_file)))
    cfg = replace(CFG, queue_size=2, batch_wait_s=0.0, max_batch=1)
    with serve_in_thread(create_app(cfg, Reranker(prm), policy)) as url, \
            ThreadPoolExecutor(2) as pool:
        policy.gate.clear()
        held = [pool.submit(chat, url, i) for i in range(2)]
        while len(policy.calls) < 1 or httpx.get(url + "/health").json()["pending"] < 2:
            threading.Event().wait(0.02)
        r = chat(url, 3)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        with pytest.raises(openai.RateLimitError):
            client(url).chat.completions.create(
                model="bestofn", messages=[{"role": "user", "content": prompt(3)}])
        policy.gate.set()
        assert [f.result().status_code for f in held] == [200, 200]
        assert chat(url, 3).status_code == 200


def test_timeout_504_and_disconnect_cancels(replay_file, prm):
    policy = GatedPolicy(make_policy("replay", model=str(replay_file)))
    cfg = replace(CFG, timeout_s=0.5)
    with serve_in_thread(create_app(cfg, Reranker(prm), policy)) as url:
        policy.gate.clear()
        r = chat(url, 1)
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        with pytest.raises(httpx.ReadTimeout):  # the client leaves before the timeout
            httpx.post(url + "/v1/chat/completions", timeout=0.2,
                       json={"messages": [{"role": "user", "content": prompt(2)}]})
        threading.Event().wait(0.3)
        assert httpx.get(url + "/health").json()["pending"] == 0
        policy.gate.set()
        threading.Event().wait(0.5)
        assert metric(url, "bestofn_prm_solutions_scored_total") == 0  # both were dropped
        assert metric(url, 'bestofn_requests_total{status="499"}') == 1
        assert chat(url, 1).status_code == 200


BAD = [
    ({"messages": None}, 400, "messages"),
    ({"messages": "hello"}, 400, "messages"),
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages"),
    ({"messages": [{"role": "user", "content": 5}]}, 400, "messages.0.content"),
    ({"n": "2"}, 400, "n"),
    ({"n": 7}, 400, "n"),
    ({"temperature": "hot"}, 400, "temperature"),
    ({"max_tokens": 65}, 400, "max_tokens"),
    ({"bestofn": {"samples": 9}}, 400, "bestofn.samples"),
    ({"bestofn": {"samples": 0}}, 400, "bestofn.samples"),
    ({"bestofn": {"method": "orm_best"}}, 400, "bestofn.method"),
    ({"bestofn": {"method": "best"}}, 400, "bestofn.method"),
    ({"bestofn": {"documents": ["a", "b", "c"]}}, 400, "bestofn.documents"),
    ({"bestofn": {"documents": "/etc/passwd"}}, 400, "bestofn.documents"),
    ({"bestofn": {"index": "/tmp"}}, 400, "bestofn.index"),
    ({"bestofn": {"adaptive": "nope"}}, 400, "bestofn.adaptive"),
    ({"bestofn": {"adaptive": "beta:eps=x"}}, 400, "bestofn.adaptive"),
    ({"bestofn": {"adaptive": "beta:min_n=7", "samples": 6}}, 400, "bestofn.adaptive"),
    ({"bestofn": {"search": "nope"}}, 400, "bestofn.search"),
    ({"bestofn": {"search": "beam:width=x"}}, 400, "bestofn.search"),
    ({"bestofn": {"search": "beam", "adaptive": "beta"}}, 400, "bestofn.search"),
    ({"bestofn": {"search": "beam:width=2"}}, 400, "bestofn.search"),  # replay policy
    ({"model": "gpt-4"}, 404, "model"),
]


def test_bad_requests_are_refused_naming_the_field(server):
    url, _, _ = server
    for body, status, param in BAD:
        full = {"messages": [{"role": "user", "content": prompt(0)}], **body}
        if full["messages"] is None:
            del full["messages"]
        r = httpx.post(url + "/v1/chat/completions", json=full)
        err = r.json()["error"]
        assert (r.status_code, err["param"]) == (status, param), (body, err)
        assert param in err["message"] and set(err) == {"message", "type", "param", "code"}
    r = httpx.post(url + "/v1/chat/completions", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]["message"]
    big = {"messages": [{"role": "user", "content": "x" * 30_000}]}
    r = httpx.post(url + "/v1/chat/completions", json=big)
    assert r.status_code == 413 and r.json()["error"]["param"] == "body"
    with pytest.raises(openai.BadRequestError, match="bestofn.samples"):
        client(url).chat.completions.create(
            model="bestofn", messages=[{"role": "user", "content": prompt(0)}],
            extra_body={"bestofn": {"samples": 100}})
    assert httpx.get(url + "/nowhere").json()["error"]["code"] == "404"
    assert chat(url, 0).status_code == 200  # still serving


def test_search_is_refused_where_the_server_cannot_search(replay_file):
    """400 naming `bestofn.search` with what is missing; a server-wide default the server
    cannot honour is refused when the app is made."""
    policy = make_policy("replay", model=str(replay_file))
    with serve_in_thread(create_app(CFG, Reranker(None, method="majority"), policy)) as url:
        for ext, why in (({"search": "beam:width=2"}, "has none"),
                         ({"search": "dvts:width=0"}, "width must be"),
                         ({"search": "beam", "adaptive": "beta"}, "bestofn.adaptive")):
            r = chat(url, 0, bestofn=ext)
            err = r.json()["error"]
            assert (r.status_code, err["param"]) == (400, "bestofn.search"), err
            assert why in err["message"]
        assert chat(url, 0).status_code == 200
    with pytest.raises(ValueError, match="--search beam: a search scores partial"):
        create_app(replace(CFG, search="beam"), Reranker(None, method="majority"), policy)
    with pytest.raises(ValueError, match="cannot be combined"):
        replace(CFG, search="beam", adaptive="beta")
    with pytest.raises(ValueError, match="unknown search strategy"):
        replace(CFG, search="bean")


@pytest.mark.parametrize("rule", ["beta:eps=0.3", "esc:w=2", "prm:eps=0.3"])
def test_adaptive_requests_stop_where_the_rule_does(replay_file, prm, rule):
    """`bestofn.adaptive` samples on the streaming scheduler: the kept samples are the stored
    first k, k is where the rule stops on them, and the response and /metrics say what was
    drawn and thrown away."""
    from bestofn.adaptive import Drawn, parse_rule

    policy = make_policy("replay", model=str(replay_file))
    app = create_app(replace(CFG, batch_wait_s=0.05), Reranker(prm, method="weighted_min"),
                     policy)
    stops: list[int] = []
    with serve_in_thread(app) as url:
        for i in range(4):
            r = client(url).chat.completions.create(
                model="bestofn", messages=[{"role": "user", "content": prompt(i)}],
                extra_body={"bestofn": {"adaptive": rule, "samples": 6}})
            ext = r.model_extra["bestofn"]
            q = make_question(prompt(i))
            sols = [Solution.from_text(t, OPTIONS) for t in texts(i)]
            scores = [p.aggregate("min") for p in prm.score(q, [], sols)]
            want = parse_rule(f"{rule},max_n=6").first_stop(
                Drawn([s.answer for s in sols], scores))
            k = ext["samples"]
            assert k == want and ext["solutions"] == texts(i)[:k], (i, ext["answers"])
            c = ext["compute"]
            assert c["samples_drawn"] == k and ext["adaptive"].startswith(rule.split(":")[0])
            kept = sum(10 + j for j in range(k))
            assert c["tokens_generated"] - c["tokens_aborted"] == kept
            assert r.usage.completion_tokens == kept
            sel = best_of_n(q, texts(i)[:k], prm=prm, method="weighted_min")
            assert ext["answer"] == sel.answer
            stops.append(k)
        assert metric(url, "bestofn_samples_total") == sum(stops)
        assert metric(url, "bestofn_tokens_generated_total") >= sum(
            sum(10 + j for j in range(k)) for k in stops)


def test_api_key_is_required_when_set(replay_file, prm):
    cfg = replace(CFG, api_key="s3cret")
    app = create_app(cfg, Reranker(prm), make_policy("replay", model=str(replay_file)))
    with serve_in_thread(app) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(url + "/v1/chat/completions", headers=headers,
                           json={"messages": [{"role": "user", "content": prompt(0)}]})
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            client(url).models.list()
        ok = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        r = ok.chat.completions.create(model="bestofn",
                                       messages=[{"role": "user", "content": prompt(0)}])
        assert r.model_extra["bestofn"]["answer"] is not None
        assert httpx.get(url + "/health").status_code == 200


def test_serve_flags_build_the_config():
    from bestofn.cli import build_all
    from bestofn.cli.serve import serve_config

    ap, commands = build_all()
    a = ap.parse_args(["serve", "--policy", "p", "-n", "16", "--method", "weighted_min",
                       "--max-n", "32", "--api-key", "k", "--port", "9000"])
    cfg = serve_config(a)
    assert "serve" in commands and (cfg.n, cfg.max_n, cfg.api_key, cfg.port) == (16, 32, "k",
                                                                                 9000)
    assert cfg.host == "127.0.0.1" and a.method == "weighted_min"
    assert cfg.search is None
    assert serve_config(ap.parse_args(["serve", "--search", "beam:width=2"])).search == (
        "beam:width=2")
    with pytest.raises(ValueError, match="n <= max_n"):
        serve_config(ap.parse_args(["serve", "-n", "100"]))


@pytest.mark.slow
def test_vllm_cpu_policy_behind_the_endpoint(tiny_llama_split, prm):
    """vLLM's CPU engine samples on the batcher's worker thread: two requests arriving together
    are one batch of jobs on the engine's stream, their samples are the library's for the same
    question and seed, and the answer is `best_of_n`'s on those samples."""
    pytest.importorskip("vllm")
    from policies import SamplingConfig
    from policies.vllm import VLLMPolicy

    inner = VLLMPolicy(str(tiny_llama_split), max_model_len=1024, kv_cache_gb=0.5, device="cpu")
    try:
        cfg = replace(CFG, n=4, max_tokens=12, temperature=0.8, batch_wait_s=0.5)
        with serve_in_thread(create_app(cfg, Reranker(prm), inner)) as url, \
                ThreadPoolExecutor(2) as pool:
            got = [f.result() for f in [pool.submit(chat, url, i) for i in range(2)]]
            batched = metric(url, "bestofn_policy_batch_max")
        assert [r.status_code for r in got] == [200, 200] and batched == 2
        params = SamplingConfig(temperature=0.8, top_k=cfg.top_k, top_p=cfg.top_p,
                                max_tokens=12, seed=0)
        for i, r in enumerate(got):
            ext, q = r.json()["bestofn"], make_question(prompt(i))
            [sols] = inner.sample([q], 4, params)
            assert ext["solutions"] == [s.text for s in sols]
            sel = best_of_n(q, ext["solutions"], prm=prm, method="prm_min")
            assert (ext["answer"], ext["index"] if sel.index is not None else None) == (
                sel.answer, sel.index)
            assert r.json()["usage"]["completion_tokens"] == sum(s.meta["tokens"] for s in sols)
    finally:
        inner.llm.llm_engine.engine_core.shutdown()


def without_prm_tokens(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "prm_tokens_computed"}


@pytest.mark.slow
def test_search_requests_answer_what_the_library_search_does(tiny_llama_split,
                                                             tiny_llama_special, prm):
    """`bestofn.search` runs the library's search on the server's vLLM policy and PRM (two
    requests arriving together share one search call): the finished candidates, the search
    log and the compute are the library's, the answer is the library's pick on them, and
    /metrics counts the search's tokens."""
    pytest.importorskip("vllm")
    from bestofn.search import StepFormat, search
    from policies import SamplingConfig
    from policies.vllm import VLLMPolicy

    fmt = StepFormat(stops=("a",), min_tokens=1)  # the random model writes no `Step N:`
    policy = VLLMPolicy(str(tiny_llama_split), max_model_len=1024, kv_cache_gb=0.5,
                        device="cpu")
    try:
        cfg = replace(CFG, n=4, max_tokens=16, temperature=0.9, batch_wait_s=0.5)
        served = HFPRMScorer(str(tiny_llama_special), device="cpu")  # empty prefix cache
        app = create_app(cfg, Reranker(served, method="prm_min"), policy, step_format=fmt)
        specs = ["beam:width=2", "beam:width=2", "reject:alpha=0.5"]
        with serve_in_thread(app) as url, ThreadPoolExecutor(2) as pool:
            futs = [pool.submit(chat, url, i, bestofn={"search": specs[i], "samples": 4})
                    for i in range(2)]
            got = [f.result().json() for f in futs]
            r = client(url).chat.completions.create(
                model="bestofn", messages=[{"role": "user", "content": prompt(2)}],
                extra_body={"bestofn": {"search": specs[2], "samples": 4}})
            got.append(r.model_dump())
            counted = {k: metric(url, f"bestofn_{k}_total")
                       for k in ("tokens_generated", "prm_tokens_computed", "samples")}
        assert [g["bestofn"]["batch_size"] for g in got] == [2, 2, 1]
        params = SamplingConfig(temperature=0.9, top_k=cfg.top_k, top_p=cfg.top_p,
                                max_tokens=16, seed=0)
        prm_tokens = []
        for i, (body, spec) in enumerate(zip(got, specs, strict=True)):
            ext, q = body["bestofn"], make_question(prompt(i))
            fresh = HFPRMScorer(str(tiny_llama_special), device="cpu")  # empty prefix cache
            [it] = search([q], policy, fresh, spec, 4, params, fmt=fmt)
            assert ext["solutions"] == [s.text for s in it.solutions]
            # a question's PRM tokens are its share (by candidates) of PRM calls it may have
            # shared with the other question of its batch: compared as a sum below
            assert without_prm_tokens(ext["search"]) == without_prm_tokens(it.search)
            assert without_prm_tokens(ext["compute"]) == without_prm_tokens(it.compute)
            prm_tokens.append((ext["compute"]["prm_tokens_computed"],
                               it.compute["prm_tokens_computed"]))
            assert ext["search"]["strategy"].startswith(spec.split(":")[0] + ":")
            assert ext["step_scores"] == [list(p.probs) for p in it.prm]
            sel = Reranker(prm, method="prm_min").pick(it)
            assert (ext["answer"], ext["method"]) == (sel.answer, "prm_min")
            assert body["choices"][0]["message"]["content"] == it.solutions[ext["index"]].text
        assert sum(a for a, _ in prm_tokens) == sum(b for _, b in prm_tokens)
        assert sum(g["bestofn"]["search"]["steps"][0]["live"] for g in got) == 12
        assert any(s["pruned"] for g in got for s in g["bestofn"]["search"]["steps"])
        for k in ("tokens_generated", "prm_tokens_computed"):
            assert counted[k] == sum(g["bestofn"]["compute"][k] for g in got) > 0, k
        assert counted["samples"] == sum(g["bestofn"]["samples"] for g in got)
        # the server-wide default: a plain request searches, one asking adaptive does not;
        # with Med-PRM's step filter on (the medprm preset's default) it still searches: the
        # filter is the fixed-N jobs', not a wrapper around the policy
        from policies.validity import ValidityConfig

        app = create_app(replace(cfg, search=specs[0]), Reranker(prm, method="prm_min"),
                         policy, step_format=fmt, validity=ValidityConfig())
        with serve_in_thread(app) as url:
            plain = chat(url, 0, bestofn={"samples": 4}).json()["bestofn"]
            rule = chat(url, 0, bestofn={"samples": 4, "adaptive": "esc:w=2"}).json()["bestofn"]
        assert without_prm_tokens(plain["search"]) == without_prm_tokens(
            got[0]["bestofn"]["search"])
        assert rule["search"] is None and rule["adaptive"].startswith("esc:")
    finally:
        policy.llm.llm_engine.engine_core.shutdown()
