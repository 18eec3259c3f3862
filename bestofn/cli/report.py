"""`bestofn report RUN_DIR`: (re)write the benchmark report of a run folder or a scored file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import ReportOptions, default_of
from .options import add_rules_option

Handler = Callable[[argparse.Namespace], int]


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("report", help="accuracy table with bootstrap intervals, accuracy-vs-N "
                       "curves and per-source breakdown of a run folder or a scored file")
    p.add_argument("run", metavar="RUN_DIR",
                   help="a run folder (results.jsonl, config.json) or a scored file")
    p.add_argument("--out", default=None,
                   help="folder for the report files (default: the run folder, or the scored "
                        "file's folder)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of tie-breaks, bootstrap and subset draws (default: the run's)")
    p.add_argument("--bootstrap", type=int, default=default_of(ReportOptions, "bootstrap"),
                   help="bootstrap resamples")
    p.add_argument("--draws", type=int, default=default_of(ReportOptions, "draws"),
                   help="random subsets per N per question")
    add_rules_option(p)
    p.add_argument("--adaptive", action="append", default=[], metavar="RULE[:k=v,...]",
                   help="add an accuracy-vs-mean-samples section replaying these stopping "
                        "rules (repeatable, or comma-separated names: beta,esc,prm)")
    p.add_argument("--adaptive-x", choices=("samples", "tokens"), default="samples",
                   help="x axis of the adaptive curves: mean samples or mean generated tokens "
                        "per question")
    p.add_argument("--search-runs", nargs="+", default=default_of(ReportOptions, "search_runs"),
                   metavar="RUN",
                   help="place these runs (search runs, run folders or results files over the "
                        "same questions) against RUN_DIR's best-of-N and majority at equal "
                        "generated tokens (RUN_DIR: a best-of-N run with token counts)")
    p.add_argument("--no-plot", dest="plot", action="store_false", default=None,
                   help="skip accuracy_vs_n.png")
    return {"report": cmd_report}


def locate(run: str) -> tuple[Path, Path]:
    """The results file and the folder holding config.json/failures.jsonl."""
    p = Path(run)
    if p.is_dir():
        results = p / "results.jsonl"
        if not results.exists():
            raise FileNotFoundError(f"{p}: no results.jsonl in this run folder")
        return results, p
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such run folder or file")
    return p, p.parent


def cmd_report(a: argparse.Namespace) -> int:
    from ..evaluation.select import get_rules, label
    from ..report import write_report
    from ..run import TIMING_FILE
    from ..text.files import InputError, complete_lines, load_json, read_items

    results, folder = locate(a.run)
    cfg_path = folder / "config.json"
    config = load_json(cfg_path, dict, "object of run settings") if cfg_path.exists() else {}
    seed = a.seed if a.seed is not None else config.get("seed", 0)
    if not isinstance(seed, int):
        raise InputError(cfg_path, "top level", "seed", f"expected an integer, got {seed!r}")
    out = Path(a.out) if a.out else folder
    timing = folder / TIMING_FILE
    items = read_items(results)
    extra = ({"search_vs_best_of_n": budget_section(a.run, items, a.search_runs, seed,
                                                    a.bootstrap)} if a.search_runs else None)
    rep = write_report(out, items, config, seed=seed, extra=extra,
                       stage_seconds=load_json(timing, dict, "object of stage seconds")
                       if timing.exists() else None,
                       failures=complete_lines(folder / "failures.jsonl")[0],
                       bootstrap=a.bootstrap, draws=a.draws, plot=a.plot, progress=True,
                       rules=get_rules(a.rules), adaptive=split_specs(a.adaptive),
                       adaptive_x=a.adaptive_x)
    for m, v in rep["accuracy"].items():
        lo, hi = rep["ci"][m]
        print(f"{label(m):<28} {100 * v:6.2f}%  [{100 * lo:6.2f}, {100 * hi:6.2f}]")
    print(f"report: {out}/report.md, {out}/report.html ({rep['n_questions']} questions)",
          file=sys.stderr)
    return 0


def budget_section(name: str, items: list[Any], runs: list[str], seed: int,
                   bootstrap: int) -> dict[str, Any]:
    """`token_budget.compare` of RUN_DIR's items against each `--search-runs` folder."""
    from ..evaluation.token_budget import Run, compare
    from ..text.files import read_items

    others = [Run(run, read_items(locate(run)[0])) for run in runs]
    return compare(Run(name, items), others, seed=seed, b=bootstrap)


def split_specs(values: list[str]) -> list[str]:
    """"beta:eps=0.1,min_n=2,esc" → ["beta:eps=0.1,min_n=2", "esc"]: a comma starts a new
    spec unless what follows is a parameter (k=v)."""
    specs: list[str] = []
    for value in values:
        for part in value.split(","):
            if "=" in part and ":" not in part and specs:
                specs[-1] += "," + part
            elif part.strip():
                specs.append(part.strip())
    return specs
