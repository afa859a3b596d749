"""The officers' policy pages: versions and drafts, clauses by id beside the policy text,
a form that edits a clause's amounts, coefficients, thresholds and conditions and checks
the draft as you type, the draft's cases, its what-if, and publishing."""
from __future__ import annotations

import json
import re

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from rules.policy import GROUP_FILES, PolicyError

from . import db, policies
from .models import PolicyDraft, PolicyVersion, records_table
from .store import has_records
from .pages import page_role, page_user

bp = Blueprint("policy", __name__, url_prefix="/workspace/policy")
OFFICERS = ("officer", "admin")
GROUP_ZH = {"stage": "评价对象分类（表1）", "scope": "评价对象（§三.(一)）", "indicators": "评价指标（表2、表6）", "negative_list": "负面清单（表3）",
            "decay": "衰减降档系数（表4）", "bonus": "重大项目附加分（表5）", "rewards": "直接奖励（§五.四）"}


EFFECT_ZH = {"kind": "奖励类型", "amount": "奖励金额（元）", "maximum": "奖励上限（元）", "per": "按此数量计奖",
             "contract_rate": "按合同交易额的比例", "per_contract_cap": "每项合同上限（元）",
             "per_enterprise_cap": "每个单位上限（元）", "exclude": "不纳入当年度积分管理", "deduct": "扣分（分）",
             "factor": "衰减系数", "add": "加分（分）", "in_scope": "属于评价对象"}
SETTING_ZH = {"key": "指标数据字段", "category": "所属类别", "points": "分值（分）", "method": "计分方法", "weight": "权重",
              "effective.from": "生效日期", "effective.to": "失效日期"}
VALUE_ZH = {"fixed": "固定奖励", "floating": "浮动奖励", "percentile": "按同阶段百分位计分"}


def form_label(path: str) -> str:
    """A clause form's value named in words (条件：当年登记的技术合同数 ≥), never its YAML path."""
    from rules.explain import SYMBOLS

    from .labels import _wording
    label = _wording().label
    parts = path.split(".")
    if parts[0] == "when" and len(parts) >= 2:
        op = SYMBOLS.get(parts[2], "") if len(parts) > 2 else ""
        return f"条件：{label(parts[1])}{(' ' + op) if op else ''}"
    if parts[0] == "effect" and len(parts) == 2:
        return "效果：" + EFFECT_ZH.get(parts[1], "其他设定")
    return SETTING_ZH.get(path, "其他设定")


def form_value_words(path: str, value, categories=None) -> str:
    """The current value in words when the form holds a key (成长期, 固定奖励, 研发费用…)."""
    from .labels import _wording
    w = _wording()
    label, value_text = w.label, w.value_text
    if isinstance(value, bool):
        return ""
    if not isinstance(value, str):
        return ""
    if path == "key":
        return label(value)
    if path == "category" and categories:
        return categories.get(value, "")
    field = path.split(".")[1] if path.startswith("when.") else path
    words = VALUE_ZH.get(value) or value_text(field, value)
    return "" if words == value else words


def chinese_text(text: str) -> str:
    """The policy text without the paragraphs written in English (notes for developers)."""
    def english(line):
        return len(re.findall(r"[A-Za-z]", line)) > 2 * len(re.findall(r"[\u4e00-\u9fff]", line)) + 10
    return "\n".join(line for line in (text or "").splitlines() if not english(line))


def source_passage(files, citation, context=14):
    """The lines of the policy text that a citation points at (表N or §…), for the side pane."""
    text = chinese_text(files.get("source-zh.md", ""))
    if not text:
        return ""
    lines = text.splitlines()
    m = re.search(r"表\s*(\d+)", citation or "")
    pattern = re.compile(rf"表\s*{m.group(1)}\s*[:：]") if m else None
    if pattern is None:
        sec = re.search(r"§([一二三四五六七八九十]+)", citation or "")
        pattern = re.compile(rf"^[#\s]*{sec.group(1)}、") if sec else None
    if pattern is None:
        return ""
    for i, line in enumerate(lines):
        if pattern.search(line):
            return "\n".join(lines[i:i + context])
    return ""


def _clauses(files):
    """Clauses by group, from the files as they are (a draft may not load: then what parses)."""
    try:
        pv = policies.load_files(files)
        return {g: [c for c in pv.clauses if c.group == g] for g in GROUP_FILES}, None
    except PolicyError as exc:
        return {}, exc


def _draft(draft_id):
    d = db.session().get(PolicyDraft, draft_id)
    if d is None:
        abort(404)
    return d


@bp.route("/", methods=["GET", "POST"])
@page_role(*OFFICERS)
def index():
    s = db.session()
    if request.method == "POST":
        base = s.get(PolicyVersion, request.form.get("base", type=int) or 0)
        name = (request.form.get("name") or "").strip()
        if base is None or base.status != "published" or not re.fullmatch(r"[A-Za-z0-9_.\-\u4e00-\u9fff]{1,100}", name):
            flash("请选择已发布的基础版本，并填写名称（字母、数字、汉字、-_.）", "error")
            return redirect(url_for("policy.index"))
        d = policies.create_draft(s, base, name, page_user(), request.form.get("note", ""))
        s.commit()
        return redirect(url_for("policy.draft", draft_id=d.id))
    active = policies.active(s)
    s.commit()
    versions = s.scalars(select(PolicyVersion).order_by(PolicyVersion.id.desc())).all()
    drafts = s.scalars(select(PolicyDraft).order_by(PolicyDraft.id.desc())).all()
    return render_template("policy/index.html", active=active, versions=versions, drafts=drafts)


@bp.route("/versions/<int(max=2147483647):version_id>")
@page_role(*OFFICERS)
def version(version_id):
    row = db.session().get(PolicyVersion, version_id)
    if row is None:
        abort(404)
    files = policies.files_of(row)
    groups, _ = _clauses(files)
    return render_template("policy/clauses.html", row=row, draft=None, groups=groups, group_zh=GROUP_ZH,
                           source=chinese_text(files.get("source-zh.md", "")), problems=None, failures=None, report=None, years=[])


@bp.route("/drafts/<int(max=2147483647):draft_id>", methods=["GET", "POST"])
@page_role(*OFFICERS)
def draft(draft_id):
    """A draft: its clauses beside the policy text; check, cases, what-if, publish."""
    s = db.session()
    d = _draft(draft_id)
    files = json.loads(d.files)
    problems = failures = report = None
    stage_names = {}
    action = request.form.get("action") if request.method == "POST" else None
    if action == "check":
        problems = policies.check(files)
    elif action == "test":
        problems = policies.check(files)
        failures = [] if problems else policies.test(files)
    elif action == "whatif":
        problems = policies.check(files)
        year = request.form.get("year", type=int)
        budget = request.form.get("budget", type=int)
        if not problems and year and has_records(s, year):
            try:
                against = policies.files_of(policies.active(s))
                report = policies.whatif(s, files, year, against,
                                         budget if budget is not None and budget >= 0 else None, None, 10)
                stage_names = {**policies.load_files(against).data.stages, **policies.load_files(files).data.stages}
            except PolicyError as exc:
                flash(str(exc), "error")
        elif not problems:
            flash("请选择有数据的评价年度", "error")
    elif action == "publish":
        try:
            row = policies.publish(s, d, page_user())
            s.commit()
            flash(f"已发布版本 #{row.id}（{row.name}），服务已改用此版本")
            return redirect(url_for("policy.index"))
        except policies.PublishRefused as exc:
            s.rollback()
            flash(str(exc), "error")
            problems, failures = exc.problems, exc.failures
    groups, load_error = _clauses(files)
    if load_error is not None and problems is None:
        problems = policies.check(files)
    years = [y for (y,) in s.execute(select(records_table.c.year).distinct().order_by(records_table.c.year.desc()))]
    return render_template("policy/clauses.html", row=s.get(PolicyVersion, d.base_id), draft=d, groups=groups,
                           group_zh=GROUP_ZH, source=chinese_text(files.get("source-zh.md", "")), problems=problems,
                           failures=failures, report=report, years=years, stage_names=stage_names,
                           case_files=sorted(n for n in files if n.startswith("cases/")))


@bp.route("/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>", methods=["GET", "POST"])
@page_role(*OFFICERS)
def clause(draft_id, clause_id):
    """Edit one clause's values; the page checks the draft as each value is typed."""
    s = db.session()
    d = _draft(draft_id)
    files = json.loads(d.files)
    try:
        name, _, body = policies.clause_file(files, clause_id)
    except KeyError:
        abort(404)
    if request.method == "POST":
        changes = {k[2:]: v for k, v in request.form.items() if k.startswith("v:")}
        try:
            policies.set_clause(s, d, clause_id, changes, page_user())
            s.commit()
            problems = policies.check(json.loads(d.files))
            flash(f"已保存 {clause_id}" + (f"；草稿仍有 {len(problems)} 个问题，发布前须解决" if problems else "；检查通过"),
                  "error" if problems else "ok")
            return redirect(url_for("policy.draft", draft_id=d.id))
        except (KeyError, policies.PublishRefused) as exc:
            flash(str(exc), "error")
    from .query import category_titles
    cats = category_titles()
    values = [(path, value, form_label(path), form_value_words(path, value, cats))
              for path, value in policies.editable_values(files, clause_id)]
    return render_template("policy/clause.html", draft=d, clause_id=clause_id, file=name, body=body, values=values,
                           file_zh=GROUP_ZH.get(name.removesuffix(".yaml"), "条款文件"),
                           title=body.get("title", ""), citation=body.get("citation", ""),
                           passage=source_passage(files, body.get("citation", "")))


@bp.route("/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>/check", methods=["POST"])
@page_role(*OFFICERS)
def clause_check(draft_id, clause_id):
    """The check of the draft as it would be with the form's values (nothing saved)."""
    d = _draft(draft_id)
    changes = (request.get_json(silent=True) or {}).get("changes")
    if not isinstance(changes, dict):
        return jsonify(problems=[{"file": "", "line": 0, "clause": clause_id, "message": "请求格式不对"}]), 422
    try:
        files = policies.with_changes(json.loads(d.files), clause_id, {str(k): v for k, v in changes.items()})
    except KeyError as exc:
        return jsonify(problems=[{"file": "", "line": 0, "clause": clause_id, "message": f"未知的路径 {exc}"}]), 422
    return jsonify(problems=policies.check(files))


@bp.route("/drafts/<int(max=2147483647):draft_id>/files/<path:name>", methods=["GET", "POST"])
@page_role(*OFFICERS)
def file(draft_id, name):
    """Edit a whole clause or case file of a draft (YAML), checked on saving."""
    s = db.session()
    d = _draft(draft_id)
    files = json.loads(d.files)
    if name not in files or not name.endswith(".yaml"):
        abort(404)
    if request.method == "POST":
        try:
            policies.set_file(s, d, name, request.form.get("content", ""), page_user())
            s.commit()
        except (KeyError, policies.PublishRefused) as exc:
            flash(str(exc), "error")
            return redirect(url_for("policy.file", draft_id=d.id, name=name))
        problems = policies.check(json.loads(d.files))
        flash(f"已保存 {name}" + (f"；草稿有 {len(problems)} 个问题" if problems else "；检查通过"),
              "error" if problems else "ok")
        return redirect(url_for("policy.draft", draft_id=d.id))
    return render_template("policy/file.html", draft=d, name=name, content=files[name])


@bp.route("/guide")
@page_role(*OFFICERS)
def guide():
    """The guide for policy staff (docs/policy-guide.md): how to build a new zone's package."""
    from .docs import guide as read_guide
    page = read_guide("policy-guide")
    if page is None:
        abort(404)
    title, html = page
    return render_template("policy/guide.html", title=title, html=html)

