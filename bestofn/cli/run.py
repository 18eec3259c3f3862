"""`bestofn run`: sample, score, select and report on a question set (parse → build → run)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import (
    DocumentsConfig,
    JudgeConfig,
    ORMConfig,
    PolicyConfig,
    PRMConfig,
    RunConfig,
    StrategyConfig,
    VerifierConfig,
    default_of,
)
from .options import (
    add_exec_options,
    add_logprobs_option,
    add_policy_options,
    add_prm_options,
    add_rules_option,
    add_sampling_options,
    add_valid_steps_option,
    engine_options,
    exec_config,
    valid_steps,
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
                   help="sample each question until a stopping rule says its answer is "
                        "settled: esc | beta | dirichlet | prm | confidence (docs/adaptive.md)")
    r.add_argument("--search", default=d("search"), metavar="STRATEGY[:k=v,...]",
                   help="search inside generation, the PRM pruning partial solutions step by "
                        "step: beam:width=M | dvts:width=M | reject:alpha=A,every=S | "
                        "particles (needs --prm; in-process or on Ray; docs/search.md)")
    r.add_argument("--round", dest="round_size", type=int, default=None,
                   help=argparse.SUPPRESS)
    r.add_argument("--policy", default=d("policy"),
                   help="policy model (folder, HF id, smollm2)")
    add_policy_options(r)
    add_valid_steps_option(r)
    r.add_argument("--prm", default=d("prm"), help="PRM model; 'none' for majority vote only")
    r.add_argument("--prm-backend", default=d("prm_backend"), help="prm-hf | prm-vllm")
    r.add_argument("--orm-backend", default=d("orm_backend"), help="orm-hf | orm-vllm")
    r.add_argument("--orm", default=d("orm"), help="outcome reward model (sequence classifier)")
    r.add_argument("--orm-adapter", default=d("orm_adapter"),
                   help="PEFT LoRA adapter for the ORM")
    add_sampling_options(r, from_preset=True)
    add_logprobs_option(r)
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


def run_config(a: argparse.Namespace) -> RunConfig:
    lo, hi = valid_steps(a.valid_steps)
    policy = PolicyConfig(model=a.policy, backend=a.policy_backend, preset=a.preset,
                          lora=a.lora, min_steps=lo, max_steps=hi, temperature=a.temperature,
                          top_k=a.top_k, top_p=a.top_p, max_tokens=a.max_tokens,
                          logprobs=a.logprobs)
    prm = PRMConfig(model=None if a.prm.lower() == "none" else a.prm, backend=a.prm_backend,
                    max_len=a.max_len, double_bos=a.double_bos,
                    published_prompt=a.published_prompt,
                    use_docs=(a.use_docs or a.index is not None) and not a.no_docs,
                    judge=JudgeConfig(a.judge_base_url, a.judge_template, a.judge_mode))
    orm = ORMConfig(model=a.orm, backend=a.orm_backend, adapter=a.orm_adapter)
    return RunConfig(out=a.out, dataset=a.dataset, questions=a.questions, n=a.n, seed=a.seed,
                     device=a.device, rules=a.rules, policy=policy,
                     verifiers=VerifierConfig(prm, orm),
                     documents=DocumentsConfig(index=a.index, k=a.k),
                     strategy=StrategyConfig(adaptive=a.adaptive, search=a.search),
                     engine=engine_options(a), prm_cache_gb=a.prm_cache_gb)


def cmd_run(a: argparse.Namespace) -> int:
    from ..console import LOG_NAME, process_owned, quiet
    from ..evaluation.select import label
    from ..run import prepare, run

    if a.round_size is not None:
        raise ValueError("--round is retired: adaptive runs stream, asking the rule after "
                         "every sample (same stop points as --round 1); drop --round")
    # every input checked before the run folder (and its log) exists, and only once
    cfg, questions = prepare(run_config(a))
    log = Path(cfg.out) / LOG_NAME
    with quiet(log, verbose=a.verbose, restore=not process_owned()) as con:
        rep = run(cfg, overwrite=a.overwrite, ex=exec_config(a), console=con,
                  questions=questions, max_attempts=a.max_attempts)
        for k, v in rep["accuracy"].items():
            con.print(f"{label(k):<28} {100 * v:6.2f}%")
        if "adaptive" in rep:
            ad = rep["adaptive"]
            con.print(f"adaptive {ad['rule']}: {ad['samples']} samples of {ad['budget']} "
                      f"({100 * ad['samples'] / max(ad['budget'], 1):.1f}%), "
                      f"{ad['mean_samples']:.2f} per question")
        con.print(f"report: {a.out}/report.md ({rep['n_questions']} questions, "
                  f"{rep['resumed_questions']} resumed, {rep['failed']} failed, "
                  f"{rep['seconds']} s)" + ("" if a.verbose else f"; engine logs: {log}"))
    return 0
