"""`bestofn run`: sample, score, select and report on a question set (parse → build → run)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import RunConfig, default_of
from .options import (
    add_exec_options,
    add_policy_options,
    add_prm_options,
    add_rules_option,
    add_sampling_options,
    engine_options,
    exec_config,
)


def register(sub: Any) -> dict[str, Any]:
    r = sub.add_parser("run", help="sample, score, select and report on a question set")

    def d(name: str) -> Any:
        return default_of(RunConfig, name)

    r.add_argument("--out", default=d("out"), help="run folder (resumable)")
    r.add_argument("--dataset", default=d("dataset"), help="medqa | medqa5 | a questions JSONL")
    r.add_argument("--questions", type=int, default=d("questions"))
    r.add_argument("-n", "--max-n", dest="n", type=int, default=d("n"),
                   help="solutions per question (with --adaptive: the most a question draws)")
    r.add_argument("--adaptive", default=d("adaptive"), metavar="RULE[:k=v,...]",
                   help="sample in rounds until a stopping rule says the answer is settled: "
                        "esc | beta | dirichlet | prm (see Adaptive compute)")
    r.add_argument("--search", default=d("search"), metavar="STRATEGY[:k=v,...]",
                   help="search inside generation, the PRM pruning partial solutions step by "
                        "step: beam:width=M | dvts:width=M | reject:alpha=A,every=S "
                        "(needs --prm; runs in-process; see docs/search.md)")
    r.add_argument("--round", dest="round_size", type=int, default=d("round_size"),
                   help="samples per question per round with --adaptive")
    r.add_argument("--policy", default=d("policy"),
                   help="policy model (folder, HF id, smollm2)")
    add_policy_options(r)
    r.add_argument("--valid-steps", default=None, metavar="MIN-MAX|off",
                   help="Med-PRM's validity filter, e.g. 3-9: keep solutions with that many "
                        "steps, top up short questions (then fill with the best rejected); "
                        "default: the preset's (medprm: 3-9), off: keep every solution")
    r.add_argument("--prm", default=d("prm"), help="PRM model; 'none' for majority vote only")
    r.add_argument("--prm-backend", default=d("prm_backend"), help="prm-hf | prm-vllm")
    r.add_argument("--orm-backend", default=d("orm_backend"), help="orm-hf | orm-vllm")
    r.add_argument("--orm", default=d("orm"), help="outcome reward model (sequence classifier)")
    r.add_argument("--orm-adapter", default=d("orm_adapter"),
                   help="PEFT LoRA adapter for the ORM")
    add_sampling_options(r, from_preset=True)
    r.add_argument("--index", default=d("index"), metavar="DIR|default",
                   help="retrieve documents for the PRM prompt from a FAISS index folder "
                        "(`default`: bundled MedQuAD index, built on first use, ~7 min on 2 "
                        "cores)")
    r.add_argument("-k", type=int, default=d("k"), help="documents retrieved per question")
    r.add_argument("--docs", dest="use_docs", action="store_true",
                   help="put the questions' own documents in the PRM prompt")
    r.add_argument("--no-docs", action="store_true",
                   help="plain PRM: no documents in the prompt even with --index")
    r.add_argument("--overwrite", action="store_true", help="discard results of another config")
    add_rules_option(r)
    r.add_argument("-v", "--verbose", action="store_true",
                   help="show engine and Ray logs on the terminal (default: in the run "
                        "folder's engine.log)")
    add_prm_options(r, loading=False)
    add_exec_options(r)
    return {"run": cmd_run}


def valid_steps(text: str | None) -> tuple[int | None, int | None]:
    """--valid-steps: None (the preset's), off (0-0: no filter) or MIN-MAX."""
    if text is None:
        return None, None
    if text == "off":
        return 0, 0
    lo, sep, hi = text.partition("-")
    if not (lo.isdigit() and (not sep or hi.isdigit())):
        raise ValueError(f"--valid-steps {text!r}: expected MIN-MAX (e.g. 3-9) or off")
    return int(lo), int(hi or lo)


def run_config(a: argparse.Namespace) -> RunConfig:
    lo, hi = valid_steps(a.valid_steps)
    return RunConfig(out=a.out, dataset=a.dataset, questions=a.questions, n=a.n,
                     policy=a.policy, preset=a.preset, lora=a.lora, min_steps=lo, max_steps=hi,
                     policy_backend=a.policy_backend,
                     prm=None if a.prm.lower() == "none" else a.prm, prm_backend=a.prm_backend,
                     orm=a.orm, orm_backend=a.orm_backend,
                     orm_adapter=a.orm_adapter, index=a.index, k=a.k,
                     use_docs=(a.use_docs or a.index is not None) and not a.no_docs,
                     max_len=a.max_len, double_bos=a.double_bos, seed=a.seed,
                     published_prompt=a.published_prompt,
                     temperature=a.temperature, top_k=a.top_k, top_p=a.top_p,
                     max_tokens=a.max_tokens, device=a.device, rules=a.rules,
                     adaptive=a.adaptive, round_size=a.round_size, search=a.search,
                     engine=engine_options(a))


def cmd_run(a: argparse.Namespace) -> int:
    from ..console import LOG_NAME, process_owned, quiet
    from ..evaluate import LABELS
    from ..run import prepare, run

    cfg = run_config(a)
    prepare(cfg)  # every input checked before the run folder (and its log) exists
    log = Path(cfg.out) / LOG_NAME
    with quiet(log, verbose=a.verbose, restore=not process_owned()) as con:
        rep = run(cfg, overwrite=a.overwrite, ex=exec_config(a), console=con)
        for k, v in rep["accuracy"].items():
            con.print(f"{LABELS.get(k, k):<28} {100 * v:6.2f}%")
        if "adaptive" in rep:
            ad = rep["adaptive"]
            con.print(f"adaptive {ad['rule']}: {ad['samples']} samples of {ad['budget']} "
                      f"({100 * ad['samples'] / max(ad['budget'], 1):.1f}%), "
                      f"{ad['mean_samples']:.2f} per question")
        con.print(f"report: {a.out}/report.md ({rep['n_questions']} questions, "
                  f"{rep['resumed_questions']} resumed, {rep['failed']} failed, "
                  f"{rep['seconds']} s)" + ("" if a.verbose else f"; engine logs: {log}"))
    return 0
