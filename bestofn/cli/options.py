"""Flags shared by several subcommands, each defined once, with defaults from `bestofn.config`.

Each `add_*` puts one group of flags on a parser; the matching function turns the parsed
namespace into the config dataclass the library takes. Commands never pass a namespace on.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import (
    EngineOptions,
    ExecConfig,
    ORMOptions,
    PRMOptions,
    RunConfig,
    SamplingConfig,
    default_of,
)
from ..scorers.orm_prompt import TRUNCATIONS


def add_prm_options(p: argparse.ArgumentParser, *, loading: bool = True) -> None:
    """How a PRM runs. `loading=False` leaves out the batching flags (for `run`)."""
    p.add_argument("--max-len", type=int, default=default_of(PRMOptions, "max_len"),
                   help="token limit of one PRM prompt; documents fill max-len - 1024")
    p.add_argument("--device", default=default_of(PRMOptions, "device"),
                   help="cpu | cuda | auto (default)")
    p.add_argument("--no-double-bos", dest="double_bos", action="store_false",
                   help="tokenise the rendered chat template without adding special tokens "
                        "(the published scorer adds them, so Llama-3.1 sees BOS twice)")
    p.add_argument("--published-prompt", dest="published_prompt", action="store_true",
                   help="score as the published Med-PRM scorer: RAG system prompt whenever "
                        "documents are on (even when none fits), markers past --max-len still "
                        "scored up to the model's own context")
    p.add_argument("--judge-base-url", default=None, metavar="URL",
                   help="prm-judge: the judge's OpenAI-compatible server (default: vLLM's "
                        "offline engine on the --prm model)")
    p.add_argument("--judge-template", default=None, metavar="FILE",
                   help="prm-judge: the judge's user template (placeholders {documents}, "
                        "{question}, {steps}, {n}; default in docs/verifiers.md)")
    p.add_argument("--judge-mode", default=None, choices=("generate", "forced"),
                   help="prm-judge: generate (one reply per solution, default) or forced (one "
                        "prefilled request per step: for models that do not keep the format)")
    p.add_argument("--prm-cache-gb", dest="prm_cache_gb", type=float,
                   default=default_of(PRMOptions, "cache_gb"), metavar="GIB",
                   help="prm-hf: bound of the key/value cache of prompt segments a search's "
                        "partial solutions are scored with (a partial solution then costs "
                        "only its new step; least recently used evicted; 0: none kept). "
                        "Best-of-N scoring does not use it; changes no score")
    if loading:
        add_loading_options(p, what="solutions")


def add_loading_options(p: argparse.ArgumentParser, *, what: str) -> None:
    """dtype and batching of a transformers scorer (PRM or ORM)."""
    p.add_argument("--dtype", default=default_of(PRMOptions, "dtype"),
                   help="auto (float32 on CPU, bfloat16 on GPU) | float32 | bfloat16")
    p.add_argument("--batch-size", type=int, default=default_of(PRMOptions, "batch_size"),
                   help=f"{what} per forward pass")
    p.add_argument("--max-batch-tokens", type=int,
                   default=default_of(PRMOptions, "max_batch_tokens"),
                   help="cap on padded tokens per forward pass; bounds memory "
                        "(default 4096 on CPU for a PRM, 8192 for an ORM; 131072 on GPU)")


def prm_options(a: argparse.Namespace) -> PRMOptions:
    return PRMOptions(max_len=a.max_len, device=a.device,
                      dtype=getattr(a, "dtype", default_of(PRMOptions, "dtype")),
                      batch_size=getattr(a, "batch_size", default_of(PRMOptions, "batch_size")),
                      max_batch_tokens=getattr(a, "max_batch_tokens", None),
                      double_bos=a.double_bos, published=a.published_prompt,
                      judge_base_url=a.judge_base_url, judge_template=a.judge_template,
                      judge_mode=a.judge_mode, cache_gb=a.prm_cache_gb)


def add_orm_options(p: argparse.ArgumentParser, *, required: bool, short: bool = False) -> None:
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
    p.add_argument("--orm-backend", default=default_of(ORMOptions, "backend"), metavar="NAME",
                   help="orm-hf (default) | orm-vllm")
    p.add_argument(*flags("max-len"), dest="orm_max_len", type=int,
                   default=default_of(ORMOptions, "max_len"), metavar="N",
                   help="token limit of one ORM conversation (2048 for MedArena LoRA v2)")
    p.add_argument(*flags("truncation"), dest="orm_truncation", choices=TRUNCATIONS,
                   default=default_of(ORMOptions, "truncation"),
                   help="past the limit: leave unscored (default), keep_end (drop the "
                        "response's first tokens) or keep_start (drop its last tokens)")
    p.add_argument(*flags("attn-implementation"), dest="orm_attn", default=None, metavar="IMPL",
                   help="transformers attention: eager (Gemma-2), sdpa, flash_attention_2")


def orm_options(a: argparse.Namespace) -> ORMOptions:
    return ORMOptions(model=a.orm, adapter=a.adapter, merge_adapter=a.merge_adapter,
                      backend=a.orm_backend, max_len=a.orm_max_len,
                      truncation=a.orm_truncation, attn_implementation=a.orm_attn,
                      device=a.device, dtype=a.dtype, batch_size=a.batch_size,
                      max_batch_tokens=a.max_batch_tokens)


def add_exec_options(p: argparse.ArgumentParser) -> None:
    """Where a run executes (does not change results)."""
    g = p.add_argument_group("execution (does not change results)")
    g.add_argument("--no-ray", dest="ray", action="store_false",
                   help="run every stage in this process (debugging; same results)")
    g.add_argument("--ray-address", default=default_of(ExecConfig, "ray_address"),
                   help="join a Ray cluster (`auto` or HOST:PORT); default: a local Ray")
    g.add_argument("--actors", dest="policy_actors", type=int,
                   default=default_of(ExecConfig, "policy_actors"), help="policy actors")
    g.add_argument("--policy-batch", type=int, default=None, help=argparse.SUPPRESS)
    g.add_argument("--scorer-actors", type=int, default=default_of(ExecConfig, "scorer_actors"),
                   help="scorer actors")
    g.add_argument("--policy-gpus", type=float, default=default_of(ExecConfig, "policy_gpus"),
                   help="GPUs per policy actor (default: 1 if the cluster has GPUs)")
    g.add_argument("--scorer-gpus", type=float, default=default_of(ExecConfig, "scorer_gpus"),
                   help="GPUs per scorer actor")
    g.add_argument("--retriever-cpus", type=float,
                   default=default_of(ExecConfig, "retriever_cpus"),
                   help="CPUs reserved for the retrieval actor (default 0: it shares the "
                        "engines' cores)")
    g.add_argument("--max-attempts", type=int, default=default_of(ExecConfig, "max_attempts"),
                   help="tries per question before it is recorded as failed (with --no-ray "
                        "too)")


EXEC_FLAGS = ("ray_address", "policy_actors", "scorer_actors", "policy_gpus", "scorer_gpus",
              "retriever_cpus", "max_attempts")
RAY_ONLY = {"ray_address": "--ray-address", "policy_actors": "--actors",
            "scorer_actors": "--scorer-actors", "policy_gpus": "--policy-gpus",
            "scorer_gpus": "--scorer-gpus", "retriever_cpus": "--retriever-cpus"}


def exec_config(a: argparse.Namespace) -> ExecConfig | None:
    """None (in-process) with --no-ray; a Ray flag given with --no-ray is refused."""
    if a.policy_batch is not None:
        raise ValueError("--policy-batch is retired: every run keeps --samples-in-flight "
                         "samples running over all its questions; drop --policy-batch")
    if not a.ray:
        given = [flag for k, flag in RAY_ONLY.items() if getattr(a, k) != default_of(
            ExecConfig, k)]
        if given:
            raise ValueError(f"{', '.join(given)} cannot apply with --no-ray (they place the "
                             "Ray actors)")
        return None
    return ExecConfig(**{k: getattr(a, k) for k in EXEC_FLAGS})


SAMPLING_FLAGS = ("temperature", "top_p", "top_k", "max_tokens")


def preset_sampling(a: argparse.Namespace) -> tuple[Any, SamplingConfig]:
    """The policy's preset and its sampling settings with the flags given over them."""
    import dataclasses

    from ..execution.engines import resolve_preset_sampling

    preset, sampling = resolve_preset_sampling(a.policy, a.preset, a.seed,
                                               **{k: getattr(a, k) for k in SAMPLING_FLAGS})
    return preset, dataclasses.replace(sampling, logprobs=getattr(a, "logprobs", None))


def add_sampling_options(p: argparse.ArgumentParser, *, from_preset: bool) -> None:
    """Sampling flags. `from_preset`: default None, meaning the policy preset's value."""
    def default(name: str) -> Any:
        return None if from_preset else default_of(RunConfig, name)

    note = "default: the preset's" if from_preset else None
    p.add_argument("--seed", type=int, default=default_of(RunConfig, "seed"))
    p.add_argument("--temperature", type=float, default=default("temperature"), help=note)
    p.add_argument("--top-p", type=float, default=default("top_p"), help=note)
    p.add_argument("--top-k", type=int, default=default("top_k"),
                   help="0 turns it off" + (f"; {note}" if note else ""))
    p.add_argument("--max-tokens", type=int, default=default("max_tokens"),
                   help="new tokens per solution" + (f"; {note}" if note else ""))


def add_valid_steps_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--valid-steps", default=None, metavar="MIN-MAX|off",
                   help="Med-PRM's validity filter, e.g. 3-9: keep solutions with that many "
                        "steps, top up short questions (then fill with the best rejected); "
                        "default: the preset's (medprm: 3-9), off: keep every solution")


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


def add_logprobs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--logprobs", type=int, default=None, metavar="K",
                   help="request the top-K log-probabilities of every token and store each "
                        "solution's DeepConf confidence (for the confidence_* selection "
                        "methods and the `confidence` stopping rule; DeepConf uses K=20)")


def add_rules_option(p: argparse.ArgumentParser) -> None:
    from ..evaluation.select import RULES

    p.add_argument("--rules", default=default_of(RunConfig, "rules"), choices=sorted(RULES),
                   help="selection rules: strict (default: no-answer solutions never vote, "
                        "seeded tie draw, graded by the gold answer) or medprm (the published "
                        "Med-PRM scripts: first in list order on a tie, None/\"\" answers "
                        "vote, graded by the solutions' `score` labels)")


def add_policy_options(p: argparse.ArgumentParser) -> None:
    """Which policy backend and preset, the adapter, and how its engine runs."""
    p.add_argument("--policy-backend", "--backend", dest="policy_backend",
                   default=default_of(RunConfig, "policy_backend"),
                   help="vllm | hf | openai | replay (default auto: vllm when installed, else hf)")
    p.add_argument("--preset", "--policy-preset", dest="preset",
                   default=default_of(RunConfig, "preset"),
                   help="policy preset: medprm | ii-medical | grpo-acr | smollm2 (prompt, "
                        "sampling defaults, step filter, answer format; default auto: smollm2 "
                        "for the embedded policy, else medprm)")
    p.add_argument("--lora", default=None, help="PEFT LoRA adapter folder (vllm, hf)")
    e = EngineOptions
    p.add_argument("--base-url", default=default_of(e, "base_url"),
                   help="openai: server URL (default http://127.0.0.1:8000/v1); the API key "
                        "comes from $OPENAI_API_KEY")
    p.add_argument("--concurrency", type=int, default=default_of(e, "concurrency"),
                   help="openai: requests in flight")
    p.add_argument("--samples-in-flight", type=int, default=default_of(e, "samples_in_flight"),
                   help="streaming scheduler: samples running at once over all questions")
    p.add_argument("--question-in-flight", type=int,
                   default=default_of(e, "question_in_flight"),
                   help="streaming scheduler: samples of one question running at once")
    p.add_argument("--policy-dtype", dest="policy_dtype", default=default_of(e, "dtype"),
                   help="policy engine dtype (auto: float32 on CPU, the model's on GPU)")
    p.add_argument("--tensor-parallel-size", type=int,
                   default=default_of(e, "tensor_parallel_size"), help="vllm: GPUs per engine")
    p.add_argument("--gpu-memory-utilization", type=float,
                   default=default_of(e, "gpu_memory_utilization"), help="vllm, GPU only")
    p.add_argument("--max-model-len", type=int, default=default_of(e, "max_model_len"),
                   help="vllm: context limit")
    p.add_argument("--kv-cache-gb", type=float, default=default_of(e, "kv_cache_gb"),
                   help="vllm: KV cache size (default on CPU: 2 GiB, or "
                        "$VLLM_CPU_KVCACHE_SPACE)")
    p.add_argument("--max-num-batched-tokens", type=int,
                   default=default_of(e, "max_num_batched_tokens"),
                   help="vllm: tokens per scheduler step (on CPU, where chunked prefill is "
                        "off, at least the longest prompt)")
    p.add_argument("--policy-batch-size", dest="policy_batch_size", type=int,
                   default=default_of(e, "batch_size"), help="hf: sequences per generate")


def engine_options(a: argparse.Namespace) -> EngineOptions:
    return EngineOptions(dtype=a.policy_dtype, tensor_parallel_size=a.tensor_parallel_size,
                         gpu_memory_utilization=a.gpu_memory_utilization,
                         max_model_len=a.max_model_len, kv_cache_gb=a.kv_cache_gb,
                         max_num_batched_tokens=a.max_num_batched_tokens,
                         batch_size=a.policy_batch_size, base_url=a.base_url,
                         concurrency=a.concurrency, samples_in_flight=a.samples_in_flight,
                         question_in_flight=a.question_in_flight)
