"""The role pages: the enterprise profile (画像), the officer workspace (search, records and
trace, imports, declarations, runs, comparison) and the finance award list. Every figure
comes from `query` (the API's own code) and every action from `store`/`runs`."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from rules.evaluate import EvaluationError
from rules.policy import PolicyError

from . import charts as charts_
from . import db, labels, query, shape
from .api import bad_cells, decl_dict, reap_stale_runs, run_dict, start
from .models import ROLES as ROLES_ZH
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
    potential = None
    if detail and not detail["excluded"]:
        from . import diagnostics
        potential = diagnostics.potential(s, run, [code])[code]
    return render_template("pages/profile.html", ent=ent, run=run, d=detail, charts=charts, decls=decls,
                           evidence=evidence_of(s, [x["id"] for x in decls]), evidence_mb=_evidence_limit() // 2**20,
                           contracts=contracts, potential=potential,
                           services=uses.recommend(detail) if detail else [], lookups=lookups,
                           records=records, fields=shape.record_fields(s), sources=sources,
                           staff=user.role in STAFF,
                           declarable=[f for f in shape.record_fields(s) if f.key not in ("credit_code", "year")],
                           category=detail["categories"] if detail else query.category_titles(),
                           can_declare=user.role == "enterprise", ind_fields=labels.indicator_fields())


def _evidence_limit() -> int:
    return current_app.config["EVIDENCE_MAX_BYTES"]


@bp.route("/enterprises/<code>/declare", methods=["POST"])
@page_role("enterprise")
def declare_page(code):
    """Declare one value of a record, with up to five evidence files (PDF, PNG, JPEG; each
    at most EVIDENCE_MAX_BYTES). The request is refused by its length before its body is
    parsed; a refused file refuses the whole declaration."""
    from .store import EVIDENCE_PER_DECLARATION, EvidenceRejected, attach_evidence
    _may_see(code)
    limit = _evidence_limit()
    if (request.content_length or 0) > EVIDENCE_PER_DECLARATION * limit + 64 * 1024:
        flash(f"上传内容过大：每个证明材料不能超过 {limit // 2**20} MB，每项申报最多 {EVIDENCE_PER_DECLARATION} 个", "error")
        return redirect(url_for("ws.profile", code=code) + "#declarations")
    s = db.session()
    f = request.form
    try:
        year = int(f.get("year", ""))
        d = declare(s, page_user(), code, year, f.get("field", ""), f.get("value", ""), f.get("reason", ""))
        files = [u for u in request.files.getlist("evidence") if u and u.filename]
        if len(files) > EVIDENCE_PER_DECLARATION:
            raise EvidenceRejected(f"每项申报最多 {EVIDENCE_PER_DECLARATION} 个证明材料")
        for upload in files:
            attach_evidence(s, page_user(), d, upload, limit)
        s.commit()
        flash("申报已提交" + (f"（附证明材料 {len(files)} 个）" if files else "") + "，待科技局审核后计入")
    except EvidenceRejected as exc:
        s.rollback()
        flash(f"申报未提交：{exc}", "error")
    except ValueError:
        s.rollback()
        flash("年度应为整数", "error")
    except LookupError as exc:
        s.rollback()
        flash(str(exc), "error")
    except FieldRejected as exc:
        s.rollback()
        flash("申报值不合规：" + "；".join(c.reason_zh for c in exc.cells), "error")
    return redirect(url_for("ws.profile", code=code) + "#declarations")


@bp.route("/declarations/<int(max=2147483647):decl_id>/evidence/<int(max=2147483647):file_id>")
@page_role("enterprise", *OFFICERS)
def evidence(decl_id, file_id):
    """An evidence file, to the officer reviewing it and to the enterprise that sent it
    (always as a download, with the type its content was checked to be)."""
    from flask import Response

    from .models import DeclarationEvidence
    s = db.session()
    ev = s.get(DeclarationEvidence, file_id)
    d = s.get(Declaration, decl_id)
    if ev is None or d is None or ev.declaration_id != d.id:
        abort(404)
    _may_see(d.credit_code)
    from urllib.parse import quote
    return Response(ev.content, content_type=ev.content_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(ev.filename)}",
                             "Cache-Control": "private, no-store"})


def evidence_of(s, decl_ids) -> dict:
    """The evidence files (without their content) of some declarations, by declaration."""
    from .models import DeclarationEvidence
    out = {}
    if decl_ids:
        for ev in s.scalars(select(DeclarationEvidence).where(DeclarationEvidence.declaration_id.in_(decl_ids))
                            .order_by(DeclarationEvidence.id)):
            out.setdefault(ev.declaration_id, []).append(ev)
    return out


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
    decls = [decl_dict(d) for d in s.scalars(q)]
    return render_template("pages/declarations.html", decls=decls, status=status, names=names,
                           evidence=evidence_of(s, [x["id"] for x in decls]))


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
    return render_template("pages/run.html", run=run_dict(r, s), stages=query.stage_names(s, r),
                           budget_text=labels.budget_sentence(labels.budget_of(r)) if r.status == "done" else
                           (f"年度奖励预算 {r.budget:,} 元。" if r.budget is not None else "未设奖励预算上限。"))


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
    if not (a and b) and len(done) >= 2:         # a first look compares the newest two
        return redirect(url_for("ws.compare", a=done[1].id, b=done[0].id))
    return render_template("pages/compare.html", runs=done, a=a, b=b, diff=diff, stages=shape.stages(s))


@bp.route("/workspace/awards")
@page_role(*STAFF)
def awards():
    """The award list of a run as the finance bureau works with it: budget, shortfall and
    strategy in words, totals per item, lines filtered (item, park, stage, enterprise),
    sorted and paged with each enterprise's total; an eligibility lookup; the XLSX and the
    printable list of exactly what is shown."""
    from . import awardlist
    s = db.session()
    run = _visible_run(s, request.args.get("run", type=int))
    if run is None:
        return render_template("pages/no_results.html"), 404
    f = awardlist.read_filters(request.args)
    data = awardlist.award_list(s, run, **f)
    rows = data["rows"]
    page = max(1, min(request.args.get("page", 1, type=int), 1_000_000))
    pages = max(1, -(-len(rows) // awardlist.PER_PAGE))
    page = min(page, pages)
    shown = rows[(page - 1) * awardlist.PER_PAGE:page * awardlist.PER_PAGE]
    all_totals = query.award_totals(query.award_lines(s, run), run)
    code = (request.args.get("code") or "").strip().upper()
    lookup = None
    if code:
        ent = s.get(Enterprise, code)
        lookup = {"code": code, "name": ent.name if ent else None,
                  "items": query.eligibility(s, run, code) if ent else []}
    per = all_totals["per_clause"]
    charts = {"chart-items": charts_.bar("各奖励事项拨付金额（万元）", [labels.item_name(p["title"]) or p["clause"] for p in per],
                                         [round(p["granted_yuan"] / 10000, 2) for p in per], unit="万元",
                                         horizontal=True)}
    keep = {k: v for k, v in {**f, "run": run.id}.items() if v not in (None, "")}
    header = query.trace_header(s, run)
    runs_ = s.scalars(select(Run).where(Run.status == "done").order_by(Run.id.desc())).all()
    return render_template("pages/awards.html", run=run, data=data, shown=shown, page=page, pages=pages,
                           per_page=awardlist.PER_PAGE, f=f, sorts=awardlist.SORTS, all_totals=all_totals,
                           lookup=lookup, charts=charts, runs=runs_, budget=data["budget"],
                           budget_text=awardlist.budget_sentence(data["budget"]),
                           filters_text=awardlist.filter_words(f, data["items"]), header=header,
                           qs=lambda **kw: urlencode({**keep, **kw}), export_qs=urlencode(keep))


@bp.route("/workspace/awards/list.xlsx")
@page_role(*STAFF)
def awards_xlsx():
    """The award list (as filtered on the page) as a workbook to file and sign."""
    from flask import Response

    from . import awardlist
    from .exports import MIME
    s = db.session()
    run = _visible_run(s, request.args.get("run", type=int))
    if run is None:
        abort(404)
    f = awardlist.read_filters(request.args)
    data = awardlist.award_list(s, run, **f)
    body = awardlist.xlsx(run, query.trace_header(s, run), data, awardlist.filter_words(f, data["items"]))
    name = f"award-list-{run.year}-batch{run.id}.xlsx"
    return Response(body, content_type=MIME["xlsx"], headers={"Content-Disposition": f"attachment; filename={name}"})


@bp.route("/workspace/awards/print")
@page_role(*STAFF)
def awards_print():
    """The printable award list (as filtered on the page): title, basis, budget, lines,
    totals per item and overall, page numbers, and the 经办人/审核人/日期 signature block."""
    from . import awardlist
    s = db.session()
    run = _visible_run(s, request.args.get("run", type=int))
    if run is None:
        abort(404)
    f = awardlist.read_filters(request.args)
    data = awardlist.award_list(s, run, **f)
    header = query.trace_header(s, run)
    return render_template("pages/awards_print.html", run=run, data=data, title=awardlist.title_of(run, header),
                           basis=awardlist.basis_line(run, header),
                           filters_text=awardlist.filter_words(f, data["items"]))


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
                           count=func, stages=shape.stages(s))


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


CODE_NOISE = re.compile(r"[\s\-‐‑–—－_·.。]")


def clean_code(text) -> str:
    """A credit code as pasted: full-width characters made half-width, blanks, dashes and
    dots removed, upper case (then at most 18 characters)."""
    return CODE_NOISE.sub("", unicodedata.normalize("NFKC", text or "")).upper()[:18]


@bp.route("/enterprises/<code>/consent", methods=["POST"])
@page_role("enterprise")
def consent(code):
    """The enterprise switches its consent to bank lookups on or off (audited)."""
    from .models import utcnow
    from .store import audit
    _may_see(code)
    s = db.session()
    ent = s.get(Enterprise, code)
    if ent is None:
        abort(404)
    value = request.form.get("consent") == "1"
    if bool(ent.credit_consent) != value:
        ent.credit_consent = value
        ent.consent_changed_at = utcnow()
        audit(s, page_user(), "credit.consent", code, consent=value)
        s.commit()
    flash("已同意合作银行查询本企业积分作为授信参考" if value else "已撤回授权：合作银行不能再查询本企业积分")
    return redirect(url_for("ws.profile", code=code) + "#credit")


USER_ACTIONS = ("add", "disable", "enable", "revoke", "password", "role")


@bp.route("/workspace/users", methods=["GET", "POST"])
@page_role("admin")
def users():
    """The administrator's users: add one, disable or enable it, reset its password, change
    its role, or end its sessions and tokens. Every change is audited."""
    from sqlalchemy import func

    from .auth import UserError, create_user, disable_user, enable_user, reset_password, revoke_access, set_role
    from .models import ApiToken
    s = db.session()
    me = page_user()
    if request.method == "POST":
        f = request.form
        action = f.get("action")
        u = s.get(User, f.get("id", type=int) or 0) if action != "add" else None
        try:
            if action not in USER_ACTIONS or (action != "add" and u is None):
                raise UserError("请选择用户和操作")
            code = clean_code(f.get("credit_code")) or None
            if code and s.get(Enterprise, code) is None and f.get("role") == "enterprise":
                raise UserError(f"没有统一社会信用代码为 {code} 的企业")
            if action == "add":
                u = create_user(s, (f.get("username") or "").strip(), f.get("password", ""), f.get("role", ""), code,
                                (f.get("display_name") or "").strip(), by=me, source=f.get("source") or None)
                msg = f"已新增用户 {u.username}（{ROLES_ZH[u.role]}）"
            elif action in ("disable", "role") and u.id == me.id:
                raise UserError("不能停用自己或更改自己的角色")
            elif action == "disable":
                disable_user(s, u, me)
                msg = f"已停用用户 {u.username}，其会话与令牌已失效"
            elif action == "enable":
                enable_user(s, u, me)
                msg = f"已启用用户 {u.username}"
            elif action == "password":
                reset_password(s, u, f.get("password", ""), me)
                msg = f"已重置用户 {u.username} 的密码，其原有会话与令牌已失效"
            elif action == "role":
                set_role(s, u, f.get("role", ""), code, me)
                msg = f"已将用户 {u.username} 的角色改为「{ROLES_ZH[u.role]}」，其原有会话与令牌已失效"
            else:
                n = revoke_access(s, u, me)
                msg = f"已撤销用户 {u.username} 的 {n} 个令牌并结束其全部会话"
            s.commit()
            flash(msg)
        except UserError as exc:
            s.rollback()
            flash(str(exc), "error")
        return redirect(url_for("ws.users"))
    tokens = dict(s.execute(select(ApiToken.user_id, func.count()).where(ApiToken.revoked.is_(False))
                            .group_by(ApiToken.user_id)).all())
    return render_template("pages/users.html", users=s.scalars(select(User).order_by(User.id)).all(), tokens=tokens,
                           roles={k: v for k, v in ROLES_ZH.items() if k != "public"},
                           sources=[x for x in shape.data(s).sources.values() if x.kind == "department"])


AUDIT_PER_PAGE = 100


@bp.route("/workspace/audit")
@page_role(*OFFICERS)
def audit_log():
    """The audit log, searchable (who, what, on what, when), newest first, paged."""
    from .labels import AUDIT_ACTION_ZH, audit_detail, target_words
    from .models import AuditEntry
    s = db.session()
    a = request.args
    q = (a.get("q") or "").strip()[:100]
    action = a.get("action") if a.get("action") in AUDIT_ACTION_ZH else None
    stmt = select(AuditEntry)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(AuditEntry.username.ilike(like) | AuditEntry.target.ilike(like) | AuditEntry.detail.ilike(like))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    dates = {}
    for key in ("from", "to"):
        try:
            dates[key] = dt.date.fromisoformat(a.get(key, ""))
        except ValueError:
            dates[key] = None
    # the dates are Beijing days; the log keeps UTC
    if dates["from"]:
        stmt = stmt.where(AuditEntry.at >= dt.datetime.combine(dates["from"], dt.time()) - dt.timedelta(hours=8))
    if dates["to"]:
        stmt = stmt.where(AuditEntry.at < dt.datetime.combine(dates["to"], dt.time()) + dt.timedelta(hours=16))
    from sqlalchemy import func
    total = s.scalar(select(func.count()).select_from(stmt.subquery()))
    pages = max(1, -(-total // AUDIT_PER_PAGE))
    page = max(1, min(a.get("page", 1, type=int), pages))
    rows = s.scalars(stmt.order_by(AuditEntry.id.desc()).offset((page - 1) * AUDIT_PER_PAGE).limit(AUDIT_PER_PAGE)).all()
    keep = {k: v for k, v in {"q": q, "action": action, "from": a.get("from"), "to": a.get("to")}.items() if v}
    return render_template("pages/audit.html", rows=[(e, target_words(e.target), audit_detail(e.detail)) for e in rows],
                           total=total,
                           page=page, pages=pages, q=q, action=action, actions=AUDIT_ACTION_ZH, dates=dates,
                           qs=lambda **kw: urlencode({**keep, **kw}), export_qs=urlencode(
                               {k: v for k, v in {"action": action}.items() if v}))


BANK_PER_PAGE = 50


@bp.route("/bank", methods=["GET"])
@page_role("bank")
def bank():
    """The partner bank's view: the enterprises that consent to lookups (searchable), and an
    enterprise's credit reference, with its consent, logged."""
    from sqlalchemy import func

    from . import uses
    from .runs import current_run
    s = db.session()
    raw = request.args.get("code") or ""
    code = clean_code(raw)
    ref = refused = None
    charts = {}
    if code:
        try:
            ref = uses.credit_lookup(s, page_user(), code)
        except uses.CreditRefused as exc:
            refused = str(exc).split(" / ")[0]      # the page says it in Chinese (the API keeps both)
        if ref and ref["trend"]:
            charts["chart-trend"] = charts_.line("历年最终积分", [str(t["year"]) for t in ref["trend"]],
                                                 [t["final_score"] or 0 for t in ref["trend"]])
    run = current_run(s, published=True)
    q = (request.args.get("q") or "").strip()[:100]
    consenting, total, page, pages = [], 0, 1, 1
    if run is not None:
        from .models import Result
        stmt = select(Enterprise).join(Result, (Result.credit_code == Enterprise.credit_code) & (Result.run_id == run.id)) \
            .where(Enterprise.credit_consent.is_(True))
        if q:
            stmt = stmt.where(Enterprise.name.contains(q) | Enterprise.credit_code.contains(clean_code(q) or q))
        total = s.scalar(select(func.count()).select_from(stmt.subquery()))
        pages = max(1, -(-total // BANK_PER_PAGE))
        page = max(1, min(request.args.get("page", 1, type=int), pages))
        consenting = s.scalars(stmt.order_by(Enterprise.name).offset((page - 1) * BANK_PER_PAGE).limit(BANK_PER_PAGE)).all()
    return render_template("pages/bank.html", code=code, pasted=raw if raw.strip() != code else "", ref=ref,
                           refused=refused, charts=charts, consenting=consenting, total=total, page=page, pages=pages,
                           q=q, run=run)


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
