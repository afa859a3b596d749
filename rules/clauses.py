"""The condition language of clause files and its compilation to durable-rules expressions.

A `when` is a mapping read as "all of these hold":

    when: {env_credit_rating: warning}                    # equality
    when: {completed_years: {gte: 9, lt: 14}}             # comparisons: eq ne lt lte gt gte in
    when: {any: [{level_drop: {gte: 2}}, {level_drop: 1, prev_level_drop: {gte: 1}}]}
    when: {all: [...]}                                    # explicit conjunction

A condition may read the package's fields and history runs (data.yaml) and the facts the
evaluation derives for its group (`group_fields`); a condition naming another field, or
comparing a field with a value of the wrong type, is a clause-file error.
"""
from __future__ import annotations

BOOL, NUM, TEXT = "yes/no", "number", "text"
# a number with a wide range (money, ratios …): the engine sees it coarsened to the intervals
# between the constants its conditions name (engine.coarsen), so that enterprises whose values
# no condition tells apart share one pattern. Which kinds: the group's `coarsen` setting.
AMOUNT = "amount"
NUMERIC = (NUM, AMOUNT)
COARSEN_DEFAULT = ("amount", "ratio", "signed")

# facts the evaluation derives, by group; every group also reads the package's fields and
# history runs (data.yaml), the stage and the identity's park and industry
DERIVED = {
    "decay": {"completed_years": NUM, "level_drop": NUM, "prev_level_drop": NUM},
    "rewards": {"excluded": BOOL, "in_scope": BOOL, "evaluation_year": NUM, "contracts_in_year": NUM},
}
_KIND = {"bool": BOOL, "count": NUM, "year": NUM, "amount": NUM, "ratio": NUM, "signed": NUM,
         "choice": TEXT, "stage": TEXT, "text": TEXT}


def group_fields(policy, group) -> dict:
    """The facts a group's conditions may read: name -> (kind, allowed values or None)."""
    data = policy.data
    coarse = set(policy.settings(group).get("coarsen", COARSEN_DEFAULT)) if group in policy.groups else set()
    out = {"stage": (TEXT, set(data.stages)), "park": (TEXT, None), "industry": (TEXT, None)}
    for f in data.fields:
        kind = _KIND.get(f.kind)
        if kind is None:
            continue
        if kind == NUM and f.kind in coarse:
            kind = AMOUNT
        allowed = set(f.value_names) if f.kind == "choice" else set(data.stages) if f.kind == "stage" else None
        out[f.key] = (kind, allowed)
    for r in data.runs:
        out[r.key] = (NUM, None)
    out.update({k: (v, None) for k, v in DERIVED.get(group, {}).items()})
    return out


_DURABLE_OP = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


class ConditionError(ValueError):
    pass


def _check_value(known, field, value):
    kind, allowed = known[field]
    if kind == BOOL and not isinstance(value, bool):
        raise ConditionError(f"字段 {field} 是是/否值，条件值 {value!r} 应为 true/false / "
                             f"{field} is yes/no, {value!r} is not true/false")
    if kind in NUMERIC and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConditionError(f"字段 {field} 是数值，条件值 {value!r} 不是数字 / {field} is a number")
    if kind == TEXT:
        if not isinstance(value, str):
            raise ConditionError(f"字段 {field} 是文本，条件值 {value!r} 不是文本 / {field} is text")
        if allowed is not None and value not in allowed:
            raise ConditionError(f"字段 {field} 的取值应为 {sorted(allowed)} 之一，不是 {value!r} / "
                                 f"{value!r} is not a valid {field}")
    return value


def compile_when(known, when) -> dict:
    """Compile a `when` mapping into a durable-rules expression (raises ConditionError);
    `known` is the group's `group_fields`."""
    if not isinstance(when, dict) or not when:
        raise ConditionError("when 应为非空映射 / when must be a non-empty mapping")
    terms = []
    for key, spec in when.items():
        if key in ("all", "any"):
            if not isinstance(spec, list) or not spec:
                raise ConditionError(f"{key} 应为非空列表 / {key} needs a non-empty list")
            parts = [compile_when(known, s) for s in spec]
            terms.append({"$and" if key == "all" else "$or": parts})
            continue
        if key not in known:
            raise ConditionError(f"未知字段 {key!r}，可用：{', '.join(sorted(known))} / "
                                 f"unknown field {key!r}")
        if not isinstance(spec, dict):
            terms.append({key: _check_value(known, key, spec)})
            continue
        for op, value in spec.items():
            if op not in {"eq", "ne", "lt", "lte", "gt", "gte", "in"}:
                raise ConditionError(f"未知的比较符 {op!r} / unknown operator {op!r}")
            if op == "eq":
                terms.append({key: _check_value(known, key, value)})
            elif op == "in":
                if not isinstance(value, list) or not value:
                    raise ConditionError("in 应为非空列表 / in needs a non-empty list")
                terms.append({"$or": [{key: _check_value(known, key, v)} for v in value]})
            else:
                if known[key][0] not in NUMERIC:
                    raise ConditionError(f"{op} 只能用于数值字段 / {op} needs a numeric field")
                terms.append({_DURABLE_OP[op]: {key: _check_value(known, key, value)}})
    return {"$and": terms}


def atoms(when) -> list:
    """The comparisons of a `when`, flattened: (field, op, value); `in` keeps its list."""
    out = []
    for key, spec in (when or {}).items():
        if key in ("all", "any"):
            for s in spec:
                out += atoms(s)
        elif isinstance(spec, dict):
            out += [(key, op, v) for op, v in spec.items()]
        else:
            out.append((key, "eq", spec))
    return out


def condition_fields(when) -> set:
    """The fields a `when` reads."""
    return {f for f, _, _ in atoms(when)}


def guard(policy, group):
    """A condition every clause of a group must also meet, from the group's settings: for
    rewards, the parks of the trial and whether excluded enterprises may receive (§五.四)."""
    if group != "rewards":
        return None
    s = policy.settings("rewards")
    g = {}
    if not s.get("excluded_may_receive", False):
        g["excluded"] = False
    parks = s.get("parks", "all")
    if parks != "all":
        g["park"] = {"in": list(parks)}
    return g or None


def full_when(policy, clause):
    """A clause's condition with its group's guard."""
    g = guard(policy, clause.group)
    return clause.when if not g else {"all": [clause.when, g]}


def when_mask(when, frame):
    """Where a `when` holds over the rows of `frame`, vectorised (STAGE's rows): a missing
    value meets no comparison."""
    import numpy as np
    n = len(frame)
    out = np.ones(n, dtype=bool)
    for key, spec in (when or {}).items():
        if key in ("all", "any"):
            parts = [when_mask(s, frame) for s in spec]
            out &= np.logical_and.reduce(parts) if key == "all" else np.logical_or.reduce(parts)
            continue
        col = frame[key]
        for op, value in (spec.items() if isinstance(spec, dict) else [("eq", spec)]):
            if isinstance(value, bool):
                v = col.to_numpy(dtype="float64")
                hit = v == (1.0 if value else 0.0)
                out &= hit if op == "eq" else ~np.isnan(v) & ~hit
            elif isinstance(value, (int, float)) or (op == "in" and all(isinstance(x, (int, float)) for x in value)):
                v = col.to_numpy(dtype="float64")
                with np.errstate(invalid="ignore"):
                    out &= {"eq": lambda: v == value, "ne": lambda: ~np.isnan(v) & (v != value),
                            "lt": lambda: v < value, "lte": lambda: v <= value, "gt": lambda: v > value,
                            "gte": lambda: v >= value, "in": lambda: np.isin(v, value)}[op]()
            else:
                v = np.asarray(col.astype(object))
                vals = value if op == "in" else [value]
                hit = np.isin(v, vals)
                out &= hit if op in ("eq", "in") else ~hit
    return out
