"""评价结果运用 (§五, §六): the seed-enterprise reserve pool, stage services, honour lists,
the banks' credit reference and the yearly monitoring report. Each selection rule is a
clause file in rules/uses/ (criteria, lists, thresholds, texts), evaluated here by plain
functions over a run's stored results, so officers change the criteria without code."""
from __future__ import annotations

import json
import math
from pathlib import Path

import yaml
from sqlalchemy import delete, select


from rules import assets

from . import query, shape
from .models import CreditLookup, Enterprise, HonourList, Result, Run, SeedPoolEntry, utcnow
from .runs import current_run
from .store import audit

USES = Path(__file__).resolve().parents[1] / "rules" / "uses"
def category_titles(detail=None) -> dict:
    """Category titles from indicators.yaml (the run's policy when the detail carries them)."""
    return (detail or {}).get("categories") or query.category_titles()
_cache: dict = {}


def rule(name) -> dict:
    """A clause file of rules/uses (re-read when it changes on disk)."""
    path = USES / f"{name}.yaml"
    mtime = path.stat().st_mtime_ns
    hit = _cache.get(name)
    if hit is None or hit[0] != mtime:
        hit = (mtime, yaml.safe_load(path.read_text(encoding="utf-8")))
        _cache[name] = hit
    return hit[1]


def basis(r) -> str:
    """A use rule named with its source: the policy's citation, and where the rule is the
    park's own (`authority`), that first."""
    source = f"{r['authority']}；参照 {r['citation']}" if r.get("authority") else r["citation"]
    return f"{r['id']} {r['title']}（{source}）"


# ---- the seed-enterprise reserve pool (§五.一) ---------------------------------------------------

def seed_select(rows, r) -> tuple[list, dict]:
    """The pool from one year's results: rows with credit_code, stage, industry, excluded,
    final_score, rank_in_stage. Returns (entries, cutoffs per stage)."""
    industries = set(r.get("industries") or [])
    entries, cutoffs = [], {}
    for stage in r["stages"]:
        pool = [x for x in rows if x["stage"] == stage and not x["excluded"] and x["final_score"] is not None]
        pool.sort(key=lambda x: (-x["final_score"], x["credit_code"]))
        n = len(pool)
        if not n:
            continue
        k = max(1, math.ceil(r["top_share"] * n - 1e-9))
        cutoff = pool[k - 1]["final_score"]
        cutoffs[stage] = {"n": n, "k": k, "cutoff": cutoff}
        for x in pool:
            if x["final_score"] < cutoff:
                break
            if industries and x["industry"] not in industries:
                continue
            if r.get("min_score") is not None and x["final_score"] < r["min_score"]:
                continue
            entries.append({"credit_code": x["credit_code"], "stage": stage, "rank_in_stage": x["rank_in_stage"],
                            "stage_total": n, "final_score": x["final_score"],
                            "reason": f"{_stages()[stage]}第 {x['rank_in_stage']} 名（共 {n} 家参与排名），"
                                      f"位于前 {r['top_share']:.0%}（入库线 {cutoff:.4f} 分）"})
    return entries, cutoffs


def why_not(x, r, cutoffs) -> str:
    """Why an enterprise of last year's pool is not in this year's."""
    if x is None:
        return "本年度无评价记录"
    if x["excluded"]:
        return f"本年度不纳入积分管理（{'、'.join(x['exclusion_clauses']) or '负面清单'}）"
    if x["stage"] not in r["stages"]:
        return f"发展阶段变为{_stages().get(x['stage'], x['stage'])}，不在入库阶段内"
    if r.get("industries") and x["industry"] not in r["industries"]:
        return "所属行业不在入库行业内"
    c = cutoffs.get(x["stage"])
    if c and x["final_score"] < c["cutoff"]:
        return f"{_stages()[x['stage']]}第 {x['rank_in_stage']} 名（共 {c['n']} 家），未进入前 {r['top_share']:.0%}"
    return "未达到入库最低分"


def _rows(s, run):
    rows, _ = query.enterprises(s, run, per_page=None, sort="credit_code")
    return rows


def generate_pool(s, run: Run, user) -> list:
    """The year's pool from a completed run, replacing the year's earlier pool (audited)."""
    r = rule("seed_pool")
    entries, _ = seed_select(_rows(s, run), r)
    s.execute(delete(SeedPoolEntry).where(SeedPoolEntry.year == run.year))
    for e in entries:
        s.add(SeedPoolEntry(year=run.year, run_id=run.id, **e))
    audit(s, user, "seed_pool.generate", f"year:{run.year}", run=run.id, entries=len(entries), rule=basis(r))
    return entries


def pool(s, year) -> dict:
    """The pool of `year` with its entries and exits against the year before, and why."""
    r = rule("seed_pool")
    cur = s.scalars(select(SeedPoolEntry).where(SeedPoolEntry.year == year).order_by(
        SeedPoolEntry.stage, SeedPoolEntry.rank_in_stage, SeedPoolEntry.credit_code)).all()
    prev = {e.credit_code: e for e in s.scalars(select(SeedPoolEntry).where(SeedPoolEntry.year == year - 1))}
    names = dict(s.execute(select(Enterprise.credit_code, Enterprise.name)).all())
    run = s.get(Run, cur[0].run_id) if cur else None
    entries = [{"credit_code": e.credit_code, "name": names.get(e.credit_code, ""), "stage": e.stage,
                "stage_zh": _stages().get(e.stage, e.stage), "rank_in_stage": e.rank_in_stage,
                "stage_total": e.stage_total, "final_score": e.final_score, "reason": e.reason,
                "new": e.credit_code not in prev} for e in cur]
    exits = []
    if run is not None and prev:
        rows = {x["credit_code"]: x for x in _rows(s, run)}
        _, cutoffs = seed_select(list(rows.values()), r)
        codes = {e.credit_code for e in cur}
        for code, e in sorted(prev.items()):
            if code not in codes:
                exits.append({"credit_code": code, "name": names.get(code, ""), "stage_last_year": e.stage,
                              "reason": why_not(rows.get(code), r, cutoffs)})
    return {"year": year, "run_id": run.id if run else None, "rule": basis(r), "entries": entries,
            "entered": sum(e["new"] for e in entries) if prev else None, "exits": exits,
            "previous_year_size": len(prev)}


# ---- stage services (§五.三) ------------------------------------------------------------------------

def recommend(detail) -> list:
    """Services for one enterprise's score detail (query.score_detail), each with its reason."""
    r = rule("services")
    if detail is None or detail["excluded"]:
        return []
    out = [{"service": x, "reason": f"{detail['stage_zh']}企业的分阶段服务", "clause": f"{r['id']} by_stage"}
           for x in r["by_stage"].get(detail["stage"], [])]
    peers = detail["peers"]
    titles = category_titles(detail)
    ratios = {k: detail[f"{k}_score"] / peers[f"{k}_score"] for k in titles
              if peers.get(f"{k}_score") and detail.get(f"{k}_score") is not None}
    if ratios:
        weakest = min(ratios, key=lambda k: (ratios[k], k))
        if ratios[weakest] < 1:
            out += [{"service": x, "reason": f"{titles[weakest]}积分 {detail[f'{weakest}_score']:.2f}，低于同阶段中位数 "
                                           f"{peers[f'{weakest}_score']:.2f}（最薄弱的类别）",
                     "clause": f"{r['id']} by_weakest_category"} for x in r["by_weakest_category"].get(weakest, [])]
    w = r["weak_indicators"]
    weak = [(i["points_median"] - i["points"], i) for i in detail["indicators"]
            if i.get("points_median") and i["points"] < w["below_share_of_median"] * i["points_median"]]
    for _, i in sorted(weak, key=lambda t: (-t[0], t[1]["clause"]))[:w["max"]]:
        out.append({"service": w["service"].format(title=i["title"]),
                    "reason": f"{i['clause']} 得分 {i['points']:.2f}，低于同阶段中位数 {i['points_median']:.2f} 的 "
                              f"{w['below_share_of_median']:.0%}", "clause": f"{r['id']} weak_indicators"})
    return out


def service_list(s, run, stage=None):
    """Every scored enterprise of a run with its recommended services (for officers)."""
    rows = [x for x in _rows(s, run) if not x["excluded"] and (stage is None or x["stage"] == stage)]
    out = []
    for x in rows:
        d = query.score_detail(s, run, x["credit_code"])
        for sv in recommend(d):
            out.append({"credit_code": x["credit_code"], "name": x["name"], "stage_zh": x["stage_zh"], **sv})
    return out


# ---- honour lists (§六.二) ----------------------------------------------------------------------------

def honour_scopes() -> list:
    """The honour lists: one per stage of the policy in force, and the overall list."""
    return list(_stages()) + ["overall"]


class RunNotPublished(Exception):
    pass


def publish_honours(s, run, scope, top_n, user) -> HonourList:
    """Publish the top `top_n` of a stage (or overall) of a published run: an honour list is
    public, so it may not show a run that is not."""
    if run.published_at is None:
        raise RunNotPublished(f"第 {run.id} 批次尚未发布：请先发布该批次，再发布其榜单 / publish run {run.id} first")
    if scope == "overall":
        rows, _ = query.enterprises(s, run, excluded=False, sort="rank_overall", per_page=None)
        rows = [x for x in rows if x["rank_overall"] is not None and x["rank_overall"] <= top_n]
        title = f"{run.year}年度企业创新积分总榜（前 {top_n} 名）"
        entries = [{"rank": x["rank_overall"], **_honour(x)} for x in rows]
    else:
        rows = query.rankings(s, run, scope, top_n)[scope]
        title = f"{run.year}年度{_stages()[scope]}企业创新积分榜（前 {top_n} 名）"
        entries = [{"rank": x["rank_in_stage"], **_honour(x)} for x in rows]
    h = HonourList(run_id=run.id, year=run.year, scope=scope, top_n=top_n, title=title,
                   entries=json.dumps(entries, ensure_ascii=False), published_by=user.id if user else None)
    s.add(h)
    s.flush()
    audit(s, user, "honours.publish", f"run:{run.id}", scope=scope, top_n=top_n, list=h.id, entries=len(entries))
    return h


def _honour(x):
    return {"credit_code": x["credit_code"], "name": x["name"], "industry": x["industry"], "park": x["park"],
            "stage": x["stage"], "final_score": x["final_score"]}


def honours(s, year=None) -> dict:
    """The newest published list of each scope (of `year`, or of the newest year with any)."""
    if year is None:
        year = s.scalar(select(HonourList.year).order_by(HonourList.year.desc()).limit(1))
    lists = {}
    if year is not None:
        for h in s.scalars(select(HonourList).where(HonourList.year == year).order_by(HonourList.id)):
            lists[h.scope] = {"id": h.id, "scope": h.scope, "title": h.title, "top_n": h.top_n, "run_id": h.run_id,
                              "published_at": h.published_at.isoformat(), "entries": json.loads(h.entries)}
    return {"year": year, "lists": [lists[k] for k in honour_scopes() if k in lists]}


# ---- the banks' credit reference (§五.二) ---------------------------------------------------------------

def grade(percentile, excluded):
    r = rule("credit")
    if excluded:
        return dict(r["excluded"])
    for g in r["grades"]:
        if percentile is not None and percentile >= g["min"]:
            return {"grade": g["grade"], "text": g["text"]}
    return {"grade": "", "text": ""}


def trend(s, code) -> list:
    """The enterprise's final score in the newest published run of each year."""
    out = []
    years = sorted({y for (y,) in s.execute(select(Run.year).where(Run.status == "done", Run.published_at.is_not(None)))})
    for y in years:
        run = current_run(s, y, published=True)
        r = s.scalar(select(Result).where(Result.run_id == run.id, Result.credit_code == code))
        if r is not None:
            out.append({"year": y, "stage": r.stage, "stage_zh": _stages().get(r.stage, r.stage), "excluded": r.excluded,
                        "final_score": r.final_score, "rank_band": query.rank_band(r.stage_percentile)})
    return out


class CreditRefused(Exception):
    def __init__(self, status, message):
        self.status = status
        super().__init__(message)


NO_CREDIT_REFERENCE = ("没有可提供的信贷参考（企业不存在、未同意提供或尚无已发布的评价结果） / no credit reference "
                       "available (no such enterprise, no consent, or no published result)")


def credit_lookup(s, user, code, year=None) -> dict:
    """A partner bank's lookup of an enterprise (its newest published run, or `year`'s):
    logged whether or not it is answered. Refused (CreditRefused) without the enterprise's
    consent, without a published run, when the enterprise was not evaluated or does not
    exist, always with the same answer: a bank cannot tell which enterprises exist or which
    have declined."""
    ent = s.get(Enterprise, code)
    run = current_run(s, year, published=True)
    view = credit_view(s, run, code) if ent is not None and ent.credit_consent and run is not None else None
    s.add(CreditLookup(user_id=user.id, credit_code=code, run_id=run.id if run else None, granted=view is not None))
    s.commit()
    if view is None:
        raise CreditRefused(404, NO_CREDIT_REFERENCE)
    return view


def credit_view(s, run, code):
    ref = query.credit_reference(s, run, code)
    if ref is None:
        return None
    r = s.scalar(select(Result).where(Result.run_id == run.id, Result.credit_code == code))
    ref.update(stage_percentile=None if r.excluded else r.stage_percentile, **grade(r.stage_percentile, r.excluded),
               trend=trend(s, code), grade_basis=basis({**rule("credit"), "id": rule("credit")["id"]}))
    return ref


# ---- the monitoring report (§六.三) -------------------------------------------------------------------

def _clause_counts(traces, group):
    counts = {}
    for t in traces:
        for e in t.get(group) or []:
            if e.get("fired", True) is False or e.get("in_scope") is True:   # notes, and in-scope decisions
                continue
            counts[e["clause"]] = counts.get(e["clause"], 0) + 1
    return dict(sorted(counts.items()))


def monitoring(s, run) -> dict:
    """The yearly monitoring report's figures, from a run and the year before's current run."""
    from . import diagnostics
    agg = query.aggregates(s, run)
    results = s.scalars(select(Result).where(Result.run_id == run.id)).all()
    ents = {e.credit_code: e for e in s.scalars(select(Enterprise))}
    header = query.trace_header(s, run).get("clauses", {})
    traces = [query.expand_trace(s, run, r) for r in results]

    def by(key):
        groups = {}
        for r in results:
            k = getattr(ents.get(r.credit_code), key, "") if key != "stage" else r.stage
            g = groups.setdefault(k or "", {"count": 0, "scored": 0, "sum": 0.0})
            g["count"] += 1
            if not r.excluded:
                g["scored"] += 1
                g["sum"] += r.final_score
        return [{"key": k, "label": _stages().get(k, k) if key == "stage" else (k or "未填"), "count": g["count"],
                 "mean": round(g["sum"] / g["scored"], 2) if g["scored"] else None}
                for k, g in sorted(groups.items(), key=lambda t: list(_stages()).index(t[0]) if key == "stage" else t[0])]
    prev = current_run(s, run.year - 1)
    change = None
    if prev is not None:
        before = {r.credit_code: r for r in s.scalars(select(Result).where(Result.run_id == prev.id))}
        both = [(before[r.credit_code], r) for r in results if r.credit_code in before]
        scored = [(a, b) for a, b in both if not a.excluded and not b.excluded]
        level = {k: i for i, k in enumerate(_stages())}
        pa = query.aggregates(s, prev)
        change = {"previous_run": prev.id, "previous_enterprises": prev.enterprises, "previous_excluded": prev.excluded,
                  "previous_mean": pa["mean_score"], "in_both": len(both),
                  "mean_change": round(sum(b.final_score - a.final_score for a, b in scored) / len(scored), 2) if scored else None,
                  "stage_up": sum(level[b.stage] > level[a.stage] for a, b in both),
                  "stage_down": sum(level[b.stage] < level[a.stage] for a, b in both),
                  "newly_excluded": sum(b.excluded and not a.excluded for a, b in both),
                  "previous_granted": prev.granted_yuan}
    lines = query.award_lines(s, run)
    totals = query.award_totals(lines, run)
    top = [x for x in query.enterprises(s, run, excluded=False, sort="rank_overall", per_page=10)[0]]
    return {"year": run.year, "run_id": run.id, "policy": run.policy_name, "policy_sha256": run.policy_sha256,
            "document": query.trace_header(s, run).get("document", ""), "generated_at": utcnow().isoformat(timespec="seconds"),
            "enterprises": run.enterprises, "excluded": run.excluded, "scored": run.enterprises - run.excluded,
            "mean_score": agg["mean_score"], "by_stage": by("stage"), "by_industry": by("industry"), "by_park": by("park"),
            "histogram": agg["score_histogram"],
            "negative_list": [{"clause": k, "title": header.get(k, {}).get("title", ""), "count": v}
                              for k, v in (_clause_counts(traces, "scope") | _clause_counts(traces, "negative_list")).items()],
            "decay": [{"clause": k, "title": header.get(k, {}).get("title", ""), "count": v}
                      for k, v in _clause_counts(traces, "decay").items()],
            "bonus": [{"clause": k, "title": header.get(k, {}).get("title", ""), "count": v}
                      for k, v in _clause_counts(traces, "bonus").items()],
            "awards": totals, "change": change, "top": top, "calibration": diagnostics.report_section(s, run)}


# ---- case files of these rules (tests/cases-uses), as for the policy's clauses -------------------------

CASES = assets.path("tests/cases-uses")


def load_use_cases(folder=None):
    out = []
    for f in sorted(Path(folder or CASES).glob("*.yaml")):
        doc = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        out += [(f.name, doc["rule"], c) for c in doc.get("cases") or []]
    return out


def run_use_case(rule_id, case) -> list:
    """The differences from the case's expectations (empty when it passes)."""
    exp = case["expect"]
    if rule_id == "SEED":
        r = {**rule("seed_pool"), **(case.get("patch") or {})}
        rows = [{"credit_code": str(x["ent"]), "stage": x["stage"], "industry": x.get("industry", "生物医药"),
                 "excluded": bool(x.get("excluded")), "final_score": x.get("score"), "rank_in_stage": 0}
                for x in case["results"]]
        for stage in _stages():
            ranked = sorted((x for x in rows if x["stage"] == stage and x["final_score"] is not None),
                            key=lambda x: -x["final_score"])
            for x in ranked:
                x["rank_in_stage"] = 1 + sum(y["final_score"] > x["final_score"] for y in ranked)
        got = {e["credit_code"] for e in seed_select(rows, r)[0]}
        return ([f"{c} 应入库" for c in exp.get("in", []) if str(c) not in got]
                + [f"{c} 不应入库" for c in exp.get("out", []) if str(c) in got])
    if rule_id == "SVC":
        e, p = case["enterprise"], case["peers"]
        detail = {"excluded": False, "stage": e["stage"], "stage_zh": _stages()[e["stage"]],
                  **{f"{k}_score": e[k] for k in category_titles()},
                  "peers": {f"{k}_score": p[k] for k in category_titles()},
                  "indicators": [{"clause": i["clause"], "title": i["title"], "points": i["points"],
                                  "points_median": i["median"]} for i in case.get("indicators", [])]}
        got = [x["service"] for x in recommend(detail)]
        return ([f"应推荐「{x}」" for x in exp.get("includes", []) if x not in got]
                + [f"不应推荐「{x}」" for x in exp.get("excludes", []) if x in got])
    if rule_id == "CREDIT-BAND":
        g = grade(case.get("percentile"), bool(case.get("excluded")))
        band = query.rank_band(None if case.get("excluded") else case.get("percentile"))
        out = []
        if "grade" in exp and g["grade"] != exp["grade"]:
            out.append(f"grade {g['grade']} != expected {exp['grade']}")
        if "band" in exp and band != exp["band"]:
            out.append(f"band {band} != expected {exp['band']}")
        return out
    return [f"未知的规则 {rule_id}"]



def _stages() -> dict:
    """Stage key -> Chinese name of the policy in force."""
    return shape.stages()
