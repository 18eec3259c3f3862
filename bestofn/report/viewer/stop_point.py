"""An adaptive run's stop point per question: samples drawn, why it stopped, the rule's state.

The rule is the run's (`report.json` `adaptive.rule`, or `config.json` `adaptive`); its state
is recomputed from the question's samples in draw order exactly as the rule reads them
(`adaptive.rules.drawn_of`): the answer counts, and the figure the rule compares with its
threshold (the posterior probability that the leader stays ahead, the PRM-weighted margin, the
last window, the confidence share).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ...adaptive.posterior import beta_leader_prob, beta_upper_tail, dirichlet_leader_prob, top_two
from ...adaptive.rules import Bounds, Drawn, drawn_of, parse_rule
from ...text.records import Item


def run_rule(data: dict[str, Any]) -> Bounds | None:
    """The adaptive run's stopping rule, or None for a fixed-N or search run."""
    spec = (data.get("adaptive") or {}).get("rule") or (data.get("config") or {}).get("adaptive")
    if not spec:
        return None
    try:
        return parse_rule(str(spec))
    except ValueError:
        return None


def stop_point(item: Item, rule: Bounds) -> dict[str, Any]:
    """Samples drawn, `stopped_by` (rule | max_n | unsettled) and the rule's `state`."""
    drawn = drawn_of(item.solutions, item.prm)
    k = len(drawn)
    try:
        settled = k >= rule.min_n and rule.settled(drawn)
        state = _state(rule, drawn)
    except ValueError as e:
        settled, state = False, {"error": str(e)}
    by = "rule" if settled else "max_n" if k >= rule.max_n else "unsettled"
    votes = Counter(a for a in drawn.answers if a is not None)
    return {"rule": rule.name, "samples": k, "min_n": rule.min_n, "max_n": rule.max_n,
            "stopped_by": by, "votes": dict(votes.most_common()), **state}


def _state(rule: Bounds, drawn: Drawn) -> dict[str, Any]:
    counts = Counter(a for a in drawn.answers if a is not None)
    eps = getattr(rule, "eps", None)
    out: dict[str, Any] = {} if eps is None else {"threshold": 1 - eps}
    if rule.name in ("beta", "dirichlet") and counts:
        c = sorted(counts.values(), reverse=True)
        if rule.name == "dirichlet" and len(c) >= 3:
            out["p_leader"] = dirichlet_leader_prob(tuple(c))
        else:
            out["p_leader"] = beta_leader_prob(c[0], c[1] if len(c) > 1 else 0)
    elif rule.name == "prm" and drawn.scores is not None:
        weights: dict[str, float] = {}
        for a, s in zip(drawn.answers, drawn.scores, strict=True):
            if a is not None and s is not None:
                weights[a] = weights.get(a, 0.0) + s
        w1, w2 = top_two(weights)
        total = math.fsum(weights.values())
        n = sum(1 for a, s in zip(drawn.answers, drawn.scores, strict=True)
                if a is not None and s is not None)
        out |= {"weights": weights, "margin": w1 - w2, "remaining": rule.max_n - len(drawn)}
        if total > 0:
            out["p_leader"] = beta_upper_tail(w1 * n / total + 1, w2 * n / total + 1)
    elif rule.name == "esc":
        w = int(getattr(rule, "w", 1))
        out["window"] = list(drawn.answers[-w:]) if len(drawn) >= w else []
    elif rule.name == "confidence" and drawn.confidences is not None:
        bar = rule.bar(drawn.confidences[:rule.warmup])  # type: ignore[attr-defined]
        weights = {}
        for a, c in zip(drawn.answers, drawn.confidences, strict=True):
            if a is not None and c is not None and bar is not None and c >= bar:
                weights[a] = weights.get(a, 0.0) + c
        total = math.fsum(weights.values())
        out |= {"bar": bar, "share": max(weights.values()) / total if total > 0 else None,
                "threshold": rule.tau}  # type: ignore[attr-defined]
    return out
