"""`bestofn run`: sample, score, select and report on a question set (parse → build → run)."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import RunConfig, default_of
from .options import add_exec_options, add_prm_options, add_sampling_options, exec_config


def register(sub: Any) -> dict[str, Any]:
    r = sub.add_parser("run", help="sample, score, select and report on a question set")

    def d(name: str) -> Any:
        return default_of(RunConfig, name)

    r.add_argument("--out", default=d("out"), help="run folder (resumable)")
    r.add_argument("--dataset", default=d("dataset"), help="medqa | medqa5 | a questions JSONL")
    r.add_argument("--questions", type=int, default=d("questions"))
    r.add_argument("-n", type=int, default=d("n"), help="solutions per question")
    r.add_argument("--policy", default=d("policy"),
                   help="policy model (folder, HF id, smollm2)")
    r.add_argument("--policy-backend", default=d("policy_backend"),
                   help="vllm | hf | openai | replay (default: vllm when installed, else hf)")
    r.add_argument("--preset", default=d("preset"), help="policy preset: medprm | ii-medical | "
                   "grpo-acr (prompt, sampling defaults, answer format)")
    r.add_argument("--valid-steps", default=None, metavar="MIN-MAX",
                   help="Med-PRM's validity filter, e.g. 3-9: keep solutions with that many "
                        "steps, top up short questions (then fill with the best rejected)")
    r.add_argument("--prm", default=d("prm"), help="PRM model; 'none' for majority vote only")
    r.add_argument("--orm", default=d("orm"), help="outcome reward model (sequence classifier)")
    r.add_argument("--orm-adapter", default=d("orm_adapter"),
                   help="PEFT LoRA adapter for the ORM")
    add_sampling_options(r, from_preset=False)
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
    add_prm_options(r, loading=False)
    add_exec_options(r)
    return {"run": cmd_run}


def run_config(a: argparse.Namespace) -> RunConfig:
    lo, _, hi = (a.valid_steps or "0-0").partition("-")
    return RunConfig(out=a.out, dataset=a.dataset, questions=a.questions, n=a.n,
                     policy=a.policy, preset=a.preset, min_steps=int(lo),
                     max_steps=int(hi or lo), policy_backend=a.policy_backend,
                     prm=None if a.prm.lower() == "none" else a.prm, orm=a.orm,
                     orm_adapter=a.orm_adapter, index=a.index, k=a.k,
                     use_docs=(a.use_docs or a.index is not None) and not a.no_docs,
                     max_len=a.max_len, double_bos=a.double_bos, seed=a.seed,
                     temperature=a.temperature, top_k=a.top_k, top_p=a.top_p,
                     max_tokens=a.max_tokens, device=a.device)


def cmd_run(a: argparse.Namespace) -> int:
    from ..evaluate import LABELS
    from ..run import run

    rep = run(run_config(a), overwrite=a.overwrite, ex=exec_config(a))
    for k, v in rep["accuracy"].items():
        print(f"{LABELS.get(k, k):<28} {100 * v:6.2f}%")
    print(f"report: {a.out}/report.md ({rep['n_questions']} questions, "
          f"{rep['resumed_questions']} resumed, {rep['failed']} failed, {rep['seconds']} s)")
    return 0
