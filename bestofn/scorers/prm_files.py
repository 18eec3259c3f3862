"""`bestofn score`: add PRM step scores to every solution of a file, resumably.

Progress goes to `OUTPUT.partial.jsonl` one question at a time; a restarted command skips the
questions already there and the final file is written atomically at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..console import progress_file
from ..text.files import (
    InputError,
    LineCheck,
    append_line,
    read_items,
    resume_lines,
    write_items,
)
from ..text.records import Item, StepScores
from ..text.shapes import check_prm_dicts
from . import Scorer
from .batch import Request, TokenCounts, score_requests


class StaleProgress(ValueError):
    """A progress file written under another scorer configuration."""


def scorer_fingerprint(scorer: Scorer, use_docs: bool, solutions: int | None) -> dict[str, Any]:
    """What must match for saved progress to be reused: backend, model, prompt settings."""
    prompt = getattr(scorer, "prompt", None)
    return {"scorer": type(scorer).__name__, "model": str(getattr(scorer, "model_name", "")),
            "prompt": asdict(prompt) if is_dataclass(prompt) else None,  # type: ignore[arg-type]
            "use_docs": use_docs, "solutions": solutions}


def _resume(partial: Path | None, fingerprint: dict[str, Any]) -> list[dict[str, Any]]:
    if partial is None:
        return []
    lines = resume_lines(partial, _progress_line(partial))
    if not lines:
        append_line(partial, {"config": fingerprint})
        return []
    if lines[0].get("config") != fingerprint:
        raise StaleProgress(f"{partial} holds progress of another scoring config "
                            f"({lines[0].get('config')}, now {fingerprint}); delete it to start "
                            "over, or rerun with the same flags to resume")
    return lines[1:]


def _progress_line(path: Path) -> LineCheck:
    """The first line is the config; every other one a question's scores."""
    def check(where: str, d: dict[str, Any]) -> None:
        if where == "line 1" or "config" in d and len(d) == 1:
            return
        if (not isinstance(d.get("index"), int) or not isinstance(d.get("id"), str)
                or not isinstance(d.get("prm"), list)):
            raise InputError(path, where, "index", "not a progress line of `bestofn score` "
                             "(index, id, prm)")
        check_prm_dicts(d["prm"], len(d["prm"]), path, where, "prm")

    return check


def score_items(items: Sequence[Item], scorer: Scorer, *, use_docs: bool = True,
                solutions: int | None = None, partial: Path | None = None,
                progress: bool = True, tokens: TokenCounts | None = None) -> list[Item]:
    """Score each item's first `solutions` solutions, one question per call; resumes from
    `partial` when given (its first line records the scorer config, and progress of another
    config is refused). The tokens of this session's calls are added to `tokens`."""
    lines = _resume(partial, scorer_fingerprint(scorer, use_docs, solutions))
    done = {(d["index"], d["id"]): [StepScores.from_dict(s) for s in d["prm"]] for d in lines}
    out = []
    for i, it in enumerate(tqdm(items, desc="scoring", unit="q", disable=not progress,
                                          file=progress_file())):
        sols = it.solutions[:solutions] if solutions else it.solutions
        key = (i, it.question.id)
        if key not in done:
            docs = it.question.document_texts(use_docs)
            [done[key]] = score_requests(scorer, [Request(it.question, sols, docs)],
                                         tokens).results
            if partial:
                append_line(partial, {"index": i, "id": it.question.id,
                                      "prm": [s.to_dict() for s in done[key]]})
        raw = dict(it.raw, solutions=it.raw["solutions"][: len(sols)]) if it.raw else None
        orm = it.orm[: len(sols)] if it.orm is not None else None
        out.append(Item(it.question, list(sols), prm=done[key], orm=orm, raw=raw))
    return out


def score_file(input_path: str, output_path: str, scorer: Scorer, *, use_docs: bool = True,
               solutions: int | None = None, progress: bool = True,
               tokens: TokenCounts | None = None) -> list[Item]:
    """Read, score and write in the input's own structure (Med-PRM JSON or JSONL)."""
    items = read_items(input_path)
    partial = Path(f"{output_path}.partial.jsonl")
    partial.parent.mkdir(parents=True, exist_ok=True)
    scored = score_items(items, scorer, use_docs=use_docs, solutions=solutions,
                         partial=partial, progress=progress, tokens=tokens)
    write_items(output_path, scored)
    partial.unlink(missing_ok=True)
    return scored
