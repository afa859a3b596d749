"""Clause case files: officer-readable YAML tests of the policy (like OpenFisca's tests).

A case file names the clause it tests and lists cases:

    clause: NL-2a
    cases:
      - name: 环境信用等级为警示，扣5分
        year: 2022
        enterprises:                      # records; omitted fields take plain defaults
          - {ent: A, env_credit_rating: 警示}
        expect:
          A: {deductions: 5, fired: [NL-2a]}

Each enterprise is named by a short label (`ent`); its credit code is made from the label.
Omitted identity fields: park 主园区, industry 生物医药, registered 2019-06-01. The folder's
`defaults.yaml` gives the package's own defaults (`records:` field values, `contracts:` column
values; for 新乡: revenue 500 万元, so a startup in 2022, and is_hte_or_tech_sme 是 so that the
record is an evaluation object under SCOPE; write `field: null` to leave one empty); every
other field is missing.
Records of earlier years are history (give them a `year`). `contracts`, `budget`, `strategy`
work as in `innopoints evaluate`. `patch` changes the policy for the case only, to test the
other readings the policy allows:

    patch:
      - {file: decay, clause: DEC-3b, remove: true}
      - {file: decay, clause: DEC-3a, set: {when: {level_drop: {gte: 1}}, effect: {factor: 0.9, per: level_drop}}}
      - {file: rewards, settings: {parks: all}}

Expectations per enterprise: stage, excluded, exclusion_clauses (list), the category scores
(`<category>_score`), weighted, deductions, decay_factor, bonus, final_score,
rank_in_stage, rank_overall (numbers within 0.0001), points: {IND-x.y: n}, fired / not_fired
(clause ids), and
awards: {RW-n: {eligible, granted, basis}} — clauses absent from `awards` must give no line.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import assets
from .evaluate import evaluate
from .policy import _Loader, load_policy
from .records import CODE_CHARS, credit_code_with_check, enterprise_codes, load_contracts, load_records

DEFAULT_CASES = assets.path("tests/cases")
NUMBERS = ("weighted", "deductions", "decay_factor", "bonus", "final_score")
DEFAULTS = {"name": None, "park": "主园区", "industry": "生物医药", "registered_on": "2019-06-01"}
DEFAULTS_FILE = "defaults.yaml"
CASE_KEYS = {"name", "year", "enterprises", "contracts", "expect", "budget", "strategy", "patch", "note", "_defaults"}


@dataclass
class Case:
    file: str
    clause: str
    name: str
    body: dict


def code_for(label: str) -> str:
    """A valid credit code made from a case's enterprise label."""
    digest = hashlib.sha256(label.encode()).digest()
    body = "".join(CODE_CHARS[b % len(CODE_CHARS)] for b in digest[:9])
    return credit_code_with_check("91410700" + body)


def load_defaults(folder) -> dict:
    """The folder's defaults.yaml (`records:` and `contracts:` values omitted by the cases)."""
    d = Path(folder) / DEFAULTS_FILE
    return (yaml.load(d.read_text(encoding="utf-8"), Loader=_Loader) or {}) if d.exists() else {}


def load_cases(folder) -> list:
    out = []
    defaults = load_defaults(folder)
    for f in sorted(Path(folder).glob("*.yaml")):
        if f.name == DEFAULTS_FILE:
            continue
        doc = yaml.load(f.read_text(encoding="utf-8"), Loader=_Loader) or {}
        for c in doc.get("cases") or []:
            c["_defaults"] = defaults
            unknown = set(c) - CASE_KEYS
            if unknown:
                raise ValueError(f"{f.name}: case {c.get('name')!r} has unknown keys {sorted(unknown)}")
            out.append(Case(f.name, str(doc.get("clause", "")), str(c["name"]), c))
    return out


def _plain(v):
    """Plain dicts and lists (the case loader's mappings remember their lines)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _patched_policy(policy, patches, tmp):
    """A copy of the policy folder with the case's patches applied."""
    dst = Path(tmp) / "policy"
    shutil.copytree(policy.path, dst)
    for p in patches:
        f = dst / f"{p['file']}.yaml"
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        if "settings" in p:
            doc.setdefault("settings", {}).update(_plain(p["settings"]))
        if "set" in p and "clause" not in p:          # a top-level key of the file (policy.yaml's history …)
            doc.update(_plain(p["set"]))
        if "clause" in p:
            clauses = doc["clauses"]
            hit = [c for c in clauses if c["id"] == p["clause"]]
            if not hit:
                raise ValueError(f"patch: no clause {p['clause']} in {p['file']}.yaml")
            if p.get("remove"):
                doc["clauses"] = [c for c in clauses if c["id"] != p["clause"]]
            else:
                hit[0].update(_plain(p.get("set") or {}))
        f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_policy(dst)


def _write(path, rows):
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else str(r[k]).lower() if isinstance(r.get(k), bool)
                            else r[k]) for k in keys})


def run_case(case: Case, policy) -> list:
    """Run one case; return the differences from its expectations (empty when it passes).
    A case that cannot run (bad patch, bad records) fails with the reason."""
    try:
        return _run(case, policy)
    except Exception as exc:  # noqa: BLE001 - any failure is the case's result
        return [f"case could not run: {type(exc).__name__}: {exc}"]


def _run(case, policy):
    b = case.body
    year = int(b["year"])
    with tempfile.TemporaryDirectory() as tmp:
        pv = _patched_policy(policy, b["patch"], tmp) if b.get("patch") else policy
        rows = []
        for e in b["enterprises"]:
            r = {**DEFAULTS, **(b.get("_defaults", {}).get("records") or {}), "year": year,
                 **{k: v for k, v in e.items() if k != "ent"}}
            r["credit_code"] = code_for(str(e["ent"]))
            r["name"] = r["name"] or f"用例企业{e['ent']}"
            rows.append(r)
        _write(Path(tmp) / "records.csv", rows)
        today = dt.date(max(year, dt.date.today().year) + 1, 12, 31)
        records = load_records(Path(tmp) / "records.csv", today=today, data=pv.data)
        contracts = None
        if b.get("contracts"):
            cdef = b.get("_defaults", {}).get("contracts") or {}
            crow = [{"contract_no": c.get("contract_no", f"C{i:04d}"), "credit_code": code_for(str(c["ent"])),
                     "kind": c.get("kind", cdef.get("kind")), "amount": c["amount"],
                     "registered_on": c.get("registered_on", f"{year}-06-30")}
                    for i, c in enumerate(b["contracts"])]
            _write(Path(tmp) / "contracts.csv", crow)
            contracts = load_contracts(Path(tmp) / "contracts.csv", enterprise_codes(records), today=today, data=pv.data)
        ev = evaluate(records, year, pv, contracts, b.get("budget"), b.get("strategy"))
    return compare(ev, b.get("expect") or {})


def _fired(ev, row):
    out = set()
    for group, (pattern, entries) in ev.traces.items():
        if group != "rewards_not_paid":     # those entries say why a clause did not fire
            out |= {e["clause"] for e in entries[pattern[row]] if e.get("in_scope", True) and e.get("fired", True)}
    return out


def compare(ev, expect) -> list:
    problems = []
    s = ev.scores
    rows = {code: i for i, code in enumerate(s["credit_code"])}
    for label, want in expect.items():
        code = code_for(str(label))
        if code not in rows:
            problems.append(f"{label}: no result for year {ev.year}")
            continue
        i = rows[code]
        got = {k: s[k].iloc[i] for k in s.columns}
        for key, value in want.items():
            if key == "stage" and got["stage"] != value:
                problems.append(f"{label}: stage {got['stage']} != expected {value}")
            elif key == "excluded" and bool(got["excluded"]) != value:
                problems.append(f"{label}: excluded {bool(got['excluded'])} != expected {value}")
            elif key == "exclusion_clauses":
                have = [x for x in got["exclusion_clauses"].split(";") if x]
                if have != list(value):
                    problems.append(f"{label}: exclusion_clauses {have} != expected {value}")
            elif key in NUMBERS or key in ("rank_in_stage", "rank_overall") or (key.endswith("_score") and key in s):
                g = got[key]
                if value is None:
                    if g == g:  # not NaN
                        problems.append(f"{label}: {key} {g} != expected empty")
                elif g != g or abs(float(g) - float(value)) > 1e-4:
                    problems.append(f"{label}: {key} {g} != expected {value}")
            elif key in ("fired", "not_fired"):
                fired = _fired(ev, i)
                for cid in value:
                    if (cid in fired) != (key == "fired"):
                        problems.append(f"{label}: {cid} {'did not fire' if key == 'fired' else 'fired'}")
            elif key == "points":
                ids = [c.id for c in ev.indicator_clauses]
                for cid, v in value.items():
                    g = ev.indicator_points[i, ids.index(cid)] if cid in ids else None
                    if g is None or abs(g - v) > 1e-4:
                        problems.append(f"{label}: {cid} points {g} != expected {v}")
            elif key == "awards":
                lines = {a.clause: a for a in ev.awards.lines() if a.credit_code == code}
                for cid, exp in (value or {}).items():
                    a = lines.pop(cid, None)
                    if a is None:
                        problems.append(f"{label}: no {cid} award line")
                        continue
                    for k, attr in (("eligible", "eligible_yuan"), ("granted", "granted_yuan")):
                        if k in exp and getattr(a, attr) != exp[k]:
                            problems.append(f"{label}: {cid} {k} {getattr(a, attr)} != expected {exp[k]}")
                    if "basis" in exp and sorted(a.basis) != list(exp["basis"]):
                        problems.append(f"{label}: {cid} basis {sorted(a.basis)} != expected {exp['basis']}")
                for cid in lines:
                    problems.append(f"{label}: unexpected {cid} award line ({lines[cid].eligible_yuan})")
            elif key not in ("stage", "excluded"):
                problems.append(f"{label}: unknown expectation {key!r}")
    return problems
