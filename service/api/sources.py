"""Sources of the data (§四.(一)): the package's sources and the fields each owns, the
provenance of an enterprise's values, conflicts between sources, and published lists
(公开数据) (blueprint `sources`)."""
from __future__ import annotations

from flask import jsonify, request
from flask_smorest import Blueprint, abort
from marshmallow import fields
from sqlalchemy import select

from .. import db, provenance, publiclists, shape
from ..auth import api_user, require, role_of
from ..models import Conflict, Import, PublicList, PublicListEntry, Record, User, records_table
from ..schemas import (ConflictDecision, ConflictQuery, EntryDecision, ProvenanceQuery, PublicListForm, UploadFile,
                       answer, OBJ, LIST)
from ..store import FieldRejected, correct_field, get_record, text_of
from .common import READERS, STAFF, answers, enterprise_session, found, pick_run

src_bp = Blueprint("sources", __name__, url_prefix="/api",
                   description="数据来源：各部门报送的字段、每个值的来源、来源间的冲突、公开名单")

Sources = answer("Sources", sources=LIST, precedence=fields.List(fields.Str()))
ProvenanceAnswer = answer("Provenance", credit_code=fields.Str(), records=OBJ(), run=OBJ())


@src_bp.route("/sources")
@require("department", *READERS)
@answers(src_bp, Sources)
def sources_get():
    """数据来源（部门、企业自报、公开数据）、各来源报送的字段，以及冲突时的优先顺序"""
    data = shape.data()
    out = [{"key": s.key, "name": s.name, "kind": s.kind, "precedence": data.precedence(s.key) + 1,
            "template": f"/api/templates/records.xlsx?source={s.key}",
            "fields": [{"key": f.key, "label": f.label} for f in data.fields_of(s.key)]}
           for s in data.sources.values()]
    return jsonify({"sources": out, "precedence": list(data.sources)})


@src_bp.route("/enterprises/<code>/provenance")
@require("enterprise", *READERS)
@answers(src_bp, ProvenanceAnswer)
@src_bp.arguments(ProvenanceQuery, location="query")
def enterprise_provenance(args, code):
    """一家企业每个值的来源：来源单位、方式（导入、申报、更正、公开名单）、导入批次、操作人、时间；
    run=批次 给出该批次计算时读取的值的来源（计算过程中的数字可追溯到带来它的文件）"""
    s = enterprise_session(code)
    data = shape.data(s)
    users = dict(s.execute(select(User.id, User.username)).all())
    current = provenance.of_enterprise(s, code, data)
    imports = dict(s.execute(select(Import.id, Import.filename).where(
        Import.id.in_({p.import_id for p in current.values() if p.import_id}))).all())
    years = {}
    for rec in s.scalars(select(Record).where(records_table.c.credit_code == code).order_by(records_table.c.year)):
        if args.get("year") and rec.year != args["year"]:
            continue
        vals = rec.values()
        years[str(rec.year)] = {k: {**provenance.describe(current[rec.year, k], data, users, imports),
                                    "value": text_of(vals[k])}
                                for k in vals if (rec.year, k) in current}
    out = {"credit_code": code, "records": years}
    if args.get("run"):
        run = pick_run({"run": args["run"]})
        out["run"] = {"run_id": run.id, "year": run.year, "file": f"/api/runs/{run.id}/files/provenance.csv",
                      "fields": provenance.run_provenance(s, run, code, data)}
    if role_of(api_user(request)) not in READERS:         # who entered a value is for staff only
        out["records"] = {y: {k: provenance.without_user(v) for k, v in f.items()} for y, f in years.items()}
        if "run" in out:
            out["run"]["fields"] = {k: provenance.without_user(v) for k, v in out["run"]["fields"].items()}
            out["run"].pop("file")
    return jsonify(out)


@src_bp.route("/conflicts")
@require(*STAFF)
@answers(src_bp, answer("Conflicts", items=LIST))
@src_bp.arguments(ConflictQuery, location="query")
def conflicts_get(args):
    """两个来源对同一企业年度的同一字段给出不同值：待处理的冲突（处理前按数据字典的来源优先顺序取值）"""
    s = db.session()
    data = shape.data(s)
    q = select(Conflict).order_by(Conflict.id)
    if args.get("status"):
        q = q.where(Conflict.status == args["status"])
    return jsonify({"items": [provenance.conflict_dict(c, data) for c in s.scalars(q)]})


@src_bp.route("/conflicts/<int(max=2147483647):conflict_id>/decision", methods=["POST"])
@require(*STAFF)
@answers(src_bp, answer("ConflictDone", id=fields.Int()))
@src_bp.arguments(ConflictDecision)
def conflict_decide(args, conflict_id):
    """处理一个冲突：采用现值（kept）或另一来源的值（other），作为工作人员更正写入并记入审计日志"""
    s = db.session()
    c = found(s, Conflict, conflict_id, f"没有冲突 {conflict_id}")
    if c.status != "open":
        abort(409, message="该冲突已处理 / already resolved")
    try:
        decide_conflict(s, c, args["use"], args["reason"], api_user(request))
    except (LookupError, FieldRejected) as exc:
        abort(409, message=str(exc))
    s.commit()
    return jsonify(provenance.conflict_dict(c, shape.data(s)))


def decide_conflict(s, c, use, reason, user):
    """An officer's decision on a conflict: the chosen value is written as a correction
    (which closes the field's open conflicts)."""
    rec = get_record(s, c.credit_code, c.year)
    if rec is None:
        raise LookupError("该年度记录已不存在")
    value = c.kept_value if use == "kept" else c.other_value
    chosen = shape.data(s).source_name(c.kept_source if use == "kept" else c.other_source)
    correct_field(s, rec, c.field, value, user, reason=f"冲突 #{c.id} 处理：采用{chosen}的值。{reason}")


# ---- published lists ------------------------------------------------------------------------

@src_bp.route("/public-lists", methods=["POST"])
@require(*STAFF)
@answers(src_bp, answer("PublicListDone", id=fields.Int()), 201)
@src_bp.arguments(PublicListForm, location="form")
@src_bp.arguments(UploadFile, location="files")
def public_list_post(form, files):
    """导入公开名单（统一社会信用代码或企业名称、日期）：为名单上的企业设置一个字段；名称匹配不到或匹配到多家的行留待复核"""
    s = db.session()
    try:
        pl = publiclists.import_list(s, files["file"], form["title"], form["field"], form.get("value") or "",
                                     form.get("year"), api_user(request))
    except publiclists.ListRejected as exc:
        abort(422, message=str(exc))
    s.commit()
    return jsonify(publiclists.list_dict(s, pl)), 201


@src_bp.route("/public-lists")
@require(*STAFF)
@answers(src_bp, answer("PublicLists", items=LIST))
def public_lists_get():
    """已导入的公开名单"""
    s = db.session()
    return jsonify({"items": [publiclists.list_dict(s, pl, entries=False)
                              for pl in s.scalars(select(PublicList).order_by(PublicList.id.desc()))]})


@src_bp.route("/public-lists/<int(max=2147483647):list_id>")
@require(*STAFF)
@answers(src_bp, answer("PublicListDetail", id=fields.Int(), entries=LIST))
def public_list_get(list_id):
    """一份公开名单的每一行：已设置、未匹配、匹配到多家（待复核）"""
    s = db.session()
    pl = found(s, PublicList, list_id, f"没有公开名单 {list_id}")
    return jsonify(publiclists.list_dict(s, pl))


@src_bp.route("/public-lists/entries/<int(max=2147483647):entry_id>/decision", methods=["POST"])
@require(*STAFF)
@answers(src_bp, answer("PublicListEntryDone", id=fields.Int()))
@src_bp.arguments(EntryDecision)
def public_list_entry_decide(args, entry_id):
    """复核一行：指定它所指的企业（credit_code，则设置字段），或驳回（dismiss）"""
    s = db.session()
    e = found(s, PublicListEntry, entry_id, f"没有名单行 {entry_id}")
    try:
        publiclists.decide_entry(s, e, args.get("credit_code"), args.get("reason") or "", api_user(request))
    except publiclists.ListRejected as exc:
        abort(409, message=str(exc))
    s.commit()
    return jsonify(publiclists.entry_dict(e))
