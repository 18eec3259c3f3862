"""Adaptive test-time compute: stop sampling a question once its answer is settled.

`rules` holds the stopping rules (protocol, registry, `parse_rule`); `replay` evaluates a rule
offline on stored samples and gives the accuracy-vs-mean-samples curves.
"""

from .replay import (
    AdaptiveResult,
    CurvePoint,
    MissingScores,
    Replayer,
    fixed_curve,
    replay,
    rule_curve,
)
from .rules import (
    DEFAULT_MAX_N,
    RULES,
    Bounds,
    Drawn,
    StoppingRule,
    format_rule,
    make_rule,
    parse_rule,
)

__all__ = ["DEFAULT_MAX_N", "RULES", "AdaptiveResult", "Bounds", "CurvePoint", "Drawn",
           "MissingScores", "Replayer", "StoppingRule", "fixed_curve", "format_rule",
           "make_rule", "parse_rule", "replay", "rule_curve"]
