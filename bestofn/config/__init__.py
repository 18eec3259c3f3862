"""Every configuration of bestofn, each default stated once: the engines' and commands'
options (`options`), a run's composed settings (`run`: `RunConfig`) and `verifier-eval`'s
(`verifier_eval`). The package imports nothing from the rest of the project, so any module
may depend on it."""

from .options import (
    PRM_BACKEND_OPTIONS,
    PRM_OPTION_FLAGS,
    EngineOptions,
    ExecConfig,
    ORMOptions,
    PRMOptions,
    ReportOptions,
    RerankOptions,
    SampleOptions,
    SamplingConfig,
    default_of,
    default_policy_backend,
    resolve_backend,
    resolve_preset,
)
from .run import (
    RECORD,
    DocumentsConfig,
    JudgeConfig,
    ORMConfig,
    PolicyConfig,
    PRMConfig,
    RunConfig,
    StrategyConfig,
    VerifierConfig,
)

__all__ = ["RECORD", "PRM_BACKEND_OPTIONS", "PRM_OPTION_FLAGS", "DocumentsConfig",
           "EngineOptions", "ExecConfig", "JudgeConfig", "ORMConfig", "ORMOptions",
           "PRMConfig", "PRMOptions", "PolicyConfig", "RerankOptions", "ReportOptions", "RunConfig",
           "SampleOptions", "SamplingConfig", "StrategyConfig", "VerifierConfig", "default_of",
           "default_policy_backend", "resolve_backend", "resolve_preset"]
