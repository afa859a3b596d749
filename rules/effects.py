"""Helpers shared by the clause groups: effects per engine pattern, and their trace entries."""
from __future__ import annotations

import numpy as np

from . import explain
from .clauses import condition_fields, full_when
from .explain import effect_text, inputs_text


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
    """For each pattern, the trace entries of its fired clauses: id, title, citation, the
    inputs the condition read (a coarsened amount as the interval it fell in), which of them
    were not reported, the effect applied, and the sentence that says so in Chinese."""
    out = []
    for p, (ids, fact) in enumerate(zip(decision.fired, decision.facts)):
        missing = set(decision.not_reported[p]) if decision.not_reported else set()
        classes = decision.classes[p] if decision.classes else {}
        entries = []
        for cid in ids:
            c = clauses[cid]
            used = sorted(condition_fields(full_when(policy, c)) | ({c.effect["per"]} if c.effect.get("per") else set()))
            inputs = {f: classes.get(f, fact.get(f)) for f in used}
            effect = effect_of(c, fact)
            text = f"{effect_text(effect)}（依据 {inputs_text(inputs, missing)}）"
            e = explain.entry(c, text, inputs=inputs, effect=effect)
            nr = sorted(missing & set(used))
            if nr:
                e["not_reported"] = nr
            entries.append(e)
        # a clause that did not fire and read an empty cell: say so, once per field, on the
        # first clause that reads it ("not reported" is not 否/0)
        told = set()
        for cid, c in clauses.items():
            fields = sorted((missing & condition_fields(c.when)) - told)
            if cid in ids or not fields:
                continue
            told |= set(fields)
            shown = "、".join(f"{explain.label(f)}（按{explain.value_text(f, fact.get(f))}处理）" for f in fields)
            entries.append(explain.entry(c, f"未填报：{shown}；本条款不适用", fired=False, not_reported=fields,
                                         effect={}))
        out.append(entries)
    return out
