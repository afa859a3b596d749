"""Pages (Jinja2): log in and out, and the results of the current run by stage. They read
the same query code as the API. The role pages are the next issue."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from rules.fields import STAGES

from . import db, query
from .auth import authenticate
from .models import ROLES, Run, User
from .runs import current_run
from .store import audit

bp = Blueprint("pages", __name__)


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(message="请输入用户名"), Length(max=80)])
    password = PasswordField("密码", validators=[DataRequired(message="请输入密码"), Length(max=200)])


def page_user():
    uid = session.get("user_id")
    return db.session().get(User, uid) if uid else None


@bp.app_context_processor
def _inject():
    return {"current_user": page_user(), "ROLES": ROLES}


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Session login for the pages (the form carries a CSRF token)."""
    form = LoginForm()
    if form.validate_on_submit():
        s = db.session()
        user = authenticate(s, form.username.data, form.password.data)
        if user is None:
            flash("用户名或密码错误")
            return render_template("pages/login.html", form=form), 401
        session.clear()
        session["user_id"] = user.id
        audit(s, user, "login", user.username)
        s.commit()
        target = request.args.get("next", "")
        return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("pages.index"))
    return render_template("pages/login.html", form=form), (400 if request.method == "POST" else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("pages.index"))


def _visible_run(s):
    """Staff see the newest completed run; everyone else the newest published one."""
    user = page_user()
    staff = user is not None and user.role in ("officer", "finance", "admin")
    return current_run(s, published=not staff)


@bp.route("/")
def index():
    """Results by stage: ranked enterprises of each stage, then the excluded ones."""
    s = db.session()
    run = _visible_run(s)
    if run is None:
        return render_template("pages/no_results.html"), 404
    ranked = query.rankings(s, run)
    excluded, _ = query.enterprises(s, run, excluded=True, sort="credit_code", per_page=None)
    groups = [(key, STAGES[key], ranked[key]) for key in STAGES]
    return render_template("pages/results.html", run=run, groups=groups, excluded=excluded,
                           document=query.trace_header(s, run).get("document", ""))


EXPORTS = {"scores.csv": "text/csv; charset=utf-8", "awards.csv": "text/csv; charset=utf-8",
           "awards.html": "text/html; charset=utf-8"}


@bp.route("/runs/<int(max=2147483647):run_id>/export/<name>")
def export(run_id, name):
    """A run's files as written (scores, awards, the printable award list)."""
    s = db.session()
    run = s.get(Run, run_id)
    user = page_user()
    staff = user is not None and user.role in ("officer", "finance", "admin")
    if name not in EXPORTS or run is None or run.status != "done" or not (staff or run.published_at):
        abort(404)
    content = query.run_file(s, run_id, name)
    headers = {"Content-Disposition": f"attachment; filename={name}"} if name.endswith(".csv") else {}
    return Response(content, mimetype=EXPORTS[name], headers=headers)
