"""Single-sample requests on a `vllm.LLM`'s own engine: `enqueue_chat`, `step`, `abort_request`.

Requests are rendered by vLLM exactly as `LLM.chat` renders them (`enqueue_chat` returns the
engine's internal request ids; outputs and aborts use the external id they were made from),
so sample k (seed + k) is the text a fixed run's `n` request gives its k-th child.
The engine steps only inside `poll`.
The tokens an aborted request had generated are read from the engine's output processor
just before the abort (vLLM returns nothing for an aborted request with final-only output).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.records import Question

from .requests import Finished, SampleKey


@dataclass
class _Running:
    question: Question
    index: int
    seed: int


class VLLMStream:
    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.engine = policy.llm.llm_engine
        self.running: dict[str, _Running] = {}
        self.ids: dict[SampleKey, str] = {}

    def submit(self, requests: Sequence[tuple[Question, int]], params: SamplingConfig) -> None:
        if not requests:
            return
        from policies import question_seed

        seeds = [question_seed(params.seed, q.id) for q, _ in requests]
        ids = self.policy.llm.enqueue_chat(
            [self.policy.preset.messages(q) for q, _ in requests],
            [self.policy.sampling_params(1, params, s + k)
             for (_, k), s in zip(requests, seeds, strict=True)],
            use_tqdm=False, lora_request=self.policy.lora_request)
        states = self.engine.output_processor.request_states
        for rid, (q, k), seed in zip(ids, requests, seeds, strict=True):
            rid = states[rid].external_req_id if rid in states else rid
            self.running[rid] = _Running(q, k, seed)
            self.ids[SampleKey(q.id, k)] = rid

    def poll(self, timeout: float) -> list[Finished]:
        deadline, out = time.monotonic() + timeout, []
        while (self.running and not out and time.monotonic() < deadline
               and self.engine.has_unfinished_requests()):
            for o in self.engine.step():
                if o.finished and o.request_id in self.running:
                    out.append(self._finished(self.running.pop(o.request_id), o))
        return out

    def _finished(self, r: _Running, o: Any) -> Finished:
        del self.ids[SampleKey(r.question.id, r.index)]
        [c] = o.outputs
        sol = self.policy.preset.make_solution(
            c.text, r.question, model=self.policy.model_name, seed=r.seed, index=r.index,
            tokens=len(c.token_ids), finish_reason=c.finish_reason)
        return Finished(SampleKey(r.question.id, r.index), sol, len(c.token_ids))

    def abort(self, keys: Sequence[SampleKey]) -> int:
        rids = [self.ids.pop(k) for k in keys if k in self.ids]
        if not rids:
            return 0
        tokens = sum(self._generated(rid) for rid in rids)
        self.engine.abort_request(rids)
        for rid in rids:
            del self.running[rid]
        return tokens

    def _generated(self, rid: str) -> int:
        proc = self.engine.output_processor
        states = [proc.request_states.get(i) for i in proc.external_req_ids.get(rid, [])]
        return sum(s.detokenizer.num_output_tokens() for s in states
                   if s is not None and s.detokenizer is not None)

    def pending(self) -> int:
        return len(self.running)

    def close(self) -> None:
        self.abort([SampleKey(r.question.id, r.index) for r in list(self.running.values())])
