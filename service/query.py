"""积分查询: the questions the API and the pages ask of stored runs (no score is recomputed
here: every figure is read from a run's stored results)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import and_, func, or_, select

from rules.explain import explain_line

from . import shape
from .models import AwardLine, Enterprise, Result, Run, RunFile, as_dict

SORTS = {"final_score": Result.final_score, "rank_in_stage": Result.rank_in_stage,
         "rank_overall": Result.rank_overall, "credit_code": Result.credit_code, "name": Enterprise.name}
SCORE_KEYS = ("weighted", "deductions", "decay_factor", "bonus", "final_score")
USES = Path(__file__).resolve().parents[1] / "rules" / "uses"


def run_file(s, run_id, name) -> bytes | None:
    f = s.get(RunFile, (run_id, name))
    return f.content if f else None


@lru_cache(maxsize=32)
def _header(content: bytes) -> dict:
    return json.loads(content)


def category_titles(s=None, run=None) -> dict:
    """The category titles (技术创新指标 …) of indicators.yaml, from the run's trace header
    (the policy version it was evaluated under), else from the policy in force."""
    if s is not None and run is not None:
        cats = trace_header(s, run).get("categories")
        if cats:
            return {k: v.get("title", k) for k, v in cats.items()}
    return shape.categories(s)


def stage_names(s=None, run=None) -> dict:
    """Stage key -> Chinese name, lowest level first: of the run's policy version (its trace
    header), else of the policy in force."""
    if s is not None and run is not None:
        st = trace_header(s, run).get("stages")
        if st:
            return dict(st)
    return shape.stages(s)


def sort_column(key):
    """A sort key of the enterprise list: a stored column, or a category score (`<cat>_score`)."""
    if key in SORTS:
        return SORTS[key]
    if key.endswith("_score") and key[:-6].isidentifier():
        return Result.category_scores[key[:-6]].as_float()
    return None


_HEADERS: dict = {}


def trace_header(s, run) -> dict:
    """The run's trace header (its policy version's clauses, stages, categories), read once
    per stored run: a done run's files never change."""
    key = (str(s.get_bind().url), run.id, run.finished_at)
    if run.status != "done" or run.finished_at is None:
        return _header(run_file(s, run.id, "trace_header.json") or b"{}")
    h = _HEADERS.get(key)
    if h is None:
        h = _header(run_file(s, run.id, "trace_header.json") or b"{}")
        if len(_HEADERS) > 64:
            _HEADERS.clear()
        _HEADERS[key] = h
    return h


TRACE_DICTIONARY = "trace.zdict"             # a run's dictionary of its packed traces (service.packing)
PROVENANCE_DICTIONARY = "provenance.zdict"   # … of its packed provenance
INDICATORS_DICTIONARY = "indicators.zdict"   # … and of its packed indicators


def unpacked(s, run, blob, name, text=None) -> str | None:
    """A text a run stored: packed (`Result.trace_packed`, `provenance_packed`,
    `indicators_packed`; runs stored since December 2026), unpacked with the run's dictionary
    `name` (read once per process and thread), else `text` (runs stored before)."""
    if blob is None:
        return text
    from .packing import unpack
    # the engine itself names the database (rendering its URL took longer than the unpacking)
    return unpack(blob, (s.get_bind(), run.id, run.finished_at, name), lambda: run_file(s, run.id, name))


def stored_trace(s, run, result) -> str | None:
    """A result's compact trace text."""
    return unpacked(s, run, result.trace_packed, TRACE_DICTIONARY, result.trace)


def stored_indicators(s, run, result) -> str:
    """A result's indicators, {clause id: [value, points]} as JSON text."""
    return unpacked(s, run, result.indicators_packed, INDICATORS_DICTIONARY, result.indicators)


def expand_trace(s, run, result) -> dict:
    """A stored result's trace (its entries name their clause id, the run's trace header holds
    the titles and citations) as the full trace.jsonl object, every entry with its title and
    citation; runs stored with full lines come back as they are. {} for no result."""
    from rules.tracefile import expand
    text = stored_trace(s, run, result) if result is not None else None
    return expand(text, trace_header(s, run)) if text else {}


def result_row(result: Result, ent: Enterprise | None, stages: dict | None = None) -> dict:
    stages = stages if stages is not None else shape.stages()
    d = {"credit_code": result.credit_code, "name": ent.name if ent else "", "park": ent.park if ent else "",
         "industry": ent.industry if ent else "", "stage": result.stage, "stage_zh": stages.get(result.stage, ""),
         "excluded": result.excluded,
         "exclusion_clauses": [c for c in result.exclusion_clauses.split(";") if c]}
    d["category_scores"] = as_dict(result.category_scores)
    for k, v in d["category_scores"].items():
        d[f"{k}_score"] = v
    for k in SCORE_KEYS:
        d[k] = getattr(result, k)
    d.update(rank_in_stage=result.rank_in_stage, rank_overall=result.rank_overall,
             stage_percentile=result.stage_percentile)
    return d


def enterprises(s, run, park=None, industry=None, stage=None, min_score=None, max_score=None, q=None,
                excluded=None, sort="rank_overall", order="asc", page=1, per_page=50):
    """Search and filter the enterprises of a run; returns (rows, total)."""
    base = select(Result, Enterprise).join(Enterprise, Enterprise.credit_code == Result.credit_code) \
        .where(Result.run_id == run.id)
    conds, joined = [], bool(park or industry or q)     # a filter on the enterprise's own columns
    if park:
        conds.append(Enterprise.park == park)
    if industry:
        conds.append(Enterprise.industry == industry)
    if stage:
        conds.append(Result.stage == stage)
    if min_score is not None:
        conds.append(Result.final_score >= min_score)
    if max_score is not None:
        conds.append(Result.final_score <= max_score)
    if excluded is not None:
        conds.append(Result.excluded.is_(excluded))
    if q:
        # % and _ are searched for as such, not as wildcards
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(or_(Enterprise.name.like(like, escape="\\"), Result.credit_code.like(like.upper(), escape="\\")))
    if conds:
        base = base.where(and_(*conds))
    # counted from the results alone unless a filter reads the enterprise: every result has
    # its enterprise (a run stores the records' enterprises, which are never deleted), and the
    # index on the run answers the count without the join
    counted = select(func.count()).select_from(Result).where(Result.run_id == run.id, *conds)
    if joined:
        counted = counted.join(Enterprise, Enterprise.credit_code == Result.credit_code)
    total = s.scalar(counted)
    col = sort_column(sort)
    if col is None:
        col = SORTS["rank_overall"]
    # excluded enterprises (no score) after the scored ones, either way: NULLS LAST (an `IS
    # NULL` key first made every page sort the run; an index serves the default list and a
    # stage by final score, highest first)
    key = (col.desc() if order == "desc" else col.asc()).nulls_last()
    query = base.order_by(key, Result.credit_code)
    if per_page:
        query = query.offset((page - 1) * per_page).limit(per_page)
    stages = stage_names(s, run)
    return [result_row(r, e, stages) for r, e in s.execute(query)], total


def indicator_rows(indicators: str, header: dict) -> list[dict]:
    """A result's indicators (`stored_indicators`) with their clauses' titles and citations."""
    clauses = header.get("clauses", {})
    rows = []
    for cid, (value, points) in json.loads(indicators).items():
        c = clauses.get(cid, {})
        rows.append({"clause": cid, "title": c.get("title", ""), "citation": c.get("citation", ""),
                     "category": c.get("category", ""),
                     "value": value, "points": points})
    return rows


def _results_read() -> dict:
    from flask import g, has_app_context
    return g.setdefault("results_read", {}) if has_app_context() else {}


def result_of(s, run, code) -> Result | None:
    """An enterprise's result in a run, read once per request (the score, its provenance and
    its eligibility all start from it)."""
    memo = _results_read()
    key = (run.id, code)
    if key not in memo:
        memo[key] = s.scalar(select(Result).where(Result.run_id == run.id, Result.credit_code == code))
    return memo[key]


def remember_result(run, code, result: Result | None):
    """`result_of`'s answer for the request, read by its caller with the run (None: none)."""
    _results_read()[(run.id, code)] = result


def score_detail(s, run, code) -> dict | None:
    r = result_of(s, run, code)
    if r is None:
        return None
    ent = s.get(Enterprise, code)
    header = trace_header(s, run)
    trace = expand_trace(s, run, r)
    d = result_row(r, ent, stage_names(s, run))
    d.update(run_id=run.id, year=run.year, policy=run.policy_name, policy_sha256=run.policy_sha256,
             document=header.get("document", ""),
             indicators=[] if r.excluded else indicator_rows(stored_indicators(s, run, r), header),
             explanation=explain_line(trace, header), trace=trace, categories=category_titles(s, run))
    peers = stage_stats(s, run, r.stage)
    d["peers"] = {k: v for k, v in peers.items() if k != "indicators"}
    for row in d["indicators"]:
        row.update(peers["indicators"].get(row["clause"], {}))
    return d


def rankings(s, run, stage=None, top=None):
    q = select(Result, Enterprise).join(Enterprise, Enterprise.credit_code == Result.credit_code) \
        .where(Result.run_id == run.id, Result.excluded.is_(False))
    out = {}
    stages = stage_names(s, run)
    for st in ([stage] if stage else list(stages)):
        sq = q.where(Result.stage == st).order_by(Result.rank_in_stage, Result.credit_code)
        if top:
            sq = sq.where(Result.rank_in_stage <= top)
        out[st] = [result_row(r, e, stages) for r, e in s.execute(sq)]
    return out


def aggregates(s, run, bins=10):
    """Counts by stage, industry and park, exclusions, and the score histogram."""
    def counts(col):
        rows = s.execute(select(col, func.count()).select_from(Result)
                         .join(Enterprise, Enterprise.credit_code == Result.credit_code)
                         .where(Result.run_id == run.id).group_by(col).order_by(col))
        return [{"key": k or "", "count": n} for k, n in rows]
    stages = stage_names(s, run)
    order = list(stages)
    stage = sorted(counts(Result.stage), key=lambda r: order.index(r["key"]) if r["key"] in order else len(order))
    for row in stage:
        row["label"] = stages.get(row["key"], row["key"])
    scores = list(s.scalars(select(Result.final_score).where(Result.run_id == run.id, Result.excluded.is_(False))))
    hist = []
    if scores:
        width = 100 / bins
        edges = [round(i * width, 4) for i in range(bins + 1)]
        cnt = [0] * bins
        for v in scores:
            cnt[min(int(max(v, 0) // width), bins - 1)] += 1
        hist = [{"from": edges[i], "to": edges[i + 1], "count": cnt[i]} for i in range(bins)]
    return {"run_id": run.id, "year": run.year, "enterprises": run.enterprises, "excluded": run.excluded,
            "by_stage": stage, "by_industry": counts(Enterprise.industry), "by_park": counts(Enterprise.park),
            "score_histogram": hist,
            "mean_score": round(sum(scores) / len(scores), 4) if scores else None}


def clause_titles(s, run) -> dict:
    return {k: v.get("title", "") for k, v in trace_header(s, run).get("clauses", {}).items()}


def award_lines(s, run, code=None, clause=None):
    q = select(AwardLine, Enterprise).join(Enterprise, Enterprise.credit_code == AwardLine.credit_code) \
        .where(AwardLine.run_id == run.id)
    if code:
        q = q.where(AwardLine.credit_code == code)
    if clause:
        q = q.where(AwardLine.clause == clause)
    titles = clause_titles(s, run)
    header = trace_header(s, run).get("clauses", {})
    rows = []
    for a, e in s.execute(q.order_by(AwardLine.credit_code, AwardLine.id)):
        rows.append({"credit_code": a.credit_code, "name": e.name, "clause": a.clause,
                     "title": titles.get(a.clause, ""), "citation": header.get(a.clause, {}).get("citation", ""),
                     "eligible_yuan": a.eligible_yuan, "granted_yuan": a.granted_yuan,
                     "basis": [b for b in a.basis.split(";") if b]})
    return rows


def award_totals(rows, run):
    per = {}
    for r in rows:
        t = per.setdefault(r["clause"], {"clause": r["clause"], "title": r["title"], "lines": 0,
                                         "eligible_yuan": 0, "granted_yuan": 0})
        t["lines"] += 1
        t["eligible_yuan"] += r["eligible_yuan"]
        t["granted_yuan"] += r["granted_yuan"]
    return {"budget_yuan": run.budget, "strategy": run.strategy, "per_clause": sorted(per.values(), key=lambda t: t["clause"]),
            "eligible_yuan": sum(r["eligible_yuan"] for r in rows), "granted_yuan": sum(r["granted_yuan"] for r in rows)}


def eligibility(s, run, code):
    """Per reward item: whether the enterprise is eligible, and for what, with its basis."""
    lines = {r["clause"]: r for r in award_lines(s, run, code=code)}
    header = trace_header(s, run).get("clauses", {})
    result = result_of(s, run, code)
    trace = expand_trace(s, run, result)
    said = {e["clause"]: e.get("text", "") for e in trace.get("rewards") or []}
    for e in trace.get("rewards_not_paid") or []:
        if "reason" in e:
            said.setdefault(e["clause"], e.get("text", ""))
    items = []
    for cid, c in header.items():
        if not cid.startswith("RW-"):
            continue
        line = lines.get(cid)
        items.append({"clause": cid, "title": c.get("title", ""), "citation": c.get("citation", ""),
                      "eligible": line is not None, "eligible_yuan": line["eligible_yuan"] if line else 0,
                      "granted_yuan": line["granted_yuan"] if line else 0, "basis": line["basis"] if line else [],
                      "explanation": said.get(cid) or "本企业当年的数据不涉及本项奖励"})
    return items


def diff(s, a: Run, b: Run, limit=None):
    """What changed from run a to run b: per enterprise (stage, exclusion, score, rank) and
    per award line (added, removed, changed)."""
    def results(run):
        return {r.credit_code: {"stage": r.stage, "excluded": r.excluded, "final_score": r.final_score,
                                "rank_overall": r.rank_overall}
                for r in s.scalars(select(Result).where(Result.run_id == run.id))}

    def lines(run):
        return {(x.credit_code, x.clause): {"eligible_yuan": x.eligible_yuan, "granted_yuan": x.granted_yuan,
                                            "basis": x.basis}
                for x in s.scalars(select(AwardLine).where(AwardLine.run_id == run.id))}
    names = dict(s.execute(select(Enterprise.credit_code, Enterprise.name)).all())
    out = diff_rows(results(a), results(b), lines(a), lines(b), names)
    out["summary"].update(granted_a=a.granted_yuan, granted_b=b.granted_yuan,
                          granted_change=b.granted_yuan - a.granted_yuan,
                          eligible_a=a.eligible_yuan, eligible_b=b.eligible_yuan)
    if limit:
        out["enterprises"] = out["enterprises"][:limit]
    return {"run_a": a.id, "run_b": b.id, **out}


def diff_rows(ra: dict, rb: dict, la: dict, lb: dict, names: dict) -> dict:
    """Compare two evaluations given as {code: {stage, excluded, final_score, rank_overall}}
    and {(code, clause): {eligible_yuan, granted_yuan, basis}} (runs, or what-if)."""
    changes = []
    for code in sorted(set(ra) | set(rb)):
        x, y = ra.get(code), rb.get(code)
        row = {"credit_code": code, "name": names.get(code, ""),
               "stage_a": x["stage"] if x else None, "stage_b": y["stage"] if y else None,
               "excluded_a": x["excluded"] if x else None, "excluded_b": y["excluded"] if y else None,
               "score_a": x["final_score"] if x else None, "score_b": y["final_score"] if y else None,
               "rank_a": x["rank_overall"] if x else None, "rank_b": y["rank_overall"] if y else None}
        row["score_change"] = (round(row["score_b"] - row["score_a"], 4)
                               if row["score_a"] is not None and row["score_b"] is not None else None)
        row["rank_change"] = (row["rank_a"] - row["rank_b"]
                              if row["rank_a"] is not None and row["rank_b"] is not None else None)
        what = [k for k, changed in (("added", x is None), ("removed", y is None),
                                      ("stage", x and y and x["stage"] != y["stage"]),
                                      ("excluded", x and y and x["excluded"] != y["excluded"]),
                                      ("score", x and y and x["final_score"] != y["final_score"]),
                                      ("rank", x and y and x["rank_overall"] != y["rank_overall"])) if changed]
        if what:
            row["changed"] = what
            changes.append(row)
    awards = []
    for key in sorted(set(la) | set(lb)):
        x, y = la.get(key), lb.get(key)
        kind = "added" if x is None else "removed" if y is None else ("changed" if x != y else None)
        if kind:
            awards.append({"credit_code": key[0], "name": names.get(key[0], ""), "clause": key[1], "change": kind,
                           "eligible_a": x["eligible_yuan"] if x else None, "eligible_b": y["eligible_yuan"] if y else None,
                           "granted_a": x["granted_yuan"] if x else None, "granted_b": y["granted_yuan"] if y else None})
    summary = {k: sum(k in c["changed"] for c in changes) for k in ("added", "removed", "stage", "excluded", "score", "rank")}
    summary["enterprises_changed"] = len(changes)
    summary.update({f"awards_{k}": sum(w["change"] == k for w in awards) for k in ("added", "removed", "changed")})
    return {"summary": summary, "enterprises": changes, "awards": awards}


@lru_cache(maxsize=1)
def credit_bands():
    return yaml.safe_load((USES / "credit.yaml").read_text(encoding="utf-8"))


def rank_band(percentile) -> str:
    if percentile is None:
        return "未参与排名"
    for band in credit_bands()["bands"]:
        if percentile >= band["min"]:
            return band["label"]
    return ""


def credit_reference(s, run, code):
    r = s.scalar(select(Result).where(Result.run_id == run.id, Result.credit_code == code))
    if r is None:
        return None
    ent = s.get(Enterprise, code)
    cfg = credit_bands()
    return {"credit_code": code, "name": ent.name if ent else "", "year": run.year, "run_id": run.id,
            "stage": r.stage, "stage_zh": stage_names(s, run).get(r.stage, ""), "excluded": r.excluded,
            "final_score": r.final_score, "rank_band": rank_band(r.stage_percentile),
            "basis": f"{cfg['id']} {cfg['title']}（{cfg['citation']}）"}


def contracts_of(s, run, code) -> list[dict]:
    """An enterprise's technical contracts registered in the run's year, with their kind in
    Chinese and what RW-5 made of each (from the run's trace: counted or not, its 1%)."""
    from .models import Contract
    result = result_of(s, run, code)
    trace = expand_trace(s, run, result)
    per = {}
    for line in trace.get("rewards") or []:
        inp = line.get("inputs") or {}
        for i, no in enumerate(inp.get("contract_no") or []):
            per[no] = {"counted": inp["counted"][i], "yuan": inp["yuan"][i]}
    reasons = [e["text"] for e in trace.get("rewards_not_paid") or [] if e.get("reason") == "contracts"]
    out = []
    kinds = shape.data(s).contract_kinds
    for c in s.scalars(select(Contract).where(Contract.credit_code == code).order_by(Contract.contract_no)):
        if c.registered_on.year != run.year:
            continue
        p = per.get(c.contract_no)
        note = ("计奖 {:,} 元".format(p["yuan"]) if p and p["counted"] else "不属于计奖的合同类别，不计奖"
                if p else (reasons[0] if reasons else "本企业当年未获得合同奖励"))
        out.append({"contract_no": c.contract_no, "kind": c.kind, "kind_zh": kinds.get(c.kind, c.kind),
                    "amount_wan": c.amount, "registered_on": c.registered_on.isoformat(), "rw5": note})
    return out


def _present(values):
    import numpy as np
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":       # a run's matrices: no loop
        v = values.astype("float64", copy=False)
    else:
        v = np.asarray([np.nan if x is None else x for x in values], dtype="float64")
    return v[~np.isnan(v)]


def _median(values):
    import numpy as np
    v = _present(values)
    return round(float(np.median(v)), 4) if len(v) else None


def _top_decile(values):
    import numpy as np
    v = _present(values)
    return round(float(np.percentile(v, 90)), 4) if len(v) else None


_STATS: dict = {}


def stage_stats(s, run, stage) -> dict:
    """The stage's medians (category scores, final score) and, per indicator, the median and
    the top-decile threshold (90th percentile) of values and points, over the stage's scored
    enterprises: computed once when the run is stored (its file stage_stats.json), else here
    for a run stored before that file existed. Runs are immutable once done, so either is kept
    per (run, stage)."""
    key = (run.id, run.finished_at, stage)
    out = _STATS.get(key)                  # one lookup: another thread may clear the cache meanwhile
    if out is not None:
        return out
    stored = run_file(s, run.id, "stage_stats.json")
    if stored is not None:
        out = json.loads(stored).get(stage) or {"stage": stage, "count": 0, "final_score": None, "indicators": {}}
        _STATS[key] = out
        return out
    return _computed_stage_stats(s, run, stage, key)


def stats_of(stage, cat_scores: dict, finals, indicators: dict) -> dict:
    """The figures of `stage_stats` from the stage's scored rows, column by column: category
    scores ({category: scores}), final scores, and {clause id: (values, points)}."""
    per = {}
    if len(finals):
        for cid, (vals, pts) in indicators.items():
            per[cid] = {"value_median": _median(vals), "value_top_decile": _top_decile(vals),
                        "points_median": _median(pts), "points_top_decile": _top_decile(pts)}
    out = {"stage": stage, "count": len(finals), "final_score": _median(finals), "indicators": per}
    if len(finals):
        for k, col in cat_scores.items():
            out[f"{k}_score"] = _median(col)
    return out


def _computed_stage_stats(s, run, stage, key) -> dict:
    rows = s.execute(select(Result.category_scores, Result.final_score, Result.indicators, Result.indicators_packed)
                     .where(Result.run_id == run.id, Result.stage == stage, Result.excluded.is_(False))).all()
    cols = list(zip(*rows)) if rows else [[]] * 4
    cats = [as_dict(t) for t in cols[0]]
    inds = [json.loads(unpacked(s, run, z, INDICATORS_DICTIONARY, t)) for t, z in zip(cols[2], cols[3])]
    out = stats_of(stage, {k: [c.get(k) for c in cats] for k in (cats[0] if cats else {})}, list(cols[1]),
                   {cid: ([d[cid][0] for d in inds], [d[cid][1] for d in inds]) for cid in (inds[0] if inds else {})})
    if len(_STATS) > 64:
        _STATS.clear()
    _STATS[key] = out
    return out
