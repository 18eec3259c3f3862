"""A run's start-up: the parts that do not depend on one another loaded at once.

The policy engine, the verifiers (PRM, ORM) and the documents index need nothing from each
other, so an in-process run builds them on threads at the same time (`start_parts`), and a Ray
run starts their actors together and waits on whichever is ready first
(`ray_workers.RayWorkers.start`). While they load, the one progress line names what is still
loading (`StartupLine`: `starting: policy (vLLM) · PRM`); the question bar takes its place
once everything is up. Each part's seconds from the start until it was ready go to the run's
`timing.json` (`startup_parts`), so where start-up time goes can be read after the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import IO, Any

from ..config import RunConfig

POLICY_ENGINES = {"vllm": "vLLM", "hf": "transformers", "openai": "server", "replay": "file"}
"""How the starting line names a policy backend's engine."""


def policy_label(backend: str) -> str:
    """`policy (vLLM)`: the policy part as the starting line names it."""
    from ..config import resolve_backend

    name = resolve_backend(backend)
    return f"policy ({POLICY_ENGINES.get(name, name)})"


def part_labels(cfg: RunConfig) -> dict[str, str]:
    """The run's start-up parts (policy, prm, orm, index) by key, as the line names them."""
    v = cfg.verifiers
    labels = {"policy": policy_label(cfg.policy.backend)}
    if v.prm.model:
        labels["prm"] = "PRM"
    if v.orm.model:
        labels["orm"] = "ORM"
    if cfg.documents.index:
        labels["index"] = "index"
    return labels


@dataclass
class StartupLine:
    """`starting: A · B` on the terminal, rewritten as each part becomes ready and cleared at
    `close` (nothing is written when not `enabled`); `seconds`: each ready part's seconds
    since the line was made."""

    parts: list[str]
    file: IO[str] | None = None
    enabled: bool = True
    loading: list[str] = field(init=False)
    seconds: dict[str, float] = field(init=False, default_factory=dict)
    _t0: float = field(init=False, default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.loading = list(self.parts)
        self._show()

    def ready(self, part: str) -> None:
        self.seconds[part] = round(time.perf_counter() - self._t0, 1)
        if part in self.loading:
            self.loading.remove(part)
        self._show()

    def close(self) -> None:
        if self.enabled and self.file is not None:
            self.file.write("\r\033[K")
            self.file.flush()

    def _show(self) -> None:
        if self.enabled and self.file is not None and self.loading:
            self.file.write("\r\033[Kstarting: " + " · ".join(self.loading))
            self.file.flush()


SHARED_IMPORTS = {
    "torch": (),
    "transformers": ("AutoConfig", "AutoModelForCausalLM", "AutoModelForSequenceClassification",
                     "AutoTokenizer", "PreTrainedTokenizerFast"),
}
"""Modules (and names in them) that more than one part imports."""


def warm_imports(cfg: RunConfig) -> None:
    """The libraries the parts share imported once, in this thread, before they build on
    threads: transformers resolves its names lazily and not thread-safely (two threads asking
    for `AutoModelForCausalLM` at once: "cannot import name"), and an import holds the GIL
    anyway, so this costs little. A library that is not installed is left to the part that
    needs it (which says how to install it)."""
    import importlib

    from ..config import resolve_backend

    wanted = dict(SHARED_IMPORTS)
    backends = {resolve_backend(cfg.policy.backend), cfg.verifiers.prm.backend,
                cfg.verifiers.orm.backend}
    if backends & {"vllm", "prm-vllm", "orm-vllm", "prm-judge"}:
        wanted["vllm"] = ("LLM", "SamplingParams")
    for module, names in wanted.items():
        try:
            got = importlib.import_module(module)
            for name in names:
                getattr(got, name)
        except (ImportError, AttributeError):
            continue


def start_parts(parts: dict[str, Callable[[], Any]], line: StartupLine) -> dict[str, Any]:
    """Each part built on its own thread at once; their results by name when all are done.
    A part that raises has its error raised here, after the others finished loading (a
    thread cannot be stopped part-way), the first by `parts`' order."""
    if len(parts) == 1:  # nothing to overlap: no thread
        [(name, make)] = parts.items()
        got = make()
        line.ready(name)
        return {name: got}
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="startup") as pool:
        futures = {pool.submit(make): name for name, make in parts.items()}
        for f in as_completed(futures):
            if f.exception() is None:
                line.ready(futures[f])
        return {name: f.result() for f, name in futures.items()}
