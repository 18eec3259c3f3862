"""Which step labels a record's verifier metrics use (`verifier-eval --labels`).

Med-PRM's training data carries four step-label sources per solution (dmis-lab/Med-PRM):
- `prm_gemini_label`: Gemini's judgement per step, 0/1; what its released training script uses
  by default (`scripts/2_training.sh`: `train_label=gemini_label`). The script keeps a label
  only up to its first 0 and sets every later one to 0; here too, so the first error is the
  first 0 and every later step counts as wrong.
- `prm_llama_label`: the same from Llama, processed the same way.
- `prm_hard_label`: Monte-Carlo rollouts, 0/1 as given (a later step may return to 1).
- `prm_soft_label`: the Monte-Carlo share of right rollouts, in [0, 1]; a step counts as wrong
  below `soft_cut` (0.5 unless stated), the first such step is the first error.
`auto` (the default) takes `prm_gemini_label` where the record has it, else `prm_hard_label`.
ProcessBench records carry their own `label` (the first wrong step; later steps unlabelled),
used whatever the choice when the record has no Med-PRM step labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import default_of
from ..config.verifier_eval import VerifierEvalOptions
from ..text.files import InputError

FIELDS = {"gemini": "prm_gemini_label", "llama": "prm_llama_label", "hard": "prm_hard_label",
          "soft": "prm_soft_label"}
"""Label source -> the Med-PRM field it reads."""
SOURCES = ("auto", *FIELDS)
PROCESSBENCH = "label"
"""The source name of a ProcessBench record's own `label`."""
AUTO_ORDER = ("gemini", "hard")

StepLabels = tuple[list[int | None] | None, int | None, str | None]
"""(per-step labels 1 right / 0 wrong / None unlabelled, first error (-1 none), source)."""


@dataclass(frozen=True)
class LabelChoice:
    """Which source to read (`auto`, or a key of `FIELDS`) and the soft labels' cut."""

    source: str = default_of(VerifierEvalOptions, "labels")
    soft_cut: float = default_of(VerifierEvalOptions, "soft_cut")

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"label source {self.source!r}; known: {', '.join(SOURCES)}")
        if not 0 < self.soft_cut <= 1:
            raise ValueError(f"soft cut must be in (0, 1], got {self.soft_cut}")


def step_labels(d: dict[str, Any], n: int, path: Path, where: str, prefix: str,
                choice: LabelChoice) -> StepLabels:
    """A record's step labels under `choice` ((None, None, None) when it has none)."""
    present = [s for s, f in FIELDS.items() if d.get(f) is not None]
    source = _pick(choice.source, present)
    if source is None:
        if choice.source != "auto" and present:
            raise InputError(path, where, f"{prefix}{FIELDS[choice.source]}",
                             f"missing (--labels {choice.source}); this record has "
                             + ", ".join(FIELDS[s] for s in present))
        if PROCESSBENCH in d:
            return (*_processbench(d[PROCESSBENCH], n, path, where, prefix), PROCESSBENCH)
        return None, None, None
    field = f"{prefix}{FIELDS[source]}"
    raw = d[FIELDS[source]]
    if source == "soft":
        soft = _unit_numbers(raw, n, path, where, field)
        hard: list[int | None] = [int(v >= choice.soft_cut) for v in soft]
    else:
        hard = list(_binary(raw, n, path, where, field))
        if source in ("gemini", "llama"):
            hard = _zero_after_first_zero(hard)
    return hard, next((i for i, v in enumerate(hard) if v == 0), -1), source


def _pick(source: str, present: list[str]) -> str | None:
    if source == "auto":
        return next((s for s in AUTO_ORDER if s in present), None)
    return source if source in present else None


def _zero_after_first_zero(labels: list[int | None]) -> list[int | None]:
    """Med-PRM's `process_gemini_label`: once a step is 0, every later step is 0."""
    out: list[int | None] = []
    for v in labels:
        out.append(0 if out and out[-1] == 0 else v)
    return out


def _binary(raw: Any, n: int, path: Path, where: str, field: str) -> list[int]:
    if not isinstance(raw, list) or len(raw) != n or not all(
            v in (0, 1) and not isinstance(v, str) for v in raw):
        raise InputError(path, where, field, f"expected a list of {n} labels 0/1 (one per "
                         f"step), got {short(raw)}")
    return [int(v) for v in raw]


def _unit_numbers(raw: Any, n: int, path: Path, where: str, field: str) -> list[float]:
    ok = isinstance(raw, list) and len(raw) == n and all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in raw)
    if not ok:
        raise InputError(path, where, field, f"expected a list of {n} numbers in [0, 1] (one "
                         f"per step), got {short(raw)}")
    return [float(v) for v in raw]


def _processbench(lab: Any, n: int, path: Path, where: str,
                  prefix: str) -> tuple[list[int | None], int]:
    if isinstance(lab, bool) or not isinstance(lab, int) or not -1 <= lab < n:
        raise InputError(path, where, f"{prefix}label", f"expected the index of the first "
                         f"wrong step (0..{n - 1}) or -1, got {lab!r}")
    if lab == -1:
        return [1] * n, -1
    return [1] * lab + [0] + [None] * (n - lab - 1), lab


def short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."
