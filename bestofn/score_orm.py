"""`bestofn score --orm MODEL`: add outcome-reward scores to every solution, resumably.

Runs after the PRM pass when both are asked for. Progress goes to `OUTPUT.orm.partial.jsonl` one
question at a time (the PRM pass keeps its own `OUTPUT.partial.jsonl`), so a restarted command
skips the questions already scored; the final file is written atomically at the end.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .files import append_line, read_items, resume_lines, write_items
from .records import Item, Question, Solution
from .scorers import Scorer, make_scorer
from .scorers.orm_prompt import TRUNCATIONS


def add_orm_args(p: argparse.ArgumentParser, *, required: bool, short: bool = False) -> None:
    """The outcome-reward-model options shared by `score` and `prefs`.

    Options that a PRM could also have are spelled `--orm-…`; `short` adds the plain spelling
    too (`--max-len`, `--truncation`, `--attn-implementation`) for commands with no PRM.
    """
    def flags(name: str) -> list[str]:
        return [f"--{name}", f"--orm-{name}"] if short else [f"--orm-{name}"]

    p.add_argument("--orm", required=required, default=None, metavar="MODEL",
                   help="outcome reward model: local folder or Hugging Face id "
                        "(a sequence classifier with one label, e.g. Skywork-Reward)")
    p.add_argument("--adapter", default=None, metavar="PATH_OR_ID",
                   help="PEFT LoRA adapter on the ORM")
    p.add_argument("--merge-adapter", action="store_true",
                   help="merge the adapter into the weights (faster, same scores; orm-hf only)")
    p.add_argument("--orm-backend", default="orm-hf", metavar="NAME",
                   help="orm-hf (default) | orm-vllm")
    p.add_argument(*flags("max-len"), dest="orm_max_len", type=int, default=4096, metavar="N",
                   help="token limit of one ORM conversation (2048 for MedArena LoRA v2)")
    p.add_argument(*flags("truncation"), dest="orm_truncation", choices=TRUNCATIONS,
                   default="unscored",
                   help="past the limit: leave unscored (default), keep_end (drop the "
                        "response's first tokens) or keep_start (drop its last tokens)")
    p.add_argument(*flags("attn-implementation"), dest="orm_attn", default=None, metavar="IMPL",
                   help="transformers attention: eager (Gemma-2), sdpa, flash_attention_2")


def build_orm_scorer(a: argparse.Namespace) -> Scorer:
    """The ORM scorer the parsed options name (orm-hf or orm-vllm)."""
    kw: dict[str, Any] = {"model": a.orm, "adapter": a.adapter, "device": a.device,
                          "dtype": a.dtype, "max_len": a.orm_max_len,
                          "truncation": a.orm_truncation}
    if a.orm_backend == "orm-vllm":
        if a.merge_adapter or a.orm_attn:
            raise ValueError("--merge-adapter and --attn-implementation apply to orm-hf only")
    else:
        kw.update(merge_adapter=a.merge_adapter, batch_size=a.batch_size,
                  max_batch_tokens=a.max_batch_tokens,
                  attn_implementation=a.orm_attn)
    return make_scorer(a.orm_backend, **kw)


def orm_score_items(items: Sequence[Item], scorer: Scorer, *, solutions: int | None = None,
                    partial: Path | None = None, progress: bool = True) -> list[Item]:
    """Give each item's first `solutions` solutions an ORM score; resumes from `partial`."""
    done = {(d["index"], d["id"]): (d["orm"], d["reasons"])
            for d in (resume_lines(partial) if partial else [])}
    out = []
    for i, it in enumerate(tqdm(items, desc="ORM scoring", unit="q", disable=not progress)):
        it = first_solutions(it, solutions)
        key = (i, it.question.id)
        if key not in done:
            done[key] = score_with_reasons(scorer, it.question, it.solutions)
            if partial:
                append_line(partial, {"index": i, "id": it.question.id, "orm": done[key][0],
                                      "reasons": done[key][1]})
        scores, reasons = done[key]
        sols = [s if r is None else replace(s, meta={**s.meta, "orm_reason": r})
                for s, r in zip(it.solutions, reasons, strict=True)]
        out.append(Item(it.question, sols, prm=it.prm, orm=list(scores), raw=it.raw))
    return out


def score_with_reasons(scorer: Scorer, question: Question, solutions: Sequence[Solution],
                       ) -> tuple[list[float | None], list[str | None]]:
    """Scores and, for the unscored, the reason (when the backend gives one)."""
    detailed = getattr(scorer, "score_detailed", None)
    if detailed is None:
        scores = list(scorer.score(question, None, solutions))  # type: ignore[arg-type]
        return scores, [None if s is not None else "not scored" for s in scores]
    results = detailed(question, None, solutions)
    return [r.score for r in results], [r.reason for r in results]


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
                        solutions: int | None = None, progress: bool = True) -> list[Item]:
    """Read, PRM-score (when `prm` is given), ORM-score and write in the input's structure."""
    from .score import score_items

    items = read_items(input_path)
    prm_partial = Path(f"{output_path}.partial.jsonl")
    orm_partial = Path(f"{output_path}.orm.partial.jsonl")
    orm_partial.parent.mkdir(parents=True, exist_ok=True)
    if prm is not None:
        items = score_items(items, prm, use_docs=use_docs, solutions=solutions,
                            partial=prm_partial, progress=progress)
    scored = orm_score_items(items, orm, solutions=solutions, partial=orm_partial,
                             progress=progress)
    write_items(output_path, scored)
    prm_partial.unlink(missing_ok=True)
    orm_partial.unlink(missing_ok=True)
    return scored
