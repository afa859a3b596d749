"""Clauses DEC-* (表4, 衰减降档系数), decided by the rules engine.

The facts: the stage, completed years since registration, the history runs the package
declares, and the stage levels dropped since Y−1 and between Y−2 and Y−1 (history.py).
Unknown history leaves those facts out, so no DEC-2/DEC-3 condition can hold.
"""
from __future__ import annotations

import numpy as np

from . import engine
from .effects import clause_map, facts_frame, multiplier, per_pattern, trace_entries

GROUP = "decay"


def apply(policy, year, frame, level, completed, hist):
    """Decay factor per row (1.0 when none applies), the decision and the trace."""
    clauses = clause_map(policy, GROUP, year)
    combine = policy.settings(GROUP).get("combine", "multiply")
    derived = {"completed_years": completed.astype("float64"), "level_drop": hist.level_drop(level),
               "prev_level_drop": hist.prev_level_drop()}
    decision = engine.decide(policy, GROUP, year, *facts_frame(policy, GROUP, year, frame, level, hist, derived))

    def factor(c, fact):
        return c.effect["factor"] ** multiplier(c, fact)

    def combined(cs, fact):
        fs = [factor(c, fact) for c in cs]
        if not fs:
            return 1.0
        return float(np.prod(fs)) if combine == "multiply" else min(fs)

    f = per_pattern(decision, clauses, combined)
    trace = trace_entries(policy, decision, clauses, lambda c, fact: {"factor": factor(c, fact)})
    return f[decision.pattern], decision, trace
