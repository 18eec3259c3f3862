"""`bestofn verifier-eval`: step-level metrics of a verifier on labelled steps (ProcessBench
F1, step AUROC, Brier, ECE, outcome AUROC), from scores in the files, a PRM run here, or an LLM
critic under ProcessBench's protocol; one file, or several in one table with the unweighted
mean F1 and a threshold calibrated on one of them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..config import default_of
from ..config.verifier_eval import VerifierEvalOptions
from ..evaluation.label_sources import SOURCES
from .options import add_prm_options, prm_options

LABELLED_SUFFIXES = (".json", ".jsonl")


def register(sub: Any) -> dict[str, Any]:
    v = sub.add_parser("verifier-eval", help="step-level metrics of a verifier on labelled steps")

    def opt(flag: str, **kw: Any) -> None:
        name = flag.removeprefix("--").replace("-", "_")
        v.add_argument(flag, default=default_of(VerifierEvalOptions, name), **kw)

    v.add_argument("--input", required=True, action="append", metavar="FILE|DIR",
                   help="labelled steps: ProcessBench (steps, label) or Med-PRM (steps, "
                        "prm_*_label) JSONL/JSON, or `bestofn score` output; repeat it, or name "
                        "a folder (its .json/.jsonl files), for one row per file and the mean")
    v.add_argument("--prm", default=None, metavar="MODEL",
                   help="score the steps with this PRM (folder, Hugging Face id or 'smollm2'); "
                        "default: read PRM_score_list from the file")
    opt("--backend", help="scorer backend of --prm")
    opt("--threshold", type=float,
        help="a step is predicted wrong when its score is below this")
    v.add_argument("--calibrate-on", default=None, metavar="NAME|FILE",
                   help="choose the threshold of best F1 on this input (its path, file name or "
                        "name without suffix, e.g. gsm8k) or file, and apply it to every input")
    opt("--labels", choices=SOURCES,
        help="step labels of Med-PRM files: auto (prm_gemini_label where present, else "
             "prm_hard_label), gemini, llama, hard, soft; ProcessBench files use their label")
    opt("--soft-cut", type=float, help="with --labels soft, a step is wrong below this")
    opt("--aggregation", choices=("min", "final", "mean", "prod"),
        help="solution score for the outcome AUROC")
    opt("--bootstrap", type=int, metavar="B",
        help="bootstrap resamples for the intervals (0: none)")
    opt("--seed", type=int, help="seed of the bootstrap draw")
    v.add_argument("--critic", default=None, metavar="MODEL",
                   help="evaluate an LLM as a critic under ProcessBench's protocol (vLLM "
                        "offline on this model; with --critic-base-url the served name)")
    v.add_argument("--critic-base-url", default=None, metavar="URL",
                   help="the critic's OpenAI-compatible server (key from $OPENAI_API_KEY)")
    opt("--critic-samples", type=int,
        help="replies per solution: 1 greedy, more a majority vote (ProcessBench: 8)")
    opt("--critic-max-tokens", type=int, help="new tokens per critic reply")
    v.add_argument("--critic-template", default=None, metavar="FILE",
                   help="the critic's user template (placeholders {problem}, "
                        "{tagged_response}; default ProcessBench's, docs/verifiers.md)")
    v.add_argument("--to-labelled", default=None, metavar="OUT",
                   help="write the records (with their scores) as flat labelled JSONL and exit "
                        "without metrics: converts `bestofn score` output (one --input)")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    add_prm_options(v)
    return {"verifier-eval": cmd_verifier_eval}


def input_files(inputs: list[str]) -> list[Path]:
    """Each --input: a file, or a folder's .json/.jsonl files in name order."""
    out: list[Path] = []
    for x in inputs:
        p = Path(x)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix in LABELLED_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"{p}: no .json or .jsonl file in the folder")
            out += files
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def calibration_input(name: str, files: list[Path]) -> tuple[int | None, Path]:
    """(index among the inputs, or None for a file of its own; its path)."""
    for i, f in enumerate(files):
        if name in (str(f), f.name, f.stem) or Path(name).resolve() == f.resolve():
            return i, f
    if Path(name).is_file():
        return None, Path(name)
    raise ValueError(f"--calibrate-on {name!r}: not an input ("
                     + ", ".join(f.stem for f in files) + ") and no such file")


def options(a: argparse.Namespace) -> VerifierEvalOptions:
    return VerifierEvalOptions(
        backend=a.backend, threshold=a.threshold, aggregation=a.aggregation,
        bootstrap=a.bootstrap, seed=a.seed, labels=a.labels, soft_cut=a.soft_cut,
        critic_samples=a.critic_samples, critic_max_tokens=a.critic_max_tokens)


def cmd_verifier_eval(a: argparse.Namespace) -> int:
    from ..evaluation.label_sources import LabelChoice
    from ..evaluation.labels import read_labelled, write_labelled

    o = options(a)
    if a.critic_base_url and not a.critic:
        raise ValueError("--critic-base-url needs --critic NAME (the served model's name)")
    if a.critic and a.prm:
        raise ValueError("give --prm or --critic, not both")
    files = input_files(a.input)
    calib = calibration_input(a.calibrate_on, files) if a.calibrate_on else None
    if calib and a.critic:
        raise ValueError("--calibrate-on chooses a score threshold; a critic has none")
    choice = LabelChoice(o.labels, o.soft_cut)
    sets = [read_labelled(f, choice) for f in files]
    verify = _verifier(a, o)
    if a.to_labelled:
        if len(files) != 1 or a.critic:
            raise ValueError("--to-labelled converts one --input of step scores")
        sols = verify(sets[0])
        write_labelled(a.to_labelled, sols)
        print(f"wrote {len(sols)} labelled solutions -> {a.to_labelled}")
        return 0
    table = _table(a, o, files, sets, verify, calib, choice)
    print(json.dumps(table.to_json()) if a.json else _text(table))
    return 0


def _verifier(a: argparse.Namespace, o: VerifierEvalOptions) -> Any:
    """solutions -> scored solutions (--prm), or -> critic verdicts (--critic), or as read."""
    if a.critic:
        from ..scorers.critic import CriticPrompt, critic_verdicts
        from ..scorers.critic_engines import CriticSampling, make_critic

        p = prm_options(a)
        engine = make_critic(a.critic, base_url=a.critic_base_url, dtype=p.dtype)
        prompt = CriticPrompt.from_file(a.critic_template) if a.critic_template \
            else CriticPrompt()
        sampling = CriticSampling(o.critic_samples, o.critic_max_tokens)
        return lambda sols: critic_verdicts(engine, prompt,
                                            [(s.question, s.steps) for s in sols], sampling)
    if a.prm:
        from ..evaluation.verifier_eval import score_labelled
        from ..scorers import make_scorer

        scorer = make_scorer(o.backend, model=a.prm,
                             **prm_options(a).scorer_kwargs(False, o.backend))
        return lambda sols: score_labelled(sols, scorer, progress=not a.json)
    return lambda sols: sols


def _table(a: argparse.Namespace, o: VerifierEvalOptions, files: list[Path], sets: list[Any],
           verify: Any, calib: tuple[int | None, Path] | None, choice: Any) -> Any:
    from ..evaluation.labels import read_labelled
    from ..evaluation.verifier_eval import evaluate_critic, evaluate_steps
    from ..evaluation.verifier_table import EvalTable, InputEval, calibrate

    kw = dict(b=o.bootstrap, seed=o.seed)
    if a.critic:
        rows = [InputEval(str(f), evaluate_critic(s, verify(s), **kw))
                for f, s in zip(files, sets, strict=True)]
        return EvalTable(rows)
    scored = [verify(s) for s in sets]
    rows = []
    for f, s in zip(files, scored, strict=True):
        try:
            ev = evaluate_steps(s, threshold=o.threshold, aggregation=o.aggregation, **kw)
        except ValueError as e:
            raise ValueError(f"{f}: {e}") from None
        rows.append(InputEval(str(f), ev))
    table = EvalTable(rows)
    if calib:
        i, path = calib
        cal = scored[i] if i is not None else verify(read_labelled(path, choice))
        table = calibrate(table, scored, cal, str(path))
    return table


def _text(table: Any) -> str:
    from ..evaluation.verifier_table import format_table

    return format_table(table)
