"""Policies serve rounds: `sample(qs, R, params, start=k)` returns samples k..k+R-1, equal to
those of one fixed `sample(qs, N, params)` call (the vLLM engine's test is in
test_policies_vllm.py, marked slow)."""

from __future__ import annotations

import pytest

from bestofn.execution.sample_file import sample_to_file
from bestofn.testing.openai_server import client
from bestofn.testing.samples import HF_PARAMS, PARAMS, mcq
from policies.replay import ReplayPolicy

ROUNDS = ((0, 2), (2, 3), (5, 1))
"""(start, size) of rounds covering samples 0..5."""


def joined(policy, qs, params, rounds=ROUNDS):
    got = [policy.sample(qs, r, params, start=k) for k, r in rounds]
    return [[s for rd in got for s in rd[qi]] for qi in range(len(qs))]


def as_dicts(sols_per_q):
    return [[s.to_dict() for s in sols] for sols in sols_per_q]


def test_openai_rounds_equal_one_fixed_call(serve):  # noqa: F811
    server = serve()
    qs = [mcq("a"), mcq("b")]
    full = client(server).sample(qs, 6, PARAMS)
    assert as_dicts(joined(client(server), qs, PARAMS, ((0, 2), (2, 4)))) == as_dicts(full)
    texts = [[s.text for s in x] for x in joined(client(server), qs, PARAMS)]
    assert texts == [[s.text for s in x] for x in full]
    assert [s.meta["index"] for s in joined(client(server), qs, PARAMS)[1]] == list(range(6))


def test_openai_rounds_on_a_server_without_n(serve):  # noqa: F811
    honest, ignoring = serve(), serve(honour_n=False)
    qs = [mcq("a"), mcq("b")]
    full = client(honest).sample(qs, 6, PARAMS)
    got = joined(client(ignoring, concurrency=2), qs, PARAMS)
    assert [[s.text for s in x] for x in got] == [[s.text for s in x] for x in full]


def test_hf_rounds_equal_one_fixed_call(hf_policy):  # noqa: F811
    qs = [mcq("a"), mcq("b")]
    full = hf_policy.sample(qs, 6, HF_PARAMS)  # batch_size 3: two whole chunks
    assert as_dicts(joined(hf_policy, qs, HF_PARAMS)) == as_dicts(full)
    assert [s.meta["index"] for s in full[0]] == list(range(6))
    # a call that ends inside a chunk cuts the same samples out of it
    assert as_dicts(hf_policy.sample(qs, 4, HF_PARAMS)) == as_dicts([x[:4] for x in full])


def test_replay_rounds_return_stored_samples(tmp_path, hf_policy):  # noqa: F811
    qs = [mcq("a"), mcq("b")]
    out = tmp_path / "s.jsonl"
    sample_to_file(qs, hf_policy, out, 6, HF_PARAMS, progress=False)
    rp = ReplayPolicy(str(out))
    full = rp.sample(qs, 6, HF_PARAMS)
    assert as_dicts(joined(rp, qs, HF_PARAMS)) == as_dicts(full)
    assert rp.sample(qs, 4, HF_PARAMS, start=4)[0] == full[0][4:]  # past the end: what is left
    with pytest.raises(ValueError, match="start >= 0"):
        rp.sample(qs, 2, HF_PARAMS, start=-1)
