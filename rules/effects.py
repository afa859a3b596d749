"""Helpers shared by the clause groups: effects per engine pattern, and their trace entries."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import explain
from .clauses import BOOL, NUMERIC, condition_fields, full_when, group_fields
from .explain import effect_text


def read_fields(policy, group, year) -> list:
    """Every fact a group's clauses in force read (conditions and `per` multipliers)."""
    out = set()
    for c in policy.clauses_for(group, year):
        out |= condition_fields(full_when(policy, c))
        if c.effect.get("per"):
            out.add(c.effect["per"])
    return sorted(out)


def facts_frame(policy, group, year, frame, stage_level, hist=None, derived=None):
    """The fact columns a group's clauses read, normalised for the engine, and which cells
    were empty. Facts come from `derived` (name -> array, computed by the group), the history
    runs (`hist`), the stage, or the record's own fields. An empty yes/no field is read as the
    group's `missing_flag` setting, an empty number as its `missing_count` (not reported: it
    did not happen); the trace still says "未填报" for them. A derived fact left NaN is
    unknown: no condition on it holds."""
    settings = policy.settings(group) if group in policy.groups else {}
    missing_flag = settings.get("missing_flag", False)
    missing_count = settings.get("missing_count", 0)
    known = group_fields(policy, group)
    data = policy.data
    derived = derived or {}
    out, missing = {}, {}
    for key in read_fields(policy, group, year):
        kind = known.get(key, (None,))[0]
        if key in derived:
            out[key] = derived[key]
        elif hist is not None and key in hist.runs:
            out[key] = hist.runs[key].value
        elif key == "stage":
            out[key] = _stage_names(stage_level, data.level_stage)
        elif key in frame:
            f = data.field(key)
            if f is not None and f.kind == "stage":          # a stage field holds levels
                out[key] = pd.Series(frame[key].to_numpy(dtype="float64")).map(data.level_stage).to_numpy(dtype=object)
            elif kind == BOOL:
                col = frame[key].to_numpy(dtype="float64")
                missing[key] = np.isnan(col)
                out[key] = np.where(missing[key], missing_flag, col == 1)
            elif kind in NUMERIC:
                col = frame[key].to_numpy(dtype="float64")
                missing[key] = np.isnan(col)
                out[key] = np.where(missing[key], float(missing_count), col)
            else:
                out[key] = frame[key].array      # text stays in its arrow buffer
    return pd.DataFrame(out, index=pd.RangeIndex(len(stage_level)), copy=False), \
        pd.DataFrame(missing, index=pd.RangeIndex(len(stage_level)), copy=False)


def _stage_names(levels, level_stage) -> np.ndarray:
    """The stage key of each integer level (None for a level that is no stage), by lookup."""
    levels = np.asarray(levels)
    if levels.dtype.kind not in "iu" or not len(levels) or levels.min() < 0:
        return pd.Series(levels).map(level_stage).to_numpy(dtype=object)
    names = np.array([level_stage.get(i) for i in range(int(levels.max()) + 1)], dtype=object)
    return names[levels]


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
    # what each clause reads, worked out once (not once per pattern)
    w = explain.wording(policy.data)
    used_of = {cid: sorted(condition_fields(full_when(policy, c)) | ({c.effect["per"]} if c.effect.get("per") else set()))
               for cid, c in clauses.items()}
    reads = {cid: condition_fields(c.when) for cid, c in clauses.items()}
    out = []
    for p, (ids, fact) in enumerate(zip(decision.fired, decision.facts)):
        missing = set(decision.not_reported[p]) if decision.not_reported else set()
        classes = decision.classes[p] if decision.classes else {}
        entries = []
        for cid in ids:
            c = clauses[cid]
            used = used_of[cid]
            inputs = {f: classes.get(f, fact.get(f)) for f in used}
            effect = effect_of(c, fact)
            text = f"{effect_text(effect)}（依据 {w.inputs_text(inputs, missing)}）"
            e = explain.entry(c, text, inputs=inputs, effect=effect)
            nr = sorted(missing & set(used))
            if nr:
                e["not_reported"] = nr
            entries.append(e)
        # a clause that did not fire and read an empty cell: say so, once per field, on the
        # first clause that reads it ("not reported" is not 否/0)
        if missing:
            told = set()
            for cid, c in clauses.items():
                fields = sorted((missing & reads[cid]) - told)
                if cid in ids or not fields:
                    continue
                told |= set(fields)
                shown = "、".join(f"{w.label(f)}（按{w.value_text(f, fact.get(f))}处理）" for f in fields)
                entries.append(explain.entry(c, f"未填报：{shown}；本条款不适用", fired=False, not_reported=fields,
                                             effect={}))
        out.append(entries)
    return out
