"""Users, roles, passwords, API tokens and who may see what.

Pages use a session login (a form with a CSRF token); the API uses bearer tokens
(`POST /api/tokens`), and for reading only, the page session too. A request with neither
is the public."""
from __future__ import annotations

import hashlib
import secrets
from functools import wraps

from flask import g, session as web_session
from flask_smorest import abort
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from . import db
from .access import declare
from .models import ROLES, ApiToken, User
from .store import audit

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class UserError(ValueError):
    pass


def create_user(s, username, password, role, credit_code=None, display_name="", by=None) -> User:
    if role not in ROLES or role == "public":
        raise UserError(f"未知角色 {role!r}；可选：{', '.join(r for r in ROLES if r != 'public')}")
    if not username or len(username) > 80:
        raise UserError("用户名不能为空，且不超过80个字符")
    if len(password or "") < 8:
        raise UserError("密码至少8个字符")
    if role == "enterprise" and not credit_code:
        raise UserError("企业用户须指定统一社会信用代码")
    if s.scalar(select(User).where(User.username == username)):
        raise UserError(f"用户名 {username} 已存在")
    user = User(username=username, password_hash=generate_password_hash(password), role=role,
                credit_code=credit_code if role == "enterprise" else None, display_name=display_name or username)
    s.add(user)
    s.flush()
    audit(s, by, "user.add", username, role=role, credit_code=credit_code)
    return user


def authenticate(s, username, password) -> User | None:
    user = s.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not check_password_hash(user.password_hash, password or ""):
        return None
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(s, user, label="") -> str:
    """A new API token; only its hash is stored, the token is shown once."""
    token = secrets.token_urlsafe(32)
    s.add(ApiToken(user_id=user.id, token_sha256=_digest(token), label=label))
    audit(s, user, "token.issue", user.username, label=label)
    return token


def user_from_token(s, token) -> User | None:
    row = s.scalar(select(ApiToken).where(ApiToken.token_sha256 == _digest(token), ApiToken.revoked.is_(False)))
    if row is None or not row.user.active:
        return None
    return row.user


def api_user(request) -> User | None:
    """The API caller: a bearer token, or (for reading) the page session; None for the public.
    A token that is given but unknown is refused (401), not taken as the public."""
    if "api_user" in g:
        return g.api_user
    s = db.session()
    header = request.headers.get("Authorization", "")
    user = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            abort(401, message="Authorization 头应为 'Bearer <令牌>' / expected a bearer token")
        user = user_from_token(s, token.strip())
        if user is None:
            abort(401, message="令牌无效或已撤销 / invalid or revoked token")
    elif request.method in SAFE_METHODS and web_session.get("user_id"):
        user = s.get(User, web_session["user_id"])
        if user is not None and not user.active:
            user = None
    g.api_user = user
    return user


def role_of(user) -> str:
    return user.role if user is not None else "public"


def require(*roles):
    """API view decorator: the caller's role must be one of `roles` ('public' = anyone)."""
    def deco(view):
        @wraps(view)
        def wrapped(*a, **kw):
            from flask import request
            user = api_user(request)
            role = role_of(user)
            if "public" not in roles and role not in roles:
                if user is None:
                    abort(401, message="请先登录（Bearer 令牌） / authentication required")
                abort(403, message=f"角色「{ROLES[role]}」无权访问 / role {role} may not use this")
            return view(*a, **kw)
        return declare(wrapped, roles)
    return deco


def own_enterprise_only(code):
    """An enterprise user may see only its own enterprise."""
    from flask import request
    user = api_user(request)
    if user is not None and user.role == "enterprise" and user.credit_code != code:
        abort(403, message="企业用户只能查看本企业数据 / an enterprise may see only its own data")
