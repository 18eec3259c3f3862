"""Counters for `/metrics`, written in Prometheus' text format by hand (a few counters and one
histogram do not need a client library)."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Upper bounds (seconds) of the request latency histogram."""


@dataclass
class Metrics:
    requests: Counter[int] = field(default_factory=Counter)
    """Finished requests by HTTP status."""
    samples: int = 0
    samples_aborted: int = 0
    tokens_generated: int = 0
    tokens_aborted: int = 0
    prm_tokens_computed: int = 0
    scored_solutions: Counter[str] = field(default_factory=Counter)
    """Solutions scored, by verifier kind (prm, orm)."""
    policy_calls: int = 0
    policy_questions: int = 0
    policy_batch_max: int = 0
    queue_depth: int = 0
    prm_calls: int = 0
    prm_batch_max: int = 0
    """Most questions one verifier call has scored together (across requests)."""
    prm_batch_solutions_max: int = 0
    cancelled: int = 0
    """Questions whose every request left before the answer: samples aborted, scoring
    skipped."""
    disconnects: int = 0
    """Requests whose client disconnected before the answer."""
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def policy_call(self, questions: int) -> None:
        self.policy_calls += 1
        self.policy_questions += questions
        self.policy_batch_max = max(self.policy_batch_max, questions)

    def drawn(self, c: Any) -> None:
        """A question's samples (`execution.Compute`): kept, thrown away, their tokens, and
        the PRM tokens computed while sampling (an adaptive rule's or a search's scoring)."""
        self.samples += c.samples_drawn
        self.samples_aborted += c.samples_aborted
        self.tokens_generated += c.tokens_generated
        self.tokens_aborted += c.tokens_aborted
        self.prm_tokens_computed += c.prm_tokens_computed

    def scored(self, by_kind: dict[str, int], prm_tokens: int = 0) -> None:
        self.scored_solutions.update(by_kind)
        self.prm_tokens_computed += prm_tokens

    def verifier_call(self, questions: int, solutions: int) -> None:
        """One scoring call (run on the engine's scoring thread: plain int updates)."""
        self.prm_calls += 1
        self.prm_batch_max = max(self.prm_batch_max, questions)
        self.prm_batch_solutions_max = max(self.prm_batch_solutions_max, solutions)

    def cancel(self) -> None:
        self.cancelled += 1

    def request(self, status: int, seconds: float) -> None:
        self.requests[status] += 1
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def text(self) -> str:
        """The Prometheus exposition text."""
        out: list[str] = []

        def metric(name: str, kind: str, doc: str, rows: list[tuple[str, float]]) -> None:
            out.extend([f"# HELP {name} {doc}", f"# TYPE {name} {kind}"])
            out.extend(f"{name}{labels} {value:g}" for labels, value in rows)

        metric("bestofn_requests_total", "counter", "Chat completion requests by HTTP status.",
               [(f'{{status="{s}"}}', c) for s, c in sorted(self.requests.items())])
        metric("bestofn_samples_total", "counter", "Solutions sampled by the policy.",
               [("", self.samples)])
        for name, doc, value in (
                ("samples_aborted", "Samples started and thrown away (aborted or past the "
                 "stopping point).", self.samples_aborted),
                ("tokens_generated", "Tokens the policy generated, kept or not.",
                 self.tokens_generated),
                ("tokens_aborted", "Generated tokens thrown away.", self.tokens_aborted),
                ("prm_tokens_computed", "Tokens the PRM computed (not read from a cache).",
                 self.prm_tokens_computed)):
            metric(f"bestofn_{name}_total", "counter", doc, [("", value)])
        metric("bestofn_prm_solutions_scored_total", "counter", "Solutions scored by the PRM.",
               [("", self.scored_solutions["prm"])])
        metric("bestofn_orm_solutions_scored_total", "counter", "Solutions scored by the ORM.",
               [("", self.scored_solutions["orm"])])
        metric("bestofn_policy_calls_total", "counter", "Policy engine calls.",
               [("", self.policy_calls)])
        metric("bestofn_policy_questions_total", "counter",
               "Questions sampled, summed over policy calls.", [("", self.policy_questions)])
        metric("bestofn_policy_batch_max", "gauge",
               "Most questions one policy call has carried.", [("", self.policy_batch_max)])
        metric("bestofn_verifier_calls_total", "counter",
               "Verifier calls (each scores every question waiting for scores).",
               [("", self.prm_calls)])
        metric("bestofn_prm_batch_max", "gauge",
               "Most questions one verifier call has scored together.",
               [("", self.prm_batch_max)])
        metric("bestofn_prm_batch_solutions_max", "gauge",
               "Most solutions one verifier call has scored.", [("", self.prm_batch_solutions_max)])
        metric("bestofn_requests_cancelled_total", "counter", "Questions whose every request "
               "left (client gone, timeout): samples aborted, scoring skipped.",
               [("", self.cancelled)])
        metric("bestofn_client_disconnects_total", "counter",
               "Requests whose client disconnected before the answer.", [("", self.disconnects)])
        metric("bestofn_queue_depth", "gauge", "Requests admitted and not finished.",
               [("", self.queue_depth)])
        cum, rows = 0, []
        for bound, c in zip([*map(str, LATENCY_BUCKETS), "+Inf"], self.latency_counts,
                            strict=True):
            cum += c
            rows.append((f'_bucket{{le="{bound}"}}', cum))
        rows += [("_sum", self.latency_sum), ("_count", cum)]
        out.extend(["# HELP bestofn_request_latency_seconds Chat completion latency.",
                    "# TYPE bestofn_request_latency_seconds histogram"])
        out.extend(f"bestofn_request_latency_seconds{s} {v:g}" for s, v in rows)
        return "\n".join(out) + "\n"
