"""Shared fixtures: tiny random Llama models built once per test session, the transformers
policy, the fake OpenAI server; and the fast tier's rule.

Fast tier: `pytest -m "not slow"` loads no model. A test that needs a model fixture is marked
slow here; any other test that builds or loads a transformers model in the fast tier fails,
telling its author to mark it `@pytest.mark.slow`. Helper functions shared by test modules live
in `bestofn.testing` (no test module imports another)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bestofn.testing import Marker, build_tiny_llama
from bestofn.testing.openai_server import FakeServer

MODEL_FIXTURES = {"tiny_llama_special", "tiny_llama_single", "tiny_llama_split", "hf_policy",
                  "orm_dir", "lora_dir"}
"""Fixtures that build or load a model: a test using one (even indirectly) is slow."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_tier_loads_no_model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """In the fast tier, building a transformers model (loaded or random) is an error."""
    if request.config.getoption("markexpr") != "not slow" or \
            request.node.get_closest_marker("slow"):
        yield
        return
    from transformers import PreTrainedModel

    def refuse(self, *args, **kwargs):
        raise RuntimeError(f"{request.node.nodeid} builds a model in the fast tier "
                           "(-m 'not slow'): mark it @pytest.mark.slow")

    monkeypatch.setattr(PreTrainedModel, "__init__", refuse)
    yield


def _build(factory: pytest.TempPathFactory, marker: Marker) -> Path:
    return build_tiny_llama(factory.mktemp(f"tiny_llama_{marker}"), marker=marker)


@pytest.fixture(scope="session")
def tiny_llama_special(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Llama whose step tag ' ки' is one added special token (like Med-PRM's)."""
    return _build(tmp_path_factory, "special")


@pytest.fixture(scope="session")
def tiny_llama_single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Llama whose step tag ' ки' is one ordinary BPE token."""
    return _build(tmp_path_factory, "single")


@pytest.fixture(scope="session")
def tiny_llama_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Llama whose step tag ' ки' splits into several byte-level tokens (like SmolLM2)."""
    return _build(tmp_path_factory, "split")


@pytest.fixture(scope="module")
def hf_policy(tiny_llama_split):
    from policies.hf import HFPolicy

    return HFPolicy(str(tiny_llama_split), device="cpu", batch_size=3)


@pytest.fixture
def serve():
    servers = []

    def start(**kw):
        servers.append(FakeServer(**kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
