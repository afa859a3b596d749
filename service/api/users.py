"""Users: tokens (blueprint `auth`), the caller (`me`), users and the audit log (`admin`)."""
from __future__ import annotations

import json

from flask import jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from .. import db, shape
from ..access import public
from ..auth import (TooManyAttempts, UserError, api_user, create_user, disable_user, issue_token, login,
                    require, revoke_access)
from ..exports import export_response
from ..models import ROLES, AuditEntry, CreditLookup, Enterprise, User, utcnow
from ..schemas import (AuditQuery, AuditRow, Consent, ConsentDone, CreditLookupRow, FormatQuery, Me,
                       TokenRequest, TokenResponse, UserSchema)
from ..store import audit
from .common import STAFF, answers, found, iso


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


# ---- the caller ------------------------------------------------------------------------------------
me_bp = Blueprint("me", __name__, url_prefix="/api/me", description="当前用户；企业的授权与被查询记录")


@me_bp.route("")
@require("enterprise", "bank", "officer", "finance", "admin", "department")
@answers(me_bp, Me)
def me():
    """当前用户与角色"""
    s = db.session()
    user = api_user(request)
    d = {"username": user.username, "role": user.role, "role_zh": ROLES[user.role], "credit_code": user.credit_code}
    if user.role == "department":
        d["source"] = user.source
        d["source_zh"] = shape.data(s).source_name(user.source)
    if user.role == "enterprise":
        ent = s.get(Enterprise, user.credit_code)
        d["credit_consent"] = bool(ent and ent.credit_consent)
    return jsonify(d)


@me_bp.route("/consent", methods=["PUT"])
@require("enterprise")
@answers(me_bp, ConsentDone)
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
@answers(me_bp, CreditLookupRow(many=True), files=True)
@me_bp.arguments(FormatQuery, location="query")
def credit_lookups(args):
    """本企业被合作银行查询的记录"""
    s = db.session()
    user = api_user(request)
    q = select(CreditLookup, User).join(User, User.id == CreditLookup.user_id) \
        .where(CreditLookup.credit_code == user.credit_code).order_by(CreditLookup.id.desc())
    rows = [{"at": iso(c.at), "bank": u.display_name or u.username, "granted": c.granted, "run_id": c.run_id}
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
                               args["display_name"], by=api_user(request), source=args["source"])
        except UserError as exc:
            abort(422, message=str(exc), errors={"json": {"user": [str(exc)]}})
        s.commit()
        return user


def _user_or_404(s, user_id):
    user = found(s, User, user_id, f"没有用户 {user_id} / no such user")
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
@answers(admin_bp, AuditRow(many=True), files=True)
@admin_bp.arguments(AuditQuery, location="query")
def audit_log(args):
    """审计日志（只能读取，不能修改或删除）"""
    s = db.session()
    q = select(AuditEntry).order_by(AuditEntry.id.desc())
    if args.get("action"):
        q = q.where(AuditEntry.action == args["action"])
    if args["format"] == "json":
        q = q.offset((args["page"] - 1) * args["per_page"]).limit(args["per_page"])
    rows = [{"id": a.id, "at": iso(a.at), "user": a.username, "action": a.action, "target": a.target,
             "detail": json.loads(a.detail)} for a in s.scalars(q)]
    if args["format"] != "json":
        return export_response(rows, [("id", "编号"), ("at", "时间"), ("user", "用户"), ("action", "操作"),
                                      ("target", "对象"), ("detail", "详情")], args["format"], "audit")
    return jsonify(rows)
