"""Policy versions in the store: the bundled version, drafts, check, case tests, what-if,
publishing. The service uses the newest published version; a request reads it once, so a
publish switches the running server atomically and a request in flight ends on the version
it began with. A version that fails its check or a case is never published."""
from __future__ import annotations

import difflib
import hashlib
import io
import json
import tempfile
import threading
from pathlib import Path

from sqlalchemy import select

from rules.policy import GROUP_FILES, PolicyError, load_policy, resolve

from .models import PolicyDraft, PolicyVersion, utcnow
from .store import audit

CLAUSE_FILES = ("policy",) + GROUP_FILES
CACHE = Path(tempfile.gettempdir()) / "innopoints-policies"
_lock = threading.Lock()
_loaded: dict = {}


class PublishRefused(Exception):
    def __init__(self, message, problems=(), failures=()):
        self.problems, self.failures = list(problems), list(failures)
        super().__init__(message)


def folder_files(path, cases=None) -> dict:
    """The clause files (and the source text) of a policy folder, by file name, and its case
    files as cases/NAME.yaml: from the folder's own cases/ when it has one, else `cases`
    (the bundled tests/cases by default). A version carries its cases, so that an officer
    who changes a clause changes the cases that pin it in the same draft."""
    from rules.cases import DEFAULT_CASES
    path = Path(path)
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(path.iterdir())
             if p.suffix in (".yaml", ".md") and p.is_file()}
    case_dir = path / "cases" if (path / "cases").is_dir() else Path(cases or DEFAULT_CASES)
    files.update({f"cases/{p.name}": p.read_text(encoding="utf-8") for p in sorted(case_dir.glob("*.yaml"))})
    return files


def _safe_name(name) -> bool:
    parts = name.split("/")
    return (len(parts) == 1 or (len(parts) == 2 and parts[0] == "cases")) and all(
        p and not p.startswith(".") and "\\" not in p for p in parts)


def _files_key(files) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def materialize(files: dict) -> Path:
    """The files as a folder (cached by their content) for the batch code to load."""
    folder = CACHE / _files_key(files)
    if not folder.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=CACHE))
        (tmp / "cases").mkdir()
        for name, text in files.items():
            if not _safe_name(name):
                raise PolicyError([f"{name}: 文件名不合法 / bad file name"])
            (tmp / name).write_text(text, encoding="utf-8")
        try:
            tmp.rename(folder)
        except OSError:          # another thread made it meanwhile: same content
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_files(files: dict):
    """A checked, loaded policy version from its files (kept per content)."""
    key = _files_key(files)
    with _lock:
        pv = _loaded.get(key)
    if pv is None:
        pv = load_policy(materialize(files))
        with _lock:
            if len(_loaded) > 32:
                _loaded.clear()
            _loaded[key] = pv
    return pv


def files_of(row) -> dict:
    return json.loads(row.files)


_by_sha: dict = {}


def loaded(row):
    """A stored version (a PolicyVersion row) loaded, kept per its content hash: a stored
    version's files never change, and its hash is theirs, so a request that asks for the
    version in force (or a run's) reads no files and hashes nothing."""
    with _lock:
        pv = _by_sha.get(row.sha256)
    if pv is None:
        pv = load_files(files_of(row))
        with _lock:
            if len(_by_sha) > 32:
                _by_sha.clear()
            _by_sha[row.sha256] = pv
    return pv


def of_run(s, run):
    """The loaded version a run was evaluated under (None for a run without one)."""
    with _lock:
        pv = _by_sha.get(run.policy_sha256)
    if pv is not None:
        return pv
    row = s.get(PolicyVersion, run.policy_id) if run.policy_id else None
    return loaded(row) if row is not None else None


def ensure_bundled(s) -> PolicyVersion:
    """The bundled version (新开〔2022〕110号) is the first published version."""
    row = s.scalar(select(PolicyVersion).where(PolicyVersion.status == "published").limit(1))
    if row is not None:
        return row
    files = folder_files(resolve(None))
    pv = load_files(files)
    row = s.scalar(select(PolicyVersion).where(PolicyVersion.sha256 == pv.digest))
    if row is None:
        row = PolicyVersion(name=pv.name, document=pv.document or "", sha256=pv.digest,
                            files=json.dumps(files, ensure_ascii=False, sort_keys=True))
        s.add(row)
    row.status, row.published_at, row.note = "published", utcnow(), "随程序发布的版本（新开〔2022〕110号）"
    s.flush()
    return row


def active(s) -> PolicyVersion:
    """The version the service uses now: the newest published one."""
    ensure_bundled(s)
    return s.scalar(select(PolicyVersion).where(PolicyVersion.status == "published")
                    .order_by(PolicyVersion.published_at.desc(), PolicyVersion.id.desc()).limit(1))


def version_named(s, name) -> PolicyVersion | None:
    """A published version by id ('12') or by name (the newest of that name)."""
    q = select(PolicyVersion).where(PolicyVersion.status == "published")
    if str(name).isdigit():
        return s.scalar(q.where(PolicyVersion.id == int(name)))
    return s.scalar(q.where(PolicyVersion.name == str(name)).order_by(PolicyVersion.id.desc()).limit(1))


def register_external(s, pv) -> PolicyVersion:
    """A folder given to a run: kept (as 'external' unless already known) for reproduction."""
    row = s.scalar(select(PolicyVersion).where(PolicyVersion.sha256 == pv.digest))
    if row is None:
        row = PolicyVersion(name=pv.name, document=pv.document or "", sha256=pv.digest, status="external",
                            files=json.dumps(folder_files(pv.path), ensure_ascii=False, sort_keys=True))
        s.add(row)
        s.flush()
    return row


# ---- drafts ---------------------------------------------------------------------------------

def create_draft(s, base: PolicyVersion, name, user, note="") -> PolicyDraft:
    d = PolicyDraft(name=name or f"{base.name}-草稿", base_id=base.id, files=base.files, note=note or "",
                    created_by=user.id if user else None)
    s.add(d)
    s.flush()
    audit(s, user, "policy.draft", f"draft:{d.id}", base=base.id, base_sha256=base.sha256, name=d.name)
    return d


def draft_from_folder(s, path, name, user, note="") -> PolicyDraft:
    """A draft whose files are a policy folder's (a new zone's package, or a package edited
    as files): its base is the version in force, so that publishing it records the diff of
    every file against what the service uses now."""
    d = create_draft(s, active(s), name, user, note)
    d.files = json.dumps(folder_files(path), ensure_ascii=False, sort_keys=True)
    s.flush()
    audit(s, user, "policy.draft_files", f"draft:{d.id}", folder=Path(path).name)
    return d


def _editable(draft):
    if draft.published_version_id:
        raise PublishRefused("草稿已发布，不能再修改；请以新版本为基础另建草稿 / published drafts are read-only")


def set_file(s, draft, name, content, user):
    _editable(draft)
    files = json.loads(draft.files)
    if not name.endswith(".yaml") or not _safe_name(name) or (name not in files and not name.startswith("cases/")):
        raise KeyError(name)
    old = files.get(name, "")
    files[name] = content
    draft.files = json.dumps(files, ensure_ascii=False, sort_keys=True)
    draft.updated_at = utcnow()
    audit(s, user, "policy.edit", f"draft:{draft.id}", file=name, diff=_diff(old, content, name))


def _yaml():
    from ruamel.yaml import YAML
    y = YAML()            # round trip: comments, order and layout of the officer's file are kept
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)     # the layout of the bundled files: "  - id: …"
    return y


def _parse_value(text):
    """A form value as YAML reads it: 0.95 → float, 3 → int, true → bool, other text → str."""
    import yaml
    if not isinstance(text, str):
        return text
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return v if isinstance(v, (int, float, bool, str)) or v is None else text


def clause_file(files, clause_id):
    """(file name, parsed document, the clause mapping) of a clause id, or raise KeyError."""
    for group in GROUP_FILES:
        name = f"{group}.yaml"
        doc = _yaml().load(files[name])
        for c in doc.get("clauses") or []:
            if str(c.get("id")) == clause_id:
                return name, doc, c
    raise KeyError(clause_id)


def _number_forms(v) -> list[tuple[str, str]]:
    """How a clause title may quote a number: yuan as 万元 (100000 → 10万元), a rate as a
    percentage (0.01 → 1%), or as written (0.9, 5)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return []
    forms = []
    if isinstance(v, int) and v >= 10000 and v % 100 == 0:
        forms.append(("wan", f"{v / 10000:g}万元"))
    if isinstance(v, float) and 0 < v < 1:
        forms.append(("pct", f"{v * 100:g}%"))
    forms.append(("plain", f"{v:g}"))
    return forms


def title_following(title: str, old, new) -> str:
    """A clause title that quotes a changed number follows it (最高奖励10万元 → 最高奖励20万元;
    最终得分乘以0.9 → 0.85): the old number is replaced where the title names it exactly
    once, in the same form; otherwise the title is left as the officer wrote it."""
    import re as _re
    new_forms = dict(_number_forms(new))
    for kind, text in _number_forms(old):
        if kind not in new_forms:
            continue
        pattern = _re.compile(rf"(?<![\d.]){_re.escape(text)}(?![\d.])" if kind != "wan" else
                              rf"(?<![\d.]){_re.escape(text)}")
        if len(pattern.findall(title)) == 1:
            return pattern.sub(new_forms[kind], title)
    return title


def with_changes(files, clause_id, changes: dict) -> dict:
    """The files with values of one clause changed; `changes` maps a dotted path inside the
    clause (effect.factor, when.completed_years.gte, contract_rate) to the new value."""
    name, doc, clause = clause_file(files, clause_id)
    for path, value in changes.items():
        keys = str(path).split(".")
        node = clause
        for k in keys[:-1]:
            if not isinstance(node, dict) or k not in node:
                raise KeyError(path)
            node = node[k]
        if not isinstance(node, dict) or keys[-1] not in node:
            raise KeyError(path)
        old, new = node[keys[-1]], _parse_value(value)
        node[keys[-1]] = new
        if "title" in clause:
            clause["title"] = title_following(str(clause["title"]), old, new)
    out = io.StringIO()
    _yaml().dump(doc, out)
    return {**files, name: out.getvalue()}


def editable_values(files, clause_id) -> list:
    """The scalar values of a clause an officer may change in a form: (path, value)."""
    _, _, clause = clause_file(files, clause_id)
    out = []

    def walk(node, prefix):
        for k, v in node.items():
            p = f"{prefix}{k}"
            if k in ("id", "title", "citation", "note"):
                continue
            if isinstance(v, dict):
                walk(v, p + ".")
            elif isinstance(v, (int, float, str, bool)) and not isinstance(v, list):
                out.append((p, v))
    walk(clause, "")
    return out


def set_clause(s, draft, clause_id, changes, user):
    _editable(draft)
    files = json.loads(draft.files)
    new = with_changes(files, clause_id, changes)
    name = clause_file(files, clause_id)[0]
    draft.files = json.dumps(new, ensure_ascii=False, sort_keys=True)
    draft.updated_at = utcnow()
    audit(s, user, "policy.edit", f"draft:{draft.id}", clause=clause_id, changes=changes,
          diff=_diff(files[name], new[name], name))
    return new


# ---- check, test, publish -----------------------------------------------------------------------

def check(files) -> list[dict]:
    """Every problem of a clause set (schema, ids, citations, ranges, dates, fields) and of
    compiling it into the engine, as {file, line, clause, message}."""
    from rules import engine
    try:
        pv = load_files(files)
        for y in [y for y in range(2000, 2101) if pv.in_force(y)][:1]:
            engine.check_compiles(pv, y)
    except PolicyError as exc:
        return [{"file": getattr(p, "file", ""), "line": getattr(p, "line", 0), "clause": getattr(p, "clause", ""),
                 "message": getattr(p, "message", str(p))} for p in exc.problems]
    except Exception as exc:  # the engine's own refusal of a compiled ruleset
        return [{"file": "", "line": 0, "clause": "", "message": f"规则引擎无法编译 / engine rejected: {exc}"}]
    return []


def test(files) -> list[dict]:
    """Run every clause case against the clause set; the failures (empty when all pass)."""
    from rules.cases import load_cases, run_case
    pv = load_files(files)
    out = []
    try:
        cases = load_cases(materialize(files) / "cases")
    except Exception as exc:  # a case file that does not parse fails the test as a whole
        return [{"file": "cases", "case": "", "clause": "", "problems": [f"用例文件无法读取：{exc}"]}]
    if not cases:
        return [{"file": "cases", "case": "", "clause": "", "problems": ["版本中没有用例"]}]
    for case in cases:
        problems = run_case(case, pv)
        if problems:
            out.append({"file": case.file, "case": case.name, "clause": case.clause, "problems": problems})
    return out


def _diff(old, new, name):
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))


def files_diff(old: dict, new: dict) -> dict:
    return {n: d for n in sorted(set(old) | set(new)) if (d := _diff(old.get(n, ""), new.get(n, ""), n))}


def publish(s, draft, user) -> PolicyVersion:
    """Check, test and publish a draft as a new immutable version; recorded in the audit log
    with the diff of every clause file against its base and the new hash."""
    _editable(draft)
    files = json.loads(draft.files)
    problems = check(files)
    if problems:
        raise PublishRefused("条款检查未通过，不能发布 / the check fails", problems=problems)
    failures = test(files)
    if failures:
        raise PublishRefused("条款用例未通过，不能发布 / cases fail", failures=failures)
    pv = load_files(files)
    same = s.scalar(select(PolicyVersion).where(PolicyVersion.sha256 == pv.digest))
    if same is not None:
        raise PublishRefused(f"内容与已有版本 #{same.id}（{same.name}）相同 / identical to version {same.id}")
    base = s.get(PolicyVersion, draft.base_id)
    row = PolicyVersion(name=draft.name, document=pv.document or "", sha256=pv.digest, status="published",
                        files=draft.files, published_at=utcnow(), published_by=user.id if user else None,
                        draft_id=draft.id, note=draft.note)
    s.add(row)
    s.flush()
    draft.published_version_id = row.id
    audit(s, user, "policy.publish", f"version:{row.id}", name=row.name, sha256=row.sha256,
          base=base.id, base_sha256=base.sha256, diff=files_diff(files_of(base), files))
    return row


# ---- what-if -------------------------------------------------------------------------------------

def evaluations(s, files, year, against_files, budget=None, strategy=None):
    """The stored data of `year` evaluated under `against_files` and under `files` (the
    what-if's two evaluations, also read by the draft's calibration diagnostics), and the
    records they read."""
    from rules.evaluate import evaluate
    from rules.records import load_inputs

    from .store import snapshot
    new, old = load_files(files), load_files(against_files)
    for pv in (new, old):
        if not pv.in_force(year):
            raise PolicyError([f"政策版本 {pv.name} 不适用于 {year} 年度"])
    with tempfile.TemporaryDirectory(prefix="innopoints-whatif-") as tmp:
        evs = []
        for i, pv in enumerate((old, new)):     # each version reads the stored data through its own dictionary
            Path(tmp, str(i)).mkdir()
            snap = snapshot(s, Path(tmp, str(i)), pv.data)
            recs, cons = load_inputs(snap["records"], snap["contracts"], data=pv.data)
            evs.append(evaluate(recs, year, pv, cons, budget, strategy))
    return evs, recs        # the records as the draft's dictionary reads them


def whatif(s, files, year, against_files, budget=None, strategy=None, top=10) -> dict:
    """Evaluate the stored data of `year` under both clause sets and say what changes:
    enterprises (stage, exclusion, score, rank), the top N per stage, award lines, totals."""
    from rules.output import awards_table, scores_table

    from .query import diff_rows
    evs, _ = evaluations(s, files, year, against_files, budget, strategy)
    old, new = evs[0].policy, evs[1].policy

    def rows(ev):
        sc = scores_table(ev).to_pylist()
        aw = awards_table(ev).to_pylist()
        res = {r["credit_code"]: {"stage": r["stage"], "excluded": r["excluded"] == "true",
                                  "final_score": float(r["final_score"]) if r["final_score"] else None,
                                  "rank_overall": int(r["rank_overall"]) if r["rank_overall"] else None,
                                  "rank_in_stage": int(r["rank_in_stage"]) if r["rank_in_stage"] else None}
               for r in sc}
        awards = {(a["credit_code"], a["clause"]): {"eligible_yuan": int(a["eligible_yuan"]),
                                                     "granted_yuan": int(a["granted_yuan"]), "basis": a["basis"]}
                  for a in aw}
        return res, awards
    (ra, aa), (rb, ab) = rows(evs[0]), rows(evs[1])
    from .models import Enterprise
    names = dict(s.execute(select(Enterprise.credit_code, Enterprise.name)).all())
    report = diff_rows(ra, rb, aa, ab, names)

    def tops(res):
        out = {}
        for stage in dict.fromkeys(list(old.data.stages) + list(new.data.stages)):
            ranked = sorted((r["rank_in_stage"], c) for c, r in res.items()
                            if r["stage"] == stage and not r["excluded"] and r["rank_in_stage"] <= top)
            out[stage] = [{"rank": k, "credit_code": c, "name": names.get(c, ""), "final_score": res[c]["final_score"]}
                          for k, c in ranked]
        return out
    from rules import diagnostics
    # a version without calibration targets (indicators.yaml settings.diagnostics) has none to compare
    report["calibration"] = diagnostics.compare(*(diagnostics.diagnose(diagnostics.from_evaluation(ev)) for ev in evs)) \
        if all(ev.policy.settings("indicators").get("diagnostics") for ev in evs) else None
    b0, b1 = evs[0].budget, evs[1].budget
    report.update(year=year, stages={**old.data.stages, **new.data.stages},
                  policy_a={"name": old.name, "sha256": old.digest},
                  policy_b={"name": new.name, "sha256": new.digest}, top_n=top,
                  top_before=tops(ra), top_after=tops(rb),
                  totals={"budget": budget, "eligible_before": int(b0.fixed_total + b0.floating_total),
                          "eligible_after": int(b1.fixed_total + b1.floating_total),
                          "granted_before": int(b0.granted_total), "granted_after": int(b1.granted_total)})
    report["indicators"] = indicator_changes(*evs)
    t = report["totals"]
    t["eligible_change"] = t["eligible_after"] - t["eligible_before"]
    t["granted_change"] = t["granted_after"] - t["granted_before"]
    t["over_budget_after"] = max(0, t["eligible_after"] - budget) if budget is not None else None
    return report


def indicator_changes(before, after) -> list:
    """The indicators a draft adds or changes (new id, other field, points, method or
    parameters), each with its points under the draft: per stage, the enterprises scored,
    how many have a value, the mean and the highest points."""
    import numpy as np
    old = {c.id: c.body for c in before.indicator_clauses}
    out = []
    stage = after.scores["stage"].to_numpy(dtype=object)
    scored = ~after.scores["excluded"].to_numpy(dtype=bool)
    for j, c in enumerate(after.indicator_clauses):
        keys = ("key", "category", "points", "method", "params", "derive")
        was = old.get(c.id)
        if was is not None and all(was.get(k) == c.body.get(k) for k in keys):
            continue
        pts, vals = after.indicator_points[:, j], after.indicator_values[:, j]
        per = []
        for st, name in after.policy.data.stages.items():
            m = scored & (stage == st)
            if m.any():
                per.append({"stage": st, "stage_zh": name, "scored": int(m.sum()),
                            "reported": int((~np.isnan(vals[m])).sum()),
                            "mean_points": round(float(pts[m].mean()), 4), "max_points": round(float(pts[m].max()), 4)})
        out.append({"clause": c.id, "title": c.title, "field": c.body["key"], "category": c.body["category"],
                    "points": c.body["points"], "status": "新增" if was is None else "修改", "by_stage": per})
    return out
