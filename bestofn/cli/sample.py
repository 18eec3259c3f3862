"""`bestofn sample`: N solutions per question into a resumable JSONL (parse → build → run)."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import RunConfig, SampleOptions, default_of
from .options import (
    add_logprobs_option,
    add_policy_options,
    add_sampling_options,
    engine_options,
    preset_sampling,
)


def add_parser(sub: Any) -> None:
    s = sub.add_parser("sample", help="sample N solutions per question into a JSONL")
    s.add_argument("--questions", required=True,
                   help="medqa | medqa5 | a questions JSONL (MedQA or Question lines)")
    s.add_argument("--limit", type=int, default=None, help="only the first K questions")
    s.add_argument("--policy", required=True, help="model: folder, HF id, smollm2; the served "
                   "model name (openai); the solutions file (replay)")
    add_policy_options(s)
    s.add_argument("-n", type=int, default=default_of(SampleOptions, "n"),
                   help="solutions per question")
    s.add_argument("--output", required=True, help="solutions JSONL (resumed if it exists)")
    add_sampling_options(s, from_preset=True)
    add_logprobs_option(s)
    s.add_argument("--device", default=default_of(RunConfig, "device"), help="cpu | cuda | auto")
    s.add_argument("--min-steps", type=int, default=None, help="validity filter (medprm: 3)")
    s.add_argument("--max-steps", type=int, default=None, help="validity filter (medprm: 9)")
    s.add_argument("--no-filter", action="store_true", help="keep every solution")
    s.add_argument("--topup-rounds", type=int, default=default_of(SampleOptions, "topup_rounds"),
                   help="top-up rounds for questions short of N valid solutions")
    s.add_argument("--fill-invalid", action="store_true",
                   help="fill questions still short after the top-ups with rejected solutions")
    s.add_argument("--chunk", type=int, default=default_of(SampleOptions, "chunk"),
                   help="questions per policy call")
    s.add_argument("-v", "--verbose", action="store_true",
                   help="engine logs on the terminal (default: OUTPUT.engine.log)")


def register(sub: Any) -> dict[str, Any]:
    add_parser(sub)
    return {"sample": cmd_sample}


def step_bounds(a: argparse.Namespace, preset: Any, backend: str) -> tuple[int, int] | None:
    """Med-PRM's filter bounds: the preset's (or the flags'); None when off."""
    bounds = preset.steps
    if a.no_filter or backend == "replay" or (bounds is None and a.min_steps is None
                                                and a.max_steps is None):
        return None
    lo, hi = bounds or (1, 10**9)
    return (lo if a.min_steps is None else a.min_steps,
            hi if a.max_steps is None else a.max_steps)


def policy_spec(a: argparse.Namespace, preset: Any) -> Any:
    from ..config import resolve_backend
    from ..execution.engines import PolicySpec

    backend = resolve_backend(a.policy_backend)
    return PolicySpec(model=a.policy, backend=backend, preset=preset.name, device=a.device,
                      lora=a.lora, engine=engine_options(a),
                      extra={"progress": True} if backend == "openai" else {})


def validity(a: argparse.Namespace, preset: Any) -> Any:
    """Med-PRM's step filter and top-up as the flags and the preset set it (None: off)."""
    from policies.validity import ValidityConfig

    from ..config import resolve_backend

    steps = step_bounds(a, preset, resolve_backend(a.policy_backend))
    if steps is None:
        return None
    return ValidityConfig(min_steps=steps[0], max_steps=steps[1], max_rounds=a.topup_rounds,
                          fill_invalid=a.fill_invalid)


def cmd_sample(a: argparse.Namespace) -> int:
    from ..console import LOG_NAME, process_owned, quiet
    from ..execution.engines import build_policy
    from ..execution.sample_file import sample_to_file
    from ..text.datasets import load_questions

    preset, params = preset_sampling(a)
    spec = policy_spec(a, preset)
    questions = load_questions(a.questions, limit=a.limit)
    with quiet(f"{a.output}.{LOG_NAME}", verbose=a.verbose,
               restore=not process_owned()) as con:
        rep = sample_to_file(questions, build_policy(spec), a.output, a.n, params,
                             validity=validity(a, preset), chunk_size=a.chunk,
                             engine=spec.engine)
        report(rep, a, con.err)
    return 0


def report(rep: Any, a: argparse.Namespace, err: Any) -> None:
    rate = f", {rep.tokens / rep.seconds:.1f} tok/s" if rep.tokens and rep.seconds else ""
    print(f"sampled {rep.written} questions ({rep.resumed} resumed) -> {rep.output}: "
          f"{rep.solutions} solutions in {rep.seconds} s{rate}", file=err, flush=True)
    if rep.short:
        print(f"{len(rep.short)} questions have fewer than {a.n} valid solutions "
              f"(after {a.topup_rounds} top-up round(s)): "
              + ", ".join(f"{k}={v}" for k, v in list(rep.short.items())[:10]), file=err,
              flush=True)
