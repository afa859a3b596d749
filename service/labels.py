"""How the pages say things to a Chinese official: the allocation strategy and statuses in
words, counts and money with thousands separators, times in Beijing time, and a run named
by its batch, year and the plan's title and 文号 (never the policy's folder name)."""
from __future__ import annotations

import datetime as dt
import json

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
