"""`bestofn score`: add PRM step scores to every solution of a file, resumably.

Progress goes to `OUTPUT.partial.jsonl` one question at a time; a restarted command skips the
questions already there and the final file is written atomically at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from .files import append_line, read_items, resume_lines, write_items
from .records import Item, StepScores
from .scorers import Scorer


def score_items(items: Sequence[Item], scorer: Scorer, *, use_docs: bool = True,
                solutions: int | None = None, partial: Path | None = None,
                progress: bool = True) -> list[Item]:
    """Score each item's first `solutions` solutions; resumes from `partial` when given."""
    done = {(d["index"], d["id"]): [StepScores.from_dict(s) for s in d["prm"]]
            for d in (resume_lines(partial) if partial else [])}
    out = []
    for i, it in enumerate(tqdm(items, desc="scoring", unit="q", disable=not progress)):
        sols = it.solutions[:solutions] if solutions else it.solutions
        key = (i, it.question.id)
        if key not in done:
            docs = [d.text for d in it.question.documents or []] if use_docs else None
            done[key] = scorer.score(it.question, docs, sols)  # type: ignore[assignment]
            if partial:
                append_line(partial, {"index": i, "id": it.question.id,
                                      "prm": [s.to_dict() for s in done[key]]})
        raw = dict(it.raw, solutions=it.raw["solutions"][: len(sols)]) if it.raw else None
        orm = it.orm[: len(sols)] if it.orm is not None else None
        out.append(Item(it.question, list(sols), prm=done[key], orm=orm, raw=raw))
    return out


def score_file(input_path: str, output_path: str, scorer: Scorer, *, use_docs: bool = True,
               solutions: int | None = None, progress: bool = True) -> list[Item]:
    """Read, score and write in the input's own structure (Med-PRM JSON or JSONL)."""
    items = read_items(input_path)
    partial = Path(f"{output_path}.partial.jsonl")
    partial.parent.mkdir(parents=True, exist_ok=True)
    scored = score_items(items, scorer, use_docs=use_docs, solutions=solutions,
                         partial=partial, progress=progress)
    write_items(output_path, scored)
    partial.unlink(missing_ok=True)
    return scored
