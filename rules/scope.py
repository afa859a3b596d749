"""Clause SCOPE (§三.(一) 评价对象): which enterprise-year records are evaluation objects,
decided by the rules engine like the negative list (SPEC §2.0).

A record is in scope when a clause of the `scope` group fires for it. A record out of scope
keeps its stage but is reported as excluded, with the scope clause's id first among its
exclusion clauses, and takes no place in cohorts, ranks or rewards. With no scope clause in
force every record is in scope.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import engine, explain
from .clauses import full_when
from .effects import clause_map, facts_frame

GROUP = "scope"


@dataclass
class Scope:
    in_scope: np.ndarray       # bool per row
    clause_ids: str            # the ids an out-of-scope record is excluded by ("SCOPE")
    decision: engine.Decision
    trace: list                # per pattern: one entry per scope clause


def apply(policy, year, frame, stage_level) -> Scope:
    clauses = clause_map(policy, GROUP, year)
    facts, missing = facts_frame(policy, GROUP, year, frame, stage_level)
    decision = engine.decide(policy, GROUP, year, facts, missing)
    if not clauses:
        return Scope(np.ones(len(frame), dtype=bool), "", decision, [[] for _ in decision.facts])
    inside = np.array([bool(ids) for ids in decision.fired], dtype=bool)
    trace = []
    w = explain.wording(policy.data)
    for p, (ids, fact) in enumerate(zip(decision.fired, decision.facts)):
        nr = sorted(decision.not_reported[p]) if decision.not_reported else []
        entries = []
        for cid, c in clauses.items():
            met, unmet = w.condition_report(full_when(policy, c), fact)
            if cid in ids:       # in scope: the sentence says which conditions were met
                entries.append(explain.entry(c, f"属于评价对象：满足 {'；'.join(met)}", in_scope=True))
                continue
            note = f"（未填报：{'、'.join(w.label(f) for f in nr)}，按否/0处理）" if nr else ""
            text = f"不属于评价对象，不参加评分、排名和奖励：以下条件均不满足 —— {'；'.join(unmet)}{note}"
            entries.append(explain.entry(c, text, in_scope=False, not_met=unmet, not_reported=nr))
        trace.append(entries)
    return Scope(inside[decision.pattern], ";".join(clauses), decision, trace)
