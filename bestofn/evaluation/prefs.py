"""Preference evaluation of an outcome reward model on pairwise data (chosen vs rejected).

The figures are those the Skywork MedArena LoRA card reports, defined here explicitly:
- `accuracy`: share of pairs whose chosen response scores strictly above the rejected one.
  Ties count as wrong (`n_ties`), and so do pairs with an unscored side (`n_unscored`, e.g.
  too long under the `unscored` truncation policy): every pair stays in the denominator.
- `mean_margin`: mean of chosen − rejected over the pairs with both sides scored.
- `score_std`: standard deviation (population, ddof 0) of all scores of those pairs, chosen
  and rejected pooled. The card does not say which spread it means, so `margin_std` (of the
  margins) is given as well.
- `ci_low`/`ci_high`: percentile bootstrap 95% interval of the accuracy (pairs resampled with
  replacement, `bootstrap` draws seeded with `seed`: `bestofn.evaluation.intervals`, as the report).

Pairs file: JSONL (or a `.json` list), one object per pair with `chosen` and `rejected`, each
either a string (the response; then `prompt` is required, a string or a message list) or a
conversation, a list of `{role, content}` ending with the assistant's turn. A conversation that
starts with the assistant's turn is the response only, and the prompt is put in front of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ReportOptions
from ..scorers.orm_prompt import Message, ORMResult, check_conversation
from ..text.files import InputError, json_objects, load_json
from .intervals import bootstrap_interval


@dataclass(frozen=True)
class Pair:
    """One preference pair as two full conversations."""

    chosen: list[Message]
    rejected: list[Message]
    id: str = ""


@dataclass(frozen=True)
class PrefResult:
    """The preference figures (see the module docstring for their definitions)."""

    accuracy: float
    ci_low: float
    ci_high: float
    n_pairs: int
    n_correct: int
    n_ties: int
    n_unscored: int
    mean_margin: float | None
    margin_std: float | None
    score_std: float | None
    mean_chosen: float | None
    mean_rejected: float | None
    bootstrap: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """Pairs from a JSONL file (or a `.json` list); bad records raise `InputError`."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    pairs = [pair_from_record(d, p, where) for where, d in _records(p)]
    if not pairs:
        raise InputError(p, "whole file", "(file)", "no pairs")
    return pairs


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    if path.suffix == ".json":
        data = load_json(path, list, "list of pairs")
        return ((f"record {i}", d) for i, d in enumerate(data))
    return ((f"line {n}", d) for n, d in json_objects(path))


def pair_from_record(d: Any, path: Path, where: str) -> Pair:
    if not isinstance(d, dict):
        raise InputError(path, where, "(record)", f"expected an object, got {type(d).__name__}")
    prompt = _prompt(d.get("prompt"), path, where)
    sides = [_side(d, name, prompt, path, where) for name in ("chosen", "rejected")]
    return Pair(sides[0], sides[1], id=str(d.get("id", where)))


def _prompt(raw: Any, path: Path, where: str) -> list[Message] | None:
    if raw is None or isinstance(raw, list) and not raw:
        return None
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    problem = check_conversation(raw + [{"role": "assistant", "content": ""}]) \
        if isinstance(raw, list) else f"expected a string or a message list, got {raw!r}"
    if problem:
        raise InputError(path, where, "prompt", problem)
    return list(raw)


def _side(d: dict[str, Any], name: str, prompt: list[Message] | None, path: Path,
          where: str) -> list[Message]:
    if name not in d:
        raise InputError(path, where, name, "missing")
    raw = d[name]
    if isinstance(raw, str):
        if prompt is None:
            raise InputError(path, where, "prompt", f"missing: needed when '{name}' is a string")
        return [*prompt, {"role": "assistant", "content": raw}]
    problem = check_conversation(raw)
    if problem:
        raise InputError(path, where, name, problem)
    if raw[0]["role"] == "assistant":
        if prompt is None:
            raise InputError(path, where, "prompt",
                             f"missing: '{name}' holds only the response, so a prompt is needed")
        return [*prompt, *raw]
    return list(raw)


def pref_metrics(chosen: Sequence[float | None], rejected: Sequence[float | None], *,
                 bootstrap: int = ReportOptions.bootstrap, seed: int = 0) -> PrefResult:
    """The preference figures from the two score lists (None = unscored)."""
    if len(chosen) != len(rejected) or not chosen:
        raise ValueError(f"need equal, non-empty score lists: {len(chosen)} chosen, "
                         f"{len(rejected)} rejected")
    both = [(c, r) for c, r in zip(chosen, rejected, strict=True)
            if c is not None and r is not None]
    correct = np.array([c is not None and r is not None and c > r
                        for c, r in zip(chosen, rejected, strict=True)], dtype=float)
    low, high = accuracy_interval(correct, bootstrap, seed)
    spread = _spread(both)
    return PrefResult(
        accuracy=float(correct.mean()), ci_low=low, ci_high=high, n_pairs=len(chosen),
        n_correct=int(correct.sum()), n_ties=sum(c == r for c, r in both),
        n_unscored=len(chosen) - len(both), bootstrap=bootstrap, seed=seed, **spread)


def _spread(both: list[tuple[float, float]]) -> dict[str, float | None]:
    if not both:
        return dict.fromkeys(("mean_margin", "margin_std", "score_std", "mean_chosen",
                              "mean_rejected"))
    c, r = np.array(both, dtype=np.float64).T
    return {"mean_margin": float((c - r).mean()), "margin_std": float((c - r).std()),
            "score_std": float(np.concatenate([c, r]).std()), "mean_chosen": float(c.mean()),
            "mean_rejected": float(r.mean())}


def accuracy_interval(correct: np.ndarray, draws: int, seed: int) -> tuple[float, float]:
    """The shared percentile bootstrap (`bestofn.evaluation.intervals`) of the mean of `correct`."""
    if draws <= 0:
        return float("nan"), float("nan")
    lo, hi = bootstrap_interval(correct, b=draws, seed=seed)
    return float(lo), float(hi)


def score_pairs(pairs: Sequence[Pair], scorer: Any,
                progress: bool = True) -> tuple[list[ORMResult], list[ORMResult]]:
    """Chosen and rejected results; all conversations go to the scorer in one call, so the
    backend batches them by length across pairs."""
    results = scorer.score_conversations([p.chosen for p in pairs] +
                                         [p.rejected for p in pairs], progress=progress)
    assert len(results) == 2 * len(pairs), (len(results), len(pairs))
    return results[: len(pairs)], results[len(pairs):]


def evaluate_pairs(pairs: Sequence[Pair], scorer: Any, *, bootstrap: int = ReportOptions.bootstrap,
                   seed: int = 0, progress: bool = True) -> PrefResult:
    chosen, rejected = score_pairs(pairs, scorer, progress=progress)
    return pref_metrics([r.score for r in chosen], [r.score for r in rejected],
                        bootstrap=bootstrap, seed=seed)


def format_prefs(res: PrefResult) -> str:
    def num(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    return "\n".join([
        f"preference accuracy  {100 * res.accuracy:.2f}% ({res.n_correct}/{res.n_pairs}), "
        f"95% CI [{100 * res.ci_low:.2f}, {100 * res.ci_high:.2f}] "
        f"(bootstrap {res.bootstrap}, seed {res.seed})",
        f"mean score margin    {num(res.mean_margin)} (margin std {num(res.margin_std)})",
        f"score std            {num(res.score_std)}",
        f"mean chosen/rejected {num(res.mean_chosen)} / {num(res.mean_rejected)}",
        f"ties {res.n_ties}, unscored pairs {res.n_unscored} (both counted as wrong)",
    ])
