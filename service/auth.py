"""Users, roles, passwords, API tokens and who may see what.

Pages use a session login (a form with a CSRF token); the API uses bearer tokens
(`POST /api/tokens`), and for reading only, the page session too. A request with neither
is the public."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
import unicodedata
from functools import wraps

from flask import current_app, g, session as web_session
from flask_smorest import abort
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from . import db
from .access import declare
from .models import ROLES, ApiToken, User, utcnow
from .store import audit

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class UserError(ValueError):
    pass


def create_user(s, username, password, role, credit_code=None, display_name="", by=None, source=None) -> User:
    """A new user. An enterprise user is bound to its credit code, a department user
    (数据报送单位) to one data source of the policy in force (data.yaml `sources`)."""
    if role not in ROLES or role == "public":
        raise UserError(f"未知角色 {role!r}；可选：{', '.join(r for r in ROLES if r != 'public')}")
    check_username(username)
    check_password(password, username)
    if role == "enterprise" and not credit_code:
        raise UserError("企业用户须指定统一社会信用代码")
    if role == "department":
        from . import shape
        src = shape.data(s).source(source or "")
        if src is None or src.kind != "department":
            names = "、".join(f"{x.key}（{x.name}）" for x in shape.data(s).sources.values() if x.kind == "department")
            raise UserError(f"数据报送单位须指定所属部门来源；可选：{names}")
    if s.scalar(select(User).where(User.username == username)):
        raise UserError(f"用户名 {username} 已存在")
    user = User(username=username, password_hash=generate_password_hash(password), role=role,
                credit_code=credit_code if role == "enterprise" else None, display_name=display_name or username,
                source=source if role == "department" else None)
    s.add(user)
    s.flush()
    audit(s, by, "user.add", username, role=role, credit_code=credit_code, source=user.source)
    return user


MIN_PASSWORD = 10
COMMON_PASSWORDS = {"password", "password1", "password123", "passw0rd", "1234567890", "12345678910", "qwertyuiop",
                    "0123456789", "abcdefghij", "iloveyou12", "admin12345", "administrator", "welcome123",
                    "changeme123", "letmein123", "qwerty12345", "1q2w3e4r5t", "abc1234567", "aa12345678"}


def check_username(username):
    """A username is 1–80 visible characters: no control or format characters, no blanks
    around it (they would make two names that look the same)."""
    if not username or len(username) > 80:
        raise UserError("用户名不能为空，且不超过80个字符")
    if username != username.strip() or any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in username):
        raise UserError("用户名不能含控制字符、换行或首尾空白")


def check_password(password, username=""):
    """The minimum policy for a new password: 10 characters or more, not only one kind of
    character, not a well-known password and not the username."""
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"密码至少{MIN_PASSWORD}个字符")
    if len(set(password)) < 4 or password.isdigit() or password.isalpha():
        raise UserError("密码过于简单：请混合字母、数字或符号")
    if password.lower() in COMMON_PASSWORDS or password.lower() == (username or "").lower():
        raise UserError("密码过于常见或与用户名相同")


# the hash that an unknown username is checked against, so that it takes as long as a known one
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


def authenticate(s, username, password) -> User | None:
    """The user whose password this is, or None. An unknown username costs the same hash
    as a known one (no timing difference tells which usernames exist)."""
    user = s.scalar(select(User).where(User.username == username)) if username else None
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.active:
        return None
    return user


# ---- throttling of failed logins ----------------------------------------------------------------

class Throttle:
    """Failed logins per username and per client address in a sliding window, in this
    process (a restart forgets them; with several server processes each counts its own).
    After `limit` failures the key is refused until the oldest failure leaves the window."""

    def __init__(self):
        self.failures = {}
        self.lock = threading.Lock()

    def _recent(self, key, window, now):
        times = [t for t in self.failures.get(key, ()) if now - t < window]
        if times:
            self.failures[key] = times
        else:
            self.failures.pop(key, None)
        return times

    def retry_after(self, keys_limits, window) -> int:
        """Seconds to wait, 0 when every key is below its limit."""
        now = time.monotonic()
        wait = 0
        with self.lock:
            for key, limit in keys_limits:
                times = self._recent(key, window, now)
                if len(times) >= limit:
                    wait = max(wait, int(window - (now - times[-limit])) + 1)
        return wait

    def fail(self, keys):
        now = time.monotonic()
        with self.lock:
            if len(self.failures) > 100_000:           # bounded: forget the idle keys
                for k in list(self.failures):
                    self._recent(k, 3600, now)
            for key in keys:
                self.failures.setdefault(key, []).append(now)

    def clear(self, key):
        with self.lock:
            self.failures.pop(key, None)


def _throttle(app) -> Throttle:
    return app.extensions.setdefault("innopoints_login_throttle", Throttle())


class TooManyAttempts(Exception):
    def __init__(self, retry_after):
        self.retry_after = retry_after
        super().__init__(f"retry after {retry_after}s")


def login(s, username, password, address) -> User | None:
    """`authenticate`, throttled: raise TooManyAttempts (with the seconds to wait) when the
    username or the address has failed too often lately; a failure counts against both."""
    app = current_app
    cfg = app.config
    keys = [(f"user:{(username or '').lower()}", cfg["LOGIN_MAX_FAILURES_PER_USER"]),
            (f"addr:{address or '?'}", cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"])]
    throttle = _throttle(app)
    wait = throttle.retry_after(keys, cfg["LOGIN_FAILURE_WINDOW"])
    if wait:
        raise TooManyAttempts(wait)
    user = authenticate(s, username, password)
    if user is None:
        throttle.fail([k for k, _ in keys])
        return None
    throttle.clear(keys[0][0])
    return user


# ---- page sessions ------------------------------------------------------------------------------

def start_session(user):
    """Log `user` in on this browser: the cookie carries the user's session generation and
    the time of login."""
    web_session.clear()
    web_session["user_id"] = user.id
    web_session["gen"] = user.session_gen
    web_session["at"] = int(time.time())


def session_user(s) -> User | None:
    """The user of the page session, if it is still good: the user is active, its session
    generation has not moved on (disable, revoke, logout) and the login is not too old."""
    uid = web_session.get("user_id")
    if not uid:
        return None
    user = s.get(User, uid)
    at = web_session.get("at")
    lifetime = current_app.config["SESSION_LIFETIME"]
    if (user is None or not user.active or web_session.get("gen") != user.session_gen
            or not isinstance(at, int) or time.time() - at > lifetime):
        web_session.clear()
        return None
    return user


def end_sessions(s, user):
    """Every page session of `user` ends at its next request."""
    user.session_gen = (user.session_gen or 0) + 1


def revoke_access(s, user, by=None, action="user.revoke"):
    """End every page session and revoke every API token of `user`."""
    end_sessions(s, user)
    n = 0
    for tok in s.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))):
        tok.revoked = True
        n += 1
    audit(s, by, action, user.username, tokens_revoked=n)
    return n


def disable_user(s, user, by=None):
    """The user can no longer log in; its sessions and tokens stop at the next request."""
    user.active = False
    return revoke_access(s, user, by, action="user.disable")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(s, user, label="") -> str:
    """A new API token; only its hash is stored, the token is shown once."""
    token = secrets.token_urlsafe(32)
    s.add(ApiToken(user_id=user.id, token_sha256=_digest(token), label=label))
    audit(s, user, "token.issue", user.username, label=label)
    return token


def user_from_token(s, token) -> User | None:
    """The token's user, unless the token is revoked or older than `TOKEN_LIFETIME`
    (seconds), or the user is disabled."""
    found = s.execute(select(ApiToken.created_at, User).join(User, User.id == ApiToken.user_id).where(
        ApiToken.token_sha256 == _digest(token), ApiToken.revoked.is_(False))).first()
    if found is None or not found.User.active:
        return None
    lifetime = current_app.config["TOKEN_LIFETIME"]
    if lifetime and utcnow() - found.created_at > dt.timedelta(seconds=lifetime):
        return None
    return found.User


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
            abort(401, message="令牌无效、已过期或已撤销 / invalid, expired or revoked token")
    elif request.method in SAFE_METHODS and web_session.get("user_id"):
        user = session_user(s)
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


def enable_user(s, user, by=None):
    """A disabled user may log in again (its old sessions and tokens stay ended)."""
    user.active = True
    audit(s, by, "user.enable", user.username)


def reset_password(s, user, password, by=None):
    """A new password (checked as a new one is); every session and token of the user ends."""
    check_password(password, user.username)
    user.password_hash = generate_password_hash(password)
    return revoke_access(s, user, by, action="user.password")


def set_role(s, user, role, credit_code=None, by=None):
    """Another role (an enterprise user needs its enterprise); the user's sessions and tokens
    end, so that nothing issued under the old role stays valid."""
    if role not in ROLES or role == "public":
        raise UserError(f"未知角色 {role!r}")
    if role == "enterprise" and not credit_code:
        raise UserError("企业用户须指定统一社会信用代码")
    before = user.role
    user.role = role
    user.credit_code = credit_code if role == "enterprise" else None
    audit(s, by, "user.role", user.username, before=before, after=role, credit_code=user.credit_code)
    return revoke_access(s, user, by)
