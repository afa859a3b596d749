"""The condition language of clause files and its compilation to durable-rules expressions.

A `when` is a mapping read as "all of these hold":

    when: {env_credit_rating: warning}                    # equality
    when: {completed_years: {gte: 9, lt: 14}}             # comparisons: eq ne lt lte gt gte in
    when: {any: [{level_drop: {gte: 2}}, {level_drop: 1, prev_level_drop: {gte: 1}}]}
    when: {all: [...]}                                    # explicit conjunction

Each group declares the fields its conditions may read (`GROUP_FIELDS`); a condition naming
another field, or comparing a field with a value of the wrong type, is a clause-file error.
"""
from __future__ import annotations

from .fields import RATINGS, STAGES

BOOL, NUM, TEXT = "yes/no", "number", "text"
# a number with a wide range (money, ratios, SCOPE's counts): the engine sees it coarsened to
# the intervals between the constants its conditions name (engine.coarsen), so that
# enterprises whose values no condition tells apart share one pattern
AMOUNT = "amount"
NUMERIC = (NUM, AMOUNT)

_COMMON = {"stage": (TEXT, set(STAGES)), "park": (TEXT, None), "industry": (TEXT, None)}

GROUP_FIELDS = {
    "scope": {
        **_COMMON,
        "is_hte_or_tech_sme": (BOOL, None),
        "is_champion_or_specialized": (BOOL, None),
        "rd_expense": (AMOUNT, None),
        "rd_intensity": (AMOUNT, None),
        "invention_applications": (AMOUNT, None),
        "pct_applications": (AMOUNT, None),
        "invention_grants": (AMOUNT, None),
    },
    "negative_list": {
        **_COMMON,
        "credit_blacklisted": (BOOL, None),
        "env_credit_rating": (TEXT, set(RATINGS)),
        "major_safety_incident": (BOOL, None),
        "hte_requalification_failed": (BOOL, None),
        "tech_sme_reevaluation_failed": (BOOL, None),
        "tech_sme_out_of_scope": (BOOL, None),
        "delisted_platforms_national": (NUM, None),
        "delisted_platforms_provincial": (NUM, None),
        "delisted_platforms_municipal": (NUM, None),
    },
    "decay": {
        **_COMMON,
        "completed_years": (NUM, None),
        "expansion_years": (NUM, None),
        "level_drop": (NUM, None),
        "prev_level_drop": (NUM, None),
    },
    "bonus": {
        **_COMMON,
        "major_projects_national": (NUM, None),
        "major_projects_provincial": (NUM, None),
        "major_projects_municipal": (NUM, None),
    },
    "rewards": {
        **_COMMON,
        "excluded": (BOOL, None),
        "in_scope": (BOOL, None),
        "evaluation_year": (NUM, None),
        "hte_recognized_in_year": (BOOL, None),
        "tech_sme_listed": (BOOL, None),
        "tech_sme_streak": (NUM, None),
        "overseas_rd_institutions_new": (NUM, None),
        "new_provincial_institutions": (NUM, None),
        "contracts_in_year": (NUM, None),
    },
}

_DURABLE_OP = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


class ConditionError(ValueError):
    pass


def _check_value(group, field, value):
    kind, allowed = GROUP_FIELDS[group][field]
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


def compile_when(group, when) -> dict:
    """Compile a `when` mapping into a durable-rules expression (raises ConditionError)."""
    if not isinstance(when, dict) or not when:
        raise ConditionError("when 应为非空映射 / when must be a non-empty mapping")
    terms = []
    for key, spec in when.items():
        if key in ("all", "any"):
            if not isinstance(spec, list) or not spec:
                raise ConditionError(f"{key} 应为非空列表 / {key} needs a non-empty list")
            parts = [compile_when(group, s) for s in spec]
            terms.append({"$and" if key == "all" else "$or": parts})
            continue
        if key not in GROUP_FIELDS[group]:
            raise ConditionError(f"未知字段 {key!r}，可用：{', '.join(sorted(GROUP_FIELDS[group]))} / "
                                 f"unknown field {key!r}")
        if not isinstance(spec, dict):
            terms.append({key: _check_value(group, key, spec)})
            continue
        for op, value in spec.items():
            if op not in {"eq", "ne", "lt", "lte", "gt", "gte", "in"}:
                raise ConditionError(f"未知的比较符 {op!r} / unknown operator {op!r}")
            if op == "eq":
                terms.append({key: _check_value(group, key, value)})
            elif op == "in":
                if not isinstance(value, list) or not value:
                    raise ConditionError("in 应为非空列表 / in needs a non-empty list")
                terms.append({"$or": [{key: _check_value(group, key, v)} for v in value]})
            else:
                if GROUP_FIELDS[group][key][0] not in NUMERIC:
                    raise ConditionError(f"{op} 只能用于数值字段 / {op} needs a numeric field")
                terms.append({_DURABLE_OP[op]: {key: _check_value(group, key, value)}})
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
