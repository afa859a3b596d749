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
import json
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import select, tuple_

from rules.output import json_text

from .models import Conflict, Provenance, utcnow
from .store import audit, bulk_insert, fetch_columns, float_json, text_of

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


_CSV_COLUMNS = ["credit_code", "year", "field", "value", "source", "kind", "import_id", "declaration_id",
                "public_list_id", "user_id", "at", "provenance_id"]       # a run's provenance.csv
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


WHOLE = ("id", "source", "kind", "import_id", "declaration_id", "public_list_id", "user_id", "at")
_IDS = ("import_id", "declaration_id", "public_list_id", "user_id")
META = b"innopoints.provenance"        # the compact file's fields: [[key, kind, owner source], ...]


def _newest_rows(s):
    """The newest applied provenance row of each (credit code, year, field) as two frames:
    whole-record rows (`*`) and field rows, in id order, `at` as ISO text ('' for none)."""
    import datetime as dt

    import pandas as pd
    from sqlalchemy import Text, cast
    cols = ("id", "credit_code", "year", "field", "source", "kind", *_IDS)
    t = Provenance.__table__
    # the time as the database's text, made ISO once per distinct time (one per write), not
    # a datetime per row
    q = select(*[t.c[k] for k in cols], cast(t.c.at, Text)).where(t.c.applied.is_(True)).order_by(t.c.id)
    types = [pa.int64(), pa.string(), pa.int64(), pa.string(), pa.string(), pa.string(), *[pa.int64()] * 4, pa.string()]
    prov = pa.table(fetch_columns(s, q, types), names=[*cols, "at"]).to_pandas()
    newest = prov.drop_duplicates(["credit_code", "year", "field"], keep="last")      # in id order: last wins
    del prov
    codes, uniques = pd.factorize(newest["at"], use_na_sentinel=True)
    texts = np.array([_iso(dt.datetime.fromisoformat(x)) if x else "" for x in uniques] + [""], dtype=object)
    newest = newest.assign(at=texts[codes])
    whole = newest[newest["field"] == ALL_FIELDS].reset_index(drop=True)
    own = newest[newest["field"] != ALL_FIELDS].reset_index(drop=True)
    return whole, own


def _ids(frame, k) -> pa.Array:
    import pandas as pd
    return pa.array(pd.to_numeric(frame[k], errors="coerce").to_numpy(dtype="float64"), from_pandas=True).cast(pa.int64())


def snapshot_provenance(s, path, table: pa.Table, data) -> pa.Table:
    """Write where every value a run's snapshot read came from to `path` (Parquet, zstd;
    served as provenance.csv, see `run_provenance_file`), compactly: one row per record of
    the snapshot (`table`, store._records_table, whose values it keeps), with its
    enterprise-year's newest whole-record row (`w_*`: an import of the whole record) and, in
    `own`, the fields whose own newest row is newer than it (corrections, declarations,
    lists, merged files: the few values whose source differs from the record's import).
    `expand` makes the old one-row-per-value table of it. Returns the compact table."""
    import pandas as pd
    whole, own = _newest_rows(s)
    n = table.num_rows
    recs = pd.DataFrame({"credit_code": table["credit_code"].to_numpy(zero_copy_only=False),
                         "year": table["year"].to_numpy(zero_copy_only=False).astype(np.int64),
                         "r": np.arange(n)})
    w_pos = np.full(n, -1, dtype=np.int64)
    if len(whole):
        hit = recs.merge(whole[["credit_code", "year"]].astype({"year": np.int64}).assign(w=np.arange(len(whole))),
                         on=["credit_code", "year"], how="inner")
        w_pos[hit["r"].to_numpy()] = hit["w"].to_numpy()
    wmask = pa.array(w_pos < 0)
    wtake = pa.array(np.maximum(w_pos, 0))

    def w_col(values: pa.Array) -> pa.Array:
        if not len(whole):
            return pa.nulls(n, values.type)
        return pc.if_else(wmask, pa.scalar(None, values.type), values.take(wtake))
    wcols = {"w_id": w_col(_ids(whole, "id"))}
    for k in ("source", "kind", "at"):
        wcols[f"w_{k}"] = w_col(pa.array(whole[k].to_numpy(dtype=object), pa.string()))
    for k in _IDS:
        wcols[f"w_{k}"] = w_col(_ids(whole, k))
    # the field rows that win over their record's whole-record row, by record row
    spec = [[f.key, f.kind, f.source or ""] for f in data.fields if f.key in table.column_names]
    keys = {k for k, _, _ in spec}
    own = own[own["field"].isin(keys)]
    if len(own):
        hit = own.astype({"year": np.int64}).merge(recs, on=["credit_code", "year"], how="inner")
        w_id = wcols["w_id"].to_numpy(zero_copy_only=False)       # float with NaN for none
        wid = w_id[hit["r"].to_numpy()]
        hit = hit[np.isnan(wid) | (hit["id"].to_numpy(dtype="float64") > wid)].sort_values(["r", "field"], kind="stable")
    else:
        hit = own.assign(r=np.zeros(0, np.int64))
    r = hit["r"].to_numpy(dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))]).astype(np.int32)
    struct = pa.StructArray.from_arrays(
        [pa.array(hit["field"].to_numpy(dtype=object), pa.string()), _ids(hit, "id"),
         pa.array(hit["source"].to_numpy(dtype=object), pa.string()),
         pa.array(hit["kind"].to_numpy(dtype=object), pa.string()),
         pa.array(hit["at"].to_numpy(dtype=object), pa.string()), *[_ids(hit, k) for k in _IDS]],
        names=["field", "id", "source", "kind", "at", *_IDS])
    out = pa.table({"credit_code": table["credit_code"], "year": table["year"],
                    **{k: table[k] for k, _, _ in spec}, **wcols,
                    "own": pa.ListArray.from_arrays(pa.array(offsets), struct)})
    out = out.replace_schema_metadata({META: json.dumps(spec, ensure_ascii=False)})
    import pyarrow.parquet as pq
    pq.write_table(out, str(path), compression="zstd")
    return out


def value_text(col: pa.Array) -> pa.Array:
    """A stored value as provenance shows it: floats as Python writes them, else arrow's text."""
    return float_json(col) if pa.types.is_floating(col.type) else pc.cast(col, pa.string())


def expand(compact: pa.Table) -> pa.Table:
    """The compact provenance of a run (`snapshot_provenance`) as one row per value read, in
    the snapshot's order (by enterprise and year, fields by key): its columns are
    provenance.csv's. A value's row is its field's own row where that is newer than the
    record's whole-record row, else the whole-record row (whose source, when the import
    named none, is the field's own); a value with neither has no row."""
    spec = json.loads(compact.schema.metadata[META])
    owner_of = {k: o for k, _, o in spec}
    keys = sorted(owner_of)
    n = compact.num_rows
    row_parts, field_parts, value_parts = [], [], []
    for j, k in enumerate(keys):
        col = compact[k].combine_chunks()
        present = np.flatnonzero(col.is_valid().to_numpy(zero_copy_only=False))
        row_parts.append(present)
        field_parts.append(np.full(len(present), j, dtype=np.int64))
        value_parts.append(value_text(col).take(pa.array(present)))
    rows = np.concatenate(row_parts) if row_parts else np.zeros(0, np.int64)
    fields = np.concatenate(field_parts) if field_parts else np.zeros(0, np.int64)
    values = pa.concat_arrays(value_parts) if value_parts else pa.array([], pa.string())
    del row_parts, field_parts, value_parts
    combined = rows * max(len(keys), 1) + fields
    order = np.argsort(combined, kind="stable")            # by record row, then field key
    combined, rows, fields, values = combined[order], rows[order], fields[order], values.take(pa.array(order))
    del order
    own = compact["own"].combine_chunks()
    flat = own.flatten()
    o_row = pc.list_parent_indices(own).to_numpy(zero_copy_only=False).astype(np.int64)
    kid = {k: j for j, k in enumerate(keys)}
    o_field = np.array([kid[f] for f in flat.field("field").to_pylist()], dtype=np.int64)
    o_pos = np.full(len(rows), -1, dtype=np.int64)
    if len(o_row):
        okey = o_row * max(len(keys), 1) + o_field
        at = np.searchsorted(combined, okey)
        hit = (at < len(combined)) & (combined[np.minimum(at, len(combined) - 1)] == okey)
        o_pos[at[hit]] = np.flatnonzero(hit)
    w_valid = compact["w_id"].combine_chunks().is_valid().to_numpy(zero_copy_only=False)
    use_w = w_valid[rows] & (o_pos < 0)
    keep = use_w | (o_pos >= 0)
    rows, fields, values, use_w, o_pos = rows[keep], fields[keep], values.filter(pa.array(keep)), use_w[keep], o_pos[keep]
    # each value's row: a record row's whole-record columns, or one of the field rows after them
    at = pa.array(np.where(use_w, rows, n + o_pos))

    def taken(name, own_name=None):
        return pa.concat_arrays([compact[f"w_{name}"].combine_chunks(),
                                 flat.field(own_name or name).cast(compact[f"w_{name}"].type)]).take(at)
    owner = pa.array([owner_of[k] for k in keys], pa.string())
    field_idx = pa.array(fields)
    src = taken("source")
    blank = pc.and_(pa.array(use_w), pc.equal(pc.fill_null(src, ""), ""))
    return pa.table({"credit_code": pa.array(compact["credit_code"].combine_chunks().take(pa.array(rows)), pa.string()),
                     "year": compact["year"].combine_chunks().take(pa.array(rows)).cast(pa.int64()),
                     "field": pa.array(keys, pa.string()).take(field_idx) if keys else pa.array([], pa.string()),
                     "value": values, "source": pc.if_else(blank, owner.take(field_idx), pc.fill_null(src, "")),
                     "kind": taken("kind"), **{k: taken(k) for k in _IDS},
                     "at": pc.fill_null(taken("at"), ""), "provenance_id": taken("id")})


def _cells(values: list) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def per_result(compact: pa.Table, year) -> dict:
    """{credit code: text} of a run's provenance for its year's results: for each record of
    `year` in the compact table, the JSON [whole-record row, field rows, values]: each row as
    [provenance id, source, kind, import id, declaration id, list id, user id, time] (the
    field rows {field: row}; null for none), the values {field: text} as provenance.csv has
    them, built column-wise here so that a lookup only parses one JSON text (`_stored_rows`).
    "{}" where the run read no provenance for the record."""
    if not compact.num_rows:
        return {}
    t = compact.filter(pc.equal(compact["year"], year))
    if not t.num_rows:
        return {}

    def num(k):
        return pc.fill_null(pc.cast(t[k].combine_chunks(), pa.string()), "null")

    def txt(k):
        return pc.fill_null(json_text(t[k].combine_chunks()), "null")
    whole = pc.binary_join_element_wise("[", num("w_id"), ",", txt("w_source"), ",", txt("w_kind"), ",",
                                        *[x for k in _IDS for x in (num(f"w_{k}"), ",")], txt("w_at"), "]", "")
    has_w = t["w_id"].combine_chunks().is_valid()
    whole = pc.if_else(has_w, whole, "null")
    own = t["own"].combine_chunks()
    lengths = pc.list_value_length(own).to_numpy(zero_copy_only=False)
    own_text = np.full(t.num_rows, "null", dtype=object)
    if lengths.any():
        rowsof = own.to_pylist()
        for i in np.flatnonzero(lengths):
            own_text[i] = _cells({o["field"]: [o[k] for k in WHOLE] for o in rowsof[i]})
    keys = sorted(k for k, _, _ in json.loads(compact.schema.metadata[META]))
    # each present value as "key":"text" (null where missing, left out of the object)
    parts = [pc.binary_join_element_wise(json.dumps(k, ensure_ascii=False) + ":",
                                         json_text(value_text(t[k].combine_chunks())), "") for k in keys]
    values = pc.binary_join_element_wise(*parts, ",", null_handling="skip") if parts else pa.array([""] * t.num_rows)
    line = pc.binary_join_element_wise("[", whole, ",", pa.array(own_text, pa.string()), ",{", values, "}]", "")
    empty = pc.and_(pc.invert(has_w), pc.equal(pa.array(lengths), 0))
    line = pc.if_else(empty, "{}", line)
    return dict(zip(t["credit_code"].to_pylist(), line.to_pylist()))


def csv_as_python_writes(table: pa.Table, free_text=("value",)) -> bytes:
    """A table as CSV the way Python's csv module writes it (a cell is quoted only when it
    holds a comma, a quote or a line break): column-wise when no cell needs quoting. Only
    the `free_text` columns may hold such characters (the others are codes, keys, numbers
    and times)."""
    head = io.StringIO(newline="")
    csv.writer(head, lineterminator="\n").writerow(table.column_names)
    head = head.getvalue().encode("utf-8")
    special = {k for k in free_text if pc.any(pc.match_substring_regex(table[k], '[,"\r\n]')).as_py()}
    if special:                 # quoted column-wise, as csv quotes: "a ""b"", c"
        cols = []
        for k in table.column_names:
            c = pc.fill_null(pc.cast(table[k], pa.string()), "")
            if k in special:
                c = pc.if_else(pc.match_substring_regex(c, '[,"\r\n]'),
                               pc.binary_join_element_wise('"', pc.replace_substring(c, '"', '""'), '"', ""), c)
            cols.append(c)
        lines = pc.binary_join_element_wise(*cols, ",")
        return head + "".join(x + "\n" for x in lines.to_pylist()).encode("utf-8")
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return head + sink.getvalue().to_pybytes()


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


ROW_KEYS = ("value", "source", "kind", "import_id", "declaration_id", "public_list_id", "user_id", "at",
            "provenance_id")


def _stored_rows(text: str, code, year, spec=None) -> dict:
    """A result's provenance text as from_run_file's rows: the compact form (`per_result`;
    `spec` is the run's fields, `run_fields`) or, for runs stored before it, a JSON object
    of every value's row."""
    out = {}
    if text.startswith("["):
        whole, own, values = json.loads(text)
        own = own or {}
        owners = {k: o for k, _, o in spec}
        for field in sorted(values):
            cells = own.get(field)
            if cells is None and whole is None:
                continue
            r = dict(zip(WHOLE, cells if cells is not None else whole))
            if cells is None and not r["source"]:
                r["source"] = owners[field]          # an import that named no source: the field's own
            r["provenance_id"] = r.pop("id")
            r.update(value=values[field], source=r["source"] or "", at=r["at"] or "",
                     credit_code=code, year=year, field=field)
            out[year, field] = r
        return out
    for field, cells in json.loads(text).items():
        r = dict(zip(ROW_KEYS, cells))
        for k in ("import_id", "declaration_id", "public_list_id", "user_id", "provenance_id"):
            r[k] = int(r[k]) if r[k] else None
        r.update(credit_code=code, year=year, field=field)
        out[year, field] = r
    return out


_RUN_FIELDS: dict = {}


def run_fields(s, run_id):
    """The fields a run's compact provenance names ([[key, kind, owner source], ...]), None
    for a run stored before it (read once per run: a run's files never change)."""
    from .models import Run, RunFile
    from .runs import PROVENANCE_FIELDS
    run = s.get(Run, run_id)
    # a run id is unique in one database only while it lives: a database made again (tests
    # on PostgreSQL, a demo reset) numbers its runs from 1 again, so the key has its end too
    key = (str(s.get_bind().url), run_id, run.finished_at if run is not None else None)
    if key not in _RUN_FIELDS:
        f = s.get(RunFile, (run_id, PROVENANCE_FIELDS))
        if f is None:
            return None
        if len(_RUN_FIELDS) > 1000:
            _RUN_FIELDS.clear()
        _RUN_FIELDS[key] = json.loads(f.content)
    return _RUN_FIELDS[key]


def run_provenance_file(s, run_id, gzipped=False) -> bytes | None:
    """A run's provenance.csv, as CSV bytes or, with `gzipped`, as gzip bytes: made from the
    compact Parquet file stored with the run (`expand`); runs stored before kept every
    value's row in Parquet, or the CSV itself."""
    import gzip
    import pyarrow.parquet as pq
    from .models import RunFile
    from .runs import PROVENANCE_COMPACT, PROVENANCE_FILE
    f = s.get(RunFile, (run_id, PROVENANCE_COMPACT))
    if f is not None:
        content = csv_as_python_writes(expand(pq.read_table(io.BytesIO(f.content))))
    elif (f := s.get(RunFile, (run_id, PROVENANCE_FILE))) is not None:
        content = csv_as_python_writes(pq.read_table(io.BytesIO(f.content)))
    else:
        f = s.get(RunFile, (run_id, "provenance.csv"))
        if f is None:
            return None
        content = f.content
    return gzip.compress(content, 1) if gzipped else content


_IMPORT_NAMES: dict = {}


def _import_names(s, ids, run) -> dict:
    """Import id -> the uploaded file's name, for the imports a run read (an import row never
    changes while its database lives). Kept per run and its end, as `run_fields`: a database
    made again numbers its imports from 1 again, and an earlier database's names must not
    answer for it."""
    from .models import Import
    base = (str(s.get_bind().url), run.id, run.finished_at)
    missing = {i for i in ids if (*base, i) not in _IMPORT_NAMES}
    if missing:
        if len(_IMPORT_NAMES) > 10_000:
            _IMPORT_NAMES.clear()
        for i, name in s.execute(select(Import.id, Import.filename).where(Import.id.in_(missing))):
            _IMPORT_NAMES[(*base, i)] = name
    return {i: _IMPORT_NAMES[(*base, i)] for i in ids if (*base, i) in _IMPORT_NAMES}


def stored_provenance(s, run, result) -> str | None:
    """A result's provenance text (`query.unpacked`), or None for no result or none stored."""
    if result is None:
        return None
    from .query import PROVENANCE_DICTIONARY, unpacked
    return unpacked(s, run, result.provenance_packed, PROVENANCE_DICTIONARY, result.provenance)


def run_provenance(s, run, code, data) -> dict:
    """What a run read for one enterprise in its year: {field: description}: from its result
    (stored with the run), else from the run's provenance file (runs stored before results
    carried it), else {} (runs made before provenance was kept)."""
    from .models import RunFile, User
    from .runs import PROVENANCE_COMPACT, PROVENANCE_FILE
    from .query import result_of
    result = result_of(s, run, code)
    stored = stored_provenance(s, run, result)
    if stored is None and (s.get(RunFile, (run.id, PROVENANCE_COMPACT)) is not None
                           or s.get(RunFile, (run.id, PROVENANCE_FILE)) is not None):
        return {}                  # stored with the column: a null is an enterprise not in the run
    if stored is not None:
        rows = _stored_rows(stored, code, run.year, run_fields(s, run.id) if stored.startswith("[") else None)
    else:
        content = run_provenance_file(s, run.id)
        if content is None:
            return {}
        rows = from_run_file(content, code, run.year)
    user_ids = {r["user_id"] for r in rows.values() if r["user_id"]}
    import_ids = {r["import_id"] for r in rows.values() if r["import_id"]}
    users = dict(s.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all()) if user_ids else {}
    imports = _import_names(s, import_ids, run)
    out = {}
    for (_, field), r in sorted(rows.items()):
        p = SimpleNamespace(id=r["provenance_id"], field=field, value=r["value"], source=r["source"], kind=r["kind"],
                            import_id=r["import_id"], declaration_id=r["declaration_id"],
                            public_list_id=r["public_list_id"], user_id=r["user_id"], at=None)
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


_INDICATOR_FIELDS: dict = {}


def indicator_fields(s, run) -> dict:
    """Indicator clause id -> the field it reads, in the policy version the run used (read
    once per version and year: a run's version never changes, its content is its hash)."""
    from . import policies
    key = (run.policy_sha256, run.year)
    if key not in _INDICATOR_FIELDS:
        pv = policies.of_run(s, run)
        if pv is None:
            return {}
        _INDICATOR_FIELDS[key] = {c.id: c.body.get("key") for c in pv.clauses_for("indicators", run.year)
                                  if c.body.get("key")}
    return _INDICATOR_FIELDS[key]


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
