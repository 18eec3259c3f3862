"""The `bestofn` command: a thin layer over the library (parse → build → run)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence

from .files import InputError
from .run import ConfigMismatch
from .score import StaleProgress
from .score_orm import add_orm_args


def _add_prm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-len", type=int, default=4096,
                   help="token limit of one PRM prompt; documents fill max-len - 1024")
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (default)")
    p.add_argument("--dtype", default="auto",
                   help="auto (float32 on CPU, bfloat16 on GPU) | float32 | bfloat16")
    p.add_argument("--batch-size", type=int, default=16, help="solutions per forward pass")
    p.add_argument("--max-batch-tokens", type=int, default=None,
                   help="cap on rows x (shared prefix + longest suffix) per forward pass; "
                        "bounds memory (default 4096 on CPU, 131072 on GPU)")
    p.add_argument("--no-double-bos", dest="double_bos", action="store_false",
                   help="tokenise the rendered chat template without adding special tokens "
                        "(the published scorer adds them, so Llama-3.1 sees BOS twice)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bestofn", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="add PRM step scores and/or ORM scores to a solutions file")
    s.add_argument("--input", required=True, help="Med-PRM JSON (.json) or bestofn JSONL")
    s.add_argument("--prm", default=None, help="local folder, Hugging Face id, or 'smollm2' "
                   "(--prm, --orm or both)")
    s.add_argument("--output", required=True, help="same format as the input (by suffix)")
    s.add_argument("--no-docs", dest="use_docs", action="store_false",
                   help="plain PRM: leave the documents out of the prompt")
    s.add_argument("--solutions", type=int, default=None, help="score the first K per question")
    s.add_argument("--backend", default="prm-hf", help="scorer backend (default prm-hf)")
    _add_prm_args(s)
    add_orm_args(s, required=False)

    e = sub.add_parser("evaluate", help="accuracy table of every selection method")
    e.add_argument("--input", required=True, help="a scored file")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--seed", type=int, default=0, help="seed of the tie-breaking draw")

    r = sub.add_parser("run", help="sample, score, select and report on a question set")
    r.add_argument("--out", default="runs/default", help="run folder (resumable)")
    r.add_argument("--dataset", default="medqa", help="medqa | medqa5 | a questions JSONL")
    r.add_argument("--questions", type=int, default=5)
    r.add_argument("-n", type=int, default=8, help="solutions per question")
    r.add_argument("--policy", default="smollm2", help="policy model (folder, HF id, smollm2)")
    r.add_argument("--policy-backend", default="auto",
                   help="vllm | hf | openai | replay (default: vllm when installed, else hf)")
    r.add_argument("--preset", default="medprm", help="policy preset: medprm | ii-medical | "
                   "grpo-acr (prompt, sampling defaults, answer format)")
    r.add_argument("--valid-steps", default=None, metavar="MIN-MAX",
                   help="Med-PRM's validity filter, e.g. 3-9: keep solutions with that many "
                        "steps, top up short questions (then fill with the best rejected)")
    r.add_argument("--prm", default="smollm2", help="PRM model; 'none' for majority vote only")
    r.add_argument("--orm", default=None, help="outcome reward model (sequence classifier)")
    r.add_argument("--orm-adapter", default=None, help="PEFT LoRA adapter for the ORM")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--temperature", type=float, default=0.7)
    r.add_argument("--top-k", type=int, default=50)
    r.add_argument("--top-p", type=float, default=1.0)
    r.add_argument("--max-tokens", type=int, default=384, help="new tokens per solution")
    r.add_argument("--index", default=None, metavar="DIR|default",
                   help="retrieve documents for the PRM prompt from a FAISS index folder "
                        "(`default`: bundled MedQuAD index, built on first use, ~7 min on 2 "
                        "cores)")
    r.add_argument("-k", type=int, default=5, help="documents retrieved per question")
    r.add_argument("--docs", dest="use_docs", action="store_true",
                   help="put the questions' own documents in the PRM prompt")
    r.add_argument("--no-docs", action="store_true",
                   help="plain PRM: no documents in the prompt even with --index")
    r.add_argument("--overwrite", action="store_true", help="discard results of another config")
    r.add_argument("--max-len", type=int, default=4096)
    r.add_argument("--device", default="auto")
    r.add_argument("--no-double-bos", dest="double_bos", action="store_false")
    g = r.add_argument_group("execution (does not change results)")
    g.add_argument("--no-ray", dest="ray", action="store_false",
                   help="run every stage in this process (debugging; same results)")
    g.add_argument("--ray-address", default=None,
                   help="join a Ray cluster (`auto` or HOST:PORT); default: a local Ray")
    g.add_argument("--actors", type=int, default=1, help="policy actors")
    g.add_argument("--policy-batch", type=int, default=4,
                   help="questions per policy call: the engine sees this many times N "
                        "sequences at once (default 4)")
    g.add_argument("--scorer-actors", type=int, default=1, help="scorer actors")
    g.add_argument("--policy-gpus", type=float, default=None,
                   help="GPUs per policy actor (default: 1 if the cluster has GPUs)")
    g.add_argument("--scorer-gpus", type=float, default=None, help="GPUs per scorer actor")
    g.add_argument("--retriever-cpus", type=float, default=0.0,
                   help="CPUs reserved for the retrieval actor (default 0: it shares the "
                        "engines' cores)")
    g.add_argument("--max-attempts", type=int, default=3,
                   help="tries per question before it is recorded as failed")
    return ap


def cmd_score(a: argparse.Namespace) -> int:
    from .score import score_file
    from .scorers import make_scorer

    if a.prm is None and a.orm is None:
        raise ValueError("give --prm MODEL, --orm MODEL or both")
    scorer = make_scorer(a.backend, model=a.prm, device=a.device, dtype=a.dtype,
                         max_len=a.max_len, use_docs=a.use_docs, double_bos=a.double_bos,
                         batch_size=a.batch_size, max_batch_tokens=a.max_batch_tokens,
                         ) if a.prm else None
    if a.orm:
        from .score_orm import build_orm_scorer, score_file_with_orm, unscored_summary

        items = score_file_with_orm(a.input, a.output, orm=build_orm_scorer(a), prm=scorer,
                                    use_docs=a.use_docs, solutions=a.solutions)
        print(f"ORM: {unscored_summary(items)}", file=sys.stderr)
    else:
        items = score_file(a.input, a.output, scorer, use_docs=a.use_docs,
                           solutions=a.solutions)
    unscored = sum(not s.scored for it in items for s in it.prm or [])
    print(f"scored {len(items)} questions -> {a.output} ({unscored} solutions unscored)",
          file=sys.stderr)
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table
    from .files import read_items

    ev = evaluate(read_items(a.input), seed=a.seed)
    print(json.dumps(ev.to_json()) if a.json else format_table(ev))
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from policies import default_backend

    from .evaluate import LABELS
    from .pipeline import ExecConfig
    from .run import RunConfig, run

    lo, _, hi = (a.valid_steps or "0-0").partition("-")
    cfg = RunConfig(out=a.out, dataset=a.dataset, questions=a.questions, n=a.n,
                    policy=a.policy, preset=a.preset, min_steps=int(lo), max_steps=int(hi or lo),
                    policy_backend=(default_backend() if a.policy_backend == "auto"
                                    else a.policy_backend),
                    prm=None if a.prm.lower() == "none" else a.prm, orm=a.orm,
                    orm_adapter=a.orm_adapter, index=a.index, k=a.k,
                    use_docs=(a.use_docs or a.index is not None) and not a.no_docs,
                    max_len=a.max_len, double_bos=a.double_bos, seed=a.seed,
                    temperature=a.temperature, top_k=a.top_k, top_p=a.top_p,
                    max_tokens=a.max_tokens, device=a.device)
    ex = ExecConfig(ray_address=a.ray_address, policy_actors=a.actors,
                    scorer_actors=a.scorer_actors, policy_gpus=a.policy_gpus,
                    scorer_gpus=a.scorer_gpus, max_attempts=a.max_attempts,
                    policy_batch=a.policy_batch,
                    retriever_cpus=a.retriever_cpus) if a.ray else None
    rep = run(cfg, overwrite=a.overwrite, ex=ex)
    for k, v in rep["accuracy"].items():
        print(f"{LABELS.get(k, k):<28} {100 * v:6.2f}%")
    print(f"report: {a.out}/report.md ({rep['n_questions']} questions, "
          f"{rep['resumed_questions']} resumed, {rep['failed']} failed, {rep['seconds']} s)")
    return 0


COMMANDS = {"score": cmd_score, "evaluate": cmd_evaluate, "run": cmd_run}

SUBCOMMAND_MODULES: list[str] = ["bestofn.cli_sample", "bestofn.cli_prefs", "bestofn.cli_index",
                                  "bestofn.cli_report", "bestofn.cli_serve"]
"""Modules that add commands: each has `register(subparsers) -> dict[name, handler]`, where a
handler takes the parsed namespace and returns an exit code. Add a feature's commands there
instead of growing this file."""


def build_all() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    commands: dict[str, Callable[[argparse.Namespace], int]] = dict(COMMANDS)
    for name in SUBCOMMAND_MODULES:
        commands.update(importlib.import_module(name).register(sub))
    return ap, commands


def main(argv: Sequence[str] | None = None) -> int:
    ap, commands = build_all()
    args = ap.parse_args(argv)
    try:
        return commands[args.command](args)
    except (InputError, FileNotFoundError, ValueError, KeyError, ImportError, ConfigMismatch,
            StaleProgress) as e:
        print(f"bestofn {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
