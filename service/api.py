"""The REST API under /api (积分查询 and the data and run operations), documented by its
marshmallow schemas in OpenAPI 3 at /api/openapi.json and on the page /api/docs."""
from __future__ import annotations

import json
import threading

from flask import current_app, jsonify, render_template, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint, abort
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from rules.evaluate import EvaluationError
from rules.fields import RECORD_FIELDS, STAGES
from rules.policy import PolicyError

from . import db, policies, query, uses
from .access import public
from .auth import (TooManyAttempts, UserError, api_user, create_user, disable_user, issue_token, login,
                   own_enterprise_only, require, revoke_access, role_of)
from .exports import export_response, template_xlsx
from .models import (ROLES, AuditEntry, CreditLookup, Declaration, Enterprise, Import, PolicyDraft, PolicyVersion,
                     Record, Run, SeedPoolEntry, User, records_table, utcnow)
from .runs import create_run, current_run, effective_status, execute_run, fail_stale
from .runs import publish as publish_run
from .schemas import (AuditQuery, AwardQuery, Consent, Correction, DeclarationCreate, DeclarationQuery,
                      DeclarationSchema, Decision, DiffQuery, EnterprisePage, EnterpriseQuery, FormatQuery,
                      ImportFile, ImportForm, RankingQuery, RunCreate, RunSchema, RunSelect, TokenRequest,
                      TokenResponse, UserSchema, DraftCreate, FileUpdate, ClauseChange, WhatIf, HonourCreate,
                      YearQuery, PoolCreate, ServiceQuery)
from .store import (BadUpload, DecisionError, FieldRejected, ImportRejected, audit, correct_field, declare, decide,
                    get_record, import_upload, record_text)

LABEL = {f.key: f.label for f in RECORD_FIELDS}
STAFF = ("officer", "admin")
READERS = ("officer", "finance", "admin")


class InnoApi(Api):
    """flask-smorest's Api, with JSON errors for /api only (pages keep their HTML errors)."""

    def handle_http_exception(self, error):
        if not request.path.startswith("/api"):
            return error
        data = getattr(error, "data", None)
        if data and "messages" in data:
            data["errors"] = translate(data.pop("messages"))
            data.setdefault("message", "请求参数有误，见 errors / validation failed, see errors")
        return super().handle_http_exception(error)


MESSAGES_ZH = [
    (r"Missing data for required field\.", "必填项缺失"),
    (r"Not a valid integer\.", "不是有效的整数"),
    (r"Not a valid number\.", "不是有效的数字"),
    (r"Not a valid boolean\.", "不是有效的是/否值（true/false）"),
    (r"Not a valid string\.", "不是有效的文本"),
    (r"Not a valid datetime\.", "不是有效的日期时间"),
    (r"Unknown field\.", "未知字段"),
    (r"Field may not be null\.", "不能为空值"),
    (r"Invalid input type\.", "输入类型无效"),
    (r"Invalid JSON body\.", "请求体不是有效的 JSON"),
    (r"Must be one of: (.*)\.", r"只能是：\1"),
    (r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\.", r"应在 \1 到 \2 之间"),
    (r"Must be greater than or equal to (\S+)\.", r"应不小于 \1"),
    (r"Must be less than or equal to (\S+)\.", r"应不大于 \1"),
    (r"Length must be (\d+)\.", r"长度应为 \1"),
    (r"Length must be between (\d+) and (\d+)\.", r"长度应在 \1 到 \2 之间"),
    (r"Shorter than minimum length (\d+)\.", r"长度不能少于 \1"),
    (r"Longer than maximum length (\d+)\.", r"长度不能超过 \1"),
    (r"String does not match expected pattern\.", "格式不符"),
]


def translate(messages):
    """marshmallow's messages as 'Chinese / English', field by field (the structure kept)."""
    import re
    if isinstance(messages, dict):
        return {k: translate(v) for k, v in messages.items()}
    if isinstance(messages, list):
        return [translate(m) for m in messages]
    text = str(messages)
    for pattern, zh in MESSAGES_ZH:
        if re.fullmatch(pattern, text):
            return f"{re.sub(pattern, zh, text)} / {text}"
    return text


def init_app(app):
    app.config.update(API_TITLE="InnoPoints 创新积分 API", API_VERSION="1.0", OPENAPI_VERSION="3.0.3",
                      OPENAPI_URL_PREFIX="/api", OPENAPI_JSON_PATH="openapi.json")
    api = InnoApi(app, spec_kwargs={"info": {"description": "新乡高新区企业创新积分制（新开〔2022〕110号）政策服务"}})
    app.extensions["innopoints_api"] = api
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for bp in (auth_bp, ent_bp, run_bp, data_bp, me_bp, admin_bp, policy_bp, uses_bp):
        api.register_blueprint(bp)

    @app.route("/api/docs")
    @public
    def api_docs():
        return render_template("pages/api_docs.html", spec=api.spec.to_dict())

    @app.errorhandler(Exception)
    def _unexpected(exc):       # never a bare 500 page: a JSON error that names the request
        if isinstance(exc, HTTPException):
            return exc
        current_app.logger.exception("unexpected error")
        if request.path.startswith("/api"):
            return jsonify(code=500, status="Internal Server Error",
                           message="服务器内部错误，已记录 / internal error, logged"), 500
        return "服务器内部错误 / internal error", 500


def bad_cells(cells, limit=None):
    """The bad cells as the answers list them: the first `limit` (IMPORT_SHOWN_BAD_CELLS)."""
    if limit is None:
        limit = current_app.config["IMPORT_SHOWN_BAD_CELLS"]
    return [{"row": c.row, "column": c.column, "column_zh": LABEL.get(c.column, c.column), "value": c.value,
             "reason": c.reason_zh, "reason_en": c.reason_en} for c in cells[:limit]]


def enterprise_session(code):
    """The session, once the caller may see enterprise `code` and it exists (403/404)."""
    own_enterprise_only(code)
    s = db.session()
    if s.get(Enterprise, code) is None:
        abort(404, message=f"没有企业 {code} / no such enterprise")
    return s


def pick_run(args) -> Run:
    """The run a query reads: `run` by id, else the current run of `year` (or the newest).
    Only staff (officers, finance, admins) read runs that are not published: the public,
    enterprises and banks read published runs only, whatever they ask for."""
    s = db.session()
    public = role_of(api_user(request)) not in READERS
    if args.get("run"):
        run = s.get(Run, args["run"])
        if run is None or run.status != "done" or (public and run.published_at is None):
            abort(404, message=f"没有已完成的计算批次 {args['run']} / no such completed run")
        return run
    run = current_run(s, args.get("year"), published=public)
    if run is None:
        abort(404, message="尚无已完成（或已发布）的计算批次 / no completed run yet")
    return run


def run_dict(run, s):
    d = {k: getattr(run, k) for k in RunSchema().fields if k != "current"}
    d["status"] = effective_status(run, limit=current_app.config["RUN_STALE_SECONDS"])
    cur = current_run(s, run.year)
    d["current"] = cur is not None and cur.id == run.id
    return d


RESULT_COLUMNS = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("park", "所属园区"), ("industry", "所属行业"),
                  ("stage_zh", "发展阶段"), ("excluded", "是否排除"), ("exclusion_clauses", "排除依据"),
                  ("tech_score", "技术创新指标积分"), ("growth_score", "成长经营指标积分"), ("aux_score", "辅助指标积分"),
                  ("weighted", "加权积分"), ("deductions", "扣分"), ("decay_factor", "衰减系数"), ("bonus", "加分"),
                  ("final_score", "最终积分"), ("rank_in_stage", "同阶段排名"), ("rank_overall", "全区排名")]


def result_columns(titles) -> list:
    """The result export's columns, with the category titles of the run's indicators.yaml."""
    return [(k, f"{titles[k[:-6]]}积分") if k.endswith("_score") and k[:-6] in titles else (k, label)
            for k, label in RESULT_COLUMNS]


# ---- tokens -----------------------------------------------------------------------------
auth_bp = Blueprint("auth", __name__, url_prefix="/api", description="登录与令牌")


@auth_bp.route("/tokens", methods=["POST"])
@public
@auth_bp.arguments(TokenRequest)
@auth_bp.response(201, TokenResponse)
def token_create(args):
    """用户名和密码换取 API 令牌"""
    s = db.session()
    try:
        user = login(s, args["username"], args["password"], request.remote_addr)
    except TooManyAttempts as exc:
        abort(429, message=f"登录失败次数过多，请 {exc.retry_after} 秒后再试 / too many failed logins, retry later",
              headers={"Retry-After": str(exc.retry_after)})
    if user is None:
        abort(401, message="用户名或密码错误 / wrong username or password")
    token = issue_token(s, user, args["label"])
    s.commit()
    return {"token": token, "username": user.username, "role": user.role}


# ---- enterprises, scores, rankings ----------------------------------------------------------
ent_bp = Blueprint("enterprises", __name__, url_prefix="/api", description="企业积分查询、排名与统计")


@ent_bp.route("/enterprises")
@require(*READERS)
@ent_bp.arguments(EnterpriseQuery, location="query")
@ent_bp.response(200, EnterprisePage)
def enterprise_list(args):
    """企业列表：按园区、行业、阶段、积分区间检索、排序、分页；format=csv/xlsx 导出全部结果"""
    s = db.session()
    run = pick_run(args)
    fmt = args["format"]
    filters = {k: args.get(k) for k in ("park", "industry", "stage", "min_score", "max_score", "q", "excluded")}
    rows, total = query.enterprises(s, run, **filters, sort=args["sort"], order=args["order"],
                                     page=args["page"], per_page=None if fmt != "json" else args["per_page"])
    if fmt != "json":
        return export_response(rows, result_columns(query.category_titles(s, run)), fmt,
                               f"enterprises-{run.year}-run{run.id}")
    return {"run_id": run.id, "year": run.year, "total": total, "page": args["page"],
            "per_page": args["per_page"], "items": rows}


@ent_bp.route("/enterprises/<code>")
@require("enterprise", *READERS)
@ent_bp.arguments(RunSelect, location="query")
def enterprise_score(args, code):
    """一家企业的积分：三类积分、每个指标的值与得分、中文说明的计算过程（trace）"""
    s = enterprise_session(code)
    run = pick_run(args)
    d = query.score_detail(s, run, code)
    if d is None:
        abort(404, message=f"企业 {code} 不在第 {run.id} 批次（{run.year} 年度）的评价中")
    d["services"] = uses.recommend(d)
    if args["format"] != "json":
        cols = [("clause", "条款"), ("title", "指标"), ("citation", "依据"), ("value", "指标值"), ("points", "得分")]
        return export_response(d["indicators"], cols, args["format"], f"score-{code}-{run.year}")
    return jsonify(d)


@ent_bp.route("/enterprises/<code>/records")
@require("enterprise", *READERS)
@ent_bp.arguments(FormatQuery, location="query")
def enterprise_records(args, code):
    """一家企业各年度的记录（已审核的数据）"""
    s = enterprise_session(code)
    recs = s.scalars(select(Record).where(records_table.c.credit_code == code).order_by(records_table.c.year)).all()
    rows = [record_text(r) for r in recs]
    if args["format"] != "json":
        return export_response(rows, [(f.key, f.label) for f in RECORD_FIELDS], args["format"], f"records-{code}")
    return jsonify({"credit_code": code, "labels": LABEL, "records": rows})


@ent_bp.route("/enterprises/<code>/records/<int(max=2147483647):year>", methods=["PATCH"])
@require(*STAFF)
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
@require("enterprise", *READERS)
@ent_bp.arguments(RunSelect, location="query")
def enterprise_eligibility(args, code):
    """一家企业对每个奖励事项的资格、核定与拨付金额及依据（财政局）"""
    s = enterprise_session(code)
    run = pick_run(args)
    items = query.eligibility(s, run, code)
    if args["format"] != "json":
        cols = [("clause", "条款"), ("title", "奖励事项"), ("eligible", "是否符合"), ("eligible_yuan", "核定金额（元）"),
                ("granted_yuan", "拨付金额（元）"), ("basis", "依据合同"), ("explanation", "计算与理由"),
                ("citation", "政策依据")]
        return export_response(items, cols, args["format"], f"eligibility-{code}-{run.year}")
    return jsonify({"credit_code": code, "run_id": run.id, "year": run.year, "items": items})


@ent_bp.route("/rankings")
@require("public", "enterprise", "bank", *READERS)
@ent_bp.arguments(RankingQuery, location="query")
def rankings(args):
    """各阶段排名（榜单）。公众只能看到已发布批次的前 N 名"""
    s = db.session()
    if role_of(api_user(request)) not in READERS:      # the public: the published honour lists only
        h = uses.honours(s, args.get("year"))
        data = {x["scope"]: [{**e, "rank_in_stage": e["rank"], "stage_zh": STAGES.get(e["stage"], "")}
                             for e in x["entries"]] for x in h["lists"] if x["scope"] in STAGES}
        if args.get("stage"):
            data = {args["stage"]: data.get(args["stage"], [])}
        run = s.get(Run, h["lists"][0]["run_id"]) if h["lists"] else None
        if run is None:
            abort(404, message="尚未发布榜单 / no honour list published")
        top = None
    else:
        run = pick_run(args)
        top = args.get("top")
        data = query.rankings(s, run, args.get("stage"), top)
    if args["format"] != "json":
        rows = [r for st in data.values() for r in st]
        return export_response(rows, [("stage_zh", "发展阶段"), ("rank_in_stage", "同阶段排名")] + RESULT_COLUMNS[:4]
                               + [("final_score", "最终积分")], args["format"], f"rankings-{run.year}")
    return jsonify({"run_id": run.id, "year": run.year, "top": top, "stages": data})


@ent_bp.route("/aggregates")
@require("public", "enterprise", "bank", *READERS)
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
@ent_bp.arguments(RunSelect, location="query")
def credit(args, code):
    """合作银行的信贷参考查询：积分、阶段、排名区间。须企业同意；每次查询都记录"""
    try:
        return jsonify(uses.credit_lookup(db.session(), api_user(request), code, args.get("year")))
    except uses.CreditRefused as exc:
        abort(exc.status, message=str(exc))


# ---- runs ----------------------------------------------------------------------------------------
run_bp = Blueprint("runs", __name__, url_prefix="/api/runs", description="积分计算批次、结果文件、批次比较")


@run_bp.route("")
class Runs(MethodView):
    @require(*READERS)
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


def start(app, run_id):
    """Run in this request (tests, `RUNS_INLINE`) or on a thread of its own."""
    maker = app.extensions["db_sessions"]
    every = app.config["RUN_HEARTBEAT_SECONDS"]
    if app.config.get("RUNS_INLINE"):
        execute_run(maker, run_id, heartbeat_every=every)
    else:
        threading.Thread(target=execute_run, args=(maker, run_id), kwargs={"heartbeat_every": every}, daemon=True,
                         name=f"run-{run_id}").start()


def reap_stale_runs(s):
    """Fail the runs whose worker stopped (no heartbeat for RUN_STALE_SECONDS), before they are read."""
    fail_stale(s, current_app.config["RUN_STALE_SECONDS"])


def _run_or_404(s, run_id, done=True):
    run = s.get(Run, run_id)
    if run is None or (done and run.status != "done"):
        abort(404, message=f"没有{'已完成的' if done else ''}计算批次 {run_id}")
    return run


@run_bp.route("/<int(max=2147483647):run_id>")
@require(*READERS)
@run_bp.response(200, RunSchema)
def run_get(run_id):
    """一个批次：状态、进度、政策哈希、数据校验和、合计"""
    s = db.session()
    reap_stale_runs(s)
    return run_dict(_run_or_404(s, run_id, done=False), s)


@run_bp.route("/<int(max=2147483647):run_id>/manifest")
@require(*READERS)
def run_manifest(run_id):
    """批次的 manifest.json（政策哈希、输入与输出文件校验和）"""
    s = db.session()
    return jsonify(json.loads(_run_or_404(s, run_id).manifest))


@run_bp.route("/<int(max=2147483647):run_id>/files/<name>")
@require(*READERS)
def run_files(run_id, name):
    """批次的结果文件：scores.csv、awards.csv、awards.html、manifest.json（与 innopoints evaluate 写出的相同）"""
    from flask import Response
    s = db.session()
    _run_or_404(s, run_id)
    content = query.run_file(s, run_id, name) if name != "trace_header.json" else None
    if content is None:
        abort(404, message=f"没有文件 {name}")
    mime = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8", "json": "application/json"}
    return Response(content, mimetype=mime[name.rsplit(".", 1)[-1]])


@run_bp.route("/<int(max=2147483647):run_id>/publish", methods=["POST"])
@require(*STAFF)
@run_bp.response(200, RunSchema)
def run_publish(run_id):
    """发布批次：公众榜单与统计、银行查询读取最新发布的批次"""
    s = db.session()
    run = _run_or_404(s, run_id)
    publish_run(s, run, api_user(request))
    s.commit()
    return run_dict(run, s)


AWARD_COLUMNS = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("clause", "条款"), ("title", "奖励事项"),
                 ("eligible_yuan", "核定金额（元）"), ("granted_yuan", "拨付金额（元）"), ("basis", "依据合同"),
                 ("citation", "政策依据")]


@ent_bp.route("/awards")
@require(*READERS)
@ent_bp.arguments(AwardQuery, location="query")
def awards(args):
    """奖励名单：每家企业每个奖励事项的核定与拨付金额、依据，及各事项合计与预算"""
    s = db.session()
    run = pick_run(args)
    rows = query.award_lines(s, run, args.get("credit_code"), args.get("clause"))
    if args["format"] != "json":
        return export_response(rows, AWARD_COLUMNS, args["format"], f"awards-{run.year}-run{run.id}")
    return jsonify({"run_id": run.id, "year": run.year, "totals": query.award_totals(rows, run), "items": rows})


@run_bp.route("/<int(max=2147483647):a>/diff/<int(max=2147483647):b>")
@require(*READERS)
@run_bp.arguments(DiffQuery, location="query")
def run_diff(args, a, b):
    """两个批次的比较：阶段、排除、积分、排名的变化，奖励的新增、取消与变化"""
    s = db.session()
    d = query.diff(s, _run_or_404(s, a), _run_or_404(s, b))
    if args["format"] != "json":
        if args["part"] == "awards":
            cols = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("clause", "条款"), ("change", "变化"),
                    ("eligible_a", f"批次{a}核定（元）"), ("eligible_b", f"批次{b}核定（元）"),
                    ("granted_a", f"批次{a}拨付（元）"), ("granted_b", f"批次{b}拨付（元）")]
            return export_response(d["awards"], cols, args["format"], f"diff-{a}-{b}-awards")
        cols = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("changed", "变化"),
                ("stage_a", f"批次{a}阶段"), ("stage_b", f"批次{b}阶段"), ("excluded_a", f"批次{a}排除"),
                ("excluded_b", f"批次{b}排除"), ("score_a", f"批次{a}积分"), ("score_b", f"批次{b}积分"),
                ("score_change", "积分变化"), ("rank_a", f"批次{a}全区排名"), ("rank_b", f"批次{b}全区排名"),
                ("rank_change", "名次上升")]
        return export_response(d["enterprises"], cols, args["format"], f"diff-{a}-{b}")
    return jsonify(d)


# ---- data: imports, templates, declarations ------------------------------------------------------
data_bp = Blueprint("data", __name__, url_prefix="/api", description="数据采集：导入、模板、自主申报与审核")


@data_bp.route("/imports", methods=["POST"])
@require(*STAFF)
@data_bp.arguments(ImportForm, location="form")
@data_bp.arguments(ImportFile, location="files")
def import_post(form, files):
    """导入 CSV/XLSX（中文或英文表头）：任一单元格有误则不导入并列出全部错误；无误则原子替换所列企业年度"""
    try:
        out = import_upload(db.session(), files["file"], form["kind"], api_user(request))
    except BadUpload as exc:
        abort(422, message="只接受 .csv 或 .xlsx 文件", errors={"files": {"file": [str(exc)]}})
    except ImportRejected as exc:
        shown = bad_cells(exc.cells)
        more = f"（列出前 {len(shown)} 处）" if len(shown) < exc.total else ""
        return jsonify(code=422, status="Unprocessable Entity", import_id=exc.import_id,
                       message=f"文件有 {exc.total} 处错误{more}，未导入任何数据 / nothing imported",
                       bad_cells_total=exc.total, bad_cells_truncated=len(shown) < exc.total,
                       bad_cells_file=f"/api/imports/{exc.import_id}/bad-cells.csv", bad_cells=shown), 422
    return jsonify({"import_id": out.import_id, "kind": out.kind, "rows": out.rows, "added": out.added,
                    "replaced": out.replaced, "sha256": out.sha256}), 201


@data_bp.route("/imports")
@require(*STAFF)
@data_bp.arguments(FormatQuery, location="query")
def import_list(args):
    """导入记录：谁、何时、文件校验和、行数"""
    s = db.session()
    users = dict(s.execute(select(User.id, User.username)).all())
    rows = [{"id": i.id, "kind": i.kind, "filename": i.filename, "sha256": i.sha256, "user": users.get(i.user_id, ""),
             "at": i.at.isoformat(), "status": i.status, "rows": i.rows, "added": i.added, "replaced": i.replaced,
             "bad_cells": i.bad_cells} for i in s.scalars(select(Import).order_by(Import.id.desc()))]
    if args["format"] != "json":
        cols = [("id", "编号"), ("kind", "类型"), ("filename", "文件"), ("user", "导入人"), ("at", "时间"),
                ("status", "结果"), ("rows", "行数"), ("added", "新增"), ("replaced", "替换"), ("bad_cells", "错误单元格"),
                ("sha256", "文件校验和")]
        return export_response(rows, cols, args["format"], "imports")
    return jsonify(rows)


@data_bp.route("/imports/<int(max=2147483647):import_id>/bad-cells.csv")
@require(*STAFF)
def import_bad_cells(import_id):
    """被拒绝导入文件的全部错误单元格（CSV；答复中只列出前 1,000 处）"""
    import zlib

    from flask import Response
    s = db.session()
    imp = s.get(Import, import_id)
    data = imp.bad_cells_csv if imp is not None else None
    if data is None:
        abort(404, message=f"导入 {import_id} 没有错误单元格清单 / no bad-cell list for import {import_id}")

    def inflate(chunk=1 << 20):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        for i in range(0, len(data), chunk):
            yield d.decompress(data[i:i + chunk])
        yield d.flush()
    return Response(inflate(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=import-{import_id}-bad-cells.csv"})


@data_bp.route("/templates/<kind>.xlsx")
@public
def import_template(kind):
    """导入模板（XLSX）：中文表头与单位、示例行、填写说明"""
    from flask import Response
    if kind not in ("records", "contracts"):
        abort(404, message="模板只有 records 与 contracts")
    return Response(template_xlsx(kind), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename={kind}-template.xlsx"})


def decl_dict(d: Declaration):
    return {"id": d.id, "credit_code": d.credit_code, "year": d.year, "field": d.field,
            "field_zh": LABEL.get(d.field, d.field), "value": d.value, "previous": d.previous, "reason": d.reason,
            "status": d.status, "submitted_at": d.submitted_at, "decided_at": d.decided_at,
            "decision_reason": d.decision_reason}


@data_bp.route("/declarations")
class Declarations(MethodView):
    @require("enterprise", *READERS)
    @data_bp.arguments(DeclarationQuery, location="query")
    @data_bp.response(200, DeclarationSchema(many=True))
    def get(self, args):
        """自主申报列表：企业看本企业的，工作人员与财政局看全部（审核队列：status=pending）"""
        s = db.session()
        user = api_user(request)
        q = select(Declaration).order_by(Declaration.id)
        if user.role == "enterprise":
            q = q.where(Declaration.credit_code == user.credit_code)
        if args.get("status"):
            q = q.where(Declaration.status == args["status"])
        rows = [decl_dict(d) for d in s.scalars(q)]
        if args["format"] != "json":
            cols = [("id", "编号"), ("credit_code", "统一社会信用代码"), ("year", "年度"), ("field_zh", "字段"),
                    ("previous", "原值"), ("value", "申报值"), ("reason", "申报理由"), ("status", "状态"),
                    ("decision_reason", "审核意见")]
            return export_response(rows, cols, args["format"], "declarations")
        return rows

    @require("enterprise")
    @data_bp.arguments(DeclarationCreate)
    @data_bp.response(201, DeclarationSchema)
    def post(self, args):
        """企业申报本企业某年度记录中缺失或需更正的字段（经工作人员审核通过后才计入）"""
        s = db.session()
        user = api_user(request)
        code = args.get("credit_code") or user.credit_code
        own_enterprise_only(code)
        try:
            d = declare(s, user, code, args["year"], args["field"], args["value"], args["reason"])
        except LookupError as exc:
            abort(404, message=str(exc))
        except FieldRejected as exc:
            abort(422, message="申报值不合规", errors={"json": {args["field"]: [str(c) for c in exc.cells]}})
        s.commit()
        return decl_dict(d)


@data_bp.route("/declarations/<int(max=2147483647):decl_id>/decision", methods=["POST"])
@require(*STAFF)
@data_bp.arguments(Decision)
@data_bp.response(200, DeclarationSchema)
def declaration_decide(args, decl_id):
    """审核一条申报：通过（写入记录并记入审计日志）或驳回，并留下理由"""
    s = db.session()
    d = s.get(Declaration, decl_id)
    if d is None:
        abort(404, message=f"没有申报 {decl_id}")
    try:
        decide(s, api_user(request), d, args["approve"], args["reason"])
    except (DecisionError, FieldRejected) as exc:
        abort(409, message=str(exc))
    s.commit()
    return decl_dict(d)


# ---- the caller ------------------------------------------------------------------------------------
me_bp = Blueprint("me", __name__, url_prefix="/api/me", description="当前用户；企业的授权与被查询记录")


@me_bp.route("")
@require("enterprise", "bank", "officer", "finance", "admin")
def me():
    """当前用户与角色"""
    s = db.session()
    user = api_user(request)
    d = {"username": user.username, "role": user.role, "role_zh": ROLES[user.role], "credit_code": user.credit_code}
    if user.role == "enterprise":
        ent = s.get(Enterprise, user.credit_code)
        d["credit_consent"] = bool(ent and ent.credit_consent)
    return jsonify(d)


@me_bp.route("/consent", methods=["PUT"])
@require("enterprise")
@me_bp.arguments(Consent)
def consent(args):
    """企业同意或撤回：合作银行可查询本企业积分作为授信参考"""
    s = db.session()
    user = api_user(request)
    ent = s.get(Enterprise, user.credit_code)
    if ent is None:
        abort(404, message="本企业尚无数据")
    ent.credit_consent = args["consent"]
    ent.consent_changed_at = utcnow()
    audit(s, user, "credit.consent", user.credit_code, consent=args["consent"])
    s.commit()
    return jsonify({"credit_code": ent.credit_code, "credit_consent": ent.credit_consent})


@me_bp.route("/credit-lookups")
@require("enterprise")
@me_bp.arguments(FormatQuery, location="query")
def credit_lookups(args):
    """本企业被合作银行查询的记录"""
    s = db.session()
    user = api_user(request)
    q = select(CreditLookup, User).join(User, User.id == CreditLookup.user_id) \
        .where(CreditLookup.credit_code == user.credit_code).order_by(CreditLookup.id.desc())
    rows = [{"at": c.at.isoformat(), "bank": u.display_name or u.username, "granted": c.granted, "run_id": c.run_id}
            for c, u in s.execute(q)]
    if args["format"] != "json":
        return export_response(rows, [("at", "时间"), ("bank", "银行"), ("granted", "是否提供")], args["format"],
                               "credit-lookups")
    return jsonify(rows)


# ---- users and the audit log -----------------------------------------------------------------------
admin_bp = Blueprint("admin", __name__, url_prefix="/api", description="用户管理与审计日志（只读）")


@admin_bp.route("/users")
class Users(MethodView):
    @require("admin")
    @admin_bp.response(200, UserSchema(many=True))
    def get(self):
        """全部用户"""
        return db.session().scalars(select(User).order_by(User.id)).all()

    @require("admin")
    @admin_bp.arguments(UserSchema)
    @admin_bp.response(201, UserSchema)
    def post(self, args):
        """新建用户（密码以哈希保存）"""
        s = db.session()
        try:
            user = create_user(s, args["username"], args["password"], args["role"], args["credit_code"],
                               args["display_name"], by=api_user(request))
        except UserError as exc:
            abort(422, message=str(exc), errors={"json": {"user": [str(exc)]}})
        s.commit()
        return user


def _user_or_404(s, user_id):
    user = s.get(User, user_id)
    if user is None:
        abort(404, message=f"没有用户 {user_id} / no such user")
    return user


@admin_bp.route("/users/<int(max=2147483647):user_id>/disable", methods=["POST"])
@require("admin")
@admin_bp.response(200, UserSchema)
def user_disable(user_id):
    """停用用户：不能再登录，其页面会话与全部令牌在下一次请求时失效"""
    s = db.session()
    user = _user_or_404(s, user_id)
    disable_user(s, user, api_user(request))
    s.commit()
    return user


@admin_bp.route("/users/<int(max=2147483647):user_id>/revoke", methods=["POST"])
@require("admin")
@admin_bp.response(200, UserSchema)
def user_revoke(user_id):
    """撤销用户的全部令牌并结束其全部页面会话（用户仍可重新登录）"""
    s = db.session()
    user = _user_or_404(s, user_id)
    revoke_access(s, user, api_user(request))
    s.commit()
    return user


@admin_bp.route("/audit")
@require(*STAFF)
@admin_bp.arguments(AuditQuery, location="query")
def audit_log(args):
    """审计日志（只能读取，不能修改或删除）"""
    s = db.session()
    q = select(AuditEntry).order_by(AuditEntry.id.desc())
    if args.get("action"):
        q = q.where(AuditEntry.action == args["action"])
    if args["format"] == "json":
        q = q.offset((args["page"] - 1) * args["per_page"]).limit(args["per_page"])
    rows = [{"id": a.id, "at": a.at.isoformat(), "user": a.username, "action": a.action, "target": a.target,
             "detail": json.loads(a.detail)} for a in s.scalars(q)]
    if args["format"] != "json":
        return export_response(rows, [("id", "编号"), ("at", "时间"), ("user", "用户"), ("action", "操作"),
                                      ("target", "对象"), ("detail", "详情")], args["format"], "audit")
    return jsonify(rows)


# ---- policy versions: drafts, check, test, what-if, publish ---------------------------------------
policy_bp = Blueprint("policies", __name__, url_prefix="/api", description="政策版本：草稿、检查、用例、模拟测算、发布")


def clause_summary(pv):
    return [{"id": c.id, "title": c.title, "citation": c.citation, "group": c.group,
             "effective_from": c.effective_from.isoformat(),
             "effective_to": c.effective_to.isoformat() if c.effective_to else None,
             "when": _plain(c.body.get("when")), "effect": _plain(c.body.get("effect"))} for c in pv.clauses]


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def version_dict(row, with_files=False):
    d = {"id": row.id, "name": row.name, "document": row.document, "sha256": row.sha256, "status": row.status,
         "published_at": row.published_at.isoformat() if row.published_at else None, "note": row.note}
    if with_files:
        d["files"] = policies.files_of(row)
    return d


@policy_bp.route("/policy")
@public
def policy_active():
    """当前生效的政策版本及其全部条款（公开）"""
    s = db.session()
    row = policies.active(s)
    s.commit()
    pv = policies.load_files(policies.files_of(row))
    return jsonify({**version_dict(row), "title": pv.title, "clauses": clause_summary(pv)})


@policy_bp.route("/policies")
@require(*STAFF)
def policy_list():
    """全部政策版本与草稿"""
    s = db.session()
    policies.ensure_bundled(s)
    s.commit()
    versions = [version_dict(r) for r in s.scalars(select(PolicyVersion).order_by(PolicyVersion.id))]
    drafts = [draft_dict(d) for d in s.scalars(select(PolicyDraft).order_by(PolicyDraft.id))]
    return jsonify({"active": policies.active(s).id, "versions": versions, "drafts": drafts})


@policy_bp.route("/policies/versions/<int(max=2147483647):version_id>")
@require(*STAFF)
def policy_version_get(version_id):
    """一个版本的全部条款文件"""
    row = db.session().get(PolicyVersion, version_id)
    if row is None:
        abort(404, message=f"没有版本 {version_id}")
    return jsonify(version_dict(row, with_files=True))


def draft_dict(d, with_files=False):
    out = {"id": d.id, "name": d.name, "base": d.base_id, "note": d.note, "updated_at": d.updated_at.isoformat(),
           "published_version": d.published_version_id}
    if with_files:
        out["files"] = json.loads(d.files)
    return out


def _draft_or_404(draft_id):
    d = db.session().get(PolicyDraft, draft_id)
    if d is None:
        abort(404, message=f"没有草稿 {draft_id}")
    return d


@policy_bp.route("/policies/drafts", methods=["POST"])
@require(*STAFF)
@policy_bp.arguments(DraftCreate)
def draft_create(args):
    """以一个已发布版本为基础新建草稿"""
    s = db.session()
    base = s.get(PolicyVersion, args["base"]) if args["base"] else policies.active(s)
    if base is None or base.status != "published":
        abort(422, message="基础版本须为已发布版本", errors={"json": {"base": ["没有该已发布版本"]}})
    d = policies.create_draft(s, base, args["name"], api_user(request), args["note"])
    s.commit()
    return jsonify(draft_dict(d)), 201


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>")
@require(*STAFF)
def draft_get(draft_id):
    """草稿的全部条款文件"""
    return jsonify(draft_dict(_draft_or_404(draft_id), with_files=True))


def _refused(exc):
    abort(409, message=str(exc), errors={"problems": exc.problems, "failures": exc.failures})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/files/<path:name>", methods=["PUT"])
@require(*STAFF)
@policy_bp.arguments(FileUpdate)
def draft_file_put(args, draft_id, name):
    """替换草稿中的一个条款文件或用例文件（cases/…）；返回检查结果（有问题也保存，发布前须全部解决）"""
    s = db.session()
    d = _draft_or_404(draft_id)
    try:
        policies.set_file(s, d, name, args["content"], api_user(request))
    except KeyError:
        abort(404, message=f"没有条款文件 {name}")
    except policies.PublishRefused as exc:
        _refused(exc)
    s.commit()
    return jsonify({"draft": draft_id, "file": name, "problems": policies.check(json.loads(d.files))})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>", methods=["PATCH"])
@require(*STAFF)
@policy_bp.arguments(ClauseChange)
def draft_clause_patch(args, draft_id, clause_id):
    """修改草稿中一条条款的金额、系数、阈值或条件；dry_run=true 只检查"""
    s = db.session()
    d = _draft_or_404(draft_id)
    try:
        files = policies.with_changes(json.loads(d.files), clause_id, args["changes"])
    except KeyError as exc:
        abort(422, message=f"没有条款或路径 {exc}", errors={"json": {"changes": [f"未知的条款或路径：{exc}"]}})
    problems = policies.check(files)
    if not args["dry_run"]:
        try:
            policies.set_clause(s, d, clause_id, args["changes"], api_user(request))
        except policies.PublishRefused as exc:
            _refused(exc)
        s.commit()
    return jsonify({"draft": draft_id, "clause": clause_id, "saved": not args["dry_run"], "problems": problems})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/check", methods=["POST"])
@require(*STAFF)
def draft_check(draft_id):
    """检查草稿：结构、编号、依据、取值范围、生效日期、字段，并编译进规则引擎"""
    problems = policies.check(json.loads(_draft_or_404(draft_id).files))
    return jsonify({"draft": draft_id, "ok": not problems, "problems": problems})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/test", methods=["POST"])
@require(*STAFF)
def draft_test(draft_id):
    """对草稿运行全部条款用例"""
    files = json.loads(_draft_or_404(draft_id).files)
    problems = policies.check(files)
    if problems:
        return jsonify({"draft": draft_id, "ok": False, "problems": problems, "failures": []})
    failures = policies.test(files)
    return jsonify({"draft": draft_id, "ok": not failures, "problems": [], "failures": failures})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/whatif", methods=["POST"])
@require(*STAFF)
@policy_bp.arguments(WhatIf)
def draft_whatif(args, draft_id):
    """模拟测算：用库中该年度数据分别按草稿和比较版本计算，列出阶段、排除、积分、排名、榜单和奖励的变化"""
    s = db.session()
    d = _draft_or_404(draft_id)
    against = s.get(PolicyVersion, args["against"]) if args["against"] else policies.active(s)
    if against is None:
        abort(422, message="没有比较版本", errors={"json": {"against": ["没有该版本"]}})
    files = json.loads(d.files)
    problems = policies.check(files)
    if problems:
        abort(409, message="草稿检查未通过，无法测算", errors={"problems": problems, "failures": []})
    if not s.scalar(select(func.count()).select_from(records_table).where(records_table.c.year == args["year"])):
        abort(422, message="该年度没有企业记录", errors={"json": {"year": [f"{args['year']} 年度没有企业记录"]}})
    try:
        report = policies.whatif(s, files, args["year"], policies.files_of(against), args["budget"],
                                 args["strategy"], args["top"])
    except PolicyError as exc:
        abort(422, message=str(exc), errors={"json": {"year": [str(exc)]}})
    return jsonify(report)


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/publish", methods=["POST"])
@require(*STAFF)
def draft_publish(draft_id):
    """发布草稿：检查与用例全部通过才发布；记录发布人、时间、各条款文件的差异与哈希；运行中的服务随即改用新版本"""
    s = db.session()
    d = _draft_or_404(draft_id)
    try:
        row = policies.publish(s, d, api_user(request))
    except policies.PublishRefused as exc:
        s.rollback()
        _refused(exc)
    s.commit()
    return jsonify(version_dict(row)), 201


# ---- uses of the results: seed pool, services, honour lists, the monitoring report -----------------
uses_bp = Blueprint("uses", __name__, url_prefix="/api", description="评价结果运用：种子企业后备库、个性化服务、榜单、监测分析报告")


@uses_bp.route("/seed-pool")
@require(*READERS)
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
@uses_bp.arguments(PoolCreate)
def seed_pool_generate(args):
    """按条款文件 rules/uses/seed_pool.yaml 用一个已完成批次生成（替换）该年度后备库"""
    s = db.session()
    run = _run_or_404(s, args["run"])
    uses.generate_pool(s, run, api_user(request))
    s.commit()
    return jsonify(uses.pool(s, run.year)), 201


@uses_bp.route("/services")
@require(*READERS)
@uses_bp.arguments(ServiceQuery, location="query")
def services_get(args):
    """各企业的个性化服务推荐（按阶段、最薄弱类别和指标，见 rules/uses/services.yaml）"""
    s = db.session()
    run = pick_run(args)
    rows = uses.service_list(s, run, args.get("stage"))
    if args["format"] != "json":
        cols = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("stage_zh", "发展阶段"), ("service", "推荐服务"),
                ("reason", "推荐理由"), ("clause", "依据")]
        return export_response(rows, cols, args["format"], f"services-{run.year}")
    return jsonify({"run_id": run.id, "year": run.year, "items": rows})


@uses_bp.route("/honours")
@public
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


@run_bp.route("/<int(max=2147483647):run_id>/honours", methods=["POST"])
@require(*STAFF)
@run_bp.arguments(HonourCreate)
def honours_publish(args, run_id):
    """发布一个批次的榜单（各阶段或总榜前 N 名）；公众只看到已发布的榜单"""
    s = db.session()
    run = _run_or_404(s, run_id)
    try:
        h = uses.publish_honours(s, run, args["scope"], args["top_n"], api_user(request))
    except uses.RunNotPublished as exc:
        abort(409, message=str(exc))
    s.commit()
    return jsonify({"id": h.id, "title": h.title, "entries": json.loads(h.entries)}), 201


@uses_bp.route("/reports/monitoring")
@require(*READERS)
@uses_bp.arguments(YearQuery, location="query")
def monitoring_get(args):
    """年度监测分析报告的数据（format=pdf 为 PDF 文件）"""
    s = db.session()
    run = pick_run(args)
    return jsonify(uses.monitoring(s, run))


@uses_bp.route("/reports/monitoring.pdf")
@require(*READERS)
@uses_bp.arguments(YearQuery, location="query")
def monitoring_pdf(args):
    """年度监测分析报告 PDF"""
    from flask import Response

    from .report import ReportError, monitoring_pdf as make_pdf
    s = db.session()
    run = pick_run(args)
    try:
        data = make_pdf(uses.monitoring(s, run))
    except ReportError as exc:
        abort(503, message=str(exc))
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f"attachment; filename=monitoring-{run.year}.pdf"})
