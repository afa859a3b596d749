"""Clauses NL-* (表3, 负面清单): exclusions and deductions, decided by the rules engine."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import engine
from .clauses import atoms
from .effects import clause_map, facts_frame, multiplier, per_pattern, trace_entries

GROUP = "negative_list"


@dataclass
class NegativeList:
    excluded: np.ndarray            # bool per row
    exclusion_clauses: np.ndarray   # "NL-1;NL-3" per row ('' when not excluded), object
    deductions: np.ndarray          # points per row
    decision: engine.Decision
    trace: list                     # per pattern: fired entries


def apply(policy, year, frame, stage_level) -> NegativeList:
    clauses = clause_map(policy, GROUP, year)
    decision = engine.decide(policy, GROUP, year, *facts_frame(policy, GROUP, year, frame, stage_level))

    def deduction(c, fact):
        return c.effect["deduct"] * multiplier(c, fact) if "deduct" in c.effect else 0.0

    ded = per_pattern(decision, clauses, lambda cs, fact: sum(deduction(c, fact) for c in cs))
    excl_ids = [";".join(c for c in ids if clauses[c].effect.get("exclude")) for ids in decision.fired]
    excl = np.array([bool(s) for s in excl_ids], dtype=bool)
    trace = trace_entries(policy, decision, clauses, lambda c, fact: (
        {"exclude": True} if c.effect.get("exclude") else {"deduct": deduction(c, fact)}))
    p = decision.pattern
    return NegativeList(excl[p], np.array(excl_ids, dtype=object)[p], ded[p], decision, trace)


def clause_statuses(clause) -> list:
    """The statuses a deduction clause requires to be yes or above 0 (NL-4/NL-5: "恢复…前每个
    评价周期均扣分"); an exemption such as `tech_sme_out_of_scope: false` is not one."""
    if "deduct" not in clause.effect:
        return []
    return sorted({f for f, op, v in atoms(clause.when)
                   if (op == "eq" and v is True) or (op in ("gt", "gte") and not isinstance(v, bool) and v >= 0)})


def status_fields(policy, year) -> list:
    """Every status the deduction clauses require: the trace reports in which earlier years
    of the records the same status was reported."""
    return sorted({f for c in clause_map(policy, GROUP, year).values() for f in clause_statuses(c)})
