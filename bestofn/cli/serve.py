"""`bestofn serve`: the policy and verifiers loaded once behind an OpenAI-compatible endpoint
(parse → build → run). Flag names are `bestofn run`'s where both commands have the option."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..api import Reranker
from ..config import ORMOptions, RerankOptions, RunConfig, default_of
from ..evaluation.select import METHODS
from .options import (
    SAMPLING_FLAGS,
    add_policy_options,
    add_prm_options,
    add_sampling_options,
    add_valid_steps_option,
    engine_options,
    prm_options,
    valid_steps,
)

SERVE_LOG = "serve.engine.log"
"""Where a quiet server keeps engine logs (in the folder it is started from)."""



def add_parser(sub: Any) -> None:
    from ..serve import ServeConfig

    d = ServeConfig()

    def run(name: str) -> Any:
        return default_of(RunConfig, name)

    s = sub.add_parser("serve", help="serve best-of-N answers on an OpenAI-compatible endpoint")
    s.add_argument("--policy", default=run("policy"), help="policy model (folder, HF id, "
                   "smollm2; the served model name for openai; the solutions file for replay)")
    add_policy_options(s)
    add_valid_steps_option(s)
    s.add_argument("--prm", default=run("prm"),
                   help="PRM model; 'none' for majority vote only")
    s.add_argument("--prm-backend", default=run("prm_backend"), help="prm-hf | prm-vllm")
    s.add_argument("--orm", default=run("orm"), help="outcome reward model (sequence classifier)")
    s.add_argument("--orm-adapter", default=run("orm_adapter"),
                   help="PEFT LoRA adapter for the ORM")
    s.add_argument("--orm-backend", default=run("orm_backend"), help="orm-hf | orm-vllm")
    s.add_argument("--index", default=run("index"), metavar="DIR|default",
                   help="retrieve documents for requests that give none from this FAISS index")
    s.add_argument("-k", type=int, default=d.k, help="documents retrieved per question")
    s.add_argument("--no-docs", action="store_true", help="plain PRM: no documents in prompts")
    s.add_argument("-n", type=int, default=d.n, help="solutions per question (default of "
                   "bestofn.samples)")
    s.add_argument("--method", default=default_of(RerankOptions, "method"), choices=METHODS,
                   help="selection method (default of bestofn.method)")
    s.add_argument("--adaptive", default=d.adaptive, metavar="RULE",
                   help="default stopping rule of requests (bestofn.adaptive overrides): "
                        "sample on the streaming scheduler until the answer is settled, at "
                        "most the request's bestofn.samples")
    s.add_argument("--search", default=d.search, metavar="STRATEGY[:k=v,...]",
                   help="default search strategy of requests (bestofn.search overrides): "
                        "PRM-guided search inside generation with bestofn.samples candidates "
                        "(needs --policy-backend vllm and --prm)")
    add_sampling_options(s, from_preset=True)
    add_prm_options(s)
    g = s.add_argument_group("serving")
    g.add_argument("--host", default=d.host, help="bind address (default loopback only)")
    g.add_argument("--port", type=int, default=d.port)
    g.add_argument("--model-id", default=d.model_id, help="the model id clients name")
    g.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY "
                   "(default: $BESTOFN_API_KEY; none: no auth)")
    g.add_argument("--max-n", type=int, default=d.max_n, help="most samples a request may ask")
    g.add_argument("--queue-size", type=int, default=d.queue_size,
                   help="requests admitted at once; past it, 429")
    g.add_argument("--timeout", type=float, default=d.timeout_s, help="seconds per request "
                   "before 504")
    g.add_argument("--max-batch", type=int, default=d.max_batch,
                   help="most questions per policy call")
    g.add_argument("--batch-wait", type=float, default=d.batch_wait_s,
                   help="seconds to wait for more requests to batch")
    g.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    g.add_argument("--max-per-key", type=int, default=d.max_per_key, metavar="N",
                   help="most requests one API key (bearer token) may have in progress; past "
                        "it, 429 (default: no limit)")
    g.add_argument("--drain-s", type=float, default=d.drain_s, metavar="S",
                   help=f"on SIGTERM/Ctrl-C, refuse new requests (503) and give those in "
                        f"progress this long to be answered, then exit (default {d.drain_s:g})")
    g.add_argument("--log-file", default=SERVE_LOG, metavar="PATH",
                   help=f"engine logs (vLLM, transformers) go here (default {SERVE_LOG}); the "
                        "terminal gets the server's own lines and one line per request")
    g.add_argument("-v", "--verbose", action="store_true",
                   help="engine logs on the terminal instead of --log-file")


def register(sub: Any) -> dict[str, Any]:
    add_parser(sub)
    return {"serve": cmd_serve}


def serve_config(a: argparse.Namespace) -> Any:
    from ..config import resolve_preset
    from ..serve import ServeConfig

    return ServeConfig(model_id=a.model_id, n=a.n, max_n=a.max_n,
                       preset=resolve_preset(a.preset, a.policy), k=a.k,
                       adaptive=a.adaptive, search=a.search, max_batch=a.max_batch,
                       batch_wait_s=a.batch_wait, queue_size=a.queue_size, timeout_s=a.timeout,
                       max_body_bytes=a.max_body_bytes, max_per_key=a.max_per_key,
                       drain_s=a.drain_s,
                       api_key=a.api_key or os.environ.get("BESTOFN_API_KEY") or None,
                       host=a.host, port=a.port, **{k: getattr(a, k) for k in SAMPLING_FLAGS})


def build_reranker(a: argparse.Namespace) -> Reranker:
    from ..execution.engines import build_orm, build_prm

    prm = build_prm(None if a.prm.lower() == "none" else a.prm, a.prm_backend, prm_options(a),
                    not a.no_docs)
    orm = build_orm(ORMOptions(model=a.orm, adapter=a.orm_adapter, backend=a.orm_backend,
                               device=a.device, dtype=a.dtype))
    return Reranker(prm, orm=orm, method=a.method, seed=a.seed)


def build_policy(a: argparse.Namespace, preset: str) -> Any:
    """The run's policy factory with the same flags: preset and engine options (the step
    filter is the fixed-N jobs': `validity`)."""
    from ..config import resolve_backend
    from ..execution.engines import PolicySpec
    from ..execution.engines import build_policy as build

    return build(PolicySpec(model=a.policy, backend=resolve_backend(a.policy_backend),
                            preset=preset, device=a.device, lora=a.lora,
                            engine=engine_options(a)))


def validity(a: argparse.Namespace, preset: str) -> Any:
    """Med-PRM's step filter of fixed-N requests, resolved as `run` resolves it (None: off)."""
    from policies.presets import get_preset
    from policies.validity import ValidityConfig

    from ..config import resolve_backend

    lo, hi = valid_steps(a.valid_steps)
    if lo is None:  # the preset's filter
        steps = None if resolve_backend(a.policy_backend) == "replay" else get_preset(preset).steps
    else:
        steps = (lo or 1, hi) if hi else None
    return None if steps is None else ValidityConfig(min_steps=steps[0], max_steps=steps[1],
                                                     fill_invalid=True)


def build_documents(a: argparse.Namespace) -> Any:
    """The documents stage over `--index` (None without one); a server keeps no cache."""
    from ..execution.documents import Documents, IndexLookup

    return Documents(IndexLookup(a.index, a.k, device=a.device), a.k) if a.index else None


def cmd_serve(a: argparse.Namespace) -> int:
    """Serve until SIGTERM/Ctrl-C (drained: exit 0) or the engine dies (the requests in
    flight get 503; exit `ENGINE_DEAD_EXIT` for a supervisor to restart the server)."""
    from ..console import process_owned, quiet
    from ..serve import create_app
    from ..serve.process import Exit, make_server

    cfg = serve_config(a)
    exit_ = Exit()
    with quiet(a.log_file, verbose=a.verbose, restore=not process_owned()) as con:
        app = create_app(cfg, build_reranker(a), build_policy(a, cfg.preset),
                         documents=build_documents(a), engine=engine_options(a),
                         validity=validity(a, cfg.preset), on_engine_death=exit_.engine_died)
        for line in banner(a, cfg) + ([] if a.verbose else [f"engine logs: {a.log_file}"]):
            print(f"bestofn serve: {line}", file=con.err, flush=True)
        server_logs_to(con.err)
        make_server(app, exit_, cfg.host, cfg.port, cfg.drain_s, log_config=None,
                    log_level="info").run()
        if exit_.code:
            print(f"bestofn serve: the engine died ({app.state.batcher.reason}); exiting "
                  f"with status {exit_.code} for a supervisor to restart the server",
                  file=con.err, flush=True)
    return exit_.code


def banner(a: argparse.Namespace, cfg: Any) -> list[str]:
    """The server's own start-up lines: where it listens, what it serves, its limits."""
    lines = [f"listening on http://{cfg.host}:{cfg.port}/v1 (model id {cfg.model_id!r}, "
             f"auth {'on' if cfg.api_key else 'off'})",
             f"policy {a.policy} ({a.policy_backend}, preset {cfg.preset}), "
             f"PRM {a.prm}" + (f", ORM {a.orm}" if a.orm else "") + f", method {a.method}",
             f"limits: n {cfg.n} (max {cfg.max_n}), max_tokens {cfg.max_tokens}, queue "
             f"{cfg.queue_size}, timeout {cfg.timeout_s:g} s, body {cfg.max_body_bytes} bytes"
             + (f", {cfg.max_per_key} per key" if cfg.max_per_key else "")
             + f", drain {cfg.drain_s:g} s"]
    for flag, value in (("adaptive", cfg.adaptive), ("search", cfg.search)):
        if value:
            lines.append(f"default {flag} {value} (requests override it with bestofn.{flag})")
    return lines


def server_logs_to(stream: Any) -> None:
    """uvicorn's own lines on `stream`: its warnings and errors (a port in use) and one access
    line per request; everything else uvicorn logs stays out."""
    import logging

    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(lambda r: r.name == "uvicorn.access" or r.levelno >= logging.WARNING)
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
