"""公示 and objections (blueprint `publicity`): open a period for a published run, the lists
under 公示 with their dates (public), objections with evidence (enterprises), their
resolution and the finalisation (officers)."""
from __future__ import annotations

from flask import Response, current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import fields
from sqlalchemy import select

from .. import db, publicity
from ..access import public
from ..auth import api_user, require
from ..models import Objection, ObjectionFile, Publicity
from ..schemas import EvidenceFiles, ObjectionDecisionSchema, ObjectionForm, PublicityCreate, answer, LIST
from .common import STAFF, answers, found, run_or_404, start

pub_bp = Blueprint("publicity", __name__, url_prefix="/api",
                   description="公示与异议：奖励名单与榜单的公示期、企业异议及其处理、定稿")

PublicityAnswer = answer("Publicity", id=fields.Int(), year=fields.Int(), starts_on=fields.Str(), ends_on=fields.Str(),
                         state=fields.Str(), awards=LIST, honours=LIST)
ObjectionAnswer = answer("Objection", id=fields.Int(), item=fields.Str(), status=fields.Str(), decision=fields.Str(),
                         evidence=LIST)


def _publicity_or_404(s, pid):
    return found(s, Publicity, pid, f"没有公示 {pid} / no such publicity")


@pub_bp.route("/runs/<int(max=2147483647):run_id>/publicity", methods=["POST"])
@require(*STAFF)
@answers(pub_bp, PublicityAnswer, 201)
@pub_bp.arguments(PublicityCreate)
def publicity_open(args, run_id):
    """为已发布批次的奖励名单和榜单开启公示期（开始、结束日期）"""
    s = db.session()
    run = run_or_404(s, run_id, done=False)
    try:
        p = publicity.open_period(s, run, args["starts_on"], args["ends_on"], api_user(request))
    except publicity.PublicityError as exc:
        abort(409, message=str(exc))
    s.commit()
    return jsonify(publicity.publicity_dict(s, p)), 201


@pub_bp.route("/publicity")
@public
@answers(pub_bp, answer("PublicityList", items=LIST))
def publicity_list():
    """公示：各年度奖励名单与榜单的公示期、状态与名单；定稿后附公示期、异议及处理结果"""
    s = db.session()
    return jsonify({"items": [publicity.publicity_dict(s, p) for p in
                              s.scalars(select(Publicity).order_by(Publicity.id.desc()))]})


@pub_bp.route("/publicity/<int(max=2147483647):pid>")
@public
@answers(pub_bp, PublicityAnswer)
def publicity_get(pid):
    """一次公示：公示期、状态、奖励名单、榜单；定稿后的说明"""
    s = db.session()
    return jsonify(publicity.publicity_dict(s, _publicity_or_404(s, pid)))


@pub_bp.route("/publicity/<int(max=2147483647):pid>/objections")
class Objections(MethodView):
    @require("enterprise", *STAFF)
    @answers(pub_bp, answer("Objections", items=LIST))
    def get(self, pid):
        """异议：企业看本企业的异议及处理结果，工作人员看全部"""
        s = db.session()
        p = _publicity_or_404(s, pid)
        user = api_user(request)
        code = user.credit_code if user.role == "enterprise" else None
        return jsonify({"items": [publicity.objection_dict(s, o) for o in publicity.objections_of(s, p, code)]})

    @require("enterprise")
    @answers(pub_bp, ObjectionAnswer, 201)
    @pub_bp.arguments(ObjectionForm, location="form")
    @pub_bp.arguments(EvidenceFiles, location="files")
    def post(self, form, files, pid):
        """企业在公示期内提出异议：事项、理由、证明材料（PDF、PNG、JPG、XLSX、CSV，每个至多 5 MB，至多 5 个）"""
        s = db.session()
        p = _publicity_or_404(s, pid)
        cfg = current_app.config
        try:
            o = publicity.file_objection(s, p, api_user(request), form["item"], form["reason"],
                                         request.files.getlist("evidence"), cfg["OBJECTION_MAX_FILE_BYTES"],
                                         cfg["OBJECTION_MAX_FILES"])
        except publicity.PublicityError as exc:
            s.rollback()
            abort(422, message=str(exc))
        s.commit()
        return jsonify(publicity.objection_dict(s, o)), 201


@pub_bp.route("/objections/<int(max=2147483647):oid>/decision", methods=["POST"])
@require(*STAFF)
@answers(pub_bp, ObjectionAnswer)
@pub_bp.arguments(ObjectionDecisionSchema)
def objection_decide(args, oid):
    """处理异议：成立（更正数据并重新计算，附新旧批次差异）或驳回（附理由）"""
    s = db.session()
    o = found(s, Objection, oid, f"没有异议 {oid}")
    app = current_app._get_current_object()
    try:
        publicity.decide(s, o, api_user(request), args["uphold"], args["reason"], args.get("field"), args.get("year"),
                         args.get("value"), start=lambda run_id: start(app, run_id))
    except publicity.PublicityError as exc:
        s.rollback()
        abort(409, message=str(exc))
    s.commit()
    return jsonify(publicity.objection_dict(s, o))


@pub_bp.route("/objections/<int(max=2147483647):oid>/evidence/<int(max=2147483647):fid>")
@require("enterprise", *STAFF)
@answers(pub_bp, content={"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
         description="证明材料")
def objection_evidence(oid, fid):
    """异议的证明材料（提出异议的企业与工作人员可下载）"""
    s = db.session()
    o = s.get(Objection, oid)
    f = s.get(ObjectionFile, fid)
    user = api_user(request)
    if o is None or f is None or f.objection_id != o.id or (user.role == "enterprise" and user.credit_code != o.credit_code):
        abort(404, message="没有该证明材料")
    return Response(f.content, mimetype=f.content_type,
                    headers={"Content-Disposition": f"attachment; filename=evidence-{o.id}-{f.id}{_suffix(f.filename)}"})


def _suffix(name):
    from pathlib import Path
    return Path(name).suffix.lower()


@pub_bp.route("/publicity/<int(max=2147483647):pid>/finalise", methods=["POST"])
@require(*STAFF)
@answers(pub_bp, PublicityAnswer)
def publicity_finalise(pid):
    """定稿：公示期结束且没有未处理的异议后，名单定稿，并写明公示期、异议及处理结果"""
    s = db.session()
    p = _publicity_or_404(s, pid)
    try:
        publicity.finalise(s, p, api_user(request))
    except publicity.PublicityError as exc:
        s.rollback()
        abort(409, message=str(exc))
    s.commit()
    return jsonify(publicity.publicity_dict(s, p))
