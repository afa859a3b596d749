"""Group-specific checks of a policy version: ranges, effects, methods, conditions.

Each check returns Problems naming file, line, clause and what is wrong, so that an officer
can fix a clause file without reading code.
"""
from __future__ import annotations

from numbers import Real

from .clauses import NUM, ConditionError, compile_when, group_fields
from .history import RUN_MODES
from .policy import Problem

INDICATOR_KINDS = ("amount", "signed", "ratio", "count", "bool")
METHODS = {
    "percentile": set(),
    "yes_no": set(),
    "minmax": {"winsorize"},
    "benchmark": {"benchmark", "cap"},
    "thresholds": {"bands"},
    "log_minmax": set(),
}
EFFECT_KEYS = {
    "scope": {"in_scope"},
    "negative_list": {"exclude", "deduct", "per"},
    "decay": {"factor", "per"},
    "bonus": {"add", "per"},
    "rewards": {"kind", "amount", "maximum", "per", "contract_rate", "per_contract_cap",
                "per_enterprise_cap", "kinds"},
}
SETTINGS = {
    "stage": set(),
    "scope": {"missing_flag", "missing_count", "coarsen"},
    "indicators": {"cohort_keys", "nonpositive_scores_zero"},
    "negative_list": {"missing_flag", "missing_count", "coarsen"},
    "decay": {"combine", "history", "coarsen"},
    "bonus": {"missing_flag", "missing_count", "coarsen"},
    "rewards": {"parks", "excluded_may_receive", "strategy", "missing_flag", "missing_count", "coarsen"},
}


def _num(v):
    return isinstance(v, Real) and not isinstance(v, bool)


class _Collector:
    def __init__(self):
        self.problems = []

    def add(self, clause, message, file=None, line=None):
        self.problems.append(Problem(file or clause.file, clause.line if line is None else line,
                                     clause.id, message))

    def range(self, clause, name, value, lo, hi, lo_open=False):
        ok = _num(value) and (value > lo if lo_open else value >= lo) and value <= hi
        if not ok:
            lo_s = f"({lo}" if lo_open else f"[{lo}"
            self.add(clause, f"{name} = {value!r} 超出范围 {lo_s}, {hi}] / {name} out of range")
        return ok


def check_policy(pv) -> list:
    col = _Collector()
    _check_settings(col, pv)
    known = {g: group_fields(pv, g) for g in SETTINGS}
    for c in pv.clauses:
        if c.group == "stage":
            _check_stage(col, pv, c)
        elif c.group == "indicators":
            _check_indicator(col, pv, c)
        else:
            _check_rule(col, pv, c, {x.id for x in pv.clauses if x.group == c.group}, known)
    _check_weights(col, pv)
    return col.problems


def _file_problem(col, file, line, message):
    col.problems.append(Problem(file, line, "", message))


def _check_settings(col, pv):
    for group, allowed in SETTINGS.items():
        s = pv.groups[group].get("settings") or {}
        for k in s:
            if k not in allowed:
                _file_problem(col, f"{group}.yaml", getattr(s, "line", 0), f"未知的设置 {k!r} / unknown setting {k!r}")
    scoring = pv.groups["policy"].get("scoring") or {}
    if sorted(scoring.get("order", [])) != ["bonus", "decay", "deductions"]:
        _file_problem(col, "policy.yaml", getattr(scoring, "line", 0),
                      "scoring.order 应为 deductions、decay、bonus 的一种排列 / order must permute deductions, decay, bonus")
    if not isinstance(scoring.get("decimals"), int) or not 0 <= scoring["decimals"] <= 8:
        _file_problem(col, "policy.yaml", getattr(scoring, "line", 0), "scoring.decimals 应为0—8的整数")
    if not _num(scoring.get("floor_after_deductions", 0)):
        _file_problem(col, "policy.yaml", getattr(scoring, "line", 0), "floor_after_deductions 应为数字")
    meta = pv.groups["policy"]
    runs = (meta.get("history") or {}).get("runs", "extend")
    if runs not in RUN_MODES or set(meta.get("history") or {}) - {"runs"}:
        _file_problem(col, "policy.yaml", getattr(meta, "line", 0),
                      f"history.runs 应为 {' 或 '.join(RUN_MODES)} / history.runs must be one of {', '.join(RUN_MODES)}")
    ref = meta.get("reference_date")
    if ref is not None:
        try:
            import datetime as _dt
            _dt.date(2023, int(ref["month"]), int(ref["day"]))
            assert set(ref) == {"month", "day"}
        except (TypeError, KeyError, ValueError, AssertionError):
            _file_problem(col, "policy.yaml", getattr(meta, "line", 0),
                          "reference_date 应为 {month: 月, day: 日}，且是平年中存在的日期 / reference_date must be a valid {month, day}")
    if not isinstance(meta.get("in_force"), dict) or "from" not in meta["in_force"]:
        _file_problem(col, "policy.yaml", getattr(meta, "line", 0), "缺少 in_force.from / in_force.from missing")
    ind = pv.settings("indicators")
    extra = set(ind.get("cohort_keys", ["year", "stage"])) - {"year", "stage", "park", "industry"}
    if extra or not {"year", "stage"} <= set(ind.get("cohort_keys", ["year", "stage"])):
        _file_problem(col, "indicators.yaml", 0, "cohort_keys 须含 year、stage，只可另加 park、industry")
    dec = pv.settings("decay")
    if dec.get("combine", "multiply") not in ("multiply", "smallest"):
        _file_problem(col, "decay.yaml", 0, "combine 应为 multiply 或 smallest")
    rw = pv.settings("rewards")
    parks = rw.get("parks", "all")
    if parks != "all" and not (isinstance(parks, list) and all(isinstance(p, str) for p in parks)):
        _file_problem(col, "rewards.yaml", 0, "parks 应为园区名称列表或 all")
    if not isinstance(rw.get("excluded_may_receive", False), bool):
        _file_problem(col, "rewards.yaml", 0, "excluded_may_receive 应为 true/false")
    if rw.get("strategy", "pro_rata") not in ("pro_rata", "rank_priority"):
        _file_problem(col, "rewards.yaml", 0, "strategy 应为 pro_rata 或 rank_priority")


def _check_stage(col, pv, c):
    stages = pv.data.stages
    rows = c.body.get("rows")
    if not isinstance(rows, list) or not rows:
        col.add(c, "STAGE 需要 rows 列表 / rows missing")
        return
    known = {f.key: v for f, v in ((pv.data.field(k), v) for k, v in group_fields(pv, "stage").items())
             if f is not None}
    for i, row in enumerate(rows):
        line = getattr(row, "line", c.line)
        if not isinstance(row, dict) or row.get("stage") not in stages:
            col.add(c, f"第{i + 1}行的 stage 应为数据字典（data.yaml stages）中的 {', '.join(stages)} 之一", line=line)
            continue
        for k, v in row.items():
            if k == "stage":
                continue
            if k == "when":
                try:
                    compile_when(known, v)
                except ConditionError as exc:
                    col.add(c, f"第{i + 1}行的条件错误：{exc}", line=line)
            elif k != "registered_within_years":
                col.add(c, f"未知的分类条件 {k!r}（可用 when、registered_within_years）/ unknown stage condition", line=line)
            elif not _num(v) or v < 0:
                col.add(c, f"{k} = {v!r} 应为非负数 / must be a non-negative number", line=line)
    if set(rows[-1]) != {"stage"}:
        col.add(c, "最后一行应只有 stage（兜底），否则有的企业没有阶段 / the last row must be unconditional, "
                   "or some enterprise gets no stage")
    unused = [k for k in stages if k not in {r.get("stage") for r in rows if isinstance(r, dict)}]
    if unused:
        col.add(c, f"数据字典中的阶段 {', '.join(unused)} 没有任何分类行 / stages no row gives")


def _check_indicator(col, pv, c):
    b = c.body
    key = b.get("key")
    field = pv.data.field(key)
    if field is None or field.kind not in INDICATOR_KINDS:
        col.add(c, f"指标字段 {key!r} 不在数据字典（data.yaml fields）中，或不是数值/是否字段 / "
                   "the indicator's field is not a declared number or yes/no field")
        return
    cats = pv.categories()
    if b.get("category") not in cats:
        col.add(c, f"category 应为 indicators.yaml categories 中的 {', '.join(cats)} 之一 / undeclared category")
    col.range(c, "points", b.get("points"), 0, 100, lo_open=True)
    method = b.get("method", "percentile")
    if method not in METHODS:
        col.add(c, f"未知的计分方法 {method!r}，可用：{', '.join(METHODS)}")
        return
    is_bool = field.kind == "bool"
    if is_bool != (method == "yes_no"):
        col.add(c, "是/否指标须用 yes_no，数值指标不可用 yes_no / yes_no is for yes/no indicators only")
    params = b.get("params") or {}
    for k in params:
        if k not in METHODS[method]:
            col.add(c, f"方法 {method} 没有参数 {k!r} / unknown parameter")
    if method == "minmax" and "winsorize" in params:
        col.range(c, "winsorize", params["winsorize"], 0, 0.5)
    if method == "benchmark":
        col.range(c, "benchmark", params.get("benchmark"), 0, float("inf"), lo_open=True)
        col.range(c, "cap", params.get("cap", 1), 0, 1, lo_open=True)
    if method == "thresholds":
        bands = params.get("bands")
        if not isinstance(bands, list) or not bands:
            col.add(c, "thresholds 需要 bands 列表")
        else:
            mins = []
            for band in bands:
                if not isinstance(band, dict) or set(band) != {"min", "share"} or not _num(band["min"]):
                    col.add(c, "每个档位应为 {min: 数值, share: 0—1}")
                    return
                col.range(c, "share", band["share"], 0, 1)
                mins.append(band["min"])
            if mins != sorted(mins) or len(set(mins)) != len(mins):
                col.add(c, "档位的 min 应严格递增 / band minimums must increase")
    derive = b.get("derive")
    if derive is not None:
        if not isinstance(derive, dict) or set(derive) != {"numerator", "denominator", "scale"} \
                or any(getattr(pv.data.field(derive.get(k)), "kind", None) not in INDICATOR_KINDS[:4]
                       for k in ("numerator", "denominator")):
            col.add(c, "derive 应为 {numerator: 指标字段, denominator: 指标字段, scale: 数值}")


def _check_weights(col, pv):
    doc = pv.groups["indicators"]
    weights = doc.get("weights") or {}
    line = getattr(weights, "line", 0)
    cats = pv.categories()
    if not cats:
        _file_problem(col, "indicators.yaml", getattr(doc, "line", 0), "缺少 categories（指标类别）/ categories missing")
    for k, v in cats.items():
        if not isinstance(v, dict) or not str(v.get("title") or "").strip() or set(v) - {"title", "citation", "points"}:
            _file_problem(col, "indicators.yaml", getattr(cats, "line", 0),
                          f"categories.{k} 应为 {{title: 中文名, citation: 依据, points: 满分}} / a category needs a title")
    if not str(weights.get("citation") or "").strip():
        _file_problem(col, "indicators.yaml", line, "weights 缺少 citation / weights need a citation")
    for stage in weights:
        if stage not in ("citation", "note") and stage not in pv.data.stages:
            _file_problem(col, "indicators.yaml", line, f"weights.{stage}：数据字典中没有这个阶段 / undeclared stage")
    for stage in pv.data.stages:
        w = weights.get(stage)
        if not isinstance(w, dict) or set(w) != set(cats):
            _file_problem(col, "indicators.yaml", line,
                          f"weights.{stage} 应给出 {', '.join(cats)} 各类的权重（数据字典中的阶段须各有权重）")
            continue
        for k, v in w.items():
            if not _num(v) or not 0 <= v <= 1:
                _file_problem(col, "indicators.yaml", getattr(w, "line", line),
                              f"weights.{stage}.{k} = {v!r} 超出范围 [0, 1] / weight out of range")
        if all(_num(v) for v in w.values()) and abs(sum(w.values()) - 1) > 1e-9:
            _file_problem(col, "indicators.yaml", getattr(w, "line", line),
                          f"weights.{stage} 之和为 {sum(w.values())}，应为1 / weights must sum to 1")
    # each category's points sum to its declared points (100 when not given), per distinct
    # effective period start
    ind = [c for c in pv.clauses if c.group == "indicators"]
    for start in sorted({c.effective_from for c in ind}):
        live = [c for c in ind if c.in_force(start)]
        keys = [c.body.get("key") for c in live]
        for k in {k for k in keys if keys.count(k) > 1}:
            _file_problem(col, "indicators.yaml", 0, f"指标字段 {k} 在同一时期出现多次 / indicator key repeated")
        for cat, spec in cats.items():
            want = (spec or {}).get("points", 100) if isinstance(spec, dict) else 100
            total = sum(c.body.get("points", 0) for c in live if c.body.get("category") == cat
                        and _num(c.body.get("points")))
            if abs(total - want) > 1e-9:
                _file_problem(col, "indicators.yaml", 0,
                              f"{cat} 类指标分值合计 {total:g}（自 {start} 起），应为 {want:g} / "
                              "category points must sum to the category's points")


def _check_rule(col, pv, c, group_ids, known_by_group):
    group = c.group
    known = known_by_group[group]
    if "when" not in c.body:
        col.add(c, "缺少 when（条件）/ missing when")
    else:
        try:
            compile_when(known, c.when)
        except ConditionError as exc:
            col.add(c, f"条件错误：{exc}")
    eff = c.body.get("effect")
    if not isinstance(eff, dict) or not eff:
        col.add(c, "缺少 effect（效果）/ missing effect")
        return
    for k in eff:
        if k not in EFFECT_KEYS[group]:
            col.add(c, f"未知的效果 {k!r}，可用：{', '.join(sorted(EFFECT_KEYS[group]))} / unknown effect")
    per = eff.get("per")
    if per is not None and (per not in known or known[per][0] != NUM):
        col.add(c, f"per 应为本组的计数字段，不是 {per!r}（效果只能读取引擎模式键中按确切取值区分的字段）/ "
                   "per must name a count field of the group: an effect may only read a field that is exact "
                   "in the engine's pattern key")
    names = set(known) | {f.key for f in pv.data.record_fields}
    for k, v in eff.items():
        if k != "per" and isinstance(v, str) and v in names:
            col.add(c, f"效果 {k} 读取字段 {v!r}，但只有 per 读取的字段进入引擎的模式键 / effect {k} reads field "
                       f"{v!r}, which is not part of the engine's pattern key")
    if group == "scope" and eff != {"in_scope": True}:
        col.add(c, "评价对象条款的效果应为 {in_scope: true} / a scope clause's effect is {in_scope: true}")
    for sid in c.body.get("supersedes") or []:
        if sid not in group_ids:
            col.add(c, f"supersedes 引用了不存在的条款 {sid!r}")
    if group == "negative_list":
        if "exclude" in eff and eff["exclude"] is not True:
            col.add(c, "exclude 只能为 true")
        if ("exclude" in eff) == ("deduct" in eff):
            col.add(c, "负面清单条款应有 exclude 或 deduct 之一 / exactly one of exclude, deduct")
        if "deduct" in eff:
            col.range(c, "deduct", eff["deduct"], 0, 100, lo_open=True)
    elif group == "decay":
        col.range(c, "factor", eff.get("factor"), 0, 1, lo_open=True)
    elif group == "bonus":
        col.range(c, "add", eff.get("add"), 0, 100, lo_open=True)
    elif group == "rewards":
        _check_reward_effect(col, pv, c, eff)


def _check_reward_effect(col, pv, c, eff):
    if eff.get("kind") not in ("fixed", "floating"):
        col.add(c, "kind 应为 fixed（固定）或 floating（浮动）")
    if "contract_rate" in eff:
        col.range(c, "contract_rate", eff["contract_rate"], 0, 1, lo_open=True)
        for k in ("per_contract_cap", "per_enterprise_cap"):
            if k in eff and (not isinstance(eff[k], int) or isinstance(eff[k], bool) or eff[k] < 0):
                col.add(c, f"{k} 应为非负整数（元）/ must be whole yuan")
        if "amount" in eff:
            col.add(c, "合同比例奖励不能同时给出 amount")
        kinds = eff.get("kinds")
        if kinds is not None and (not isinstance(kinds, list) or not kinds
                                  or any(k not in pv.data.contract_kinds for k in kinds)):
            col.add(c, f"kinds 应为合同类别列表，取值为数据字典中的 {', '.join(pv.data.contract_kinds)} / "
                       "kinds must list declared contract kinds")
        return
    amount = eff.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        col.add(c, f"amount = {amount!r} 应为非负整数（元）/ amount must be whole yuan")
        return
    maximum = eff.get("maximum", amount)
    if not isinstance(maximum, int) or isinstance(maximum, bool) or maximum < amount:
        col.add(c, f"amount {amount} 超过最高额 maximum {maximum} / amount above its maximum")
