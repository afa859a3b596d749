"""Where each stored value came from (§四.(一)), and what happens when two sources disagree.

Every write of a field of an enterprise-year — an import, an approved declaration, an
officer's correction, a published list — adds a provenance row (source, kind, import or
declaration or list, user, time). The current provenance of a field is its newest applied
row. When a source gives a field a value that differs from the one another source gave, a
conflict is opened for an officer and the package's source precedence (data.yaml
`source_precedence`) decides which value is stored meanwhile.

Which fields a source owns is the package's (`source:` on each field); nothing here names a
field or a source."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select, tuple_

from .models import Conflict, Provenance, utcnow
from .store import audit, bulk_insert, text_of

COLUMNS = ("credit_code", "year", "field", "value", "source", "kind", "import_id", "declaration_id",
           "public_list_id", "user_id", "at", "applied")
KIND_ZH = {"import": "导入", "declaration": "企业申报", "correction": "工作人员更正", "public_list": "公开名单"}


def add_rows(s, rows):
    """Insert provenance rows (dicts with the keys of COLUMNS; missing ones are empty)."""
    now = utcnow()
    tuples = [(r["credit_code"], r["year"], r["field"], r.get("value", ""), r.get("source", ""), r["kind"],
               r.get("import_id"), r.get("declaration_id"), r.get("public_list_id"), r.get("user_id"),
               r.get("at", now), r.get("applied", True)) for r in rows]
    if tuples:
        bulk_insert(s, Provenance.__table__, list(COLUMNS), tuples)


ALL_FIELDS = "*"      # a row for a whole enterprise-year: a complete file replaced it


def _effective(p, field, data):
    """A whole-record row (`*`) as the provenance of one of its fields: its source is the one
    the import named, else the field's own (the value is the record's)."""
    if p.field != ALL_FIELDS:
        return p
    f = data.field(field)
    return Provenance(id=p.id, credit_code=p.credit_code, year=p.year, field=field, value="",
                      source=p.source or (f.source if f else ""), kind=p.kind, import_id=p.import_id,
                      declaration_id=p.declaration_id, public_list_id=p.public_list_id, user_id=p.user_id, at=p.at,
                      applied=p.applied)


def _newest(rows, data, fields_of):
    """{(code, year, field): effective row}: per field, the newer of its own newest row and
    the newest whole-record row of its enterprise-year."""
    whole, own = {}, {}
    for p in rows:                                       # in id order: later rows win
        if p.field == ALL_FIELDS:
            whole[p.credit_code, p.year] = p
        else:
            own[p.credit_code, p.year, p.field] = p
    out = {}
    for (code, year), p in whole.items():
        for f in fields_of(code, year):
            out[code, year, f] = _effective(p, f, data)
    for key, p in own.items():
        w = whole.get(key[:2])
        if w is None or p.id > w.id:
            out[key] = p
    return out


def current(s, keys, fields, data) -> dict:
    """The current provenance of each (credit code, year, field) of the enterprise-years
    `keys`, for `fields`: {(code, year, field): Provenance}."""
    keys, fields = list(keys), list(fields)
    rows = []
    for i in range(0, len(keys), 500):
        rows += s.scalars(select(Provenance).where(
            tuple_(Provenance.credit_code, Provenance.year).in_(keys[i:i + 500]), Provenance.applied.is_(True),
            Provenance.field.in_(fields + [ALL_FIELDS])).order_by(Provenance.id)).all()
    rows.sort(key=lambda p: p.id)
    return _newest(rows, data, lambda c, y: fields)


def of_enterprise(s, code, data=None) -> dict:
    """{(year, field): Provenance} for one enterprise."""
    from .shape import data as dictionary
    data = data or dictionary(s)
    q = select(Provenance).where(Provenance.credit_code == code, Provenance.applied.is_(True)).order_by(Provenance.id)
    keys = [f.key for f in data.fields]
    return {(y, f): p for (_, y, f), p in _newest(s.scalars(q).all(), data, lambda c, y: keys).items()}


def describe(p: Provenance, data, users=None, imports=None) -> dict:
    """A provenance row as the API and the pages show it (both languages)."""
    users = users or {}
    d = {"field": p.field, "value": p.value, "source": p.source, "source_zh": data.source_name(p.source),
         "kind": p.kind, "kind_zh": KIND_ZH.get(p.kind, p.kind), "import_id": p.import_id,
         "declaration_id": p.declaration_id, "public_list_id": p.public_list_id,
         "user": users.get(p.user_id, "系统" if p.user_id is None else ""),
         "at": _iso(p.at), "provenance_id": p.id}
    if p.import_id is not None:
        d["import_url"] = f"/workspace/imports/{p.import_id}"
        if imports and p.import_id in imports:
            d["import_filename"] = imports[p.import_id]
    return d


def _iso(when):
    return when.isoformat(timespec="seconds") + "+00:00" if when else None


def snapshot_csv(s, path, records, data):
    """Write the provenance of every value a run's snapshot read to `path` (CSV), one line
    per value: `records` are its (credit code, year, {field: value}) in the snapshot's order."""
    whole, own = {}, {}
    cols = [Provenance.__table__.c[k] for k in ("id",) + COLUMNS]
    for r in s.execute(select(*cols).where(Provenance.applied.is_(True)).order_by(Provenance.id)):
        if r.field == ALL_FIELDS:
            whole[r.credit_code, r.year] = r
        else:
            own[r.credit_code, r.year, r.field] = r
    owner = {f.key: f.source for f in data.fields}
    tail = {}

    def line_tail(r):                                   # the columns after the value, once per row read
        t = tail.get(r.id)
        if t is None:
            t = tail[r.id] = (r.kind, text_of(r.import_id), text_of(r.declaration_id), text_of(r.public_list_id),
                              text_of(r.user_id), _iso(r.at) or "", r.id)
        return t
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["credit_code", "year", "field", "value", "source", "kind", "import_id", "declaration_id",
                    "public_list_id", "user_id", "at", "provenance_id"])
        out = []
        for code, year, values in records:
            wr = whole.get((code, year))
            for k in sorted(values):
                v = values[k]
                if v is None:
                    continue
                r = own.get((code, year, k))
                if r is None or (wr is not None and wr.id > r.id):
                    r = wr
                if r is None:
                    continue
                src = r.source or owner.get(k, "") if r.field == ALL_FIELDS else r.source
                out.append((code, year, k, text_of(v), src, *line_tail(r)))
        w.writerows(out)


def from_run_file(content: bytes, code, year=None) -> dict:
    """{(year, field): row dict} of one enterprise from a run's provenance.csv (the ids as
    numbers, None when empty)."""
    out = {}
    text = content.decode("utf-8")
    header, _, body = text.partition("\n")
    prefix = f"{code},"
    # the file is sorted by credit code and a code never needs quoting: keep its lines only
    # before parsing (a zone's file holds every value of every enterprise-year)
    mine = [line for line in body.split("\n") if line.startswith(prefix)]
    for r in csv.DictReader(io.StringIO("\n".join([header] + mine))):
        if r["credit_code"] == code and (year is None or int(r["year"]) == year):
            for k in ("import_id", "declaration_id", "public_list_id", "user_id", "provenance_id"):
                r[k] = int(r[k]) if r[k] else None
            r["year"] = int(r["year"])
            out[r["year"], r["field"]] = r
    return out


def run_provenance(s, run, code, data) -> dict:
    """What a run read for one enterprise in its year: {field: description}, from the
    provenance file stored with the run (runs made before it have none: {})."""
    from .models import Import, RunFile, User
    f = s.get(RunFile, (run.id, "provenance.csv"))
    if f is None:
        return {}
    rows = from_run_file(f.content, code, run.year)
    users = dict(s.execute(select(User.id, User.username)).all())
    imports = dict(s.execute(select(Import.id, Import.filename).where(
        Import.id.in_({r["import_id"] for r in rows.values() if r["import_id"]}))).all())
    out = {}
    for (_, field), r in sorted(rows.items()):
        p = Provenance(id=r["provenance_id"], credit_code=code, year=r["year"], field=field, value=r["value"],
                       source=r["source"], kind=r["kind"], import_id=r["import_id"],
                       declaration_id=r["declaration_id"], public_list_id=r["public_list_id"], user_id=r["user_id"])
        d = describe(p, data, users, imports)
        d["at"] = r["at"]
        out[field] = d
    return out


def merge_value(data, old, old_source, new, new_source):
    """Whether a value `new` from `new_source` replaces the stored `old` (given by
    `old_source`), and whether the two sources conflict: (apply, conflict)."""
    if old is None or old_source in (None, "", new_source) or _same(old, new):
        return True, False
    return data.precedence(new_source) <= data.precedence(old_source), True


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


def open_conflict(s, code, year, field, kept_value, kept_source, kept_prov, other_value, other_source, other_prov):
    c = Conflict(credit_code=code, year=year, field=field, kept_value=text_of(kept_value), kept_source=kept_source,
                 kept_provenance_id=kept_prov, other_value=text_of(other_value), other_source=other_source,
                 other_provenance_id=other_prov, status="open", resolution="")
    s.add(c)
    return c


def resolve_open(s, user, code, year, field, resolution):
    """Close the open conflicts of one field (a correction decided it)."""
    for c in s.scalars(select(Conflict).where(Conflict.credit_code == code, Conflict.year == year,
                                              Conflict.field == field, Conflict.status == "open")):
        c.status, c.resolved_by, c.resolved_at, c.resolution = "resolved", user.id if user else None, utcnow(), resolution
        audit(s, user, "conflict.resolve", f"{code}/{year}", conflict=c.id, field=field, resolution=resolution)


def conflict_dict(c: Conflict, data) -> dict:
    f = data.field(c.field)
    return {"id": c.id, "credit_code": c.credit_code, "year": c.year, "field": c.field,
            "field_zh": f.label if f else c.field, "kept_value": c.kept_value, "kept_source": c.kept_source,
            "kept_source_zh": data.source_name(c.kept_source), "other_value": c.other_value,
            "other_source": c.other_source, "other_source_zh": data.source_name(c.other_source),
            "kept_provenance_id": c.kept_provenance_id, "other_provenance_id": c.other_provenance_id,
            "status": c.status, "created_at": _iso(c.created_at), "resolved_at": _iso(c.resolved_at),
            "resolution": c.resolution}


def apply_value(s, rec, field, value, source, kind, user, **ids) -> bool:
    """Give one field of a stored record a value from `source` (a published list, say), with
    its provenance; a different value from another source opens a conflict and the
    precedence decides which is kept. Returns whether a conflict was opened."""
    from .shape import data as dictionary
    data = dictionary(s)
    held = current(s, [(rec.credit_code, rec.year)], [field], data).get((rec.credit_code, rec.year, field))
    old = rec.get(field)
    apply, clash = merge_value(data, old, held.source if held else None, value, source)
    p = Provenance(credit_code=rec.credit_code, year=rec.year, field=field, value=text_of(value), source=source,
                   kind=kind, user_id=user.id if user else None, applied=apply, at=utcnow(), **ids)
    s.add(p)
    if apply:
        rec.set(field, value)
        rec.updated_at = utcnow()
    s.flush()
    if clash:
        if apply:
            open_conflict(s, rec.credit_code, rec.year, field, value, source, p.id, old, held.source, held.id)
        else:
            open_conflict(s, rec.credit_code, rec.year, field, old, held.source, held.id, value, source, p.id)
        audit(s, user, "conflict.open", f"{rec.credit_code}/{rec.year}", field=field, kept=source if apply else held.source)
    return clash


def without_user(d: dict) -> dict:
    """A provenance description without the staff member who entered it (what an enterprise sees)."""
    return {k: v for k, v in d.items() if k not in ("user", "user_id")}


def indicator_fields(s, run) -> dict:
    """Indicator clause id -> the field it reads, in the policy version the run used."""
    from . import policies
    from .models import PolicyVersion
    row = s.get(PolicyVersion, run.policy_id) if run.policy_id else None
    if row is None:
        return {}
    pv = policies.load_files(policies.files_of(row))
    return {c.id: c.body.get("key") for c in pv.clauses_for("indicators", run.year) if c.body.get("key")}


def attach_to_score(s, run, detail, data, staff=True):
    """A score's figures with where they came from: `provenance` (field -> what the run read)
    and, on each indicator, the field it reads and that field's provenance. Who entered a
    value is for staff only (`staff`)."""
    prov = run_provenance(s, run, detail["credit_code"], data)
    if not staff:
        prov = {k: without_user(v) for k, v in prov.items()}
    fields = indicator_fields(s, run)
    for row in detail.get("indicators", []):
        row["field"] = fields.get(row["clause"])
        row["provenance"] = prov.get(row["field"])
    detail["provenance"] = prov
    detail["provenance_file"] = f"/api/runs/{run.id}/files/provenance.csv" if prov and staff else None
    return detail
