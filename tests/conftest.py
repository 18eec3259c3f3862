"""Shared fixtures: tiny random Llama models built once per test session, the transformers
policy, the fake OpenAI server; and the fast tier's rule.

Fast tier: a test not marked slow loads no model and starts nothing. A test that needs a model
fixture is marked slow here; any other unmarked test that builds or loads a transformers model,
constructs a vLLM engine, calls `ray.init` or starts a process (a server, the CLI, a Ray node)
fails, telling its author to mark it `@pytest.mark.slow`. The rule holds for every unmarked
test, so it holds under any marker expression that deselects the slow ones (`-m "not slow"`,
`-m "not slow and not x"`, ...). Helper functions shared by test modules live in
`bestofn.testing` (no test module imports another)."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

import pytest

from bestofn.testing import Marker, build_tiny_llama
from bestofn.testing.openai_server import FakeServer

pytest_plugins = ["pytester"]

MODEL_FIXTURES = {"tiny_llama_special", "tiny_llama_single", "tiny_llama_split", "hf_policy",
                  "orm_dir", "lora_dir"}
"""Fixtures that build or load a model: a test using one (even indirectly) is slow."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


_fast_test: list[str] = []
"""The node id of the fast test now running (empty while a slow one runs or between tests)."""

_PROCESS_EVENTS = {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
                   "os.system", "os.exec"}
"""Audit events that start a process: a server, the CLI, vLLM's engine core, a Ray node."""


def _refuse(what: str) -> None:
    if _fast_test:
        raise RuntimeError(f"{_fast_test[0]} {what} in the fast tier: mark it @pytest.mark.slow")


def _audit(event: str, args: tuple) -> None:
    if event in _PROCESS_EVENTS and _fast_test:
        _refuse(f"starts a process ({event} {args[:2]!r})")


def _guard_init(cls: type, what: str) -> None:
    init = cls.__init__

    def guarded(self, *args, **kwargs):
        _refuse(what)
        init(self, *args, **kwargs)

    cls.__init__ = guarded


def _guard_call(module, name: str, what: str) -> None:
    fn = getattr(module, name)

    def guarded(*args, **kwargs):
        _refuse(what)
        return fn(*args, **kwargs)

    setattr(module, name, guarded)


_GUARDS = {
    "vllm.entrypoints.llm": lambda m: _guard_init(m.LLM, "constructs a vLLM engine"),
    "ray": lambda m: _guard_call(m, "init", "calls ray.init"),
    "transformers.modeling_utils": lambda m: _guard_init(m.PreTrainedModel,
                                                         "builds a transformers model"),
}
"""Guards installed when the module defining the guarded name is first imported (importing
vLLM or transformers here would slow every session by seconds)."""


class _GuardOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in _GUARDS:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_guard(module):
            exec_module(module)
            _GUARDS[name](sys.modules[name])

        spec.loader.exec_module = exec_and_guard
        return spec


def pytest_configure(config: pytest.Config) -> None:
    for name, guard in _GUARDS.items():
        if name in sys.modules:
            guard(sys.modules[name])
    sys.meta_path.insert(0, _GuardOnImport())
    sys.addaudithook(_audit)  # audit hooks stay for the process; they act only in a fast test


@pytest.fixture(autouse=True)
def _fast_tier_starts_nothing(request: pytest.FixtureRequest):
    """A test not marked slow builds no model and starts no engine, Ray or process."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    _fast_test.append(request.node.nodeid)
    try:
        yield
    finally:
        _fast_test.clear()


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
