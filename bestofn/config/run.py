"""A run's settings, composed of the objects each part of the run reads: the policy and its
sampling, the verifiers (PRM with its judge, ORM), the documents, the strategy (fixed N,
adaptive or search) and the engine options. config.json records them flat (`RECORD`), the
shape older run folders have, so a folder written before a setting existed still resumes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from .options import (
    EngineOptions,
    ORMOptions,
    PRMOptions,
    SamplingConfig,
    default_of,
    resolve_backend,
    resolve_preset,
)


@dataclass(frozen=True)
class PolicyConfig:
    """The policy and how it samples. The sampling settings and step bounds left None are the
    preset's (`RunConfig.resolved` fills them in, and config.json records what was used)."""

    model: str = "smollm2"
    backend: str = "auto"
    """vllm | hf | openai | replay; `auto` is resolved when the config is made: vllm when
    installed, else hf (config.json records the resolved name)."""
    preset: str = "auto"
    """Prompt, sampling defaults, step filter and answer format of the policy
    (`policies.presets`); auto: `smollm2` for the embedded policy, else `medprm`."""
    lora: str | None = None
    """PEFT LoRA adapter on the policy (vllm, hf)."""
    min_steps: int | None = None
    max_steps: int | None = None
    """Med-PRM's validity filter keeps solutions with min..max steps (3..9), topping up
    questions left short; 0..0 keeps every solution; None: the preset's."""
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    logprobs: int | None = None
    """Top-k log-probabilities per token for the confidence methods (`SamplingConfig`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend", resolve_backend(self.backend))
        object.__setattr__(self, "preset", resolve_preset(self.preset, self.model))

    def is_resolved(self) -> bool:
        return None not in (self.temperature, self.top_k, self.top_p, self.max_tokens,
                            self.min_steps, self.max_steps)


@dataclass(frozen=True)
class JudgeConfig:
    """prm-judge (`--prm-backend prm-judge`): its server, template and mode (`PRMOptions`)."""

    base_url: str | None = None
    template: str | None = None
    mode: str | None = None


@dataclass(frozen=True)
class PRMConfig:
    """The run's process reward model (None: none) and its prompt."""

    model: str | None = "smollm2"
    backend: str = "prm-hf"
    max_len: int = default_of(PRMOptions, "max_len")
    double_bos: bool = default_of(PRMOptions, "double_bos")
    published_prompt: bool = default_of(PRMOptions, "published")
    """Score with the published scorer's prompt choices (`PRMOptions.published`)."""
    use_docs: bool = False
    """Put each question's documents in the PRM prompt."""
    judge: JudgeConfig = JudgeConfig()

    def options(self, device: str,
                cache_gb: float = default_of(PRMOptions, "cache_gb")) -> PRMOptions:
        return PRMOptions(max_len=self.max_len, device=device, double_bos=self.double_bos,
                          published=self.published_prompt, judge_base_url=self.judge.base_url,
                          judge_template=self.judge.template, judge_mode=self.judge.mode,
                          cache_gb=cache_gb)


@dataclass(frozen=True)
class ORMConfig:
    """The run's outcome reward model (None: none); its other settings are `ORMOptions`'
    defaults."""

    model: str | None = None
    backend: str = default_of(ORMOptions, "backend")
    adapter: str | None = None

    def options(self, device: str) -> ORMOptions | None:
        if not self.model:
            return None
        return ORMOptions(model=self.model, adapter=self.adapter, backend=self.backend,
                          device=device)


@dataclass(frozen=True)
class VerifierConfig:
    """The run's verifiers: a PRM (a judge is one of its backends) and an ORM."""

    prm: PRMConfig = PRMConfig()
    orm: ORMConfig = ORMConfig()

    @property
    def any(self) -> bool:
        return bool(self.prm.model or self.orm.model)


@dataclass(frozen=True)
class DocumentsConfig:
    index: str | None = None
    """Retrieve each question's documents from this FAISS index folder (`default`: the
    bundled MedQuAD index, built on first use and cached)."""
    k: int = 5


@dataclass(frozen=True)
class StrategyConfig:
    """How many samples a question gets: fixed N (neither set), an adaptive stopping rule or
    a search inside generation."""

    adaptive: str | None = None
    """A stopping rule (`bestofn.adaptive.RULES`, e.g. `beta:eps=0.05`): sample each question
    until the rule says its answer is settled, at most `n`, streamed sample by sample
    (`bestofn.jobs.adaptive`)."""
    search: str | None = None
    """A search strategy (`bestofn.search.STRATEGIES`, e.g. `beam:width=4`): generate step by
    step and let the PRM prune partial solutions."""

    @property
    def kind(self) -> str:
        return "search" if self.search else "adaptive" if self.adaptive else "fixed"


RECORD: dict[str, tuple[str, ...]] = {
    "dataset": ("dataset",), "questions": ("questions",), "n": ("n",),
    "policy": ("policy", "model"), "policy_backend": ("policy", "backend"),
    "preset": ("policy", "preset"), "lora": ("policy", "lora"),
    "min_steps": ("policy", "min_steps"), "max_steps": ("policy", "max_steps"),
    "prm": ("verifiers", "prm", "model"), "prm_backend": ("verifiers", "prm", "backend"),
    "orm": ("verifiers", "orm", "model"), "orm_backend": ("verifiers", "orm", "backend"),
    "orm_adapter": ("verifiers", "orm", "adapter"),
    "use_docs": ("verifiers", "prm", "use_docs"),
    "index": ("documents", "index"), "k": ("documents", "k"),
    "max_len": ("verifiers", "prm", "max_len"), "double_bos": ("verifiers", "prm", "double_bos"),
    "published_prompt": ("verifiers", "prm", "published_prompt"),
    "seed": ("seed",),
    "temperature": ("policy", "temperature"), "top_k": ("policy", "top_k"),
    "top_p": ("policy", "top_p"), "max_tokens": ("policy", "max_tokens"),
    "device": ("device",), "rules": ("rules",),
    "adaptive": ("strategy", "adaptive"), "logprobs": ("policy", "logprobs"),
    "judge_base_url": ("verifiers", "prm", "judge", "base_url"),
    "judge_template": ("verifiers", "prm", "judge", "template"),
    "judge_mode": ("verifiers", "prm", "judge", "mode"),
    "search": ("strategy", "search"),
}
"""config.json's flat keys (and report.json's `config`), in their order, and where each lives
in the nested `RunConfig`: the record keeps the shape older run folders have."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's results, composed of the policy, verifiers,
    documents and strategy settings (recorded flat as `config.json` in the run folder:
    `identity`, `from_settings`)."""

    out: str = "runs/default"
    dataset: str = "medqa"
    questions: int = 5
    n: int = 8
    seed: int = 0
    device: str = "auto"
    """Where the policy, verifier and embedder engines run (cpu | cuda | auto)."""
    rules: str = "strict"
    """Selection rules of the report (`bestofn.evaluation.select.RULES`)."""
    policy: PolicyConfig = PolicyConfig()
    verifiers: VerifierConfig = VerifierConfig()
    documents: DocumentsConfig = DocumentsConfig()
    strategy: StrategyConfig = StrategyConfig()
    engine: EngineOptions = EngineOptions()
    """How the policy engine runs (not part of `identity`)."""
    prm_cache_gb: float = default_of(PRMOptions, "cache_gb")
    """prm-hf's key/value cache bound for a search's partial solutions
    (`PRMOptions.cache_gb`; not part of `identity`: it changes no score)."""
    RECORD: ClassVar[dict[str, tuple[str, ...]]] = RECORD

    def __post_init__(self) -> None:
        if self.n < 1 or self.questions < 1:
            raise ValueError(f"need n >= 1 and questions >= 1, got n={self.n}, "
                             f"questions={self.questions}")

    @classmethod
    def from_settings(cls, **settings: Any) -> RunConfig:
        """A config from flat settings: config.json's keys (`RECORD`), `out`, `engine`
        (an `EngineOptions` or its dict) and `prm_cache_gb`; a key left out keeps its default."""
        unknown = set(settings) - set(RECORD) - {"out", "engine", "prm_cache_gb"}
        if unknown:
            raise TypeError(f"unknown run settings {sorted(unknown)}")
        groups: dict[str, Any] = {}
        for key, value in settings.items():
            path = RECORD.get(key, (key,))
            node = groups
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        engine = groups.get("engine", EngineOptions())
        if isinstance(engine, dict):
            groups["engine"] = EngineOptions(**engine)
        prm = groups.get("verifiers", {}).get("prm", {})
        if "judge" in prm:
            prm["judge"] = JudgeConfig(**prm["judge"])
        verifiers = groups.pop("verifiers", {})
        return cls(**{**groups,
                      "policy": PolicyConfig(**groups.get("policy", {})),
                      "verifiers": VerifierConfig(PRMConfig(**verifiers.get("prm", {})),
                                                  ORMConfig(**verifiers.get("orm", {}))),
                      "documents": DocumentsConfig(**groups.get("documents", {})),
                      "strategy": StrategyConfig(**groups.get("strategy", {}))})

    def setting(self, key: str) -> Any:
        """The value of config.json's key `key` (`RECORD`)."""
        value: Any = self
        for part in RECORD[key]:
            value = getattr(value, part)
        return value

    def identity(self) -> dict[str, Any]:
        """The settings that change results (not where or how they are computed), flat, as
        config.json records them; `search` only when set."""
        return {k: self.setting(k) for k in RECORD if k != "search" or self.strategy.search}

    def sampling(self) -> SamplingConfig:
        p = self.policy
        assert p.is_resolved(), f"unresolved sampling settings: {self}"
        return SamplingConfig(p.temperature, p.top_k, p.top_p,  # type: ignore[arg-type]
                              p.max_tokens, self.seed,  # type: ignore[arg-type]
                              logprobs=p.logprobs)

    def resolved(self, sampling: SamplingConfig, steps: tuple[int, int] | None) -> RunConfig:
        """The config with every None sampling setting taken from a preset's `sampling` and
        step bounds (`steps`; None: no filter)."""
        lo, hi = steps or (0, 0)
        fill = {"temperature": sampling.temperature, "top_k": sampling.top_k,
                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens,
                "min_steps": lo, "max_steps": hi}
        policy = dataclasses.replace(self.policy, **{k: v for k, v in fill.items()
                                                     if getattr(self.policy, k) is None})
        return dataclasses.replace(self, policy=policy)

    def prm_options(self) -> PRMOptions:
        return self.verifiers.prm.options(self.device, self.prm_cache_gb)

    def orm_options(self) -> ORMOptions | None:
        """The run's ORM (None without one); every other ORM setting at its default."""
        return self.verifiers.orm.options(self.device)
