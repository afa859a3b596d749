"""Data: imports and their bad-cell lists, import templates, declarations (blueprint `data`)."""
from __future__ import annotations

from flask import jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from .. import db, shape
from ..access import public
from ..auth import api_user, own_enterprise_only, require
from ..exports import export_response, template_xlsx
from ..models import Declaration, Import, User
from ..schemas import (Decision, DeclarationCreate, DeclarationQuery, DeclarationSchema, FormatQuery, TemplateQuery,
                       ImportDone, ImportFile, ImportForm, ImportRejectedAnswer, ImportRow)
from ..store import BadUpload, DecisionError, FieldRejected, ImportRejected, declare, decide, import_upload
from .common import FILE_CONTENT, READERS, STAFF, XLSX, answers, bad_cells, found, iso, labels


# ---- data: imports, templates, declarations ------------------------------------------------------
data_bp = Blueprint("data", __name__, url_prefix="/api", description="数据采集：导入、模板、自主申报与审核")


@data_bp.route("/imports", methods=["POST"])
@require(*STAFF, "department")
@answers(data_bp, ImportDone, 201)
@answers(data_bp, ImportRejectedAnswer, 422, description="文件有错误，未导入 / rejected")
@data_bp.arguments(ImportForm, location="form")
@data_bp.arguments(ImportFile, location="files")
def import_post(form, files):
    """导入 CSV/XLSX（中文或英文表头）：任一单元格有误则不导入并列出全部错误；含全部列的文件原子替换所列企业年度，
    只含部分字段的文件（数据报送单位只能报送本单位的字段）按字段合并，并记录每个值的来源"""
    user = api_user(request)
    if form.get("source") and user.role == "department":
        abort(422, message="数据报送单位的来源由其账户确定 / a department's source is its account's",
              errors={"form": {"source": ["不可指定"]}})
    try:
        out = import_upload(db.session(), files["file"], form["kind"], user, source=form.get("source") or None)
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
@answers(data_bp, ImportRow(many=True), files=True)
@data_bp.arguments(FormatQuery, location="query")
def import_list(args):
    """导入记录：谁、何时、文件校验和、行数"""
    s = db.session()
    users = dict(s.execute(select(User.id, User.username)).all())
    rows = [{"id": i.id, "kind": i.kind, "filename": i.filename, "sha256": i.sha256, "user": users.get(i.user_id, ""),
             "at": iso(i.at), "status": i.status, "rows": i.rows, "added": i.added, "replaced": i.replaced,
             "bad_cells": i.bad_cells} for i in s.scalars(select(Import).order_by(Import.id.desc()))]
    if args["format"] != "json":
        cols = [("id", "编号"), ("kind", "类型"), ("filename", "文件"), ("user", "导入人"), ("at", "时间"),
                ("status", "结果"), ("rows", "行数"), ("added", "新增"), ("replaced", "替换"), ("bad_cells", "错误单元格"),
                ("sha256", "文件校验和")]
        return export_response(rows, cols, args["format"], "imports")
    return jsonify(rows)


@data_bp.route("/imports/<int(max=2147483647):import_id>/bad-cells.csv")
@require(*STAFF)
@answers(data_bp, content={"text/csv": FILE_CONTENT["text/csv"]}, description="全部错误单元格（CSV）")
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
    return Response(inflate(), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=import-{import_id}-bad-cells.csv"})


@data_bp.route("/templates/<kind>.xlsx")
@public
@answers(data_bp, content={XLSX: FILE_CONTENT[XLSX]}, description="导入模板（XLSX）")
@data_bp.arguments(TemplateQuery, location="query")
def import_template(args, kind):
    """导入模板（XLSX）：中文表头与单位、示例行、填写说明；source=来源键 给出该来源（部门）只含本单位字段的模板"""
    from flask import Response
    if kind not in ("records", "contracts"):
        abort(404, message="模板只有 records 与 contracts")
    data = shape.data()
    source = args.get("source")
    if source is not None and (kind != "records" or data.source(source) is None):
        abort(404, message=f"没有数据来源 {source} 的{'记录' if kind == 'records' else ''}模板 / no such source")
    name = f"{kind}-{source}-template.xlsx" if source else f"{kind}-template.xlsx"
    return Response(template_xlsx(kind, data, source), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


def decl_dict(d: Declaration):
    return {"id": d.id, "credit_code": d.credit_code, "year": d.year, "field": d.field,
            "field_zh": labels().get(d.field, d.field), "value": d.value, "previous": d.previous, "reason": d.reason,
            "status": d.status, "submitted_at": d.submitted_at, "decided_at": d.decided_at,
            "decision_reason": d.decision_reason}


@data_bp.route("/declarations")
class Declarations(MethodView):
    @require("enterprise", *READERS)
    @answers(data_bp, DeclarationSchema(many=True), files=True)
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
    d = found(s, Declaration, decl_id, f"没有申报 {decl_id}")
    try:
        decide(s, api_user(request), d, args["approve"], args["reason"])
    except (DecisionError, FieldRejected) as exc:
        abort(409, message=str(exc))
    s.commit()
    return decl_dict(d)
