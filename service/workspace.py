"""The role pages: the enterprise profile (画像), the officer workspace (search, records and
trace, imports, declarations, runs, comparison) and the finance award list. Every figure
comes from `query` (the API's own code) and every action from `store`/`runs`."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from rules.evaluate import EvaluationError
from rules.policy import PolicyError

from . import charts as charts_
from . import db, query, shape
from .api import bad_cells, decl_dict, reap_stale_runs, run_dict, start
from .models import Declaration, Enterprise, Import, Record, Run, User, records_table
from .pages import STAFF, _visible_run, page_role, page_user
from .runs import create_run
from .runs import publish as publish_run
from .store import (
    BadUpload,
    DecisionError,
    FieldRejected,
    ImportRejected,
    decide,
    declare,
    import_upload,
    record_text,
)

bp = Blueprint("ws", __name__)
OFFICERS = ("officer", "admin")


def _may_see(code):
    user = page_user()
    if user.role == "enterprise" and user.credit_code != code:
        abort(403)


@bp.route("/enterprises/<code>")
@page_role("enterprise", *STAFF)
def profile(code):
    """One enterprise: score, stage, ranks, radar against the stage median, every indicator
    against the stage median and top decile, why (in Chinese with citations), records
    (staff), declarations and the form to declare (the enterprise)."""
    _may_see(code)
    s = db.session()
    ent = s.get(Enterprise, code)
    if ent is None:
        abort(404)
    run = _visible_run(s, request.args.get("run", type=int))
    detail = query.score_detail(s, run, code) if run else None
    if detail:
        from . import provenance as provenance_
        provenance_.attach_to_score(s, run, detail, shape.data(s), staff=page_user().role in STAFF)
    charts = {}
    if detail and not detail["excluded"]:
        peers = detail["peers"]
        titles = detail["categories"]
        charts["chart-radar"] = charts_.radar(
            "三类积分与同阶段中位数", list(titles.values()),
            [("本企业", [detail[f"{k}_score"] for k in titles]),
             (f"{detail['stage_zh']}中位数", [peers[f"{k}_score"] for k in titles])])
    user = page_user()
    decls = [decl_dict(d) for d in s.scalars(select(Declaration).where(Declaration.credit_code == code)
                                            .order_by(Declaration.id.desc()))]
    records, sources = [], {}
    if user.role in STAFF or user.credit_code == code:
        records = [record_text(r) for r in s.scalars(select(Record).where(records_table.c.credit_code == code)
                                                       .order_by(records_table.c.year))]
        from . import provenance as provenance_
        data = shape.data(s)
        sources = {(str(y), k): f"{data.source_name(p.source)} · {provenance_.KIND_ZH.get(p.kind, p.kind)}"
                   f"{' #' + str(p.import_id) if p.import_id else ''}"
                   for (y, k), p in provenance_.of_enterprise(s, code, data).items()}
    from . import uses
    from .models import CreditLookup
    lookups = []
    if user.role == "enterprise" or user.role in STAFF:
        names = dict(s.execute(select(User.id, User.display_name)).all())
        lookups = [{"at": c.at, "bank": names.get(c.user_id, ""), "granted": c.granted}
                   for c in s.scalars(select(CreditLookup).where(CreditLookup.credit_code == code)
                                      .order_by(CreditLookup.id.desc()).limit(100))]
    contracts = query.contracts_of(s, run, code) if run and (user.role in STAFF or user.credit_code == code) else []
    return render_template("pages/profile.html", ent=ent, run=run, d=detail, charts=charts, decls=decls,
                           contracts=contracts,
                           services=uses.recommend(detail) if detail else [], lookups=lookups,
                           records=records, fields=shape.record_fields(s), sources=sources,
                           staff=user.role in STAFF,
                           declarable=[f for f in shape.record_fields(s) if f.key not in ("credit_code", "year")],
                           category=detail["categories"] if detail else query.category_titles(),
                           can_declare=user.role == "enterprise")


@bp.route("/enterprises/<code>/declare", methods=["POST"])
@page_role("enterprise")
def declare_page(code):
    _may_see(code)
    s = db.session()
    f = request.form
    try:
        year = int(f.get("year", ""))
        declare(s, page_user(), code, year, f.get("field", ""), f.get("value", ""), f.get("reason", ""))
        s.commit()
        flash("申报已提交，待科技局审核后计入")
    except ValueError:
        flash("年度应为整数", "error")
    except LookupError as exc:
        flash(str(exc), "error")
    except FieldRejected as exc:
        flash("申报值不合规：" + "；".join(c.reason_zh for c in exc.cells), "error")
    return redirect(url_for("ws.profile", code=code) + "#declarations")


SORT_LABELS = {"rank_overall": "全区排名", "final_score": "最终积分", "rank_in_stage": "同阶段排名", "credit_code": "信用代码",
               "name": "企业名称"}


@bp.route("/workspace/enterprises")
@page_role(*STAFF)
def enterprises():
    """Search, filter, sort and page through a run's enterprises; export what is shown."""
    s = db.session()
    run = _visible_run(s, request.args.get("run", type=int))
    if run is None:
        return render_template("pages/no_results.html"), 404
    a = request.args
    f = {"park": a.get("park") or None, "industry": a.get("industry") or None,
         "stage": a.get("stage") if a.get("stage") in query.stage_names(s, run) else None,
         "min_score": a.get("min_score", type=float), "max_score": a.get("max_score", type=float),
         "q": (a.get("q") or "")[:100] or None}
    sort = a.get("sort") if a.get("sort") in query.SORTS or f"{a.get('sort')}"[:-6] in query.category_titles(s, run) \
        and f"{a.get('sort')}".endswith("_score") else "rank_overall"
    order = "desc" if a.get("order") == "desc" else "asc"
    page = max(1, min(a.get("page", 1, type=int), 1_000_000))
    rows, total = query.enterprises(s, run, **f, sort=sort, order=order, page=page, per_page=50)
    agg = query.aggregates(s, run)
    keep = {k: v for k, v in {**f, "sort": sort, "order": order, "run": run.id}.items() if v not in (None, "")}
    pages = max(1, -(-total // 50))
    return render_template("pages/enterprises.html", run=run, rows=rows, total=total, page=page, pages=pages,
                           f=f, sort=sort, order=order, agg=agg, stages=query.stage_names(s, run), category=query.category_titles(s, run),
                           sorts={**SORT_LABELS, **{f"{k}_score": v for k, v in query.category_titles(s, run).items()}},
                           qs=lambda **kw: urlencode({**keep, **kw}), export_qs=urlencode(keep),
                           runs=s.scalars(select(Run).where(Run.status == "done").order_by(Run.id.desc())).all())


@bp.route("/workspace/imports", methods=["GET", "POST"])
@page_role(*OFFICERS, "department")
def imports():
    """Upload a records or contracts file; a rejected file shows every bad cell. A department
    user (数据报送单位) uploads its own fields (the template of its source) and sees its own
    imports; an officer may record a file's values under a source."""
    s = db.session()
    user = page_user()
    department = user.role == "department"
    data = shape.data(s)
    cells, outcome, rejected = None, None, None
    if request.method == "POST":
        upload = request.files.get("file")
        kind = "records" if department else request.form.get("kind")
        source = None if department else (request.form.get("source") or None)
        if kind not in ("records", "contracts"):
            flash("请选择数据类型", "error")
        else:
            try:
                if not upload:
                    raise BadUpload("no file")
                outcome = import_upload(s, upload, kind, user, source=source)
                flash(f"已导入 {outcome.rows} 行（新增 {outcome.added}，更新或替换 {outcome.replaced}）")
            except BadUpload:
                flash("请选择 .csv 或 .xlsx 文件", "error")
            except ImportRejected as exc:
                cells = bad_cells(exc.cells)
                rejected = {"id": exc.import_id, "total": exc.total}
                more = f"，下表列出前 {len(cells)} 处" if len(cells) < exc.total else ""
                flash(f"文件有 {exc.total} 处错误{more}，未导入任何数据", "error")
    users = dict(s.execute(select(User.id, User.username)).all())
    q = select(Import).order_by(Import.id.desc()).limit(50)
    if department:
        q = q.where(Import.user_id == user.id)
    history = s.scalars(q).all()
    return (render_template("pages/imports.html", cells=cells, rejected=rejected, history=history, users=users,
                            department=data.source(user.source) if department else None,
                            owned=data.fields_of(user.source) if department else [],
                            sources=list(data.sources.values())),
            422 if cells else 200)


@bp.route("/workspace/declarations", methods=["GET", "POST"])
@page_role(*OFFICERS)
def declarations():
    """The review queue: approve (applied to the record, audited) or reject, with a reason."""
    s = db.session()
    if request.method == "POST":
        d = s.get(Declaration, request.form.get("id", type=int) or 0)
        if d is None:
            abort(404)
        try:
            decide(s, page_user(), d, request.form.get("decision") == "approve", request.form.get("reason", ""))
            s.commit()
            flash(f"申报 #{d.id} 已{'通过' if d.status == 'approved' else '驳回'}")
        except (DecisionError, FieldRejected) as exc:
            s.rollback()
            flash(str(exc), "error")
        return redirect(url_for("ws.declarations"))
    status = request.args.get("status", "pending")
    q = select(Declaration).order_by(Declaration.id)
    if status in ("pending", "approved", "rejected"):
        q = q.where(Declaration.status == status)
    names = dict(s.execute(select(Enterprise.credit_code, Enterprise.name)).all())
    return render_template("pages/declarations.html", decls=[decl_dict(d) for d in s.scalars(q)], status=status,
                           names=names)


@bp.route("/workspace/runs", methods=["GET", "POST"])
@page_role(*STAFF, write=OFFICERS)
def runs():
    """Runs: start one (officers), watch it, publish it, compare two."""
    s = db.session()
    if request.method == "POST":
        if page_user().role not in OFFICERS:
            abort(403)
        f = request.form
        try:
            year = int(f.get("year", ""))
            budget = int(f["budget"]) if f.get("budget", "").strip() else None
            if budget is not None and budget < 0:
                raise ValueError
            strategy = f.get("strategy") or None
            if strategy not in (None, "pro_rata", "rank_priority"):
                raise ValueError
            run = create_run(s, year, page_user(), None, budget, strategy)
        except (PolicyError, EvaluationError) as exc:      # (EvaluationError is a ValueError: first)
            flash(str(exc), "error")
            return redirect(url_for("ws.runs"))
        except ValueError:
            flash("年度、预算应为非负整数，分配方式为按比例或按排名", "error")
            return redirect(url_for("ws.runs"))
        start(current_app._get_current_object(), run.id)
        return redirect(url_for("ws.run", run_id=run.id))
    reap_stale_runs(s)
    rows = [run_dict(r, s) for r in s.scalars(select(Run).order_by(Run.id.desc()))]
    years = [y for (y,) in s.execute(select(records_table.c.year).distinct().order_by(records_table.c.year.desc()))]
    return render_template("pages/runs.html", runs=rows, years=years)


@bp.route("/workspace/runs/<int(max=2147483647):run_id>", methods=["GET", "POST"])
@page_role(*STAFF, write=OFFICERS)
def run(run_id):
    s = db.session()
    reap_stale_runs(s)
    r = s.get(Run, run_id)
    if r is None:
        abort(404)
    if request.method == "POST":
        if page_user().role not in OFFICERS or r.status != "done":
            abort(403)
        publish_run(s, r, page_user())
        s.commit()
        flash(f"第 {r.id} 批次已发布")
        return redirect(url_for("ws.run", run_id=r.id))
    return render_template("pages/run.html", run=run_dict(r, s))


@bp.route("/workspace/compare")
@page_role(*STAFF)
def compare():
    s = db.session()
    done = s.scalars(select(Run).where(Run.status == "done").order_by(Run.id.desc())).all()
    a, b = request.args.get("a", type=int), request.args.get("b", type=int)
    diff = None
    if a and b:
        ra, rb = s.get(Run, a), s.get(Run, b)
        if not ra or not rb or ra.status != "done" or rb.status != "done":
            abort(404)
        diff = query.diff(s, ra, rb)
    return render_template("pages/compare.html", runs=done, a=a, b=b, diff=diff, stages=shape.stages(s))


@bp.route("/workspace/awards")
@page_role(*STAFF)
def awards():
    """The award list of a run: budget and strategy, totals per item, lines with their basis,
    an eligibility lookup, exports and the print view."""
    s = db.session()
    run = _visible_run(s, request.args.get("run", type=int))
    if run is None:
        return render_template("pages/no_results.html"), 404
    rows = query.award_lines(s, run)
    totals = query.award_totals(rows, run)
    code = (request.args.get("code") or "").strip().upper()
    lookup = None
    if code:
        ent = s.get(Enterprise, code)
        lookup = {"code": code, "name": ent.name if ent else None,
                  "items": query.eligibility(s, run, code) if ent else []}
    charts = {"chart-items": charts_.bar("各奖励事项拨付金额（万元）", [t["clause"] for t in totals["per_clause"]],
                                         [round(t["granted_yuan"] / 10000, 2) for t in totals["per_clause"]], unit="万元")}
    runs_ = s.scalars(select(Run).where(Run.status == "done").order_by(Run.id.desc())).all()
    return render_template("pages/awards.html", run=run, rows=rows, totals=totals, lookup=lookup, charts=charts,
                           runs=runs_)


@bp.route("/workspace/seed-pool", methods=["GET", "POST"])
@page_role(*STAFF, write=OFFICERS)
def seed_pool():
    """The seed-enterprise reserve pool of a year, its entries and exits, and (officers)
    generating it from a run."""
    from . import uses
    s = db.session()
    if request.method == "POST":
        if page_user().role not in OFFICERS:
            abort(403)
        run_ = s.get(Run, request.form.get("run", type=int) or 0)
        if run_ is None or run_.status != "done":
            flash("请选择已完成的计算批次", "error")
            return redirect(url_for("ws.seed_pool"))
        uses.generate_pool(s, run_, page_user())
        s.commit()
        flash(f"已按第 {run_.id} 批次生成 {run_.year} 年度后备库")
        return redirect(url_for("ws.seed_pool", year=run_.year))
    from sqlalchemy import func

    from .models import SeedPoolEntry
    years = [y for (y,) in s.execute(select(SeedPoolEntry.year).distinct().order_by(SeedPoolEntry.year.desc()))]
    year = request.args.get("year", type=int) or (years[0] if years else None)
    pool = uses.pool(s, year) if year else None
    runs_ = s.scalars(select(Run).where(Run.status == "done").order_by(Run.id.desc())).all()
    return render_template("pages/seed_pool.html", pool=pool, years=years, runs=runs_, rule=uses.rule("seed_pool"),
                           count=func)


@bp.route("/workspace/services")
@page_role(*STAFF)
def services():
    from . import uses
    s = db.session()
    run_ = _visible_run(s, request.args.get("run", type=int))
    if run_ is None:
        return render_template("pages/no_results.html"), 404
    stages = query.stage_names(s, run_)
    stage = request.args.get("stage") if request.args.get("stage") in stages else None
    rows = uses.service_list(s, run_, stage)
    return render_template("pages/services.html", run=run_, rows=rows, stage=stage, stages=stages)


@bp.route("/workspace/runs/<int(max=2147483647):run_id>/honours", methods=["POST"])
@page_role(*OFFICERS)
def honours(run_id):
    from . import uses
    s = db.session()
    r = s.get(Run, run_id)
    if r is None or r.status != "done":
        abort(404)
    scope = request.form.get("scope")
    top_n = request.form.get("top_n", type=int)
    if scope not in uses.honour_scopes() or not top_n or not 1 <= top_n <= 1000:
        flash("请选择榜单范围并填写 1–1000 的名次数", "error")
    else:
        try:
            h = uses.publish_honours(s, r, scope, top_n, page_user())
            s.commit()
            flash(f"已发布：{h.title}")
        except uses.RunNotPublished:
            flash(f"第 {r.id} 批次尚未发布：请先发布该批次，再发布其榜单", "error")
    return redirect(url_for("ws.run", run_id=run_id))


@bp.route("/workspace/users", methods=["GET", "POST"])
@page_role("admin")
def users():
    """The administrator's list of users: disable one, or revoke its tokens and sessions."""
    from sqlalchemy import func

    from .auth import disable_user, revoke_access
    from .models import ApiToken
    s = db.session()
    if request.method == "POST":
        u = s.get(User, request.form.get("id", type=int) or 0)
        action = request.form.get("action")
        if u is None or action not in ("disable", "revoke"):
            flash("请选择用户和操作", "error")
        elif action == "disable":
            if u.id == page_user().id:
                flash("不能停用自己", "error")
            else:
                disable_user(s, u, page_user())
                s.commit()
                flash(f"已停用用户 {u.username}，其会话与令牌已失效")
        else:
            n = revoke_access(s, u, page_user())
            s.commit()
            flash(f"已撤销用户 {u.username} 的 {n} 个令牌并结束其全部会话")
        return redirect(url_for("ws.users"))
    tokens = dict(s.execute(select(ApiToken.user_id, func.count()).where(ApiToken.revoked.is_(False))
                            .group_by(ApiToken.user_id)).all())
    return render_template("pages/users.html", users=s.scalars(select(User).order_by(User.id)).all(), tokens=tokens)


@bp.route("/bank", methods=["GET"])
@page_role("bank")
def bank():
    """The partner bank's view: an enterprise's credit reference, with its consent, logged."""
    from . import uses
    code = (request.args.get("code") or "").strip().upper()[:18]
    ref = refused = None
    charts = {}
    if code:
        try:
            ref = uses.credit_lookup(db.session(), page_user(), code)
        except uses.CreditRefused as exc:
            refused = str(exc)
        if ref and ref["trend"]:
            charts["chart-trend"] = charts_.line("历年最终积分", [str(t["year"]) for t in ref["trend"]],
                                                 [t["final_score"] or 0 for t in ref["trend"]])
    return render_template("pages/bank.html", code=code, ref=ref, refused=refused, charts=charts)


@bp.route("/workspace/report")
@page_role(*STAFF)
def report():
    """The yearly monitoring report as a printable page (PDF: /api/reports/monitoring.pdf)."""
    from . import uses
    from .report import render
    s = db.session()
    run_ = _visible_run(s, request.args.get("run", type=int))
    if request.args.get("year", type=int):
        from .runs import current_run
        run_ = current_run(s, request.args.get("year", type=int))
    if run_ is None:
        return render_template("pages/no_results.html"), 404
    return render(uses.monitoring(s, run_))
