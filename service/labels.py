"""How the pages say things to a Chinese official: the allocation strategy and statuses in
words, counts and money with thousands separators, times in Beijing time, and a run named
by its batch, year and the plan's title and 文号 (never the policy's folder name)."""
from __future__ import annotations

import datetime as dt
import json

def _wording():
    """The Chinese words (labels, units, stages, choices) of the policy package in force."""
    from rules.explain import wording

    from . import shape
    return wording(shape.data())


def _stages() -> dict:
    from . import shape
    return shape.stages()


BEIJING = dt.timezone(dt.timedelta(hours=8), "北京时间")

STRATEGY_ZH = {"pro_rata": "按比例分配", "rank_priority": "按积分排名先后分配"}
RUN_STATUS_ZH = {"queued": "排队中", "running": "计算中", "done": "完成", "failed": "失败"}
AUDIT_ACTION_ZH = {
    "login": "登录", "logout": "退出", "token.issue": "签发 API 令牌", "user.add": "新增用户",
    "user.disable": "停用用户", "user.enable": "启用用户", "user.revoke": "撤销令牌与会话",
    "user.password": "重置密码", "user.role": "变更角色", "import.records": "导入企业年度记录",
    "import.contracts": "导入技术合同", "import.rejected": "拒绝导入（文件有错）", "record.correct": "更正数据",
    "declaration.submit": "提交自主申报", "declaration.approved": "申报通过", "declaration.rejected": "申报驳回",
    "declaration.evidence": "上传证明材料", "run.create": "发起计算", "run.done": "计算完成", "run.failed": "计算失败",
    "run.publish": "发布批次", "honours.publish": "发布榜单", "seed_pool.generate": "生成种子企业后备库",
    "credit.consent": "变更银行查询授权", "policy.draft": "新建政策草稿", "policy.edit": "修改政策草稿",
    "policy.publish": "发布政策版本",
}


def strategy_zh(strategy) -> str:
    """The allocation strategy of a budget that falls short, in words (the default is pro rata)."""
    return STRATEGY_ZH.get(strategy or "pro_rata", "按比例分配")


def count(v) -> str:
    """A count as an integer with thousands separators (1,234); '—' when unknown."""
    if v is None or v == "":
        return "—"
    try:
        return f"{int(round(float(v))):,}"
    except (TypeError, ValueError):
        return str(v)


def beijing(t, seconds=False) -> str:
    """A stored time (naive UTC, or aware) in Beijing time, to the minute (or second)."""
    if t is None or t == "":
        return ""
    if isinstance(t, str):
        try:
            t = dt.datetime.fromisoformat(t)
        except ValueError:
            return t
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def budget_of(run) -> dict:
    """The budget outcome the run's manifest records: budget, strategy, fixed and floating
    totals and shortfalls (yuan); empty values when the manifest does not have them."""
    try:
        b = json.loads(run.manifest or "{}").get("budget") or {}
    except ValueError:
        b = {}
    return {"budget": run.budget, "strategy": run.strategy or b.get("strategy") or "pro_rata",
            "fixed_total": b.get("fixed_total"), "floating_total": b.get("floating_total"),
            "fixed_shortfall": b.get("fixed_shortfall") or 0, "floating_shortfall": b.get("floating_shortfall") or 0}


def budget_sentence(b) -> str:
    """The budget, the shortfall and the strategy as one Chinese sentence."""
    if b["budget"] is None:
        return "本批次未设奖励预算上限，核定金额全额拨付。"
    text = f"年度奖励预算 {b['budget']:,} 元"
    if b["fixed_shortfall"]:
        text += (f"；固定奖励合计已超出预算，缺口 {b['fixed_shortfall']:,} 元：固定奖励按比例分配预算，"
                 f"浮动奖励本批次不予拨付")
    elif b["floating_shortfall"]:
        text += (f"；固定奖励全额拨付，浮动奖励预算不足，缺口 {b['floating_shortfall']:,} 元，"
                 f"浮动奖励{strategy_zh(b['strategy'])}")
    else:
        text += "，核定金额在预算之内，全额拨付"
    return text + "。"


def policy_label(run_or_id) -> str:
    """The plan a run was evaluated under, as a reader knows it: 《title》（文号）, from the
    run's trace header (never the policy folder's name)."""
    from . import db, query
    from .models import Run
    s = db.session()
    run = run_or_id if isinstance(run_or_id, Run) else s.get(Run, run_or_id)
    if run is None:
        return "—"
    h = query.trace_header(s, run)
    if h.get("title"):
        return f"《{h['title']}》（{h.get('document', '')}）"
    return h.get("document") or "—"


def version_label(version) -> str:
    """A stored policy version as 《title》（文号）, from its own policy.yaml."""
    from . import policies
    try:
        title = policies.load_files(policies.files_of(version)).title
    except Exception:                  # a version that no longer loads still has its 文号
        title = ""
    return f"《{title}》（{version.document}）" if title else (version.document or f"第 {version.id} 版")


CHANGE_ZH = {"stage": "阶段", "excluded": "是否排除", "score": "积分", "rank": "排名", "awards": "奖励"}


def changes(kinds) -> str:
    """What changed between two runs for an enterprise, in words (阶段、积分、排名)."""
    return "、".join(CHANGE_ZH.get(k, k) for k in kinds or [])


def yesno(v) -> str:
    return "—" if v is None else ("是" if v else "否")


def when_words(when) -> str:
    """A clause's condition in words: each comparison with the field's Chinese label,
    "且" between the terms of all, "或" between those of any."""
    term_text = _wording().term_text
    if not when:
        return ""
    parts = []
    for key, spec in when.items():
        if key in ("all", "any"):
            inner = [when_words(x) for x in spec]
            joined = ("；或 " if key == "any" else "；且 ").join(inner)
            parts.append(f"（{joined}）" if len(inner) > 1 else joined)
        elif isinstance(spec, dict):
            parts += [term_text(key, op, v) for op, v in spec.items()]
        else:
            parts.append(term_text(key, "eq", spec))
    return "；".join(parts)


def effect_words(effect) -> str:
    """A clause's effect in words (奖励类型：固定奖励；奖励金额（元）：10,000)."""
    from .authoring import EFFECT_ZH, VALUE_ZH
    w = _wording()
    label, value_text = w.label, w.value_text
    if not effect:
        return ""
    out = []
    for k, v in effect.items():
        if isinstance(v, bool):
            words = "是" if v else "否"
        elif isinstance(v, str):
            words = VALUE_ZH.get(v) or label(v)
        elif isinstance(v, (int, float)):
            words = f"{v:,}" if isinstance(v, int) else f"{v:g}"
        else:
            words = value_text(k, v) if not isinstance(v, (list, dict)) else "见条款文件"
        out.append(f"{EFFECT_ZH.get(k, '其他设定')}：{words}")
    return "；".join(out)


def measure(value, key, unit=True) -> str:
    """An indicator's or record's value as its unit suggests: counts as integers, money (万元)
    with two decimals, percentages with one, all with thousands separators and the unit;
    是/否 for yes/no. `key` is the data field the value is of."""
    from . import shape
    field = shape.data().field(key)
    if value is None or value == "":
        return "—"
    if field is None:
        return str(value)
    if field.kind == "bool" or isinstance(value, bool):
        return "是" if value in (True, 1, "true", "1") else "否"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if field.kind in ("count", "year"):
        text = f"{round(v):,}" if field.kind == "count" else str(round(v))
    elif field.kind in ("ratio", "signed"):
        text = f"{v:,.1f}"
    else:
        text = f"{v:,.2f}"
    return f"{text} {field.unit}" if field.unit and unit else text


def indicator_fields(s=None, run=None) -> dict:
    """Each indicator clause's data field (IND-… → the field it reads), from the policy."""
    from . import shape
    return {c.id: (c.body or {}).get("key") for c in shape.policy(s).clauses if c.group == "indicators"}


DETAIL_ZH = {"role": "角色", "before": "原角色", "after": "新角色", "credit_code": "统一社会信用代码",
             "tokens_revoked": "撤销令牌数", "import_id": "导入编号", "sha256": "校验和", "rows": "行数", "added": "新增",
             "replaced": "替换", "bad_cells": "错误单元格", "run": "批次", "run_id": "批次", "year": "年度",
             "budget": "预算（元）", "strategy": "分配方式", "scope": "榜单范围", "top_n": "前 N 名", "list": "榜单编号",
             "entries": "条目数", "consent": "同意查询", "declaration": "申报编号", "field": "字段", "value": "申报值",
             "previous": "原值", "reason": "理由", "clause": "条款", "draft": "草稿", "version": "版本", "label": "令牌名称",
             "status": "状态", "error": "错误", "granted_yuan": "拨付合计（元）", "enterprises": "企业数",
             "evidence": "证明材料", "filename": "文件名", "size": "大小（字节）", "policy": "政策版本", "name": "名称",
             "kind": "类型", "note": "说明", "rule": "规则", "base": "基础版本", "base_sha256": "基础版本摘要",
             "policy_sha256": "政策版本摘要", "data_sha256": "数据校验和", "data": "数据", "seconds": "用时（秒）"}


def audit_detail(detail_json) -> str:
    """An audit entry's details in words: known keys in Chinese, roles, strategies, fields
    and yes/no as a reader says them; long structured values (diffs) summarised."""
    from .models import ROLES
    label = _wording().label
    try:
        d = json.loads(detail_json or "{}")
    except ValueError:
        return ""
    out = []
    for k, v in d.items():
        if isinstance(v, (dict, list)):
            words = f"{len(v)} 项修改" if k in ("changes", "diff") else f"{len(v)} 项"
        elif isinstance(v, bool):
            words = "是" if v else "否"
        elif v is None:
            words = "—"
        elif k in ("role", "before", "after"):
            words = ROLES.get(v, v)
        elif k == "strategy":
            words = strategy_zh(v)
        elif k == "field":
            words = label(v)
        elif k == "scope":
            words = _stages().get(v, "总榜" if v == "overall" else v)
        elif k.endswith("sha256"):
            words = str(v)[:12]
        elif k == "policy":
            words = _version_words(v)
        elif isinstance(v, int):
            words = f"{v:,}" if k not in ("year", "run", "run_id", "import_id", "declaration", "list") else str(v)
        else:
            words = str(v)[:120]
        out.append(f"{DETAIL_ZH.get(k, '其他')}：{words}")
    return "；".join(out)


def _version_words(name) -> str:
    from . import db
    from .models import PolicyVersion
    from sqlalchemy import select
    row = db.session().scalar(select(PolicyVersion).where(PolicyVersion.name == name).order_by(PolicyVersion.id.desc()))
    return version_label(row) if row is not None else "—"


def target_words(target) -> str:
    """An audit entry's object as a reader names it (第 3 批次, 2022年度, 草稿 1)."""
    kind, _, rest = (target or "").partition(":")
    if rest and kind == "run":
        return f"第 {rest} 批次"
    if rest and kind == "draft":
        return f"政策草稿 {rest}"
    if rest and kind == "year":
        return f"{rest}年度"
    if rest and kind == "version":
        return f"政策第 {rest} 版"
    return target or ""


def item_name(title: str) -> str:
    """A reward item's short name for a chart axis: its clause title up to the first comma
    (认定（含重新认定）的高新技术企业), the amount that follows being in the table beside it."""
    return (title or "").split("，")[0]


def _value_zh(text: str) -> str:
    t = text.strip()
    return {"True": "是", "False": "否", "true": "是", "false": "否", "None": "空"}.get(t) or _stages().get(t, t)


CASE_KEY_ZH = {"final_score": "最终积分", "rank_in_stage": "同阶段排名", "rank_overall": "全区排名", "decay_factor": "衰减系数",
               "deductions": "扣分", "bonus": "加分", "weighted": "加权积分", "eligible": "核定金额", "granted": "拨付金额",
               "in_scope": "属于评价对象", "stage_percentile": "同阶段百分位"}


def case_problem(text: str) -> str:
    """One failure of a clause case (rules/cases.py words them for developers) as a policy
    officer reads it: 企业：发展阶段为成长期，应为初创期."""
    import re as _re
    field_label = _wording().label
    head, sep, rest = text.partition(": ")
    if not sep:
        return text
    pats = [
        (r"no result for year (\d+)", lambda m: f"{m[1]} 年度没有评价结果"),
        (r"stage (\S+) != expected (.+)", lambda m: f"发展阶段为{_value_zh(m[1])}，应为{_value_zh(m[2])}"),
        (r"excluded (\S+) != expected (.+)", lambda m: f"是否排除为{_value_zh(m[1])}，应为{_value_zh(m[2])}"),
        (r"exclusion_clauses (.+) != expected (.+)", lambda m: f"排除依据为 {m[1]}，应为 {m[2]}"),
        (r"(\S+) did not fire", lambda m: f"{m[1]} 未触发（应触发）"),
        (r"(\S+) fired", lambda m: f"{m[1]} 触发了（不应触发）"),
        (r"(\S+) points (\S+) != expected (.+)", lambda m: f"{m[1]} 得分 {m[2]}，应为 {m[3]}"),
        (r"no (\S+) award line", lambda m: f"没有 {m[1]} 的奖励"),
        (r"(\S+) basis (.+) != expected (.+)", lambda m: f"{m[1]} 的计奖合同为 {m[2]}，应为 {m[3]}"),
        (r"unexpected (\S+) award line \((.+)\)", lambda m: f"不应有 {m[1]} 的奖励（核定 {m[2]} 元）"),
        (r"unknown expectation (.+)", lambda m: f"用例中的期望项 {m[1]} 无法识别"),
        (r"(\S+) (eligible|granted) (\S+) != expected (.+)",
         lambda m: f"{m[1]} {CASE_KEY_ZH[m[2]]}为 {m[3]} 元，应为 {m[4]} 元"),
        (r"(\S+) (\S+) != expected empty", lambda m: f"{CASE_KEY_ZH.get(m[1], field_label(m[1]))}为 {_value_zh(m[2])}，应为空"),
        (r"(\S+) (\S+) != expected (.+)",
         lambda m: f"{CASE_KEY_ZH.get(m[1], field_label(m[1]))}为 {_value_zh(m[2])}，应为 {_value_zh(m[3])}"),
    ]
    for pat, words in pats:
        m = _re.fullmatch(pat, rest)
        if m:
            return f"{head}：{words(m)}"
    return text
