"""Clauses BON-* (表5, 重大科技项目附加分), decided by the rules engine."""
from __future__ import annotations

from . import engine
from .effects import clause_map, facts_frame, multiplier, per_pattern, trace_entries

GROUP = "bonus"


def apply(policy, year, frame, stage_level):
    """Bonus points per row, the engine decision and the per-pattern trace."""
    clauses = clause_map(policy, GROUP, year)
    decision = engine.decide(policy, GROUP, year, *facts_frame(policy, GROUP, year, frame, stage_level))

    def add(c, fact):
        return c.effect["add"] * multiplier(c, fact)

    bonus = per_pattern(decision, clauses, lambda cs, fact: sum(add(c, fact) for c in cs))
    trace = trace_entries(policy, decision, clauses, lambda c, fact: {"add": add(c, fact)})
    return bonus[decision.pattern], decision, trace
