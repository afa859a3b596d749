"""Chinese wording of the trace: field labels, values, conditions and effects.

The engine decides; this module only words what it decided so that a policy officer and an
enterprise can read it. Every sentence is built from the clause files (titles, citations,
conditions, amounts) and the enterprise's inputs, so it holds no policy number of its own.
`explain_line` turns one enterprise's trace (a trace.jsonl line, or an object of
`rules.tracefile.read_trace`) into a list of entries, each naming its clause id, title and
citation; the service's pages and `innopoints explain` show that list.
"""
from __future__ import annotations

from .clauses import atoms

# facts the evaluation derives from the records (SPEC §2.1, §2.4, §2.7): engine concepts,
# not policy fields; the package's fields and history runs bring their own labels
DERIVED_LABELS = {
    "stage": "发展阶段", "completed_years": "截至基准日注册满周年数", "level_drop": "较上年降档数",
    "prev_level_drop": "上年较前年降档数", "excluded": "当年被排除", "in_scope": "属于评价对象",
    "evaluation_year": "评价年度", "contracts_in_year": "当年登记的技术合同数",
}
DERIVED_UNITS = {"completed_years": "年", "level_drop": "档", "prev_level_drop": "档", "contracts_in_year": "项"}
SYMBOLS = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}


class Wording:
    """The Chinese words of one package: its fields' labels and units, its stages, choice
    values and contract kinds (data.yaml), and the derived facts."""

    def __init__(self, data):
        self.labels = {f.key: f.label for f in data.record_fields}
        self.units = {f.key: f.unit for f in data.record_fields}
        self.kinds = {f.key: f.kind for f in data.record_fields}
        for r in data.runs:
            self.labels[r.key], self.units[r.key], self.kinds[r.key] = r.label, r.unit, "count"
        self.labels.update(DERIVED_LABELS)
        self.units.update(DERIVED_UNITS)
        self.words = {**data.contract_kinds, **data.choice_names(), **data.stages}

    def label(self, key) -> str:
        return self.labels.get(key, key)

    def value_text(self, key, v) -> str:
        """A value as a person reads it: 是/否, stages and choices in Chinese, numbers with units."""
        if v is None:
            return "未填报"
        if isinstance(v, bool):
            return "是" if v else "否"
        if isinstance(v, str):
            return self.words.get(v) or v
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        text = f"{v:,}" if isinstance(v, int) and key != "evaluation_year" and self.kinds.get(key) != "year" else str(v)
        unit = self.units.get(key, "")
        return f"{text} {unit}" if unit else text

    def term_text(self, field, op, value) -> str:
        if op == "in":
            return f"{self.label(field)}为{'、'.join(self.value_text(field, v) for v in value)}之一"
        if isinstance(value, bool) and op == "eq":
            return f"{self.label(field)}：{self.value_text(field, value)}"
        return f"{self.label(field)} {SYMBOLS[op]} {self.value_text(field, value)}"

    def describe(self, when) -> str:
        """A condition in words: 条件：当年登记技术合同数 ≥ 1."""
        parts = []
        for key, spec in (when or {}).items():
            if key in ("all", "any"):
                joiner = "，且" if key == "all" else "，或"
                inner = joiner.join(self.describe(s) for s in spec)
                parts.append(f"（{inner}）" if len(spec) > 1 else inner)
            elif isinstance(spec, dict):
                parts += [self.term_text(key, op, v) for op, v in spec.items()]
            else:
                parts.append(self.term_text(key, "eq", spec))
        return "，且".join(parts)

    def condition_report(self, when, fact) -> tuple[list, list]:
        """The comparisons of a condition that hold for a fact, and those that do not."""
        met, unmet = [], []
        for f, op, v in atoms(when):
            (met if term_holds(f, op, v, fact) else unmet).append(self.term_text(f, op, v))
        return met, unmet

    def inputs_text(self, inputs: dict, not_reported=()) -> str:
        """依据 …：研发费用金额：> 0；是否是高新技术企业：未填报（按否处理）."""
        parts = []
        for k, v in inputs.items():
            shown = f"未填报（按{self.value_text(k, v)}处理）" if k in not_reported else self.value_text(k, v)
            parts.append(f"{self.label(k)}：{shown}")
        return "；".join(parts)


_WORDINGS = {}


def wording(data) -> Wording:
    """The wording of a package's dictionary (kept per dictionary)."""
    w = _WORDINGS.get(id(data))
    if w is None or w[0] is not data:
        w = _WORDINGS[id(data)] = (data, Wording(data))
    return w[1]


def term_holds(field, op, value, fact) -> bool:
    v = fact.get(field)
    if v is None:
        return False
    if op == "in":
        return v in value
    return {"eq": v == value, "ne": v != value, "lt": v < value, "lte": v <= value,
            "gt": v > value, "gte": v >= value}[op]


def effect_text(effect: dict) -> str:
    parts = []
    if effect.get("exclude"):
        parts.append("不纳入当年度积分管理（排除）")
    if "deduct" in effect:
        parts.append(f"扣 {_num(effect['deduct'])} 分")
    if "factor" in effect:
        parts.append(f"最终得分乘以 {_num(effect['factor'])}")
    if "add" in effect:
        parts.append(f"加 {_num(effect['add'])} 分")
    if "amount" in effect:
        kind = "浮动奖励，" if effect.get("kind") == "floating" else ""
        parts.append(f"{kind}核定 {effect['amount']:,} 元")
    if "rate" in effect:
        parts.append(f"按每项合同成交额的 {_pct(effect['rate'])} 计奖")
    return "，".join(parts)


def _num(x):
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def _pct(rate):
    return f"{float(rate) * 100:g}%"


def entry(clause, text, **extra) -> dict:
    """One trace entry: clause id, title, citation and the sentence."""
    return {"clause": clause.id, "title": clause.title, "citation": clause.citation, "text": text, **extra}


def explain_line(line: dict, header: dict | None = None) -> list[dict]:
    """The entries of one enterprise's trace line, in the order of the evaluation. Each has
    clause, title, citation and text (Chinese); `header` (the trace's first line) fills in a
    title or citation an entry lacks."""
    clauses = (header or {}).get("clauses", {})
    out = []

    def add(e):
        if not isinstance(e, dict) or "text" not in e:
            return
        c = clauses.get(e.get("clause"), {})
        out.append({"clause": e.get("clause", ""), "title": e.get("title") or c.get("title", ""),
                    "citation": e.get("citation") or c.get("citation", ""), "text": e["text"]})

    add(line.get("stage"))
    for e in line.get("scope") or []:
        add(e)
    for h in (line.get("history") or {}).get("entries", []):
        add(h)
    for group in ("negative_list", "decay", "bonus"):
        for e in line.get(group) or []:
            add(e)
    add((line.get("scores") or {}).get("explain"))
    for r in line.get("rewards") or []:
        add(r)
    for r in line.get("rewards_not_paid") or []:
        add(r)
    return out
