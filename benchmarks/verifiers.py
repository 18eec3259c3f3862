"""Verifiers on ProcessBench as the paper reports them: each subset's F1 at 0.5 and at the
threshold calibrated on GSM8K, the unweighted mean, step AUROC, with 95% bootstrap intervals.

Data: ProcessBench's four subsets, the full files from `../shared/data/processbench/` when
present, else the bundled 100-record samples (`bestofn/data/processbench/`); `--sample K`
draws K records of each (seeded) for the slow verifiers.
Verifiers (`--only NAME`, repeatable; default all):
- `random`: every step a uniform random score (seeded): the chance baseline;
- `always-correct`: every step scored 1, so no error is ever predicted (F1 0);
- `prm`: a PRM through prm-hf (`--prm`, default the embedded SmolLM2: not trained as a PRM);
- `judge`: a generative judge through prm-judge, forced mode (`--judge`, default SmolLM2);
- `critic`: an LLM under ProcessBench's critic protocol (`--critic`, default SmolLM2), greedy
  or `--critic-samples 8`.
The judge and the critic share one vLLM engine. `--solutions RUN/results.jsonl` adds the
best-of-N table of issue 21 (each verifier's PRM best-of-N and weighted vote).

    python benchmarks/verifiers.py --only random --only always-correct
    python benchmarks/verifiers.py --data bundled --sample 25 --only prm --only judge \
        --only critic --critic-max-tokens 256

With the embedded models every number is weak; the point is the one command for a user with
real models (`--prm`, `--judge`, `--critic`, `--critic-base-url`).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from importlib import resources
from pathlib import Path
from typing import Any

from bestofn.evaluation.labels import LabelledSolution, read_labelled
from bestofn.evaluation.verifier_eval import evaluate_critic, evaluate_steps, score_labelled
from bestofn.evaluation.verifier_table import EvalTable, InputEval, calibrate
from bestofn.scorers.critic import CriticPrompt, critic_verdicts

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "processbench"
BUNDLED = Path(str(resources.files("bestofn") / "data" / "processbench"))
SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
VERIFIERS = ("random", "always-correct", "prm", "judge", "critic")


def load(data: Path, sample: int | None, seed: int) -> dict[str, list[LabelledSolution]]:
    out = {}
    for name in SUBSETS:
        sols = read_labelled(data / f"{name}.json")
        if sample is not None and sample < len(sols):
            keep = sorted(random.Random(seed).sample(range(len(sols)), sample))
            sols = [sols[i] for i in keep]
        out[name] = sols
    return out


def with_scores(sols: list[LabelledSolution], score: Any) -> list[LabelledSolution]:
    import dataclasses

    return [dataclasses.replace(s, scores=score(i, s), unscored=None)
            for i, s in enumerate(sols)]


def score_table(sets: dict[str, list[LabelledSolution]], b: int) -> EvalTable:
    rows = [InputEval(k, evaluate_steps(v, b=b)) for k, v in sets.items()]
    return calibrate(EvalTable(rows), list(sets.values()), sets["gsm8k"], "gsm8k")


def run_verifier(name: str, sets: dict[str, list[LabelledSolution]], a: argparse.Namespace,
                 engines: dict[str, Any]) -> EvalTable:
    if name == "random":
        rng = random.Random(a.seed)
        return score_table({k: with_scores(v, lambda i, s: [rng.random() for _ in s.steps])
                            for k, v in sets.items()}, a.bootstrap)
    if name == "always-correct":
        return score_table({k: with_scores(v, lambda i, s: [1.0] * len(s.steps))
                            for k, v in sets.items()}, a.bootstrap)
    if name == "critic":
        from bestofn.scorers.critic_engines import CriticSampling

        sampling = CriticSampling(a.critic_samples, a.critic_max_tokens)
        eng, prompt = engines["critic"], CriticPrompt()
        return EvalTable([InputEval(k, evaluate_critic(
            v, critic_verdicts(eng, prompt, [(s.question, s.steps) for s in v], sampling),
            b=a.bootstrap)) for k, v in sets.items()])
    scorer = engines[name]
    return score_table({k: score_labelled(v, scorer, progress=False) for k, v in sets.items()},
                       a.bootstrap)


def build_engines(a: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    from bestofn.scorers import make_scorer

    out: dict[str, Any] = {}
    if "prm" in names:
        out["prm"] = make_scorer("prm-hf", model=a.prm, device="cpu", use_docs=False,
                                 max_len=a.max_len)
    llm = None
    if ({"judge", "critic"} & set(names)) and a.judge == a.critic and not a.critic_base_url:
        llm = _shared_llm(a.judge, a.max_len)
    if "judge" in names:
        out["judge"] = make_scorer("prm-judge", model=a.judge, judge_mode="forced",
                                   max_len=a.max_len, use_docs=False, llm=llm)
    if "critic" in names:
        from bestofn.scorers.critic_engines import OfflineCritic, ServerCritic

        out["critic"] = (ServerCritic(a.critic, a.critic_base_url) if a.critic_base_url
                         else OfflineCritic(a.critic, llm=llm, max_model_len=a.max_len))
    return out


def _shared_llm(model: str, max_len: int) -> Any:
    from vllm import LLM

    from bestofn.embedded import resolve_model
    from policies.vllm import engine_kwargs, on_cpu_platform

    return LLM(model=resolve_model(model),
               **engine_kwargs(max_model_len=max_len, on_cpu=on_cpu_platform()))


def rows_of(name: str, t: EvalTable, seconds: float) -> list[str]:
    def f(x: float | None, d: int = 1) -> str:
        return "n/a" if x is None else f"{x:.{d}f}"

    def ci(ev: Any, k: str, d: int = 1) -> str:
        c = ev.intervals.get(k)
        return f" [{f(c[0], d)}, {f(c[1], d)}]" if c else ""

    out = []
    for r in t.rows:
        v = r.ev.values
        extra = (f", {r.ev.critic['unparsed']} unparsable" if r.ev.critic
                 else f"; {r.ev.n_unscored} unscored" if r.ev.n_unscored else "")
        out.append(f"| {name} | {r.input} | {r.ev.n} ({r.ev.n_erroneous}/{r.ev.n_correct}"
                   f"{extra}) | {f(v['acc_erroneous'])} / {f(v['acc_correct'])} | "
                   f"{f(v['processbench_f1'])}{ci(r.ev, 'processbench_f1')} | "
                   f"{f(r.f1_calibrated)} | {f(v['step_auroc'], 3)}"
                   f"{ci(r.ev, 'step_auroc', 3)} |")
    thr = "—" if t.calibrated_threshold is None else f"{t.calibrated_threshold:.4g}"
    out.append(f"| **{name}** | **mean of 4** (calibrated threshold {thr}; {seconds:.0f} s) | "
               f"| | **{f(t.mean_f1)}** | **{f(t.mean_f1_calibrated)}** | |")
    return out


HEADER = ["| verifier | subset | solutions (err/correct) | acc err / correct | F1 @0.5 [95% CI] | "
          "F1 @GSM8K-calibrated | step AUROC [95% CI] |", "|---|---|---:|---:|---|---:|---|"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None,
                    help="a folder with the four subsets, or 'bundled' (default: the full files "
                         "in ../shared/data/processbench when present, else bundled)")
    ap.add_argument("--sample", type=int, default=None, help="K records per subset (seeded)")
    ap.add_argument("--only", action="append", choices=VERIFIERS, default=None)
    ap.add_argument("--prm", default="smollm2")
    ap.add_argument("--judge", default="smollm2")
    ap.add_argument("--critic", default="smollm2")
    ap.add_argument("--critic-base-url", default=None)
    ap.add_argument("--critic-samples", type=int, default=1)
    ap.add_argument("--critic-max-tokens", type=int, default=8192)
    ap.add_argument("--max-len", type=int, default=8192, help="engine context (PRM prompt cap)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", default=None, help="also write every table as JSON here")
    ap.add_argument("--solutions", default=None, help="a results.jsonl for the best-of-N table")
    a = ap.parse_args()
    data = BUNDLED if a.data == "bundled" or (a.data is None and not SHARED.is_dir()) \
        else Path(a.data or SHARED)
    sets = load(data, a.sample, a.seed)
    names = a.only or list(VERIFIERS)
    engines = build_engines(a, names)
    print(f"## ProcessBench ({data}; " + ", ".join(f"{k} {len(v)}" for k, v in sets.items())
          + ")\n")
    print("\n".join(HEADER), flush=True)
    dump = {}
    for name in names:
        t0 = time.perf_counter()
        table = run_verifier(name, sets, a, engines)
        print("\n".join(rows_of(name, table, time.perf_counter() - t0)), flush=True)
        dump[name] = table.to_json()
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(dump, indent=1))
    if a.solutions:
        from verifiers_bon import bon_table  # type: ignore[import-not-found]

        print(f"\n## Best-of-N ({a.solutions})\n")
        print("\n".join(bon_table({k: v for k, v in engines.items() if k != "critic"},
                                  a.solutions)))


if __name__ == "__main__":
    main()
