"""Adaptive test-time compute: stop sampling a question once its answer is settled.

`rules` holds the stopping rules (protocol, registry, `parse_rule`, what a rule reads of a
question's samples: `Drawn`, `drawn_of`) and `posterior` their Bayesian tests: pure functions
of answers and scores, shared by the offline replay (`bestofn.evaluation.adaptive_replay`),
the adaptive job (`bestofn.jobs.adaptive`), the server and the viewer.
"""

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

__all__ = ["DEFAULT_MAX_N", "RULES", "Bounds", "Drawn", "StoppingRule", "format_rule",
           "make_rule", "parse_rule"]
