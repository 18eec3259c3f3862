"""`bestofn score --orm MODEL`: add outcome-reward scores to every solution, resumably.

Runs after the PRM pass when both are asked for. Progress goes to `OUTPUT.orm.partial.jsonl` one
question at a time (the PRM pass keeps its own `OUTPUT.partial.jsonl`), so a restarted command
skips the questions already scored; the final file is written atomically at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..console import progress_file
from ..text.files import InputError, LineCheck, append_line, read_items, resume_lines, write_items
from ..text.records import Item
from ..text.shapes import check_orm_list
from . import Scorer
from .batch import Request, TokenCounts, score_requests


def orm_score_items(items: Sequence[Item], scorer: Scorer, *, solutions: int | None = None,
                    partial: Path | None = None, progress: bool = True,
                    tokens: TokenCounts | None = None) -> list[Item]:
    """Give each item's first `solutions` solutions an ORM score, one question per call;
    resumes from `partial`. The tokens of this session's calls are added to `tokens`."""
    done = {(d["index"], d["id"]): (d["orm"], d["reasons"])
            for d in (resume_lines(partial, _progress_line(partial)) if partial else [])}
    out = []
    for i, it in enumerate(tqdm(items, desc="ORM scoring", unit="q", disable=not progress,
                                          file=progress_file())):
        it = first_solutions(it, solutions)
        key = (i, it.question.id)
        if key not in done:
            [got] = score_requests(scorer, [Request(it.question, it.solutions)], tokens).results
            done[key] = ([r.score for r in got], [r.reason for r in got])
            if partial:
                append_line(partial, {"index": i, "id": it.question.id, "orm": done[key][0],
                                      "reasons": done[key][1]})
        scores, reasons = done[key]
        sols = [s if r is None else replace(s, meta={**s.meta, "orm_reason": r})
                for s, r in zip(it.solutions, reasons, strict=True)]
        out.append(Item(it.question, sols, prm=it.prm, orm=list(scores), raw=it.raw))
    return out


def _progress_line(path: Path) -> LineCheck:
    """A question's ORM scores and, for each, the reason it is unscored (or null)."""
    def check(where: str, d: dict[str, Any]) -> None:
        orm, reasons = d.get("orm"), d.get("reasons")
        if not isinstance(d.get("index"), int) or not isinstance(d.get("id"), str) \
                or not isinstance(orm, list) or not isinstance(reasons, list):
            raise InputError(path, where, "index", "not a progress line of `bestofn score "
                             "--orm` (index, id, orm, reasons)")
        check_orm_list(orm, len(reasons), path, where, "orm")

    return check


def first_solutions(item: Item, k: int | None) -> Item:
    """The item cut to its first `k` solutions (scores and raw record alike)."""
    if not k or k >= len(item.solutions):
        return item
    raw = dict(item.raw, solutions=item.raw["solutions"][:k]) if item.raw else None
    return Item(item.question, item.solutions[:k], prm=item.prm[:k] if item.prm else None,
                orm=item.orm[:k] if item.orm else None, raw=raw)


def unscored_summary(items: Sequence[Item]) -> str:
    """`N unscored, e.g. <first reason>` over the ORM scores of `items`."""
    reasons = [s.meta.get("orm_reason", "not scored") for it in items
               for s, v in zip(it.solutions, it.orm or [], strict=False) if v is None]
    return f"{len(reasons)} unscored" + (f", e.g. {reasons[0]}" if reasons else "")


def score_file_with_orm(input_path: str, output_path: str, *, orm: Scorer,
                        prm: Scorer | None = None, use_docs: bool = True,
                        solutions: int | None = None, progress: bool = True,
                        tokens: dict[str, TokenCounts] | None = None) -> list[Item]:
    """Read, PRM-score (when `prm` is given), ORM-score and write in the input's structure."""
    from .prm_files import score_items

    items = read_items(input_path)
    prm_partial = Path(f"{output_path}.partial.jsonl")
    orm_partial = Path(f"{output_path}.orm.partial.jsonl")
    orm_partial.parent.mkdir(parents=True, exist_ok=True)
    if prm is not None:
        items = score_items(items, prm, use_docs=use_docs, solutions=solutions,
                            partial=prm_partial, progress=progress,
                            tokens=tokens["prm"] if tokens else None)
    scored = orm_score_items(items, orm, solutions=solutions, partial=orm_partial,
                             progress=progress, tokens=tokens["orm"] if tokens else None)
    write_items(output_path, scored)
    prm_partial.unlink(missing_ok=True)
    orm_partial.unlink(missing_ok=True)
    return scored
