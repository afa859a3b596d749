"""Clauses NL-* (表3, 负面清单): exclusions and deductions, decided by the rules engine."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import engine
from .clauses import BOOL, GROUP_FIELDS, NUMERIC, atoms
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


def facts_frame(policy, group, frame, stage_level):
    """The fact columns a group's clauses may read, normalised for the engine, and which
    cells were empty. An empty yes/no is read as the group's `missing_flag` setting, an empty
    number as its `missing_count` (not reported: it did not happen); the trace still says
    "未填报" for them."""
    settings = policy.settings(group) if group in policy.groups else {}
    missing_flag = settings.get("missing_flag", False)
    missing_count = settings.get("missing_count", 0)
    out, missing = {}, {}
    for key, (kind, _) in GROUP_FIELDS[group].items():
        if key == "stage":
            out[key] = pd.Series(stage_level).map(LEVEL_STAGE).to_numpy(dtype=object)
        elif key in frame:
            if kind == BOOL:
                col = frame[key].to_numpy(dtype="float64")
                missing[key] = np.isnan(col)
                out[key] = np.where(missing[key], missing_flag, col == 1)
            elif kind in NUMERIC:
                col = frame[key].to_numpy(dtype="float64")
                missing[key] = np.isnan(col)
                out[key] = np.where(missing[key], float(missing_count), col)
            else:
                out[key] = frame[key].array      # text stays in its arrow buffer
    return pd.DataFrame(out, copy=False), pd.DataFrame(missing, copy=False)


def apply(policy, year, frame, stage_level) -> NegativeList:
    clauses = clause_map(policy, GROUP, year)
    decision = engine.decide(policy, GROUP, year, *facts_frame(policy, GROUP, frame, stage_level))

    def deduction(c, fact):
        return c.effect["deduct"] * multiplier(c, fact) if "deduct" in c.effect else 0.0

    ded = per_pattern(decision, clauses, lambda cs, fact: sum(deduction(c, fact) for c in cs))
    excl_ids = [";".join(c for c in ids if clauses[c].effect.get("exclude")) for ids in decision.fired]
    excl = np.array([bool(s) for s in excl_ids], dtype=bool)
    trace = trace_entries(policy, decision, clauses, lambda c, fact: (
        {"exclude": True} if c.effect.get("exclude") else {"deduct": deduction(c, fact)}))
    p = decision.pattern
    return NegativeList(excl[p], [excl_ids[i] for i in p], ded[p], decision, trace)


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
