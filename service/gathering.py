"""Pages of data as the plan gathers it (§四.(一)) and of 公示 (issue 17): an import and the
values it brought, conflicts between sources, published lists, 公示 periods and objections
(officers); the lists under 公示 and the objection form (the public and enterprises).

Every action is `store`, `provenance`, `publiclists` or `publicity`'s, as the API's."""
from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from . import db, provenance, publiclists, publicity, shape
from .access import public
from .api.common import start
from .api.sources import decide_conflict
from .models import Conflict, Import, Provenance, PublicList, PublicListEntry, Publicity, Run, User
from .pages import page_role, page_user
from .store import FieldRejected

bp = Blueprint("gather", __name__)
OFFICERS = ("officer", "admin")


@bp.route("/workspace/imports/<int(max=2147483647):import_id>")
@page_role(*OFFICERS)
def import_detail(import_id):
    """One import: who, when, the file's checksum, and the values it brought with the field
    and enterprise-year each went to (where a figure of a trace leads)."""
    s = db.session()
    imp = s.get(Import, import_id)
    if imp is None:
        abort(404)
    data = shape.data(s)
    user = s.get(User, imp.user_id) if imp.user_id else None
    rows = s.scalars(select(Provenance).where(Provenance.import_id == import_id)
                     .order_by(Provenance.credit_code, Provenance.year, Provenance.id).limit(2000)).all()
    highlight = (request.args.get("code", ""), request.args.get("year", type=int), request.args.get("field", ""))
    labels = {f.key: f.label for f in data.record_fields}
    labels[provenance.ALL_FIELDS] = "整条记录（文件中的全部字段）"
    return render_template("gather/import.html", imp=imp, user=user, rows=rows, labels=labels, data=data,
                           highlight=highlight, kind_zh=provenance.KIND_ZH)


@bp.route("/workspace/conflicts", methods=["GET", "POST"])
@page_role(*OFFICERS)
def conflicts():
    """Conflicts between sources: open ones first; decide each (which value is kept)."""
    s = db.session()
    data = shape.data(s)
    if request.method == "POST":
        c = s.get(Conflict, request.form.get("id", type=int) or 0)
        use = request.form.get("use")
        if c is None or use not in ("kept", "other") or c.status != "open":
            flash("请选择待处理的冲突和采用的值", "error")
        else:
            try:
                decide_conflict(s, c, use, request.form.get("reason", ""), page_user())
                s.commit()
                flash(f"冲突 #{c.id} 已处理")
            except (LookupError, FieldRejected) as exc:
                s.rollback()
                flash(str(exc), "error")
        return redirect(url_for("gather.conflicts"))
    rows = [provenance.conflict_dict(c, data) for c in
            s.scalars(select(Conflict).order_by(Conflict.status.desc(), Conflict.id.desc()).limit(500))]
    return render_template("gather/conflicts.html", rows=rows, precedence=list(data.sources.values()))


@bp.route("/workspace/public-lists", methods=["GET", "POST"])
@page_role(*OFFICERS)
def public_lists():
    """Import a published list; review the rows it held."""
    s = db.session()
    data = shape.data(s)
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "review":
                e = s.get(PublicListEntry, request.form.get("entry", type=int) or 0)
                if e is None:
                    raise publiclists.ListRejected("没有该名单行")
                publiclists.decide_entry(s, e, request.form.get("credit_code") or None, request.form.get("reason", ""),
                                         page_user())
                s.commit()
                flash(f"名单第 {e.row} 行：{publiclists.STATUS_ZH[e.status]}")
                return redirect(url_for("gather.public_lists", list=e.list_id))
            upload = request.files.get("file")
            if not upload or not upload.filename:
                raise publiclists.ListRejected("请选择名单文件（.csv 或 .xlsx）")
            year = request.form.get("year", type=int)
            pl = publiclists.import_list(s, upload, request.form.get("title", "").strip() or upload.filename,
                                         request.form.get("field", ""), request.form.get("value", ""), year, page_user())
            s.commit()
            flash(f"名单已导入：{pl.rows} 行，已设置 {pl.applied} 行，待复核 {pl.held} 行")
            return redirect(url_for("gather.public_lists", list=pl.id))
        except publiclists.ListRejected as exc:
            s.rollback()
            flash(str(exc), "error")
            return redirect(url_for("gather.public_lists"))
    lists = s.scalars(select(PublicList).order_by(PublicList.id.desc()).limit(50)).all()
    shown = s.get(PublicList, request.args.get("list", type=int) or 0) or (lists[0] if lists else None)
    detail = publiclists.list_dict(s, shown) if shown else None
    settable = [f for f in data.fields if f.kind == "bool"] + [f for f in data.fields if f.kind != "bool"]
    return render_template("gather/public_lists.html", lists=lists, detail=detail, fields=settable,
                           public=data.source_of_kind("public"))


# ---- 公示 ---------------------------------------------------------------------------------

@bp.route("/workspace/publicity", methods=["GET", "POST"])
@page_role(*OFFICERS)
def publicity_manage():
    """Open a 公示 period for a published run; the periods and their states."""
    s = db.session()
    if request.method == "POST":
        run = s.get(Run, request.form.get("run", type=int) or 0)
        try:
            starts = dt.date.fromisoformat(request.form.get("starts_on", ""))
            ends = dt.date.fromisoformat(request.form.get("ends_on", ""))
        except ValueError:
            flash("请填写公示开始和结束日期", "error")
            return redirect(url_for("gather.publicity_manage"))
        if run is None:
            flash("请选择已发布的计算批次", "error")
            return redirect(url_for("gather.publicity_manage"))
        try:
            p = publicity.open_period(s, run, starts, ends, page_user())
            s.commit()
            flash(f"已开启公示：{starts} 至 {ends}")
            return redirect(url_for("gather.publicity_detail", pid=p.id))
        except publicity.PublicityError as exc:
            s.rollback()
            flash(str(exc), "error")
            return redirect(url_for("gather.publicity_manage"))
    runs = s.scalars(select(Run).where(Run.status == "done", Run.published_at.is_not(None))
                     .order_by(Run.id.desc())).all()
    items = [publicity.publicity_dict(s, p, lists=False) for p in s.scalars(select(Publicity).order_by(Publicity.id.desc()))]
    return render_template("gather/publicity_manage.html", runs=runs, items=items, today=publicity.today())


@bp.route("/workspace/publicity/<int(max=2147483647):pid>", methods=["GET", "POST"])
@page_role(*OFFICERS)
def publicity_detail(pid):
    """One 公示: its objections with evidence, their resolution, and finalisation."""
    s = db.session()
    p = s.get(Publicity, pid)
    if p is None:
        abort(404)
    user = page_user()
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "finalise":
                publicity.finalise(s, p, user)
                s.commit()
                flash("名单已定稿")
            elif action in ("uphold", "reject"):
                from .models import Objection
                o = s.get(Objection, request.form.get("objection", type=int) or 0)
                if o is None or o.publicity_id != p.id:
                    raise publicity.PublicityError("没有该异议")
                app = current_app._get_current_object()
                publicity.decide(s, o, user, action == "uphold", request.form.get("reason", "").strip(),
                                 request.form.get("field") or None, request.form.get("year", type=int),
                                 request.form.get("value"), start=lambda run_id: start(app, run_id))
                s.commit()
                flash(f"异议 #{o.id} 已处理：{publicity.OBJECTION_ZH[o.status]}")
            else:
                raise publicity.PublicityError("未知操作")
        except publicity.PublicityError as exc:
            s.rollback()
            flash(str(exc), "error")
        return redirect(url_for("gather.publicity_detail", pid=pid))
    publicity.adopt_runs(s, p, user)
    objections = [publicity.objection_dict(s, o) for o in publicity.objections_of(s, p)]
    data = shape.data(s)
    return render_template("gather/publicity_detail.html", p=publicity.publicity_dict(s, p), objections=objections,
                           fields=data.fields, pending=publicity.pending_runs(s, p))


@bp.route("/publicity")
@public
def publicity_public():
    """公示 as the public sees it: each list under 公示 with its dates, and the final lists
    with the period, the objections and their outcomes; an enterprise may object here."""
    s = db.session()
    user = page_user()
    items = [publicity.publicity_dict(s, p) for p in s.scalars(select(Publicity).order_by(Publicity.id.desc()))]
    mine = {}
    if user is not None and user.role == "enterprise":
        for it in items:
            p = s.get(Publicity, it["id"])
            mine[it["id"]] = [publicity.objection_dict(s, o) for o in publicity.objections_of(s, p, user.credit_code)]
    return render_template("gather/publicity.html", items=items, mine=mine,
                           can_object=user is not None and user.role == "enterprise",
                           limit_mb=current_app.config["OBJECTION_MAX_FILE_BYTES"] // 2**20,
                           max_files=current_app.config["OBJECTION_MAX_FILES"])


@bp.route("/publicity/<int(max=2147483647):pid>/objections", methods=["POST"])
@page_role("enterprise")
def object_page(pid):
    """An enterprise's objection from the public 公示 page."""
    s = db.session()
    p = s.get(Publicity, pid)
    if p is None:
        abort(404)
    item, reason = request.form.get("item", "").strip()[:200], request.form.get("reason", "").strip()[:4000]
    if not item or not reason:
        flash("请填写异议事项和理由", "error")
        return redirect(url_for("gather.publicity_public") + f"#publicity-{pid}")
    cfg = current_app.config
    try:
        o = publicity.file_objection(s, p, page_user(), item, reason, request.files.getlist("evidence"),
                                     cfg["OBJECTION_MAX_FILE_BYTES"], cfg["OBJECTION_MAX_FILES"])
        s.commit()
        flash(f"异议已提交（编号 {o.id}），待区科学技术局处理")
    except publicity.PublicityError as exc:
        s.rollback()
        flash(str(exc), "error")
    return redirect(url_for("gather.publicity_public") + f"#publicity-{pid}")


def statement_json(p) -> dict:
    return json.loads(p.statement) if p.statement else {}
