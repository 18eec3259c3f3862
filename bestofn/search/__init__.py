"""Search inside generation: the PRM judges partial solutions step by step.

`stepwise` is a candidate's state (one `Step N:` step per request, continued from token ids),
`scoring` scores partial solutions with the run's PRM, `strategies` decides which continue
(`beam`, `dvts`, `reject`, `particles`; `parse_strategy("beam:width=4")`), `job` is one
question's search as a job of the streaming scheduler (`bestofn.execution`), and `loop` runs
the jobs of many questions on one engine stream with scoring beside it.
`search(questions, policy, prm, "beam:width=4", n=8)` is the library call; `run --search`
is the command-line one (`run_search.check_search`; the jobs run on the one scheduler loop,
in this process or on the Ray actors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.execution.driver import Failed
from bestofn.text.records import Item, Question

from .loop import outcomes_in_order, search_items, with_documents
from .stepwise import MEDPRM_STEPS, Candidate, StepFormat
from .strategies import STRATEGIES, Live, Strategy, format_strategy, parse_strategy


def search(questions: Sequence[Question], policy: Any, prm: Any, strategy: str | Strategy,
           n: int, params: SamplingConfig | None = None, *, use_docs: bool = False,
           fmt: StepFormat = MEDPRM_STEPS) -> list[Item]:
    """Items (in question order) of a search with N candidates per question.

    `policy` is a `policies.vllm.VLLMPolicy`, `prm` a PRM scorer (`make_scorer("prm-hf", ...)`),
    `params` the sampling settings (default: the policy preset's)."""
    strat = parse_strategy(strategy) if isinstance(strategy, str) else strategy
    params = params or policy.preset.sampling
    got = outcomes_in_order(policy, prm, questions, n, params, strat, use_docs=use_docs,
                            fmt=fmt)
    for it in got:
        if isinstance(it, Failed):
            raise RuntimeError(f"question {it.question_id}: {it.stage} failed: {it.error}")
    return got  # type: ignore[return-value]


__all__ = ["MEDPRM_STEPS", "STRATEGIES", "Candidate", "Live", "StepFormat", "Strategy",
           "format_strategy", "outcomes_in_order", "parse_strategy", "search", "search_items",
           "with_documents"]
