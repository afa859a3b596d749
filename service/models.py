"""The store (SQLAlchemy 2.0 typed models). Migrations: `migrations/` (Alembic).

An enterprise-year record keeps the data model's identity in typed columns (credit code, name,
park, industry, registration date, year) and the policy package's own fields in one JSON
column (`data`: field key -> value, a missing value absent). So a package that declares new
fields (data.yaml) needs no migration: its records import, are stored and read back as they
are; what is valid is the package's to say, and every write is validated against it first."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer,
                        LargeBinary, String, Table, Text, UniqueConstraint, event, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from rules.fields import IDENTITY


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


ROLES = {"public": "公众", "enterprise": "企业", "officer": "科技局工作人员", "finance": "财政局",
         "bank": "合作银行", "admin": "系统管理员", "department": "数据报送单位"}

IDENTITY_TYPES = {"code": lambda: String(18), "text": lambda: String(200), "date": Date, "year": Integer}

class Enterprise(Base):
    __tablename__ = "enterprises"
    credit_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    park: Mapped[str] = mapped_column(String(200), default="")
    industry: Mapped[str] = mapped_column(String(200), default="")
    registered_on: Mapped[dt.date | None] = mapped_column(Date)
    credit_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


def _record_columns():
    cols = [Column("id", Integer, primary_key=True),
            Column("import_id", Integer, ForeignKey("imports.id"), nullable=True),
            Column("updated_at", DateTime, nullable=False, default=utcnow)]
    for f in IDENTITY:
        kw = {"nullable": not f.required, "comment": f.label}
        if f.key == "credit_code":
            cols.append(Column(f.key, IDENTITY_TYPES[f.kind](), ForeignKey("enterprises.credit_code"), **kw))
        else:
            cols.append(Column(f.key, IDENTITY_TYPES[f.kind](), **kw))
    cols.append(Column("data", JSON, nullable=False, default=dict, comment="政策数据字典中的字段（JSON）"))
    return cols


records_table = Table("records", Base.metadata, *_record_columns(),
                      UniqueConstraint("credit_code", "year", name="uq_records_code_year"),
                      Index("ix_records_year", "year"))


class Record(Base):
    """One enterprise-year record (SPEC §3): identity attributes, and the package's fields
    by key through `get`/`values` (stored as JSON in `data`)."""
    __table__ = records_table

    def values(self) -> dict:
        return as_dict(self.data)

    def get(self, key):
        if key in IDENTITY_KEYS:
            return getattr(self, key)
        return self.values().get(key)

    def set(self, key, value):
        if key in IDENTITY_KEYS:
            setattr(self, key, value)
            return
        v = dict(self.values())          # a new dict: the JSON column sees the change
        if value is None:
            v.pop(key, None)
        else:
            v[key] = value
        self.data = v


def as_dict(value) -> dict:
    """A JSON column's value as a dict (drivers give a dict, or the text when bulk-written)."""
    import json
    if isinstance(value, dict):
        return value
    return json.loads(value or "{}")


IDENTITY_KEYS = tuple(f.key for f in IDENTITY)


class Contract(Base):
    __tablename__ = "contracts"
    contract_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    credit_code: Mapped[str] = mapped_column(ForeignKey("enterprises.credit_code"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[str] = mapped_column(String(40))     # 万元, the decimal text as validated: exact
    registered_on: Mapped[dt.date] = mapped_column(Date)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    credit_code: Mapped[str | None] = mapped_column(String(18))     # the enterprise of an enterprise user
    source: Mapped[str | None] = mapped_column(String(32))          # the data source of a department user
    display_name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # a page session carries the generation it was made in; disabling the user, revoking
    # its access or logging out moves the generation on, so every older cookie is refused
    session_gen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    user: Mapped[User] = relationship()


class Import(Base):
    __tablename__ = "imports"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))                  # records | contracts
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16))                # imported | rejected
    rows: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    replaced: Mapped[int] = mapped_column(Integer, default=0)
    bad_cells: Mapped[int] = mapped_column(Integer, default=0)
    bad_cells_csv: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)   # gzip: every bad cell


class Declaration(Base):
    """An enterprise's declaration of one field of one of its records (自主申报)."""
    __tablename__ = "declarations"
    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(ForeignKey("enterprises.credit_code"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(200))
    previous: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")   # pending | approved | rejected
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    decision_reason: Mapped[str] = mapped_column(Text, default="")


class DeclarationEvidence(Base):
    """A file an enterprise attaches to its declaration (a certificate, a contract scan):
    PDF, PNG or JPEG by its first bytes, at most EVIDENCE_MAX_BYTES, kept as uploaded."""
    __tablename__ = "declaration_evidence"
    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("declarations.id", name="fk_declaration_evidence_declaration"),
                                                index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_declaration_evidence_user"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PolicyVersion(Base):
    """An immutable set of clause files, found by its content hash. 'published' versions are
    what the service uses (the newest one by default); 'external' is a folder that a run was
    given on the command line, kept so that the run can be reproduced."""
    __tablename__ = "policy_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    document: Mapped[str] = mapped_column(String(200), default="")
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    files: Mapped[str] = mapped_column(Text)                       # JSON: file name -> content
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="published", server_default="published")
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_policy_versions_published_by"))
    draft_id: Mapped[int | None] = mapped_column(Integer)         # the draft it was published from
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class PolicyDraft(Base):
    """A copy of a version being edited by policy officers; published as a new version."""
    __tablename__ = "policy_drafts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    base_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    files: Mapped[str] = mapped_column(Text)                       # JSON: file name -> content
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    published_version_id: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.id"))


class Run(Base):
    """An evaluation of one year (积分计算). Its results are read only once its status is
    'done', set after they are committed (runs.py: a run that fails keeps none)."""
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.id"))
    policy_name: Mapped[str] = mapped_column(String(100), default="")
    policy_sha256: Mapped[str] = mapped_column(String(64), default="")
    budget: Mapped[int | None] = mapped_column(BigInteger)
    strategy: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")   # queued running done failed
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    data_sha256: Mapped[str] = mapped_column(String(64), default="")
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    enterprises: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[int] = mapped_column(Integer, default=0)
    award_lines: Mapped[int] = mapped_column(Integer, default=0)
    eligible_yuan: Mapped[int] = mapped_column(BigInteger, default=0)
    granted_yuan: Mapped[int] = mapped_column(BigInteger, default=0)
    manifest: Mapped[str] = mapped_column(Text, default="")


class RunFile(Base):
    """The run's files as `innopoints evaluate` writes them (scores.csv, awards.csv, ...)."""
    __tablename__ = "run_files"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class Result(Base):
    __tablename__ = "results"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    credit_code: Mapped[str] = mapped_column(String(18))
    stage: Mapped[str] = mapped_column(String(16))
    excluded: Mapped[bool] = mapped_column(Boolean)
    exclusion_clauses: Mapped[str] = mapped_column(String(100), default="")
    category_scores: Mapped[dict] = mapped_column(JSON, default=dict)   # category key -> score
    weighted: Mapped[float | None] = mapped_column(Float)
    deductions: Mapped[float | None] = mapped_column(Float)
    decay_factor: Mapped[float | None] = mapped_column(Float)
    bonus: Mapped[float | None] = mapped_column(Float)
    final_score: Mapped[float | None] = mapped_column(Float)
    rank_in_stage: Mapped[int | None] = mapped_column(Integer)
    rank_overall: Mapped[int | None] = mapped_column(Integer)
    stage_percentile: Mapped[float | None] = mapped_column(Float)
    # the enterprise's trace, compact (query.expand_trace): packed against the run's dictionary
    # (service.packing; runs stored since December 2026), or as text (runs stored before)
    trace: Mapped[str | None] = mapped_column(Text, nullable=True)
    trace_packed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    indicators: Mapped[str | None] = mapped_column(Text, nullable=True)   # JSON: clause id -> [value, points]
    indicators_packed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)   # … packed, as the trace
    # JSON: field -> [value, source, kind, import, declaration, list, user, time, provenance id]
    # of what the run read for this enterprise-year (its lines of the run's provenance.csv);
    # packed as the trace is (provenance.stored_provenance), or as text
    provenance: Mapped[str | None] = mapped_column(Text, nullable=True)
    provenance_packed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    __table_args__ = (UniqueConstraint("run_id", "credit_code", name="uq_results_run_code"),
                      Index("ix_results_run_stage_rank", "run_id", "stage", "rank_in_stage"),
                      Index("ix_results_run_rank", "run_id", "rank_overall"),
                      Index("ix_results_run_score", "run_id", "final_score"),
                      # a stage's enterprises by final score, highest first, the unscored last (on
                      # PostgreSQL made NULLS LAST by migration 0010; SQLite's NULLs are last descending)
                      Index("ix_results_run_stage_score", "run_id", "stage", text("final_score DESC"), "credit_code"))


class AwardLine(Base):
    __tablename__ = "award_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    credit_code: Mapped[str] = mapped_column(String(18))
    clause: Mapped[str] = mapped_column(String(16))
    eligible_yuan: Mapped[int] = mapped_column(BigInteger)
    granted_yuan: Mapped[int] = mapped_column(BigInteger)
    basis: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_award_lines_run_code", "run_id", "credit_code"),)


class SeedPoolEntry(Base):
    """An enterprise in the year's seed-enterprise reserve pool (创新种子企业后备库, §五.一)."""
    __tablename__ = "seed_pool"
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    credit_code: Mapped[str] = mapped_column(String(18))
    stage: Mapped[str] = mapped_column(String(16))
    rank_in_stage: Mapped[int] = mapped_column(Integer)
    stage_total: Mapped[int] = mapped_column(Integer)
    final_score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class HonourList(Base):
    """A published honour list (榜单, §六.二): the top N of a stage or of the zone in a run."""
    __tablename__ = "honour_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    year: Mapped[int] = mapped_column(Integer)
    scope: Mapped[str] = mapped_column(String(16))          # a stage key of the package, or overall
    top_n: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    entries: Mapped[str] = mapped_column(Text)              # JSON list
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CreditLookup(Base):
    __tablename__ = "credit_lookups"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
    granted: Mapped[bool] = mapped_column(Boolean)


class Provenance(Base):
    """Where a stored value came from (§四.(一)): one row each time a field of an
    enterprise-year is given a value, by an import, an approved declaration, an officer's
    correction or a published list. `applied` is false for a value that lost to a source of
    higher precedence (kept: it is one side of a conflict). A field's current provenance is
    its newest applied row."""
    __tablename__ = "provenance"
    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18))
    year: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text, default="")        # as the text of an import cell
    source: Mapped[str] = mapped_column(String(32), default="")
    kind: Mapped[str] = mapped_column(String(16))                # import | declaration | correction | public_list
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    declaration_id: Mapped[int | None] = mapped_column(Integer)
    public_list_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (Index("ix_provenance_record_field", "credit_code", "year", "field"),)


class Conflict(Base):
    """Two sources gave one field of one enterprise-year different values: held for an
    officer; meanwhile the package's source precedence decided which is stored."""
    __tablename__ = "conflicts"
    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    year: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(64))
    kept_value: Mapped[str] = mapped_column(Text, default="")
    kept_source: Mapped[str] = mapped_column(String(32), default="")
    kept_provenance_id: Mapped[int | None] = mapped_column(Integer)
    other_value: Mapped[str] = mapped_column(Text, default="")
    other_source: Mapped[str] = mapped_column(String(32), default="")
    other_provenance_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")      # open | resolved
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolution: Mapped[str] = mapped_column(Text, default="")


class PublicList(Base):
    """A published list an officer imported (公开数据): it sets one field for the
    enterprises on it; rows that match no stored enterprise, or several, are held."""
    __tablename__ = "public_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(200))
    year: Mapped[int | None] = mapped_column(Integer)              # None: each row's date gives its year
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    applied: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)


class PublicListEntry(Base):
    __tablename__ = "public_list_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("public_lists.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    credit_code: Mapped[str] = mapped_column(String(18), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    listed_on: Mapped[dt.date | None] = mapped_column(Date)
    year: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))    # applied | unmatched | ambiguous | no_record | matched | dismissed
    candidates: Mapped[str] = mapped_column(Text, default="[]")    # JSON: the enterprises a name matched
    note: Mapped[str] = mapped_column(Text, default="")


class Publicity(Base):
    """A 公示 of a published run's award list and honour lists: open from `starts_on` to
    `ends_on`; objections are filed meanwhile; finalised when the period has ended and no
    objection is open. `run_id` follows the newest run made to resolve an objection."""
    __tablename__ = "publicity"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    first_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    year: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")      # open | final
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finalised_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    finalised_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    statement: Mapped[str] = mapped_column(Text, default="")           # the final list's statement (JSON)


class Objection(Base):
    """An enterprise's objection (异议) to an item of a 公示 list, and its outcome."""
    __tablename__ = "objections"
    id: Mapped[int] = mapped_column(primary_key=True)
    publicity_id: Mapped[int] = mapped_column(ForeignKey("publicity.id"), index=True)
    credit_code: Mapped[str] = mapped_column(String(18))
    item: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")      # open | upheld | rejected
    filed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    decision: Mapped[str] = mapped_column(Text, default="")
    correction: Mapped[str] = mapped_column(Text, default="")      # JSON: field, year, old, new
    new_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    old_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))


class ObjectionFile(Base):
    __tablename__ = "objection_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    objection_id: Mapped[int] = mapped_column(ForeignKey("objections.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class AuditEntry(Base):
    """Append-only: rows are added, never changed or removed (enforced below and by the API
    having no route that writes here)."""
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(80), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")     # JSON


class AuditLogIsAppendOnly(Exception):
    pass


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_audit_change(mapper, connection, target):
    raise AuditLogIsAppendOnly("the audit log is append-only")
