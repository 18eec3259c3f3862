"""The one engine factory: config objects in, policy, verifiers and retriever out.

`run` (in-process and on the Ray actors), `sample`, `score`, `serve` and the library build their
engines here, so the same settings give the same engines everywhere: the policy with its preset,
engine options and validity filter; the PRM from `PRMOptions`; the ORM from `ORMOptions`; the
FAISS retriever from an index folder. Presets are resolved here too (`resolve_preset_sampling`):
a command's sampling flags left open (None) take the preset's values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..config import (
    EngineOptions,
    ORMOptions,
    PRMOptions,
    SamplingConfig,
    resolve_backend,
    resolve_preset,
)

SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "max_tokens")
"""The sampling settings a preset supplies and a flag may override."""


@dataclass(frozen=True)
class PolicySpec:
    """Which policy and how it runs. `backend` and `preset` may be `auto` (resolved here).
    Med-PRM's step filter is not the policy's: fixed-N jobs apply it
    (`execution.fixed.FixedJob`)."""

    model: str
    backend: str = "auto"
    preset: str = "auto"
    device: str = "auto"
    lora: str | None = None
    engine: EngineOptions = field(default_factory=EngineOptions)
    extra: dict[str, Any] = field(default_factory=dict)
    """Backend keyword arguments beyond the engine options (e.g. `progress` for openai)."""


def resolve_preset_sampling(policy: str, preset: str, seed: int,
                            **overrides: Any) -> tuple[Any, SamplingConfig]:
    """The preset (`auto` resolved for `policy`) and its sampling settings with the non-None
    `overrides` (temperature, top_k, top_p, max_tokens) over them."""
    from policies.presets import get_preset

    p = get_preset(resolve_preset(preset, policy))
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(SAMPLING_FIELDS)
    assert not unknown, f"not sampling settings: {sorted(unknown)}"
    return p, dataclasses.replace(p.sampling, seed=seed, **given)


def build_policy(spec: PolicySpec) -> Any:
    """The registered policy backend."""
    from policies import make_policy

    backend = resolve_backend(spec.backend)
    preset = resolve_preset(spec.preset, spec.model)
    kw = spec.engine.backend_kwargs(backend, preset=preset, device=spec.device, lora=spec.lora)
    return make_policy(backend, model=spec.model, **kw, **spec.extra)


def build_prm(model: str | None, backend: str, opts: PRMOptions, use_docs: bool) -> Any:
    """The PRM scorer (None without a model)."""
    if not model:
        return None
    from ..scorers import make_scorer

    return make_scorer(backend, model=model, **opts.scorer_kwargs(use_docs, backend))


def build_orm(opts: ORMOptions | None) -> Any:
    """The ORM scorer the options name (None without a model)."""
    if opts is None or not opts.model:
        return None
    from ..scorers import make_scorer

    return make_scorer(opts.backend, **opts.scorer_kwargs())


def build_scorer(backend: str, model: str, options: dict[str, Any]) -> Any:
    """A verifier from a registry name and free keyword options (the library's path)."""
    from ..scorers import make_scorer

    return make_scorer(backend, model=model, **options)


def build_retriever(index: str | None, device: str | None = None) -> Any:
    """The FAISS retriever over an index folder (`default`: the bundled one); None without."""
    if not index:
        return None
    from retrieval import RETRIEVERS, index_folder

    kw = {"device": device} if device is not None else {}
    return RETRIEVERS.create("faiss", folder=index_folder(index), **kw)
