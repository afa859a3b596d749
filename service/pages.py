"""Pages (Jinja2): log in and out, the public dashboard, the results of a run by stage and
its files. The role pages are in `workspace.py`. Pages read the same query code as the API."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import (Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


from . import charts as charts_
from . import db, query
from .access import declare, public
from .auth import TooManyAttempts, end_sessions, session_user, start_session
from .auth import login as checked_login
from .models import ROLES, Run
from .runs import current_run
from .store import audit

bp = Blueprint("pages", __name__)


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(message="请输入用户名"), Length(max=80)])
    password = PasswordField("密码", validators=[DataRequired(message="请输入密码"), Length(max=200)])


def page_user():
    """The logged-in user of the page session (None when the session has ended: the user
    was disabled, its access revoked, it logged out elsewhere, or the login is too old)."""
    if "page_user" not in g:
        g.page_user = session_user(db.session()) if session.get("user_id") else None
    return g.page_user


def local_target(target) -> str | None:
    """`target` if it is a path on this site (`/…`), else None: no scheme, no host, no
    `//host` or `/\\host` (browsers read a backslash as a slash), no control characters."""
    if not target or not target.startswith("/") or len(target) > 2000:
        return None
    if target.startswith("//") or "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.app_context_processor
def _inject():
    return {"current_user": page_user(), "ROLES": ROLES}


ERROR_PAGES = {400: ("请求有误", "提交的内容不完整或已过期，请返回上一页刷新后重试。"),
               403: ("无权访问", None),
               404: ("页面不存在", "没有找到这个页面或这条记录：可能地址有误，或该批次尚未完成、尚未发布。"),
               405: ("不支持此操作", "此页面不接受这种提交方式。"),
               413: ("文件过大", "上传的文件超过了允许的大小。"),
               429: ("操作过于频繁", "请稍后再试。")}


def _error_page(exc):
    """Every refusal of a page in Chinese; the API keeps its JSON answers (both languages)."""
    if request.path.startswith("/api"):
        return current_app.extensions["innopoints_api"].handle_http_exception(exc)
    title, text = ERROR_PAGES[exc.code]
    from flask_wtf.csrf import CSRFError
    if isinstance(exc, CSRFError):
        text = "表单缺少安全令牌（CSRF）或已过期：请刷新页面后重新提交。"
    return render_template("pages/error.html", title=title, text=text, code=exc.code), exc.code


for _code in ERROR_PAGES:
    bp.app_errorhandler(_code)(_error_page)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """Session login for the pages (the form carries a CSRF token)."""
    form = LoginForm()
    if form.validate_on_submit():
        s = db.session()
        try:
            user = checked_login(s, form.username.data, form.password.data, request.remote_addr)
        except TooManyAttempts as exc:
            flash(f"登录失败次数过多，请 {exc.retry_after} 秒后再试", "error")
            return (render_template("pages/login.html", form=form), 429,
                    {"Retry-After": str(exc.retry_after)})
        if user is None:
            flash("用户名或密码错误", "error")
            return render_template("pages/login.html", form=form), 401
        start_session(user)
        audit(s, user, "login", user.username)
        s.commit()
        return redirect(local_target(request.args.get("next", "")) or url_for("pages.index"))
    return render_template("pages/login.html", form=form), (400 if request.method == "POST" else 200)


@bp.route("/logout", methods=["POST"])
@public
def logout():
    """Log out: this user's page sessions end everywhere (a copy of the cookie is refused)."""
    user = page_user()
    if user is not None:
        s = db.session()
        end_sessions(s, user)
        audit(s, user, "logout", user.username)
        s.commit()
    session.clear()
    return redirect(url_for("pages.index"))


STAFF = ("officer", "finance", "admin")


def page_role(*roles, write=None):
    """Page decorator: log in first (back here after), then the role must be one of `roles`
    (of `write`, when given, for a POST)."""
    def deco(view):
        @wraps(view)
        def wrapped(*a, **kw):
            user = page_user()
            if user is None:
                return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
            allowed = roles if write is None or request.method in ("GET", "HEAD", "OPTIONS") else write
            if user.role not in allowed:
                return render_template("pages/error.html", title="无权访问", text=None, code=403), 403
            return view(*a, **kw)
        return declare(wrapped, roles, write)
    return deco


def _visible_run(s, run_id=None):
    """Staff see any completed run (the newest by default); everyone else the newest
    published one."""
    user = page_user()
    staff = user is not None and user.role in STAFF
    if run_id:
        run = s.get(Run, run_id)
        if run is None or run.status != "done" or not (staff or run.published_at):
            abort(404)
        return run
    return current_run(s, published=not staff)


@bp.route("/")
@public
def index():
    """The public dashboard (公众看板): the published run's overview, distributions and
    rankings per stage."""
    s = db.session()
    run = _visible_run(s)
    if run is None:
        return render_template("pages/no_results.html"), 404
    agg = query.aggregates(s, run)
    from . import uses
    honours = uses.honours(s, run.year)
    header = query.trace_header(s, run)
    charts = {
        "chart-stage": charts_.pie("按发展阶段", [r["label"] for r in agg["by_stage"]], [r["count"] for r in agg["by_stage"]]),
        "chart-industry": charts_.bar("按行业", [r["key"] or "未填" for r in agg["by_industry"]],
                                      [r["count"] for r in agg["by_industry"]], horizontal=True),
        "chart-park": charts_.bar("按园区", [r["key"] or "未填" for r in agg["by_park"]], [r["count"] for r in agg["by_park"]]),
        "chart-scores": charts_.histogram("最终积分分布", agg["score_histogram"]),
    }
    return render_template("pages/dashboard.html", run=run, agg=agg, honours=honours, charts=charts,
                           document=header.get("document", ""), policy_title=_policy_title(s, run))


def _policy_title(s, run):
    from . import policies
    from .models import PolicyVersion
    row = s.get(PolicyVersion, run.policy_id) if run.policy_id else None
    return (policies.load_files(policies.files_of(row)).title if row else "") or run.policy_name


@bp.route("/results")
@page_role(*STAFF)
def results():
    """Every enterprise of a run by stage, then the excluded ones (staff)."""
    s = db.session()
    run = _visible_run(s, request.args.get("run", type=int))
    if run is None:
        return render_template("pages/no_results.html"), 404
    ranked = query.rankings(s, run)
    excluded, _ = query.enterprises(s, run, excluded=True, sort="credit_code", per_page=None)
    groups = [(key, name, ranked[key]) for key, name in query.stage_names(s, run).items()]
    return render_template("pages/results.html", run=run, groups=groups, excluded=excluded,
                           categories=query.category_titles(s, run),
                           document=query.trace_header(s, run).get("document", ""))


@bp.route("/favicon.ico")
@public
def favicon():
    return current_app.send_static_file("favicon.svg")


EXPORTS = {"scores.csv": "text/csv; charset=utf-8", "awards.csv": "text/csv; charset=utf-8",
           "awards.html": "text/html; charset=utf-8"}


@bp.route("/runs/<int(max=2147483647):run_id>/export/<name>")
@page_role(*STAFF)
def export(run_id, name):
    """A run's files as written (scores, awards, the printable award list)."""
    s = db.session()
    if name not in EXPORTS:
        abort(404)
    _visible_run(s, run_id)
    content = query.run_file(s, run_id, name)
    headers = {"Content-Disposition": f"attachment; filename={name}"} if name.endswith(".csv") else {}
    return Response(content, content_type=EXPORTS[name], headers=headers)
