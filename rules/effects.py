"""Helpers shared by the clause groups: effects per engine pattern, and their trace entries."""
from __future__ import annotations

import numpy as np

from .clauses import condition_fields, full_when


def clause_map(policy, group, year):
    return {c.id: c for c in policy.clauses_for(group, year)}


def multiplier(clause, fact):
    """The `per` multiplier of an effect: the count it names, or 1."""
    per = clause.effect.get("per")
    return fact.get(per, 0) if per else 1


def per_pattern(decision, clauses, value):
    """An array over patterns of `value(fired_clauses, fact)`."""
    return np.array([value([clauses[i] for i in ids], fact)
                     for ids, fact in zip(decision.fired, decision.facts)], dtype="float64")


def trace_entries(policy, decision, clauses, effect_of):
    """For each pattern, the trace entries of its fired clauses: id, the inputs the condition
    read, and the effect applied."""
    out = []
    for ids, fact in zip(decision.fired, decision.facts):
        entries = []
        for cid in ids:
            c = clauses[cid]
            used = sorted(condition_fields(full_when(policy, c)) | ({c.effect["per"]} if c.effect.get("per") else set()))
            # title and citation are in the trace header, by clause id
            entries.append({"clause": cid, "inputs": {f: fact.get(f) for f in used}, "effect": effect_of(c, fact)})
        out.append(entries)
    return out
