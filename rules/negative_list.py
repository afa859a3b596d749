"""Clauses NL-* (表3, 负面清单): exclusions and deductions, decided by the rules engine."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import engine
from .clauses import GROUP_FIELDS, BOOL, NUM
from .effects import clause_map, multiplier, per_pattern, trace_entries
from .fields import LEVEL_STAGE

GROUP = "negative_list"


@dataclass
class NegativeList:
    excluded: np.ndarray            # bool per row
    exclusion_clauses: list         # "NL-1;NL-3" per row ('' when not excluded)
    deductions: np.ndarray          # points per row
    decision: engine.Decision
    trace: list                     # per pattern: fired entries


def facts_frame(group, frame, stage_level, missing_flag=False):
    """The fact columns a group's clauses may read, normalised for the engine: a missing
    yes/no is `missing_flag`, a missing count 0 (not reported means it did not happen)."""
    out = {}
    for key, (kind, _) in GROUP_FIELDS[group].items():
        if key == "stage":
            out[key] = pd.Series(stage_level).map(LEVEL_STAGE).to_numpy(dtype=object)
        elif key in frame:
            if kind == BOOL:
                col = frame[key].to_numpy(dtype="float64")
                out[key] = np.where(np.isnan(col), missing_flag, col == 1)
            elif kind == NUM:
                out[key] = np.nan_to_num(frame[key].to_numpy(dtype="float64"), nan=0.0)
            else:
                out[key] = frame[key].array      # text stays in its arrow buffer
    return pd.DataFrame(out, copy=False)


def apply(policy, year, frame, stage_level) -> NegativeList:
    clauses = clause_map(policy, GROUP, year)
    missing_flag = policy.settings(GROUP).get("missing_flag", False)
    decision = engine.decide(policy, GROUP, year, facts_frame(GROUP, frame, stage_level, missing_flag))

    def deduction(c, fact):
        return c.effect["deduct"] * multiplier(c, fact) if "deduct" in c.effect else 0.0

    ded = per_pattern(decision, clauses, lambda cs, fact: sum(deduction(c, fact) for c in cs))
    excl_ids = [";".join(c for c in ids if clauses[c].effect.get("exclude")) for ids in decision.fired]
    excl = np.array([bool(s) for s in excl_ids], dtype=bool)
    trace = trace_entries(policy, decision, clauses, lambda c, fact: (
        {"exclude": True} if c.effect.get("exclude") else {"deduct": deduction(c, fact)}))
    p = decision.pattern
    return NegativeList(excl[p], [excl_ids[i] for i in p], ded[p], decision, trace)
