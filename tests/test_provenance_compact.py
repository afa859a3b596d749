"""A run's provenance stored compactly (one row per enterprise-year and the few values whose
source differs from the record's import) says exactly what the one-row-per-value form said:
provenance.csv byte for byte, and each enterprise's provenance as a lookup shows it, on a
data set with merged department files, conflicts (applied and not), corrections, a record
re-imported whole after a merge, and an enterprise-year made by a merge alone."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sqlalchemy import select

from service.models import Provenance
from service.provenance import ALL_FIELDS, COLUMNS, _iso
from service.store import float_json
from tests.conftest import GOLDEN
from tests.test_departments import add_department_users, rows_of, tax_file, write_rows


def per_value_reference(s, table: pa.Table, data):
    """The one-row-per-value table as runs before the compact form stored it (0.5.0's
    snapshot_provenance, verbatim but for the file it wrote)."""
    import pandas as pd
    cols = ("id",) + COLUMNS
    prov = pd.DataFrame(s.execute(select(*[Provenance.__table__.c[k] for k in cols])
                                  .where(Provenance.applied.is_(True)).order_by(Provenance.id)).all(),
                        columns=list(cols))
    prov["at"] = [_iso(x) or "" for x in prov["at"]]
    newest = prov.drop_duplicates(["credit_code", "year", "field"], keep="last")      # in id order: last wins
    whole = newest[newest["field"] == ALL_FIELDS].reset_index(drop=True)
    own = newest[newest["field"] != ALL_FIELDS].reset_index(drop=True)
    codes = table["credit_code"].to_numpy(zero_copy_only=False).astype(object)
    years = table["year"].to_numpy(zero_copy_only=False).astype(np.int64)
    recs = pd.DataFrame({"credit_code": codes, "year": years})
    # each record row's whole-record provenance (its position in `whole`, -1 for none)
    w_pos = recs.merge(whole[["credit_code", "year"]].assign(w=np.arange(len(whole))), how="left",
                       on=["credit_code", "year"])["w"].fillna(-1).to_numpy(dtype=np.int64)
    keys = sorted(f.key for f in data.fields if f.key in table.column_names)
    row_parts, field_parts, value_parts = [], [], []
    for j, k in enumerate(keys):
        col = table[k].combine_chunks()
        present = np.flatnonzero(col.is_valid().to_numpy(zero_copy_only=False))
        row_parts.append(present)
        field_parts.append(np.full(len(present), j, dtype=np.int32))
        text = float_json(col) if pa.types.is_floating(col.type) else pc.cast(col, pa.string())
        value_parts.append(text.take(pa.array(present)))
    rows = np.concatenate(row_parts) if row_parts else np.zeros(0, np.int64)
    fields = np.concatenate(field_parts) if field_parts else np.zeros(0, np.int32)
    values = pa.concat_arrays(value_parts) if value_parts else pa.array([], pa.string())
    order = np.lexsort((fields, rows))                      # by record row, then field key
    rows, fields, values = rows[order], fields[order], values.take(pa.array(order))
    # the field's own newest row, where it has one (few: corrections, declarations, lists)
    o_pos = np.full(len(rows), -1, dtype=np.int64)
    if len(own):
        kid = {k: j for j, k in enumerate(keys)}
        own_key = pd.DataFrame({"credit_code": own["credit_code"], "year": own["year"].astype(np.int64),
                                "f": own["field"].map(kid), "o": np.arange(len(own))}).dropna(subset=["f"])
        val_key = pd.DataFrame({"credit_code": codes[rows], "year": years[rows], "f": fields.astype(float),
                                "i": np.arange(len(rows))})
        hit = val_key.merge(own_key.astype({"f": float}), on=["credit_code", "year", "f"], how="inner")
        o_pos[hit["i"].to_numpy()] = hit["o"].to_numpy()
    w = w_pos[rows]
    w_id = np.where(w >= 0, whole["id"].to_numpy()[np.maximum(w, 0)] if len(whole) else -1, -1)
    o_id = np.where(o_pos >= 0, own["id"].to_numpy()[np.maximum(o_pos, 0)] if len(own) else -1, -1)
    use_w = (w >= 0) & ((o_pos < 0) | (w_id > o_id))
    keep = use_w | (o_pos >= 0)
    rows, fields, values, use_w = rows[keep], fields[keep], values.filter(pa.array(keep)), use_w[keep]
    # every value's provenance row, as a position in whole-record rows then field rows
    at = np.where(use_w, w[keep], len(whole) + o_pos[keep])
    both = pd.concat([whole, own], ignore_index=True)
    taken = {k: pa.array(both[k].to_numpy(dtype=object), pa.string()).take(pa.array(at))
             for k in ("source", "kind", "at")}
    ids = {k: pa.array(pd.to_numeric(both[k], errors="coerce").to_numpy(dtype="float64"), from_pandas=True)
           .cast(pa.int64()).take(pa.array(at)) for k in ("import_id", "declaration_id", "public_list_id", "user_id", "id")}
    owner = pa.array([next(f.source for f in data.fields if f.key == k) or "" for k in keys], pa.string())
    field_idx = pa.array(fields)
    # a whole-record row without a source: the field's own source
    blank = pc.and_(pa.array(use_w), pc.equal(pc.fill_null(taken["source"], ""), ""))
    source = pc.if_else(blank, owner.take(field_idx), pc.fill_null(taken["source"], ""))
    out = pa.table({"credit_code": pa.array(codes[rows], pa.string()), "year": pa.array(years[rows], pa.int64()),
                    "field": pa.array(keys, pa.string()).take(field_idx) if keys else pa.array([], pa.string()),
                    "value": values, "source": source, "kind": taken["kind"],
                    **{k: ids[k] for k in ("import_id", "declaration_id", "public_list_id", "user_id")},
                    "at": pc.fill_null(taken["at"], ""), "provenance_id": ids["id"]})
    return out


def _upload_as(p, path, source):
    from werkzeug.test import EnvironBuilder
    with open(path, "rb") as f:
        env = EnvironBuilder(path="/api/imports", method="POST", headers=p.h("officer"),
                             data={"kind": "records", "source": source, "file": (f, path.name)}).get_environ()
        r = p.client.open(env)
    assert r.status_code == 201, r.get_json()


@pytest.fixture
def dept(park):
    """Golden records imported and a tax-bureau user, on SQLite and PostgreSQL."""
    park.import_golden()
    add_department_users(park, tax="tax")
    return park


def test_compact_provenance_expands_to_every_values_row(dept, tmp_path):
    from service import db, provenance, shape
    from service.models import Conflict, Record
    from service.store import _records_table, correct_field, get_record
    p = dept
    golden = rows_of(GOLDEN / "records.csv")
    g22 = [r for r in golden if r["year"] == "2022"]
    a, b, c = g22[0]["credit_code"], g22[1]["credit_code"], g22[2]["credit_code"]
    # a: tax's figures merged over the import; then the enterprise's own report of revenue,
    # which conflicts and loses (kept as an unapplied row)
    assert p.upload(tax_file(tmp_path, [{"credit_code": a, "year": "2022", "revenue": "800", "rd_tax_deduction": "3"},
                                        {"credit_code": b, "year": "2022", "revenue": "700", "rd_tax_deduction": "4"}]),
                    "records", role="tax").status_code == 201
    _upload_as(p, write_rows(tmp_path / "self.csv", [{"credit_code": a, "year": "2022", "revenue": "950"}]),
               "self_report")
    # b: imported whole again after the merge (the whole record is newer than its field rows)
    full = [r for r in golden if r["credit_code"] == b and r["year"] == "2022"]
    assert p.upload(write_rows(tmp_path / "b.csv", full), "records").status_code == 201
    # c: a year only a merged file made (no whole-record row), without some optional columns
    new = {k: v for k, v in next(r for r in g22 if r["credit_code"] == c).items()
           if k not in ("export_value", "venture_capital", "rd_expense_growth")}
    new["year"] = "2018"
    _upload_as(p, write_rows(tmp_path / "c.csv", [new]), "self_report")
    with p.app.app_context():
        s = db.session()
        from service.auth import create_user
        officer = create_user(s, "corrector", "corrector-password", "officer")
        correct_field(s, get_record(s, a, 2022), "standards", "7", officer, reason="核实")
        correct_field(s, get_record(s, b, 2021), "revenue", "123.5", officer, reason="核实")
        s.commit()
        assert s.query(Conflict).count() >= 1
        assert s.query(Provenance).filter(Provenance.applied.is_(False)).count() >= 1
        assert s.query(Record).filter(Record.credit_code == c, Record.year == 2018).count() == 1
        data = shape.data(s)
        table = _records_table(s, data)
        want = per_value_reference(s, table, data)
        compact = provenance.snapshot_provenance(s, tmp_path / "compact.parquet", table, data)
        got = provenance.expand(compact)
        assert got.schema == want.schema
        assert got.equals(want)
        assert sum(len(x) for x in compact["own"].to_pylist()) > 0
        assert provenance.csv_as_python_writes(got) == provenance.csv_as_python_writes(want)
        # the sources differ from the import's where a department, a correction or a merge gave them
        rows = want.to_pylist()
        by = {(r["credit_code"], r["year"], r["field"]): r for r in rows}
        assert by[a, 2022, "revenue"]["source"] == "tax" and by[a, 2022, "revenue"]["value"] == "800.0"
        assert by[a, 2022, "standards"]["kind"] == "correction"
        assert by[b, 2022, "revenue"]["kind"] == "import" and by[b, 2022, "revenue"]["source"] == "tax"
        assert by[b, 2021, "revenue"]["kind"] == "correction"
        assert (c, 2018, "export_value") not in by and by[c, 2018, "revenue"]["source"] == "self_report"
        # each record's text for the lookups, as a run stores it, reads back as the file's rows
        spec = [[f.key, f.kind, f.source or ""] for f in data.fields]
        content = provenance.csv_as_python_writes(want)
        for year in (2022, 2021, 2018):
            texts_of = provenance.per_result(compact, year)
            codes = sorted({r["credit_code"] for r in rows if r["year"] == year})
            assert set(codes) <= set(texts_of)
            for code in codes:
                assert provenance._stored_rows(texts_of[code], code, year, spec) == \
                    provenance.from_run_file(content, code, year), (code, year)
