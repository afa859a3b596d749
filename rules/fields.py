"""The data model: the identity columns every policy shares, and the data dictionary a policy
package declares in its `data.yaml` (SPEC §3): every input field with its Chinese label, kind
and unit, the stages and their order, the contract kinds and the history runs.

Nothing here names a policy field, stage or kind: those are the package's. The kinds decide
how a cell is validated and normalised (`rules.records`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

# kinds of a package's record fields; `choice` takes its values from the field's `values`,
# `stage` from the package's stages
FIELD_KINDS = ("amount", "signed", "ratio", "count", "year", "bool", "choice", "stage", "text", "date")
NUMBER_KINDS = ("amount", "signed", "ratio", "count", "year")
FIELD_KEYS = {"key", "label", "kind", "unit", "required", "help", "aliases", "values", "source", "note"}
RUN_VALUES = ("length", "years_since_start")
# kinds of a data source (§四.(一)): a department's extracts, the enterprise's own declarations,
# published lists gathered by officers
SOURCE_KINDS = ("department", "declared", "public")


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    kind: str          # code text date year count amount signed ratio bool stage choice money contract_kind
    unit: str = ""
    required: bool = False
    help: str = ""             # what to fill in, for the template's help sheet and the declaration form
    aliases: tuple = ()        # earlier Chinese headers still accepted on import
    values: tuple = ()         # a choice field's (key, Chinese) pairs
    source: str = ""           # the key of the source that gathers it (data.yaml `sources`)

    @property
    def value_names(self) -> dict:
        return dict(self.values)


def _f(key, label, kind, unit="", required=False, help="", aliases=()):
    return Field(key, label, kind, unit, required, help, tuple(aliases))


# the data model's identity: who, where and when; every policy package shares them
IDENTITY = [
    _f("credit_code", "统一社会信用代码", "code", required=True),
    _f("name", "企业名称", "text"),
    _f("park", "所属园区", "text"),
    _f("industry", "所属行业", "text"),
    _f("registered_on", "注册成立日期", "date", required=True),
    _f("year", "评价年度", "year", required=True),
]
IDENTITY_KEYS = tuple(f.key for f in IDENTITY)

# a technical contract (§五.(四) contract rewards): the registration's own columns; the
# kinds are the package's
CONTRACT_FIELDS = [
    _f("contract_no", "合同登记编号", "text", required=True),
    _f("credit_code", "统一社会信用代码", "code", required=True),
    _f("kind", "合同类别", "contract_kind", required=True),
    _f("amount", "合同成交额", "money", "万元", required=True),
    _f("registered_on", "登记日期", "date", required=True),
]

TRUE_WORDS = {"true", "1", "yes", "是", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "否", "n", "f"}


@dataclass(frozen=True)
class Run:
    """A history run (SPEC §2.4): consecutive years whose records meet `member` (a stage key
    or a yes/no field), counted back from the evaluation year."""
    key: str
    label: str
    unit: str
    member: tuple            # ("stage", stage key) or (field key, True)
    extend_field: str        # the year-Y field that extends the run where records end
    value: str               # length | years_since_start
    citation: str = ""


@dataclass(frozen=True)
class Source:
    """Who gathers a field (§四.(一)): a department, the enterprise itself, or a published list."""
    key: str
    name: str
    kind: str               # department | declared | public


@dataclass
class Dictionary:
    """A package's data dictionary (data.yaml)."""
    fields: list
    stages: dict                                   # key -> Chinese name, lowest level first
    contract_kinds: dict                           # key -> Chinese name
    previous_stages: tuple = ()                    # fields giving the Y−1, Y−2 stages
    runs: list = field(default_factory=list)
    sources: dict = field(default_factory=dict)    # key -> Source, in the package's precedence order

    def source(self, key):
        return self.sources.get(key)

    def source_name(self, key) -> str:
        src = self.sources.get(key)
        return src.name if src else (key or "")

    def source_of_kind(self, kind):
        """The (first) source of a kind: where an enterprise's declarations or a published
        list come from."""
        return next((s for s in self.sources.values() if s.kind == kind), None)

    def precedence(self, key) -> int:
        """Rank of a source when two give one field different values: lower wins; a source
        the package does not declare ranks last."""
        order = list(self.sources)
        return order.index(key) if key in order else len(order)

    def fields_of(self, source) -> list:
        """The fields a source owns."""
        return [f for f in self.fields if f.source == source]

    @property
    def record_fields(self) -> list:
        return IDENTITY + list(self.fields)

    @property
    def by_key(self) -> dict:
        return {f.key: f for f in self.record_fields}

    def field(self, key):
        return self.by_key.get(key)

    @property
    def stage_level(self) -> dict:
        return {k: i + 1 for i, k in enumerate(self.stages)}

    @property
    def level_stage(self) -> dict:
        return {i + 1: k for i, k in enumerate(self.stages)}

    def stage_name(self, key) -> str:
        return self.stages.get(key, key)

    def run(self, key):
        return next((r for r in self.runs if r.key == key), None)

    def choice_names(self) -> dict:
        """Every choice value's Chinese name, across the package's choice fields."""
        out = {}
        for f in self.fields:
            out.update(f.value_names)
        return out


def dictionary(doc, problems=None) -> Dictionary:
    """Build a package's dictionary from its parsed data.yaml, adding every problem found to
    `problems` (a list of (line, message)); a usable dictionary is returned either way."""
    problems = problems if problems is not None else []

    def bad(node, msg):
        problems.append((getattr(node, "line", 0), msg))

    def pairs(items, what):
        out = {}
        for it in items or []:
            if not isinstance(it, dict) or not it.get("key") or not it.get("name") or set(it) - {"key", "name", "note"}:
                bad(it, f"{what} 的每一项应为 {{key: 键, name: 中文名}} / each {what} needs key and name")
                continue
            if it["key"] in out:
                bad(it, f"{what} 的键 {it['key']!r} 重复 / duplicate key")
            out[str(it["key"])] = str(it["name"])
        return out

    stages = pairs(doc.get("stages"), "stages")
    if not stages:
        bad(doc, "data.yaml 缺少 stages（发展阶段）/ stages missing")
    kinds = pairs(doc.get("contract_kinds"), "contract_kinds")
    fields = []
    seen = set(IDENTITY_KEYS)
    for raw in doc.get("fields") or []:
        if not isinstance(raw, dict) or not raw.get("key") or not raw.get("label"):
            bad(raw, "字段应有 key 和 label / a field needs key and label")
            continue
        key = str(raw["key"])
        for k in set(raw) - FIELD_KEYS:
            bad(raw, f"字段 {key} 有未知的键 {k!r} / unknown key")
        if key in seen:
            bad(raw, f"字段 {key} 重复或与身份列同名 / duplicate field")
        seen.add(key)
        kind = raw.get("kind")
        if kind not in FIELD_KINDS:
            bad(raw, f"字段 {key} 的 kind {kind!r} 应为 {', '.join(FIELD_KINDS)} 之一 / unknown kind")
            continue
        values = raw.get("values") or {}
        if (kind == "choice") != bool(values) or not isinstance(values, dict):
            bad(raw, f"字段 {key}：choice 字段须给出 values（键: 中文），其他字段不可给出 / values belong to choice fields")
            values = {}
        fields.append(Field(key, str(raw["label"]), kind, str(raw.get("unit") or ""), bool(raw.get("required", False)),
                            str(raw.get("help") or ""), tuple(str(a) for a in raw.get("aliases") or ()),
                            tuple((str(k), str(v)) for k, v in values.items()), str(raw.get("source") or "")))
    if not fields:
        bad(doc, "data.yaml 缺少 fields（数据字段）/ fields missing")
    by_key = {f.key: f for f in fields}
    hist = doc.get("history") or {}
    for k in set(hist) - {"previous_stages", "runs"}:
        bad(hist, f"history 有未知的键 {k!r} / unknown key")
    prev = tuple(hist.get("previous_stages") or ())
    for p in prev:
        if getattr(by_key.get(p), "kind", None) != "stage":
            bad(hist, f"history.previous_stages 的 {p!r} 应为 stage 类字段 / must name stage fields")
    runs = []
    for raw in hist.get("runs") or []:
        if not isinstance(raw, dict) or set(raw) - {"key", "label", "unit", "while", "extend_field", "value", "citation", "note"} \
                or not raw.get("key") or not raw.get("label"):
            bad(raw, "history.runs 的每一项应有 key、label、while、value，可选 unit、extend_field、citation")
            continue
        key = str(raw["key"])
        w = raw.get("while")
        member = None
        if isinstance(w, dict) and len(w) == 1:
            (wk, wv), = w.items()
            if wk == "stage" and wv in stages:
                member = ("stage", wv)
            elif getattr(by_key.get(wk), "kind", None) == "bool" and wv is True:
                member = (wk, True)
        if member is None:
            bad(raw, f"连续期 {key} 的 while 应为 {{stage: 阶段键}} 或 {{是/否字段: true}} / while must name a stage or a yes/no field")
            continue
        ext = raw.get("extend_field")
        if ext is not None and getattr(by_key.get(ext), "kind", None) not in ("year", "count"):
            bad(raw, f"连续期 {key} 的 extend_field {ext!r} 应为 year 或 count 类字段 / extend_field must be a year or count field")
            ext = None
        if raw.get("value") not in RUN_VALUES:
            bad(raw, f"连续期 {key} 的 value 应为 {' 或 '.join(RUN_VALUES)}")
            continue
        if key in by_key and key != ext:
            bad(raw, f"连续期 {key} 与字段同名 / a run may share its name only with its extend_field")
        runs.append(Run(key, str(raw["label"]), str(raw.get("unit") or ""), member, ext or "", raw["value"],
                        str(raw.get("citation") or "")))
    return Dictionary(fields, stages, kinds, prev, runs, _sources(doc, fields, bad))


def _sources(doc, fields, bad) -> dict:
    """The package's data sources (`sources`: key, Chinese name, kind) in the order of
    `source_precedence`, which must name each exactly once; a field naming an undeclared
    source is a problem."""
    raw = doc.get("sources") or []
    found = {}
    for it in raw:
        if not isinstance(it, dict) or not it.get("key") or not it.get("name") or set(it) - {"key", "name", "kind", "note"}:
            bad(it, "sources 的每一项应为 {key: 键, name: 中文名, kind: 类别} / each source needs key, name and kind")
            continue
        key, kind = str(it["key"]), it.get("kind", "department")
        if kind not in SOURCE_KINDS:
            bad(it, f"数据来源 {key} 的 kind {kind!r} 应为 {', '.join(SOURCE_KINDS)} 之一 / unknown source kind")
            continue
        if key in found:
            bad(it, f"数据来源 {key} 重复 / duplicate source")
        found[key] = Source(key, str(it["name"]), kind)
    for kind in ("declared", "public"):
        if sum(s.kind == kind for s in found.values()) > 1:
            bad(doc, f"kind 为 {kind} 的数据来源只能有一个 / only one {kind} source")
    order = [str(k) for k in doc.get("source_precedence") or []]
    if found and sorted(order) != sorted(found):
        bad(doc, f"source_precedence 应恰好列出每个数据来源一次（{', '.join(found)}），现为 {', '.join(order) or '空'}"
                 " / source_precedence must name every source once")
    if order and not found:
        bad(doc, "source_precedence 需要 sources / source_precedence without sources")
    for f in fields:
        if f.source and f.source not in found:
            bad(doc, f"字段 {f.key} 的来源 {f.source!r} 未在 sources 中声明 / unknown source")
    ranked = [k for k in order if k in found] + [k for k in found if k not in order]
    return {k: found[k] for k in ranked}


def by_header(fields):
    """Map the English key, the Chinese label and the label with its unit to the field."""
    out = {}
    for f in fields:
        out[f.key] = f
        out[f.label] = f
        out[header_with_unit(f)] = f
        for a in f.aliases:
            out[a] = f
            out[f"{a}（{f.unit}）" if f.unit else a] = f
    return out


def header_with_unit(f) -> str:
    """The Chinese header of the import templates: the label and its unit, 研发费用金额（万元）."""
    return f"{f.label}（{f.unit}）" if f.unit else f.label
