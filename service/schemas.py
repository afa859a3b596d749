"""Request and response schemas of the API (marshmallow). Field descriptions are in Chinese,
as the OpenAPI page shows them."""
from __future__ import annotations

import datetime as dt

from marshmallow import INCLUDE, Schema, fields, validate
from flask_smorest.fields import Upload


from .models import ROLES
from .query import SORTS

FORMATS = validate.OneOf(["json", "csv", "xlsx"])
# stage keys and field keys are the policy package's (GET /api/policy/shape): the schema
# bounds their form, the view checks them against the package in force
KEY = validate.Regexp(r"^[A-Za-z][A-Za-z0-9_]{0,63}$", error="应为字母开头的英文键 / must be a key")
STAGE = KEY
STRATEGY = validate.OneOf(["pro_rata", "rank_priority"])


def _d(text):
    return {"description": text}


class UTCDateTime(fields.DateTime):
    """A stored (naive, UTC) time with its time zone: `2025-03-01T08:00:00+00:00`."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


class FormatQuery(Schema):
    format = fields.Str(load_default="json", validate=FORMATS, metadata=_d("json、csv 或 xlsx（导出）"))


class RunSelect(FormatQuery):
    run = fields.Int(validate=validate.Range(min=1, max=2**31 - 1), metadata=_d("计算批次编号；缺省为该年度（或最新年度）的当前批次"))
    year = fields.Int(validate=validate.Range(min=2000, max=2100), metadata=_d("评价年度"))


class EnterpriseQuery(RunSelect):
    park = fields.Str(metadata=_d("所属园区"))
    industry = fields.Str(metadata=_d("所属行业"))
    stage = fields.Str(validate=STAGE, metadata=_d("发展阶段的键（当前政策的阶段见 GET /api/policy/shape）"))
    min_score = fields.Float(validate=validate.Range(min=-1000, max=1000), metadata=_d("最终积分下限"))
    max_score = fields.Float(validate=validate.Range(min=-1000, max=1000), metadata=_d("最终积分上限"))
    q = fields.Str(validate=validate.Length(max=100), metadata=_d("企业名称或信用代码包含"))
    excluded = fields.Bool(metadata=_d("true 只看被排除的企业，false 只看参与排名的企业"))
    sort = fields.Str(load_default="rank_overall", validate=KEY,
                      metadata=_d(f"排序字段：{'、'.join(SORTS)}，或某类别积分 <类别键>_score"))
    order = fields.Str(load_default="asc", validate=validate.OneOf(["asc", "desc"]))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))


class RankingQuery(RunSelect):
    stage = fields.Str(validate=STAGE)
    top = fields.Int(validate=validate.Range(min=1, max=10_000), metadata=_d("前 N 名"))


class AwardQuery(RunSelect):
    credit_code = fields.Str(validate=validate.Length(equal=18))
    clause = fields.Str(validate=validate.Regexp(r"^RW-[0-9A-Za-z.]+$"))


class TokenRequest(Schema):
    username = fields.Str(required=True, validate=validate.Length(min=1, max=80))
    password = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    label = fields.Str(load_default="", validate=validate.Length(max=100))


class TokenResponse(Schema):
    token = fields.Str(metadata=_d("在 Authorization: Bearer <token> 中使用；只显示一次"))
    username = fields.Str()
    role = fields.Str()


class UserSchema(Schema):
    id = fields.Int(dump_only=True)
    username = fields.Str(required=True, validate=validate.Length(min=1, max=80))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=10, max=200))
    role = fields.Str(required=True, validate=validate.OneOf([r for r in ROLES if r != "public"]))
    credit_code = fields.Str(load_default=None, allow_none=True, validate=validate.Length(equal=18))
    display_name = fields.Str(load_default="", validate=validate.Length(max=200))
    source = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=32),
                        metadata=_d("数据报送单位所属的数据来源（data.yaml sources 的键）"))
    active = fields.Bool(dump_only=True)


class RunCreate(Schema):
    year = fields.Int(required=True, validate=validate.Range(min=2000, max=2100), metadata=_d("评价年度"))
    policy = fields.Str(load_default=None, allow_none=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,100}$"),
                        metadata=_d("政策版本名称；缺省为 xinxiang-2022"))
    budget = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=0, max=10**13),
                        metadata=_d("年度奖励预算（元）；缺省为不设上限"))
    strategy = fields.Str(load_default=None, allow_none=True, validate=STRATEGY,
                          metadata=_d("预算不足时浮动奖励的分配方式"))


class RunSchema(Schema):
    id = fields.Int()
    year = fields.Int()
    status = fields.Str(metadata=_d("queued 排队 / running 计算中 / done 完成 / failed 失败"))
    progress = fields.Int()
    message = fields.Str()
    error = fields.Str()
    policy_name = fields.Str()
    policy_sha256 = fields.Str()
    data_sha256 = fields.Str()
    budget = fields.Int(allow_none=True)
    strategy = fields.Str(allow_none=True)
    created_at = UTCDateTime()
    finished_at = UTCDateTime(allow_none=True)
    published_at = UTCDateTime(allow_none=True)
    enterprises = fields.Int()
    excluded = fields.Int()
    award_lines = fields.Int()
    eligible_yuan = fields.Int()
    granted_yuan = fields.Int()
    current = fields.Bool()


class ResultRow(Schema):
    credit_code = fields.Str()
    name = fields.Str()
    park = fields.Str()
    industry = fields.Str()
    stage = fields.Str()
    stage_zh = fields.Str()
    excluded = fields.Bool()
    exclusion_clauses = fields.List(fields.Str())
    category_scores = fields.Dict(keys=fields.Str(), values=fields.Float(allow_none=True),
                                  metadata=_d("各类别积分：类别键 → 积分（类别见 GET /api/policy/shape）"))
    weighted = fields.Float(allow_none=True)
    deductions = fields.Float(allow_none=True)
    decay_factor = fields.Float(allow_none=True)
    bonus = fields.Float(allow_none=True)
    final_score = fields.Float(allow_none=True)
    rank_in_stage = fields.Int(allow_none=True)
    rank_overall = fields.Int(allow_none=True)
    stage_percentile = fields.Float(allow_none=True)


class EnterprisePage(Schema):
    run_id = fields.Int()
    year = fields.Int()
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()
    items = fields.List(fields.Nested(ResultRow))


class Correction(Schema):
    field = fields.Str(required=True, validate=KEY, metadata=_d("字段英文键（当前政策的数据字典见 GET /api/policy/shape）"))
    value = fields.Raw(required=True, allow_none=True, metadata=_d("新值（空为缺失）"))
    reason = fields.Str(load_default="", validate=validate.Length(max=1000))


class DeclarationCreate(Correction):
    year = fields.Int(required=True, validate=validate.Range(min=2000, max=2100))
    credit_code = fields.Str(load_default=None, allow_none=True, validate=validate.Length(equal=18),
                             metadata=_d("企业用户缺省为本企业"))


class DeclarationSchema(Schema):
    id = fields.Int()
    credit_code = fields.Str()
    year = fields.Int()
    field = fields.Str()
    field_zh = fields.Str()
    value = fields.Str()
    previous = fields.Str(allow_none=True)
    reason = fields.Str()
    status = fields.Str()
    submitted_at = UTCDateTime()
    decided_at = UTCDateTime(allow_none=True)
    decision_reason = fields.Str()


class DeclarationQuery(FormatQuery):
    status = fields.Str(validate=validate.OneOf(["pending", "approved", "rejected"]))


class Decision(Schema):
    approve = fields.Bool(required=True, metadata=_d("true 通过，false 驳回"))
    reason = fields.Str(load_default="", validate=validate.Length(max=1000))


class Consent(Schema):
    consent = fields.Bool(required=True, metadata=_d("是否同意合作银行查询本企业积分作为授信参考"))


class ImportForm(Schema):
    kind = fields.Str(required=True, validate=validate.OneOf(["records", "contracts"]),
                      metadata=_d("records 企业年度记录 / contracts 技术合同"))
    source = fields.Str(load_default=None, allow_none=True, validate=validate.Regexp(r"^[A-Za-z0-9_]{0,32}$"),
                        metadata=_d("工作人员导入时记录值的来源（data.yaml sources 的键）；缺省为各字段自己的来源"))


class TemplateQuery(Schema):
    source = fields.Str(load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9_]{1,32}$"),
                        metadata=_d("数据来源的键：只含该来源字段的部分导入模板"))


class ImportFile(Schema):
    file = Upload(required=True, metadata=_d("CSV（UTF-8）或 XLSX 文件"))


class DiffQuery(FormatQuery):
    part = fields.Str(load_default="enterprises", validate=validate.OneOf(["enterprises", "awards"]),
                      metadata=_d("导出时：enterprises 企业变化 / awards 奖励变化"))


class AuditQuery(FormatQuery):
    action = fields.Str(validate=validate.Length(max=64))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))


class DraftCreate(Schema):
    base = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**31 - 1),
                      metadata=_d("作为基础的已发布版本编号；缺省为当前版本"))
    name = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{1,100}$"),
                      metadata=_d("草稿（及发布后版本）的名称"))
    note = fields.Str(load_default="", validate=validate.Length(max=2000), metadata=_d("修改说明"))


class FileUpdate(Schema):
    content = fields.Str(required=True, validate=validate.Length(max=2_000_000), metadata=_d("条款文件全文（YAML）"))


class ClauseChange(Schema):
    changes = fields.Dict(keys=fields.Str(validate=validate.Length(min=1, max=200)),
                          values=fields.Raw(allow_none=True), required=True,
                          metadata=_d("条款内的路径 → 新值，例如 {\"effect.factor\": 0.95}"))
    dry_run = fields.Bool(load_default=False, metadata=_d("true 只检查，不保存"))


class WhatIf(Schema):
    year = fields.Int(required=True, validate=validate.Range(min=2000, max=2100))
    against = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**31 - 1),
                         metadata=_d("比较的已发布版本编号；缺省为当前版本"))
    budget = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=0, max=10**13))
    strategy = fields.Str(load_default=None, allow_none=True, validate=STRATEGY)
    top = fields.Int(load_default=10, validate=validate.Range(min=1, max=1000))


class DiagnosticsYear(Schema):
    year = fields.Int(required=True, validate=validate.Range(min=2000, max=2100), metadata=_d("模拟测算的评价年度"))


class HonourCreate(Schema):
    scope = fields.Str(required=True, validate=KEY, metadata=_d("某阶段的键（该阶段榜），或 overall（总榜）"))
    top_n = fields.Int(required=True, validate=validate.Range(min=1, max=1000), metadata=_d("前 N 名"))


class YearQuery(FormatQuery):
    year = fields.Int(validate=validate.Range(min=2000, max=2100))
    run = fields.Int(validate=validate.Range(min=1, max=2**31 - 1))


class PoolCreate(Schema):
    run = fields.Int(required=True, validate=validate.Range(min=1, max=2**31 - 1), metadata=_d("据以生成的计算批次"))


class RunYear(Schema):
    """The run a JSON-only answer reads (no `format`: it has no CSV or XLSX form)."""
    run = fields.Int(validate=validate.Range(min=1, max=2**31 - 1), metadata=_d("计算批次编号；缺省为该年度（或最新年度）的当前批次"))
    year = fields.Int(validate=validate.Range(min=2000, max=2100), metadata=_d("评价年度"))


class ServiceQuery(RunSelect):
    stage = fields.Str(validate=STAGE)


# ---- response documents: the JSON answers as OpenAPI shows them ------------------------------------
# Their main keys typed; nested parts as objects. `unknown = INCLUDE` documents them as open
# (additionalProperties), so that a new key in an answer does not contradict the document.

class Answer(Schema):
    class Meta:
        unknown = INCLUDE


def answer(schema_name, **fields_):
    """A response schema named `name` with the given fields (documentation only)."""
    return type(schema_name, (Answer,), dict(fields_))


OBJ = fields.Dict
LIST = fields.List(fields.Dict())
Score = answer("Score", credit_code=fields.Str(), name=fields.Str(), stage=fields.Str(), final_score=fields.Float(allow_none=True),
               indicators=LIST, explanation=fields.List(fields.Raw()), services=LIST)
Records = answer("Records", credit_code=fields.Str(), labels=OBJ(), records=LIST)
CorrectionDone = answer("CorrectionDone", credit_code=fields.Str(), year=fields.Int(), field=fields.Str(),
                        old=fields.Raw(allow_none=True), new=fields.Raw(allow_none=True))
Eligibility = answer("Eligibility", credit_code=fields.Str(), run_id=fields.Int(), year=fields.Int(), items=LIST)
Rankings = answer("Rankings", run_id=fields.Int(), year=fields.Int(), top=fields.Int(allow_none=True), stages=OBJ())
Aggregates = answer("Aggregates", enterprises=fields.Int(), by_stage=LIST, by_industry=LIST, by_park=LIST)
CreditView = answer("CreditView", credit_code=fields.Str())
Awards = answer("Awards", run_id=fields.Int(), year=fields.Int(), totals=OBJ(), items=LIST)
Manifest = answer("Manifest")
Diff = answer("Diff", enterprises=LIST, awards=LIST)
Honour = answer("Honour", id=fields.Int(), title=fields.Str(), entries=LIST)
ImportDone = answer("ImportDone", import_id=fields.Int(), kind=fields.Str(), rows=fields.Int(), added=fields.Int(),
                    replaced=fields.Int(), sha256=fields.Str())
ImportRejectedAnswer = answer("ImportRejected", code=fields.Int(), status=fields.Str(), message=fields.Str(),
                              import_id=fields.Int(allow_none=True), bad_cells_total=fields.Int(),
                              bad_cells_truncated=fields.Bool(), bad_cells_file=fields.Str(), bad_cells=LIST,
                              errors=OBJ())
ImportRow = answer("ImportRow", id=fields.Int(), kind=fields.Str(), filename=fields.Str(), sha256=fields.Str(),
                   user=fields.Str(), at=fields.Str(), status=fields.Str(), rows=fields.Int(allow_none=True))
Me = answer("Me", username=fields.Str(), role=fields.Str(), role_zh=fields.Str(), credit_code=fields.Str(allow_none=True),
            credit_consent=fields.Bool())
ConsentDone = answer("ConsentDone", credit_code=fields.Str(), credit_consent=fields.Bool())
CreditLookupRow = answer("CreditLookupRow", at=fields.Str(), bank=fields.Str(), granted=fields.Bool(),
                         run_id=fields.Int(allow_none=True))
AuditRow = answer("AuditRow", id=fields.Int(), at=fields.Str(), user=fields.Str(allow_none=True), action=fields.Str(),
                  target=fields.Str(allow_none=True), detail=fields.Raw())
PolicyActive = answer("PolicyActive", id=fields.Int(), name=fields.Str(), status=fields.Str(), title=fields.Str(),
                      clauses=LIST)
PolicyShape = answer("PolicyShape", policy=fields.Str(), title=fields.Str(), document=fields.Str(), identity=LIST,
                     fields=LIST, stages=LIST, categories=LIST, contract_kinds=LIST, history_runs=LIST)
PolicyList = answer("PolicyList", active=fields.Int(), versions=LIST, drafts=LIST)
PolicyVersionAnswer = answer("PolicyVersion", id=fields.Int(), name=fields.Str(), status=fields.Str(),
                             published_at=fields.Str(allow_none=True))
Draft = answer("Draft", id=fields.Int(), name=fields.Str(), base=fields.Int(allow_none=True),
               updated_at=fields.Str(), published_version=fields.Int(allow_none=True))
DraftChecked = answer("DraftChecked", draft=fields.Int(), problems=fields.List(fields.Raw()))
Report = answer("Report")
SeedPool = answer("SeedPool", year=fields.Int(), run_id=fields.Int(allow_none=True), entries=LIST, exits=LIST)
Services = answer("Services", run_id=fields.Int(allow_none=True), year=fields.Int(), items=LIST)
Honours = answer("Honours", year=fields.Int(allow_none=True), lists=LIST)
Monitoring = answer("Monitoring", year=fields.Int(), run_id=fields.Int(allow_none=True))
DiagnosticStage = answer("DiagnosticStage", stage=fields.Str(), stage_zh=fields.Str(), n=fields.Int(),
                         mean=fields.Float(allow_none=True), median=fields.Float(allow_none=True),
                         std=fields.Float(allow_none=True), skewness=fields.Float(allow_none=True),
                         excess_kurtosis=fields.Float(allow_none=True), normality_test=fields.Str(allow_none=True),
                         normality_p=fields.Float(allow_none=True), indicators=LIST, redundant_pairs=LIST,
                         verdict=OBJ(), charts=OBJ())
Diagnostics = answer("Diagnostics", year=fields.Int(), policy=fields.Str(), citation=fields.Str(),
                     run_id=fields.Int(allow_none=True), targets=OBJ(),
                     stages=fields.List(fields.Nested(DiagnosticStage)), tuning=LIST)
DraftDiagnostics = answer("DraftDiagnostics", year=fields.Int(), before=fields.Nested(Diagnostics),
                          after=fields.Nested(Diagnostics))
Potential = answer("Potential", credit_code=fields.Str(), run_id=fields.Int(), year=fields.Int(),
                   final_score=fields.Float(allow_none=True), levers=LIST, by_target=OBJ())
Closest = answer("Closest", run_id=fields.Int(), year=fields.Int(), lists=LIST)


# ---- sources, provenance, conflicts, published lists, 公示 (issue 17) --------------------------

class ProvenanceQuery(Schema):
    year = fields.Int(validate=validate.Range(min=2000, max=2100), metadata=_d("只看该年度"))
    run = fields.Int(validate=validate.Range(min=1, max=2**31 - 1),
                     metadata=_d("计算批次：给出该批次读取的值的来源"))


class ConflictQuery(Schema):
    status = fields.Str(validate=validate.OneOf(["open", "resolved"]), metadata=_d("open 待处理 / resolved 已处理"))


class ConflictDecision(Schema):
    use = fields.Str(required=True, validate=validate.OneOf(["kept", "other"]),
                     metadata=_d("kept 采用现值 / other 采用另一来源的值"))
    reason = fields.Str(load_default="", validate=validate.Length(max=1000))


class UploadFile(Schema):
    file = Upload(required=True, metadata=_d("CSV（UTF-8）或 XLSX 文件"))


class PublicListForm(Schema):
    title = fields.Str(required=True, validate=validate.Length(min=1, max=200), metadata=_d("名单名称"))
    field = fields.Str(required=True, validate=validate.Length(min=1, max=64),
                       metadata=_d("名单设置的字段（数据字典中的键）"))
    value = fields.Str(load_default="", validate=validate.Length(max=200),
                       metadata=_d("设置的值；是/否字段缺省为“是”"))
    year = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=2000, max=2100),
                      metadata=_d("评价年度；缺省取每行日期的年份"))


class EntryDecision(Schema):
    credit_code = fields.Str(load_default=None, allow_none=True, validate=validate.Length(equal=18),
                             metadata=_d("该行所指企业；不填则驳回该行"))
    reason = fields.Str(load_default="", validate=validate.Length(max=1000))


class PublicityCreate(Schema):
    starts_on = fields.Date(required=True, metadata=_d("公示开始日期"))
    ends_on = fields.Date(required=True, metadata=_d("公示结束日期"))


class ObjectionForm(Schema):
    item = fields.Str(required=True, validate=validate.Length(min=1, max=200), metadata=_d("异议事项（奖励项目或榜单）"))
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=4000), metadata=_d("异议理由"))


class EvidenceFiles(Schema):
    evidence = fields.List(Upload(), load_default=list, metadata=_d("证明材料（PDF、图片、XLSX、CSV）"))


class ObjectionDecisionSchema(Schema):
    uphold = fields.Bool(required=True, metadata=_d("true 异议成立（更正数据并重新计算），false 驳回"))
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=4000), metadata=_d("处理意见"))
    field = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=64),
                       metadata=_d("成立时更正的字段"))
    year = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=2000, max=2100))
    value = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
