"""`bestofn verifier-eval`'s settings, each default stated once (the CLI's flags default to
these fields; `tests/test_structure.py` checks that they agree).

Part of `bestofn.config`, so like the rest of it importing nothing from the project.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VerifierEvalOptions:
    """How `verifier-eval` scores and reports a verifier."""

    backend: str = "prm-hf"
    """The PRM scorer backend of `--prm`."""
    threshold: float = 0.5
    """A step is predicted wrong when its score is below this (ProcessBench's 0.5)."""
    aggregation: str = "min"
    """The solution score of the outcome AUROC: min | final | mean | prod."""
    bootstrap: int = 1000
    """Bootstrap resamples of the solutions for the 95% intervals (0: none)."""
    seed: int = 0
    """Seed of the bootstrap draw."""
    labels: str = "auto"
    """Step labels of Med-PRM files: auto (gemini where present, else hard) | gemini | llama |
    hard | soft (`bestofn.evaluation.label_sources`)."""
    soft_cut: float = 0.5
    """With soft labels, a step is wrong below this."""
    critic_samples: int = 1
    """Replies per solution from a critic: 1 is greedy, more is a majority vote over samples
    (ProcessBench votes over 8)."""
    critic_max_tokens: int = 8192
    """New tokens per critic reply (ProcessBench's 8,192)."""

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"--threshold must be in [0, 1], got {self.threshold}")
        if self.bootstrap < 0:
            raise ValueError(f"--bootstrap must be >= 0, got {self.bootstrap}")
