"""Uses of the results: seed pool, services, honour lists, the monitoring report (blueprint `uses`)."""
from __future__ import annotations

from flask import jsonify, request
from flask_smorest import Blueprint, abort
from sqlalchemy import func, select

from .. import db, uses
from ..access import public
from ..auth import api_user, require
from ..exports import export_response
from ..models import SeedPoolEntry
from ..schemas import Honours, Monitoring, PoolCreate, RunYear, SeedPool, ServiceQuery, Services, YearQuery
from .common import READERS, STAFF, answers, check_keys, pick_run, run_or_404


# ---- uses of the results: seed pool, services, honour lists, the monitoring report -----------------
uses_bp = Blueprint("uses", __name__, url_prefix="/api", description="评价结果运用：种子企业后备库、个性化服务、榜单、监测分析报告")


@uses_bp.route("/seed-pool")
@require(*READERS)
@answers(uses_bp, SeedPool, files=True)
@uses_bp.arguments(YearQuery, location="query")
def seed_pool_get(args):
    """一个年度的创新种子企业后备库：入库企业及理由，与上一年度相比的新入库和出库（及原因）"""
    s = db.session()
    year = args.get("year") or s.scalar(select(func.max(SeedPoolEntry.year)))
    if year is None:
        abort(404, message="尚未生成后备库 / no pool yet")
    p = uses.pool(s, year)
    if args["format"] != "json":
        rows = [{**e, "change": "新入库" if e["new"] else "保留"} for e in p["entries"]] + \
               [{"credit_code": x["credit_code"], "name": x["name"], "change": "出库", "reason": x["reason"]}
                for x in p["exits"]]
        cols = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("stage_zh", "发展阶段"),
                ("rank_in_stage", "同阶段排名"), ("final_score", "最终积分"), ("change", "变化"), ("reason", "理由")]
        return export_response(rows, cols, args["format"], f"seed-pool-{year}")
    return jsonify(p)


@uses_bp.route("/seed-pool", methods=["POST"])
@require(*STAFF)
@answers(uses_bp, SeedPool, 201)
@uses_bp.arguments(PoolCreate)
def seed_pool_generate(args):
    """按条款文件 rules/uses/seed_pool.yaml 用一个已完成批次生成（替换）该年度后备库"""
    s = db.session()
    run = run_or_404(s, args["run"])
    uses.generate_pool(s, run, api_user(request))
    s.commit()
    return jsonify(uses.pool(s, run.year)), 201


@uses_bp.route("/services")
@require(*READERS)
@answers(uses_bp, Services, files=True)
@uses_bp.arguments(ServiceQuery, location="query")
def services_get(args):
    """各企业的个性化服务推荐（按阶段、最薄弱类别和指标，见 rules/uses/services.yaml）"""
    s = db.session()
    run = pick_run(args)
    check_keys(s, run, stage=args.get("stage"))
    rows = uses.service_list(s, run, args.get("stage"))
    if args["format"] != "json":
        cols = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("stage_zh", "发展阶段"), ("service", "推荐服务"),
                ("reason", "推荐理由"), ("clause", "依据")]
        return export_response(rows, cols, args["format"], f"services-{run.year}")
    return jsonify({"run_id": run.id, "year": run.year, "items": rows})


@uses_bp.route("/honours")
@public
@answers(uses_bp, Honours, files=True)
@uses_bp.arguments(YearQuery, location="query")
def honours_get(args):
    """已发布的榜单（公开）"""
    s = db.session()
    h = uses.honours(s, args.get("year"))
    if args["format"] != "json":
        rows = [{"list": x["title"], **e} for x in h["lists"] for e in x["entries"]]
        cols = [("list", "榜单"), ("rank", "名次"), ("name", "企业名称"), ("industry", "所属行业"), ("park", "所属园区"),
                ("final_score", "最终积分")]
        return export_response(rows, cols, args["format"], f"honours-{h['year']}")
    return jsonify(h)


@uses_bp.route("/reports/monitoring")
@require(*READERS)
@answers(uses_bp, Monitoring)
@uses_bp.arguments(RunYear, location="query")
def monitoring_get(args):
    """年度监测分析报告的数据（format=pdf 为 PDF 文件）"""
    s = db.session()
    run = pick_run(args)
    return jsonify(uses.monitoring(s, run))


@uses_bp.route("/reports/monitoring.pdf")
@require(*READERS)
@answers(uses_bp, content={"application/pdf": {"schema": {"type": "string", "format": "binary"}}}, description="监测分析报告（PDF）")
@uses_bp.arguments(RunYear, location="query")
def monitoring_pdf(args):
    """年度监测分析报告 PDF"""
    from flask import Response

    from ..report import ReportError, monitoring_pdf as make_pdf
    s = db.session()
    run = pick_run(args)
    try:
        data = make_pdf(uses.monitoring(s, run))
    except ReportError as exc:
        abort(503, message=str(exc))
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f"attachment; filename=monitoring-{run.year}.pdf"})
