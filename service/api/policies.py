"""Policy versions: drafts, check, test, what-if, publish (blueprint `policies`)."""
from __future__ import annotations

import json

from flask import jsonify, request
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from rules.policy import PolicyError

from .. import db, policies
from ..access import public
from ..auth import api_user, require
from ..models import PolicyDraft, PolicyVersion
from ..store import has_records
from ..schemas import (ClauseChange, DiagnosticsYear, Draft, DraftChecked, DraftCreate, DraftDiagnostics, FileUpdate,
                       PolicyActive, PolicyList, PolicyShape, PolicyVersionAnswer, Report, WhatIf)
from .common import STAFF, answers, iso


# ---- policy versions: drafts, check, test, what-if, publish ---------------------------------------
policy_bp = Blueprint("policies", __name__, url_prefix="/api", description="政策版本：草稿、检查、用例、模拟测算、发布")


def clause_summary(pv):
    return [{"id": c.id, "title": c.title, "citation": c.citation, "group": c.group,
             "effective_from": c.effective_from.isoformat(),
             "effective_to": c.effective_to.isoformat() if c.effective_to else None,
             "when": _plain(c.body.get("when")), "effect": _plain(c.body.get("effect"))} for c in pv.clauses]


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def version_dict(row, with_files=False):
    d = {"id": row.id, "name": row.name, "document": row.document, "sha256": row.sha256, "status": row.status,
         "published_at": iso(row.published_at), "note": row.note}
    if with_files:
        d["files"] = policies.files_of(row)
    return d


@policy_bp.route("/policy")
@public
@answers(policy_bp, PolicyActive)
def policy_active():
    """当前生效的政策版本及其全部条款（公开）"""
    s = db.session()
    row = policies.active(s)
    s.commit()
    pv = policies.load_files(policies.files_of(row))
    return jsonify({**version_dict(row), "title": pv.title, "clauses": clause_summary(pv)})


def shape_dict(pv) -> dict:
    """A policy package's shape: its data fields, stages, categories, contract kinds and
    history runs (data.yaml, indicators.yaml)."""
    d = pv.data
    cats = pv.categories()
    return {"policy": pv.name, "title": pv.title, "document": pv.document,
            "identity": [_field(f) for f in d.record_fields[:len(d.record_fields) - len(d.fields)]],
            "fields": [_field(f) for f in d.fields],
            "stages": [{"key": k, "name": v, "level": i + 1} for i, (k, v) in enumerate(d.stages.items())],
            "categories": [{"key": k, "title": pv.category_title(k), "points": (cats[k] or {}).get("points", 100)}
                           for k in cats],
            "contract_kinds": [{"key": k, "name": v} for k, v in d.contract_kinds.items()],
            "history_runs": [{"key": r.key, "label": r.label, "unit": r.unit} for r in d.runs]}


def _field(f):
    return {"key": f.key, "label": f.label, "kind": f.kind, "unit": f.unit, "required": f.required,
            "values": [{"key": k, "name": v} for k, v in f.values], "help": f.help, "source": f.source}


@policy_bp.route("/policy/shape")
@public
@answers(policy_bp, PolicyShape)
def policy_shape():
    """当前生效政策的数据字典：字段、发展阶段、指标类别、合同类别（公开）。记录字段、阶段与类别的键以此为准"""
    s = db.session()
    row = policies.active(s)
    s.commit()
    return jsonify(shape_dict(policies.load_files(policies.files_of(row))))


@policy_bp.route("/policies")
@require(*STAFF)
@answers(policy_bp, PolicyList)
def policy_list():
    """全部政策版本与草稿"""
    s = db.session()
    policies.ensure_bundled(s)
    s.commit()
    versions = [version_dict(r) for r in s.scalars(select(PolicyVersion).order_by(PolicyVersion.id))]
    drafts = [draft_dict(d) for d in s.scalars(select(PolicyDraft).order_by(PolicyDraft.id))]
    return jsonify({"active": policies.active(s).id, "versions": versions, "drafts": drafts})


@policy_bp.route("/policies/versions/<int(max=2147483647):version_id>")
@require(*STAFF)
@answers(policy_bp, PolicyVersionAnswer)
def policy_version_get(version_id):
    """一个版本的全部条款文件"""
    row = db.session().get(PolicyVersion, version_id)
    if row is None:
        abort(404, message=f"没有版本 {version_id}")
    return jsonify(version_dict(row, with_files=True))


def draft_dict(d, with_files=False):
    out = {"id": d.id, "name": d.name, "base": d.base_id, "note": d.note, "updated_at": iso(d.updated_at),
           "published_version": d.published_version_id}
    if with_files:
        out["files"] = json.loads(d.files)
    return out


def _draft_or_404(draft_id):
    d = db.session().get(PolicyDraft, draft_id)
    if d is None:
        abort(404, message=f"没有草稿 {draft_id}")
    return d


@policy_bp.route("/policies/drafts", methods=["POST"])
@require(*STAFF)
@answers(policy_bp, Draft, 201)
@policy_bp.arguments(DraftCreate)
def draft_create(args):
    """以一个已发布版本为基础新建草稿"""
    s = db.session()
    base = s.get(PolicyVersion, args["base"]) if args["base"] else policies.active(s)
    if base is None or base.status != "published":
        abort(422, message="基础版本须为已发布版本", errors={"json": {"base": ["没有该已发布版本"]}})
    d = policies.create_draft(s, base, args["name"], api_user(request), args["note"])
    s.commit()
    return jsonify(draft_dict(d)), 201


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>")
@require(*STAFF)
@answers(policy_bp, Draft)
def draft_get(draft_id):
    """草稿的全部条款文件"""
    return jsonify(draft_dict(_draft_or_404(draft_id), with_files=True))


def _refused(exc):
    abort(409, message=str(exc), errors={"problems": exc.problems, "failures": exc.failures})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/files/<path:name>", methods=["PUT"])
@require(*STAFF)
@answers(policy_bp, DraftChecked)
@policy_bp.arguments(FileUpdate)
def draft_file_put(args, draft_id, name):
    """替换草稿中的一个条款文件或用例文件（cases/…）；返回检查结果（有问题也保存，发布前须全部解决）"""
    s = db.session()
    d = _draft_or_404(draft_id)
    try:
        policies.set_file(s, d, name, args["content"], api_user(request))
    except KeyError:
        abort(404, message=f"没有条款文件 {name}")
    except policies.PublishRefused as exc:
        _refused(exc)
    s.commit()
    return jsonify({"draft": draft_id, "file": name, "problems": policies.check(json.loads(d.files))})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>", methods=["PATCH"])
@require(*STAFF)
@answers(policy_bp, DraftChecked)
@policy_bp.arguments(ClauseChange)
def draft_clause_patch(args, draft_id, clause_id):
    """修改草稿中一条条款的金额、系数、阈值或条件；dry_run=true 只检查"""
    s = db.session()
    d = _draft_or_404(draft_id)
    try:
        files = policies.with_changes(json.loads(d.files), clause_id, args["changes"])
    except KeyError as exc:
        abort(422, message=f"没有条款或路径 {exc}", errors={"json": {"changes": [f"未知的条款或路径：{exc}"]}})
    problems = policies.check(files)
    if not args["dry_run"]:
        try:
            policies.set_clause(s, d, clause_id, args["changes"], api_user(request))
        except policies.PublishRefused as exc:
            _refused(exc)
        s.commit()
    return jsonify({"draft": draft_id, "clause": clause_id, "saved": not args["dry_run"], "problems": problems})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/check", methods=["POST"])
@require(*STAFF)
@answers(policy_bp, DraftChecked)
def draft_check(draft_id):
    """检查草稿：结构、编号、依据、取值范围、生效日期、字段，并编译进规则引擎"""
    problems = policies.check(json.loads(_draft_or_404(draft_id).files))
    return jsonify({"draft": draft_id, "ok": not problems, "problems": problems})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/test", methods=["POST"])
@require(*STAFF)
@answers(policy_bp, DraftChecked)
def draft_test(draft_id):
    """对草稿运行全部条款用例"""
    files = json.loads(_draft_or_404(draft_id).files)
    problems = policies.check(files)
    if problems:
        return jsonify({"draft": draft_id, "ok": False, "problems": problems, "failures": []})
    failures = policies.test(files)
    return jsonify({"draft": draft_id, "ok": not failures, "problems": [], "failures": failures})


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/whatif", methods=["POST"])
@require(*STAFF)
@answers(policy_bp, Report)
@policy_bp.arguments(WhatIf)
def draft_whatif(args, draft_id):
    """模拟测算：用库中该年度数据分别按草稿和比较版本计算，列出阶段、排除、积分、排名、榜单和奖励的变化"""
    s = db.session()
    d = _draft_or_404(draft_id)
    against = s.get(PolicyVersion, args["against"]) if args["against"] else policies.active(s)
    if against is None:
        abort(422, message="没有比较版本", errors={"json": {"against": ["没有该版本"]}})
    files = json.loads(d.files)
    problems = policies.check(files)
    if problems:
        abort(409, message="草稿检查未通过，无法测算", errors={"problems": problems, "failures": []})
    if not has_records(s, args["year"]):
        abort(422, message="该年度没有企业记录", errors={"json": {"year": [f"{args['year']} 年度没有企业记录"]}})
    try:
        report = policies.whatif(s, files, args["year"], policies.files_of(against), args["budget"],
                                 args["strategy"], args["top"])
    except PolicyError as exc:
        abort(422, message=str(exc), errors={"json": {"year": [str(exc)]}})
    return jsonify(report)


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/diagnostics", methods=["POST"])
@require(*STAFF)
@answers(policy_bp, DraftDiagnostics)
@policy_bp.arguments(DiagnosticsYear)
def draft_diagnostics(args, draft_id):
    """草稿模拟测算的校准诊断（§四.(二)）：当前版本（before）与草稿（after）下各阶段的分布和判断，
    以及草稿中仍有问题的指标改用其他计分方法的比较"""
    from .. import diagnostics
    s = db.session()
    d = _draft_or_404(draft_id)
    files = json.loads(d.files)
    problems = policies.check(files)
    if problems:
        abort(409, message="草稿检查未通过，无法测算", errors={"problems": problems, "failures": []})
    if not has_records(s, args["year"]):
        abort(422, message="该年度没有企业记录", errors={"json": {"year": [f"{args['year']} 年度没有企业记录"]}})
    try:
        result = diagnostics.draft_diagnostics(s, files, args["year"], policies.files_of(policies.active(s)))
    except PolicyError as exc:
        abort(422, message=str(exc), errors={"json": {"year": [str(exc)]}})
    return jsonify(result)


@policy_bp.route("/policies/drafts/<int(max=2147483647):draft_id>/publish", methods=["POST"])
@require(*STAFF)
@answers(policy_bp, PolicyVersionAnswer, 201)
def draft_publish(draft_id):
    """发布草稿：检查与用例全部通过才发布；记录发布人、时间、各条款文件的差异与哈希；运行中的服务随即改用新版本"""
    s = db.session()
    d = _draft_or_404(draft_id)
    try:
        row = policies.publish(s, d, api_user(request))
    except policies.PublishRefused as exc:
        s.rollback()
        _refused(exc)
    s.commit()
    return jsonify(version_dict(row)), 201
