"""Enterprises: scores, records and corrections, eligibility, rankings, aggregates, the
bank's credit lookup and the award list (blueprint `enterprises`)."""
from __future__ import annotations

from flask import jsonify, request
from flask_smorest import Blueprint, abort
from sqlalchemy import select


from .. import db, policies, query, shape, uses
from ..auth import api_user, require, role_of
from ..exports import export_response
from ..models import Record, Run, records_table
from ..schemas import (Aggregates, AwardQuery, Awards, Correction, CorrectionDone, CreditView, Eligibility,
                       EnterprisePage, EnterpriseQuery, FormatQuery, Potential, RankingQuery, Rankings, Records,
                       RunSelect, RunYear, Score)
from ..store import FieldRejected, correct_field, get_record, record_text
from .common import (READERS, check_keys, RESULT_COLUMNS, STAFF, answers, enterprise_session, pick_run,
                     result_columns)


# ---- enterprises, scores, rankings ----------------------------------------------------------
ent_bp = Blueprint("enterprises", __name__, url_prefix="/api", description="企业积分查询、排名与统计")


@ent_bp.route("/enterprises")
@require(*READERS)
@answers(ent_bp, EnterprisePage, files=True)
@ent_bp.arguments(EnterpriseQuery, location="query")
@ent_bp.response(200, EnterprisePage)
def enterprise_list(args):
    """企业列表：按园区、行业、阶段、积分区间检索、排序、分页；format=csv/xlsx 导出全部结果"""
    s = db.session()
    run = pick_run(args)
    fmt = args["format"]
    check_keys(s, run, stage=args.get("stage"), sort=args["sort"])
    filters = {k: args.get(k) for k in ("park", "industry", "stage", "min_score", "max_score", "q", "excluded")}
    rows, total = query.enterprises(s, run, **filters, sort=args["sort"], order=args["order"],
                                     page=args["page"], per_page=None if fmt != "json" else args["per_page"])
    if fmt != "json":
        return export_response(rows, result_columns(query.category_titles(s, run)), fmt,
                               f"enterprises-{run.year}-run{run.id}")
    return {"run_id": run.id, "year": run.year, "total": total, "page": args["page"],
            "per_page": args["per_page"], "items": rows}


@ent_bp.route("/enterprises/<code>")
@db.read_only
@require("enterprise", *READERS)
@answers(ent_bp, Score, files=True)
@ent_bp.arguments(RunSelect, location="query")
def enterprise_score(args, code):
    """一家企业的积分：三类积分、每个指标的值与得分、中文说明的计算过程（trace）"""
    s = enterprise_session(code)
    run = pick_run(args, code)
    d = query.score_detail(s, run, code)
    if d is None:
        abort(404, message=f"企业 {code} 不在第 {run.id} 批次（{run.year} 年度）的评价中")
    d["services"] = uses.recommend(d)
    from .. import provenance
    pv = policies.of_run(s, run)           # the run's own dictionary: its fields and sources
    provenance.attach_to_score(s, run, d, pv.data if pv else shape.data(s), staff=role_of(api_user(request)) in READERS)
    if args["format"] != "json":
        cols = [("clause", "条款"), ("title", "指标"), ("citation", "依据"), ("value", "指标值"), ("points", "得分")]
        return export_response(d["indicators"], cols, args["format"], f"score-{code}-{run.year}")
    return jsonify(d)


@ent_bp.route("/enterprises/<code>/potential")
@require("enterprise", *READERS)
@answers(ent_bp, Potential, files=True)
@ent_bp.arguments(RunSelect, location="query")
def enterprise_potential(args, code):
    """提升空间（§四.(四)）：同阶段其他企业不变，某项指标达到同阶段中位数或前10%时的最终积分和排名
    （改动该企业一项记录后用计分程序重新计算）"""
    from .. import diagnostics
    s = enterprise_session(code)
    run = pick_run(args, code)
    d = query.score_detail(s, run, code)
    if d is None:
        abort(404, message=f"企业 {code} 不在第 {run.id} 批次（{run.year} 年度）的评价中")
    p = diagnostics.potential(s, run, [code])[code]
    if args["format"] != "json":
        return export_response(p["levers"], diagnostics.LEVER_COLUMNS, args["format"], f"potential-{code}-{run.year}")
    return jsonify({"credit_code": code, "run_id": run.id, "year": run.year, "final_score": d["final_score"], **p})


@ent_bp.route("/enterprises/<code>/records")
@require("enterprise", *READERS)
@answers(ent_bp, Records, files=True)
@ent_bp.arguments(FormatQuery, location="query")
def enterprise_records(args, code):
    """一家企业各年度的记录（已审核的数据）"""
    s = enterprise_session(code)
    recs = s.scalars(select(Record).where(records_table.c.credit_code == code).order_by(records_table.c.year)).all()
    fields = shape.record_fields(s)
    rows = [record_text(r) for r in recs]
    if args["format"] != "json":
        return export_response(rows, [(f.key, f.label) for f in fields], args["format"], f"records-{code}")
    return jsonify({"credit_code": code, "labels": {f.key: f.label for f in fields}, "records": rows})


@ent_bp.route("/enterprises/<code>/records/<int(max=2147483647):year>", methods=["PATCH"])
@require(*STAFF)
@answers(ent_bp, CorrectionDone)
@ent_bp.arguments(Correction)
def record_correct(args, code, year):
    """工作人员更正一个字段（校验规则与导入相同；记入审计日志）"""
    s = db.session()
    rec = get_record(s, code, year)
    if rec is None:
        abort(404, message=f"没有 {code} 的 {year} 年度记录")
    try:
        old, new = correct_field(s, rec, args["field"], args["value"], api_user(request), args["reason"])
    except FieldRejected as exc:
        abort(422, message="值不合规 / invalid value", errors={"json": {args["field"]: [str(c) for c in exc.cells]}})
    s.commit()
    return jsonify({"credit_code": code, "year": year, "field": args["field"], "old": old, "new": new})


@ent_bp.route("/enterprises/<code>/eligibility")
@db.read_only
@require("enterprise", *READERS)
@answers(ent_bp, Eligibility, files=True)
@ent_bp.arguments(RunSelect, location="query")
def enterprise_eligibility(args, code):
    """一家企业对每个奖励事项的资格、核定与拨付金额及依据（财政局）"""
    s = enterprise_session(code)
    run = pick_run(args, code)
    items = query.eligibility(s, run, code)
    if args["format"] != "json":
        cols = [("clause", "条款"), ("title", "奖励事项"), ("eligible", "是否符合"), ("eligible_yuan", "核定金额（元）"),
                ("granted_yuan", "拨付金额（元）"), ("basis", "依据合同"), ("explanation", "计算与理由"),
                ("citation", "政策依据")]
        return export_response(items, cols, args["format"], f"eligibility-{code}-{run.year}")
    return jsonify({"credit_code": code, "run_id": run.id, "year": run.year, "items": items})


@ent_bp.route("/rankings")
@require("public", "enterprise", "bank", *READERS)
@answers(ent_bp, Rankings, files=True)
@ent_bp.arguments(RankingQuery, location="query")
def rankings(args):
    """各阶段排名（榜单）。公众只能看到已发布批次的前 N 名"""
    s = db.session()
    if role_of(api_user(request)) not in READERS:      # the public: the published honour lists only
        h = uses.honours(s, args.get("year"))
        stages = shape.stages(s)
        data = {x["scope"]: [{**e, "rank_in_stage": e["rank"], "stage_zh": stages.get(e["stage"], "")}
                             for e in x["entries"]] for x in h["lists"] if x["scope"] in stages}
        if args.get("stage"):
            data = {args["stage"]: data.get(args["stage"], [])}
        run = s.get(Run, h["lists"][0]["run_id"]) if h["lists"] else None
        if run is None:
            abort(404, message="尚未发布榜单 / no honour list published")
        top = None
    else:
        run = pick_run(args)
        check_keys(s, run, stage=args.get("stage"))
        top = args.get("top")
        data = query.rankings(s, run, args.get("stage"), top)
    if args["format"] != "json":
        rows = [r for st in data.values() for r in st]
        return export_response(rows, [("stage_zh", "发展阶段"), ("rank_in_stage", "同阶段排名")] + RESULT_COLUMNS[:4]
                               + [("final_score", "最终积分")], args["format"], f"rankings-{run.year}")
    return jsonify({"run_id": run.id, "year": run.year, "top": top, "stages": data})


@ent_bp.route("/aggregates")
@require("public", "enterprise", "bank", *READERS)
@answers(ent_bp, Aggregates, files=True)
@ent_bp.arguments(RunSelect, location="query")
def aggregates(args):
    """全区统计：参评企业数、按阶段/行业/园区分布、积分分布"""
    s = db.session()
    run = pick_run(args)
    data = query.aggregates(s, run)
    if args["format"] != "json":
        rows = ([{"dimension": "发展阶段", "key": r["label"], "count": r["count"]} for r in data["by_stage"]]
                + [{"dimension": "所属行业", "key": r["key"], "count": r["count"]} for r in data["by_industry"]]
                + [{"dimension": "所属园区", "key": r["key"], "count": r["count"]} for r in data["by_park"]])
        return export_response(rows, [("dimension", "维度"), ("key", "类别"), ("count", "企业数")], args["format"],
                               f"aggregates-{run.year}")
    return jsonify(data)


@ent_bp.route("/credit/<code>")
@require("bank")
@answers(ent_bp, CreditView)
@ent_bp.arguments(RunYear, location="query")
def credit(args, code):
    """合作银行的信贷参考查询：积分、阶段、排名区间。须企业同意；每次查询都记录"""
    try:
        return jsonify(uses.credit_lookup(db.session(), api_user(request), code, args.get("year")))
    except uses.CreditRefused as exc:
        abort(exc.status, message=str(exc))


AWARD_COLUMNS = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("clause", "条款"), ("title", "奖励事项"),
                 ("eligible_yuan", "核定金额（元）"), ("granted_yuan", "拨付金额（元）"), ("basis", "依据合同"),
                 ("citation", "政策依据")]


@ent_bp.route("/awards")
@require(*READERS)
@answers(ent_bp, Awards, files=True)
@ent_bp.arguments(AwardQuery, location="query")
def awards(args):
    """奖励名单：每家企业每个奖励事项的核定与拨付金额、依据，及各事项合计与预算"""
    s = db.session()
    run = pick_run(args)
    rows = query.award_lines(s, run, args.get("credit_code"), args.get("clause"))
    if args["format"] != "json":
        return export_response(rows, AWARD_COLUMNS, args["format"], f"awards-{run.year}-run{run.id}")
    return jsonify({"run_id": run.id, "year": run.year, "totals": query.award_totals(rows, run), "items": rows})
