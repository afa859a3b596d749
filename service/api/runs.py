"""Runs: start, list, read, publish, result files, compare, publish honour lists (blueprint `runs`)."""
from __future__ import annotations

import json

from flask import current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from rules.evaluate import EvaluationError
from rules.policy import PolicyError

from .. import db, query, uses
from ..auth import api_user, require
from ..exports import diff_award_columns, diff_awards_zh, diff_columns, diff_rows_zh, export_response
from ..models import Run
from ..runs import create_run
from ..runs import publish as publish_run
from ..schemas import Closest, Diagnostics, Diff, DiffQuery, FormatQuery, Honour, HonourCreate, Manifest, RunCreate, RunSchema
from .common import FILE_CONTENT, READERS, STAFF, answers, check_keys, reap_stale_runs, run_dict, run_or_404, start


RUN_FILE_CONTENT = {"text/csv": FILE_CONTENT["text/csv"], "text/html": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}}}


# ---- runs ----------------------------------------------------------------------------------------
run_bp = Blueprint("runs", __name__, url_prefix="/api/runs", description="积分计算批次、结果文件、批次比较")


@run_bp.route("")
class Runs(MethodView):
    @require(*READERS)
    @answers(run_bp, RunSchema(many=True), files=True)
    @run_bp.arguments(FormatQuery, location="query")
    @run_bp.response(200, RunSchema(many=True))
    def get(self, args):
        """全部计算批次（最新在前）"""
        s = db.session()
        reap_stale_runs(s)
        runs = [run_dict(r, s) for r in s.scalars(select(Run).order_by(Run.id.desc()))]
        if args["format"] != "json":
            cols = [("id", "批次"), ("year", "年度"), ("status", "状态"), ("policy_name", "政策版本"),
                    ("budget", "预算（元）"), ("strategy", "分配方式"), ("enterprises", "参评企业"),
                    ("excluded", "排除"), ("granted_yuan", "拨付合计（元）"), ("data_sha256", "数据校验和"),
                    ("policy_sha256", "政策哈希"), ("created_at", "发起时间"), ("finished_at", "完成时间")]
            return export_response(runs, cols, args["format"], "runs")
        return runs

    @require(*STAFF)
    @run_bp.arguments(RunCreate)
    @run_bp.response(202, RunSchema)
    def post(self, args):
        """发起一次计算（读已审核数据；完成前上一批次仍为当前批次）"""
        s = db.session()
        try:
            run = create_run(s, args["year"], api_user(request), args["policy"], args["budget"], args["strategy"])
        except PolicyError as exc:
            abort(422, message=str(exc), errors={"json": {"policy": [str(exc)]}})
        except EvaluationError as exc:
            abort(422, message=str(exc), errors={"json": {"year": [str(exc)]}})
        start(current_app._get_current_object(), run.id)
        s.expire_all()
        return run_dict(s.get(Run, run.id), s)


@run_bp.route("/<int(max=2147483647):run_id>")
@require(*READERS)
@run_bp.response(200, RunSchema)
def run_get(run_id):
    """一个批次：状态、进度、政策哈希、数据校验和、合计"""
    s = db.session()
    reap_stale_runs(s)
    return run_dict(run_or_404(s, run_id, done=False), s)


@run_bp.route("/<int(max=2147483647):run_id>/manifest")
@require(*READERS)
@answers(run_bp, Manifest)
def run_manifest(run_id):
    """批次的 manifest.json（政策哈希、输入与输出文件校验和）"""
    s = db.session()
    return jsonify(json.loads(run_or_404(s, run_id).manifest))


@run_bp.route("/<int(max=2147483647):run_id>/files/<name>")
@require(*READERS)
@answers(run_bp, content=RUN_FILE_CONTENT, description="scores.csv、awards.csv、awards.html、manifest.json 或 provenance.csv")
def run_files(run_id, name):
    """批次的结果文件：scores.csv、awards.csv、awards.html、manifest.json（与 innopoints evaluate 写出的相同），
    以及 provenance.csv（该批次读取的每个值的来源：来源单位、方式、导入批次、操作人、时间；仅工作人员和管理员）"""
    from flask import Response
    s = db.session()
    run_or_404(s, run_id)
    from ..runs import STORED_FILES
    mime = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8", "json": "application/json"}
    if name == "provenance.csv":                 # sent gzipped to a client that takes gzip
        from ..auth import api_user, role_of
        if role_of(api_user(request)) not in ("officer", "admin"):   # it names the staff who entered values
            abort(403, message="数据来源文件仅限工作人员和管理员下载 / the provenance file is for officers and admins")
        from ..provenance import run_provenance_file
        packed = "gzip" in request.accept_encodings
        content = run_provenance_file(s, run_id, gzipped=packed)
        if content is None:
            abort(404, message=f"没有文件 {name}")
        r = Response(content, content_type=mime["csv"])
        if packed:
            r.headers["Content-Encoding"] = "gzip"
            r.headers["Vary"] = "Accept-Encoding"
        return r
    content = query.run_file(s, run_id, name) if name in STORED_FILES else None
    if content is None:
        abort(404, message=f"没有文件 {name}")
    return Response(content, content_type=mime[name.rsplit(".", 1)[-1]])


@run_bp.route("/<int(max=2147483647):run_id>/publish", methods=["POST"])
@require(*STAFF)
@run_bp.response(200, RunSchema)
def run_publish(run_id):
    """发布批次：公众榜单与统计、银行查询读取最新发布的批次"""
    s = db.session()
    run = run_or_404(s, run_id)
    publish_run(s, run, api_user(request))
    s.commit()
    return run_dict(run, s)


@run_bp.route("/<int(max=2147483647):a>/diff/<int(max=2147483647):b>")
@require(*READERS)
@answers(run_bp, Diff, files=True)
@run_bp.arguments(DiffQuery, location="query")
def run_diff(args, a, b):
    """两个批次的比较：阶段、排除、积分、排名的变化，奖励的新增、取消与变化"""
    s = db.session()
    d = query.diff(s, run_or_404(s, a), run_or_404(s, b))
    if args["format"] != "json":
        if args["part"] == "awards":
            return export_response(diff_awards_zh(d["awards"]), diff_award_columns(a, b), args["format"],
                                   f"diff-{a}-{b}-awards")
        return export_response(diff_rows_zh(d["enterprises"]), diff_columns(a, b), args["format"], f"diff-{a}-{b}")
    return jsonify(d)


@run_bp.route("/<int(max=2147483647):run_id>/honours", methods=["POST"])
@require(*STAFF)
@answers(run_bp, Honour, 201)
@run_bp.arguments(HonourCreate)
def honours_publish(args, run_id):
    """发布一个批次的榜单（各阶段或总榜前 N 名）；公众只看到已发布的榜单"""
    s = db.session()
    run = run_or_404(s, run_id)
    check_keys(s, run, scope=args["scope"])
    try:
        h = uses.publish_honours(s, run, args["scope"], args["top_n"], api_user(request))
    except uses.RunNotPublished as exc:
        abort(409, message=str(exc))
    s.commit()
    return jsonify({"id": h.id, "title": h.title, "entries": json.loads(h.entries)}), 201


@run_bp.route("/<int(max=2147483647):run_id>/diagnostics")
@require(*STAFF)
@answers(run_bp, Diagnostics, files=True)
@run_bp.arguments(FormatQuery, location="query")
def run_diagnostics(args, run_id):
    """校准诊断（§四.(二)）：按阶段的最终积分分布（均值、中位数、标准差、偏度、超额峰度、正态性检验 p 值）、
    每项指标的填报率、0分与满分占比、基尼系数、相关与方差贡献，按政策目标判断差异化、正态化、健康化，
    并对有问题的指标比较其他计分方法（format=xlsx 为工作簿，csv 为指标表）"""
    from .. import diagnostics
    s = db.session()
    run = run_or_404(s, run_id)
    d = diagnostics.run_diagnostics(s, run)
    if args["format"] == "xlsx":
        return current_app.response_class(
            diagnostics.xlsx(d), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f"attachment; filename=diagnostics-{run.year}-run{run.id}.xlsx"})
    if args["format"] == "csv":
        return export_response(diagnostics.indicator_table(d), diagnostics.INDICATOR_COLUMNS, "csv",
                               f"diagnostics-{run.year}-run{run.id}")
    return jsonify(d)


@run_bp.route("/<int(max=2147483647):run_id>/closest")
@require(*STAFF)
@answers(run_bp, Closest, files=True)
@run_bp.arguments(FormatQuery, location="query")
def run_closest(args, run_id):
    """离榜单和种子企业后备库最近的企业：每个已发布榜单和后备库各阶段线下的企业、差距，以及提升哪项指标
    （模拟测算：改动该企业一项记录后重新计算）最能缩小差距"""
    from .. import diagnostics
    s = db.session()
    run = run_or_404(s, run_id)
    lists = diagnostics.closest(s, run)
    if args["format"] != "json":
        return export_response(diagnostics.closest_rows(lists), diagnostics.CLOSEST_COLUMNS, args["format"],
                               f"closest-{run.year}-run{run.id}")
    return jsonify({"run_id": run.id, "year": run.year, "lists": lists})
