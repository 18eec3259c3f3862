"""`bestofn score`: add PRM step scores and/or ORM scores to every solution of a file."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import RunConfig, default_of
from .options import add_orm_options, add_prm_options, orm_options, prm_options


def register(sub: Any) -> dict[str, Any]:
    s = sub.add_parser("score", help="add PRM step scores and/or ORM scores to a solutions file")
    s.add_argument("--input", required=True, help="Med-PRM JSON (.json) or bestofn JSONL")
    s.add_argument("--prm", default=None, help="local folder, Hugging Face id, or 'smollm2' "
                   "(--prm, --orm or both)")
    s.add_argument("--output", required=True, help="same format as the input (by suffix)")
    s.add_argument("--no-docs", dest="use_docs", action="store_false",
                   help="plain PRM: leave the documents out of the prompt")
    s.add_argument("--solutions", type=int, default=None, help="score the first K per question")
    s.add_argument("--backend", default=default_of(RunConfig, "prm_backend"),
                   help="PRM backend: prm-hf (default) | prm-vllm | prm-judge")
    s.add_argument("-v", "--verbose", action="store_true",
                   help="engine logs on the terminal (default: OUTPUT.engine.log)")
    add_prm_options(s)
    add_orm_options(s, required=False)
    return {"score": cmd_score}


def cmd_score(a: argparse.Namespace) -> int:
    from ..console import LOG_NAME, process_owned, quiet

    if a.prm is None and a.orm is None:
        raise ValueError("give --prm MODEL, --orm MODEL or both")
    with quiet(f"{a.output}.{LOG_NAME}", verbose=a.verbose,
               restore=not process_owned()) as con:
        items = _score(a, con.err)
        unscored = sum(not s.scored for it in items for s in it.prm or [])
        print(f"scored {len(items)} questions -> {a.output} ({unscored} solutions unscored)",
              file=con.err, flush=True)
    return 0


def _score(a: argparse.Namespace, err: Any) -> list[Any]:
    from ..execution.engines import build_orm, build_prm
    from ..scorers.prm_files import score_file

    scorer = build_prm(a.prm, a.backend, prm_options(a), a.use_docs)
    if a.orm:
        from ..scorers.orm_files import score_file_with_orm, unscored_summary

        items = score_file_with_orm(a.input, a.output, orm=build_orm(orm_options(a)),
                                    prm=scorer, use_docs=a.use_docs, solutions=a.solutions)
        print(f"ORM: {unscored_summary(items)}", file=err, flush=True)
    else:
        items = score_file(a.input, a.output, scorer, use_docs=a.use_docs,
                           solutions=a.solutions)
    return items
