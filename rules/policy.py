"""Loading and checking a policy version: a folder of clause files (YAML).

A policy version is `rules/policies/<name>/`: `policy.yaml` (name, document, dates in force),
`data.yaml` (the data dictionary: fields, stages, contract kinds, history runs; `rules.fields`)
and one file per clause group. Every clause has an id, a Chinese title, a citation of the
source text, effective dates, and (by group) a condition and an effect. Everything numeric
lives here; scoring code asks the policy for it.

A malformed file is rejected with every problem named by file, line, clause and reason.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from . import fields

POLICIES_DIR = Path(__file__).parent / "policies"
DEFAULT_POLICY = "xinxiang-2022"

GROUP_FILES = ("stage", "scope", "indicators", "negative_list", "decay", "bonus", "rewards")
# a clause file a policy folder may leave out: without scope.yaml every record is evaluated
OPTIONAL_FILES = {"scope"}
CLAUSE_KEYS = {"id", "title", "citation", "effective", "when", "effect", "note", "supersedes",
               "rows", "key", "category", "points", "method", "params", "derive"}
CLAUSE_REQUIRED = {"id", "title", "citation", "effective"}
OPS = {"eq", "ne", "lt", "lte", "gt", "gte", "in"}


class Mapping(dict):
    """A YAML mapping that remembers the line it started on."""
    line = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    out = Mapping()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (重复的键)", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    clause: str
    message: str

    def __str__(self):
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} [{self.clause or '-'}] {self.message}"


class PolicyError(Exception):
    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Clause:
    id: str
    title: str
    citation: str
    group: str
    effective_from: dt.date
    effective_to: dt.date | None
    body: dict
    file: str
    line: int

    def in_force(self, on: dt.date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)

    @property
    def when(self):
        return self.body.get("when")

    @property
    def effect(self):
        return self.body.get("effect") or {}


@dataclass
class PolicyVersion:
    """A loaded, checked policy version. `clauses_for(group, year)` gives the clauses in force
    on the year's reference date (31 December)."""
    name: str
    title: str
    document: str
    path: Path
    digest: str
    groups: dict            # group -> parsed file mapping (settings, categories, weights …)
    clauses: list = field(default_factory=list)
    data: object = None     # fields.Dictionary: the package's fields, stages, kinds, runs (data.yaml)

    def reference_date(self, year) -> dt.date:
        """The reference date of an evaluation year (policy.yaml `reference_date`, SPEC §2:
        31 December)."""
        return reference_date(year, self.groups["policy"].get("reference_date"))

    def history_settings(self) -> dict:
        return dict(self.groups["policy"].get("history") or {})

    def clauses_in_force(self, year):
        on = self.reference_date(year)
        return [c for c in self.clauses if c.in_force(on)]

    def clauses_for(self, group, year):
        return [c for c in self.clauses_in_force(year) if c.group == group]

    def clause(self, clause_id, year):
        for c in self.clauses_in_force(year):
            if c.id == clause_id:
                return c
        raise KeyError(clause_id)

    def categories(self) -> dict:
        """The indicator categories: key -> {title, citation, points} (indicators.yaml)."""
        return dict(self.groups["indicators"].get("categories") or {})

    def category_title(self, key) -> str:
        return str((self.categories().get(key) or {}).get("title", key))

    def settings(self, group):
        return self.groups[group].get("settings") or {}

    def in_force(self, year):
        meta = self.groups["policy"]
        on = self.reference_date(year)
        return _date(meta["in_force"]["from"]) <= on and (
            meta["in_force"].get("to") is None or on <= _date(meta["in_force"]["to"]))


def reference_date(year, setting=None) -> dt.date:
    """The reference date of an evaluation year: the policy's `reference_date` {month, day},
    31 December when a policy folder does not say (SPEC §2)."""
    setting = setting or {"month": 12, "day": 31}
    return dt.date(year, int(setting["month"]), int(setting["day"]))


def _date(v):
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v))


def resolve(policy=None) -> Path:
    """A policy argument is a folder path or the name of a bundled version."""
    if policy is None:
        return POLICIES_DIR / DEFAULT_POLICY
    p = Path(policy)
    if p.is_dir():
        return p
    if (POLICIES_DIR / str(policy)).is_dir():
        return POLICIES_DIR / str(policy)
    raise PolicyError([Problem(str(policy), 0, "", "找不到政策版本目录 / no such policy folder")])


def load_policy(policy=None) -> PolicyVersion:
    """Load and check a policy folder; raise PolicyError naming every problem."""
    path = resolve(policy)
    problems = []
    docs = {}
    digest = hashlib.sha256()
    for name in ("policy", "data") + GROUP_FILES:
        f = path / f"{name}.yaml"
        if not f.exists() and name in OPTIONAL_FILES:
            docs[name] = Mapping({"group": name, "clauses": []})
            continue
        if not f.exists():
            problems.append(Problem(f.name, 0, "", "缺少条款文件 / clause file missing"))
            continue
        text = f.read_bytes()
        digest.update(name.encode() + b"\0" + text + b"\0")
        try:
            docs[name] = yaml.load(text.decode("utf-8"), Loader=_Loader) or Mapping()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problems.append(Problem(f.name, mark.line + 1 if mark else 0, "", f"YAML 语法错误: {exc}"))
    if problems:
        raise PolicyError(problems)
    meta = docs["policy"]
    _check_keys(problems, "policy.yaml", meta, {"policy", "title", "document", "issued", "in_force",
                                                 "source", "scoring", "note", "reference_date", "history"}, "")
    pv = PolicyVersion(name=str(meta.get("policy", path.name)), title=str(meta.get("title", "")),
                       document=str(meta.get("document", "")), path=path, digest=digest.hexdigest(),
                       groups=docs)
    _check_keys(problems, "data.yaml", docs["data"], {"group", "stages", "contract_kinds", "history", "fields", "note",
                                                          "sources", "source_precedence"}, "")
    found = []
    pv.data = fields.dictionary(docs["data"], found)
    problems += [Problem("data.yaml", line, "", msg) for line, msg in found]
    for group in GROUP_FILES:
        pv.clauses += _clauses(problems, group, docs[group])
    _check_overlaps(problems, pv.clauses)
    from . import checks   # the group-specific checks need the compilers; imported late
    problems += checks.check_policy(pv)
    if problems:
        raise PolicyError(problems)
    return pv


def _check_keys(problems, file, mapping, allowed, clause):
    if not isinstance(mapping, dict):
        problems.append(Problem(file, 0, clause, "应为键值映射 / expected a mapping"))
        return
    for k in mapping:
        if k not in allowed:
            problems.append(Problem(file, getattr(mapping, "line", 0), clause,
                                    f"未知的键 {k!r} / unknown key {k!r}"))


def _clauses(problems, group, doc):
    file = f"{group}.yaml"
    _check_keys(problems, file, doc, {"group", "settings", "categories", "weights", "clauses", "note"}, "")
    out = []
    for raw in doc.get("clauses") or []:
        cid = str(raw.get("id", "")) if isinstance(raw, dict) else ""
        line = getattr(raw, "line", 0)
        if not isinstance(raw, dict):
            problems.append(Problem(file, line, "", "条款应为映射 / a clause must be a mapping"))
            continue
        _check_keys(problems, file, raw, CLAUSE_KEYS, cid)
        for k in sorted(CLAUSE_REQUIRED - raw.keys()):
            problems.append(Problem(file, line, cid, f"缺少 {k} / missing {k}"))
        if not str(raw.get("citation") or "").strip():
            if "citation" in raw:
                problems.append(Problem(file, line, cid, "引用依据为空 / citation is empty"))
            continue
        eff = raw.get("effective") or {}
        try:
            start = _date(eff["from"])
            end = _date(eff["to"]) if eff.get("to") is not None else None
        except (KeyError, TypeError, ValueError):
            problems.append(Problem(file, line, cid, "生效日期应为 {from: YYYY-MM-DD, to: YYYY-MM-DD|null} / "
                                                      "effective dates malformed"))
            continue
        if end is not None and end < start:
            problems.append(Problem(file, line, cid, "失效日期早于生效日期 / effective to before from"))
        out.append(Clause(cid, str(raw["title"]), str(raw["citation"]), group, start, end,
                          dict(raw), file, line))
    return out


def _check_overlaps(problems, clauses):
    """The same id may appear more than once only for disjoint effective periods."""
    by_id = {}
    for c in clauses:
        for other in by_id.get(c.id, []):
            far = dt.date.max
            if c.effective_from <= (other.effective_to or far) and other.effective_from <= (c.effective_to or far):
                problems.append(Problem(c.file, c.line, c.id,
                                        f"条款编号重复且生效期重叠（另见第{other.line}行） / duplicate id "
                                        f"with overlapping effective dates (see line {other.line})"))
        by_id.setdefault(c.id, []).append(c)


def decimal(v, what="value") -> Decimal:
    """A policy number as an exact Decimal (YAML floats are read through their text)."""
    try:
        return Decimal(str(v))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what} {v!r} is not a number") from None
