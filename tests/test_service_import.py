"""Imports (数据采集): a corpus of bad files imports nothing and names every bad cell; a good
file replaces what it names atomically and is recorded; templates round-trip."""
import csv
import io

import openpyxl
import pytest

from rules.fields import header_with_unit
from rules.policy import load_policy

RECORD_FIELDS = load_policy().data.record_fields
from tests.conftest import GOLDEN


def rows_of(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path, rows, header=None, encoding="utf-8"):
    header = header or list(rows[0])
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def state(p):
    """A checksum of everything stored (records and contracts as a run would read them)."""
    import tempfile

    from service import db
    from service.store import snapshot
    with p.app.app_context(), tempfile.TemporaryDirectory() as tmp:
        return snapshot(db.session(), tmp)["sha256"]


def first_of_year(rows, year="2022"):
    return next(i for i, r in enumerate(rows) if r["year"] == year)


# each: (description, change to the golden rows -> list of (row index, column) expected bad)
def _set(col, value, which=None):
    def change(rows):
        i = first_of_year(rows) if which is None else which
        rows[i][col] = value
        return [(i + 2, col)]
    return change


def _dup(rows):
    rows.append(dict(rows[5]))
    return [(len(rows) + 1, "year")]


CASES = {
    "wrong check character": _set("credit_code", "91410700WH2NFHNEPA", 0),
    "unknown stage": _set("stage_prev1", "幼年期"),
    "unknown rating": _set("env_credit_rating", "优秀"),
    "text in a number column": _set("rd_expense", "一千万"),
    "negative count": _set("invention_grants", "-2"),
    "negative amount": _set("revenue", "-100"),
    "ratio over 100": _set("rd_intensity", "130"),
    "date in the future": _set("registered_on", "2999-01-01"),
    "duplicate enterprise-year": _dup,
    "missing revenue": _set("revenue", ""),
    "missing registration date": _set("registered_on", ""),
    "not a yes/no": _set("credit_blacklisted", "也许"),
    "February 30": _set("registered_on", "2010-02-30"),
    "a count too large to store": _set("graduates_hired", "99999999999"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_value_imports_nothing_and_is_named(lite_park, tmp_path, case):
    p = lite_park
    p.import_golden()
    before = state(p)
    rows = rows_of(GOLDEN / "records.csv")
    expected = CASES[case](rows)
    r = p.upload(write_rows(tmp_path / "bad.csv", rows), "records")
    assert r.status_code == 422, r.get_json()
    body = r.get_json()
    cells = {(c["row"], c["column"]) for c in body["bad_cells"]}
    assert set(expected) <= cells, (case, body["bad_cells"])
    assert all(c["reason"] and c["column_zh"] for c in body["bad_cells"])
    assert state(p) == before
    imports = p.get("/api/imports", "officer").get_json()
    assert imports[0]["status"] == "rejected" and imports[0]["bad_cells"] == len(body["bad_cells"])


def test_many_bad_cells_in_one_file_are_all_listed(lite_park, tmp_path):
    rows = rows_of(GOLDEN / "records.csv")
    expected = set()
    for change in CASES.values():
        expected |= set(change(rows))
    r = lite_park.upload(write_rows(tmp_path / "bad.csv", rows), "records")
    cells = {(c["row"], c["column"]) for c in r.get_json()["bad_cells"]}
    assert expected <= cells
    assert lite_park.get("/api/imports", "officer").get_json()[0]["rows"] == 0


def test_unknown_and_missing_columns(lite_park, tmp_path):
    rows = rows_of(GOLDEN / "records.csv")
    for r in rows:
        r["favourite_colour"] = "blue"
        del r["revenue"]
    r = lite_park.upload(write_rows(tmp_path / "cols.csv", rows), "records")
    cells = {(c["row"], c["column"]): c["reason"] for c in r.get_json()["bad_cells"]}
    assert cells[(1, "favourite_colour")] == "未知的列"
    assert "营业收入" in cells[(1, "revenue")]


@pytest.mark.parametrize("content, reason", [(b"", "为空"), ("统一社会信用代码,企业名称\n".encode("gbk"), "UTF-8"),
                                             (b"\x00\x01\x02binary\xff\xfe", "UTF-8")])
def test_empty_and_wrongly_encoded_files(lite_park, tmp_path, content, reason):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    r = lite_park.upload(path, "records")
    assert r.status_code == 422
    assert reason in r.get_json()["bad_cells"][0]["reason"]


def test_wrong_sheet_and_damaged_workbook(lite_park, tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "封面"
    wb.active.append(["新乡高新区企业数据报送表"])
    data = wb.create_sheet("Sheet2")
    with open(GOLDEN / "records.csv", encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            data.append(row)
    wb.save(tmp_path / "wrong-sheet.xlsx")
    r = lite_park.upload(tmp_path / "wrong-sheet.xlsx", "records")
    assert r.status_code == 422
    cells = r.get_json()["bad_cells"]
    assert any(c["column"] == "新乡高新区企业数据报送表" and c["reason"] == "未知的列" for c in cells)
    assert any("统一社会信用代码" in c["reason"] for c in cells)
    (tmp_path / "damaged.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    r = lite_park.upload(tmp_path / "damaged.xlsx", "records")
    assert r.status_code == 422 and "Excel" in r.get_json()["bad_cells"][0]["reason"]
    (tmp_path / "notes.txt").write_text("hello")
    r = lite_park.upload(tmp_path / "notes.txt", "records")
    assert r.status_code == 422 and "file" in r.get_json()["errors"]["files"]
    r = lite_park.client.post("/api/imports", headers=lite_park.h("officer"), data={"kind": "records"},
                              content_type="multipart/form-data")
    assert r.status_code == 422 and "file" in r.get_json()["errors"]["files"]
    r = lite_park.upload(GOLDEN / "records.csv", "people")
    assert r.status_code == 422 and "kind" in r.get_json()["errors"]["form"]


def test_a_100k_row_file_with_bad_cells_imports_nothing(lite_park, tmp_path):
    from service.demo import generate, write_csv
    records, _ = generate(32_000, 2025, seed=7, history=3)
    assert len(records) >= 100_000
    records = records.reset_index(drop=True)
    bad_rows = [1, len(records) // 2, len(records) - 1]
    records["rd_intensity"] = records["rd_intensity"].astype(object)
    for i in bad_rows:
        records.loc[i, "rd_intensity"] = 150
    records.loc[bad_rows[1], "credit_code"] = "91410700MA9XAMPL00"
    path = tmp_path / "big.csv"
    write_csv(records, path)
    before = state(lite_park)
    r = lite_park.upload(path, "records")
    assert r.status_code == 422
    cells = [(c["row"], c["column"]) for c in r.get_json()["bad_cells"]]
    assert cells == sorted([(i + 2, "rd_intensity") for i in bad_rows] + [(bad_rows[1] + 2, "credit_code")])
    assert state(lite_park) == before
    assert lite_park.get("/api/imports", "officer").get_json()[0]["status"] == "rejected"


def test_good_file_replaces_what_it_names_and_is_recorded(park, tmp_path):
    p = park
    p.import_golden()
    rows = rows_of(GOLDEN / "records.csv")
    i = first_of_year(rows)
    code = rows[i]["credit_code"]
    rows[i]["revenue"] = "12345.5"
    part = [rows[i]] + [r for r in rows if r["credit_code"] != code][:3]
    r = p.upload(write_rows(tmp_path / "fix.csv", part), "records")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["rows"], body["added"], body["replaced"]) == (4, 0, 4)
    recs = p.get(f"/api/enterprises/{code}/records", "officer").get_json()["records"]
    assert next(x for x in recs if x["year"] == "2022")["revenue"] == "12345.5"
    assert len(recs) == sum(r["credit_code"] == code for r in rows)      # other years untouched
    imp = p.get("/api/imports", "officer").get_json()[0]
    import hashlib
    assert imp["sha256"] == hashlib.sha256((tmp_path / "fix.csv").read_bytes()).hexdigest()
    assert imp["user"] == "officer" and imp["status"] == "imported"
    audit = p.get("/api/audit?action=import.records", "officer").get_json()
    assert audit[0]["detail"]["rows"] == 4


def test_a_failure_while_storing_rolls_everything_back(park, tmp_path, monkeypatch):
    """The database fails after the old rows were deleted: nothing of the file is kept and
    the old rows are back."""
    p = park
    p.import_golden()
    before = state(p)
    from service import store
    real = store._replace_records

    def failing(s, frame, import_id, tick):
        real(s, frame, import_id, tick)
        raise RuntimeError("connection lost")
    monkeypatch.setattr(store, "_replace_records", failing)
    rows = rows_of(GOLDEN / "records.csv")
    for r in rows:
        r["revenue"] = "1"
    r = p.upload(write_rows(tmp_path / "all.csv", rows), "records")
    assert r.status_code == 500 and r.get_json()["message"]
    monkeypatch.setattr(store, "_replace_records", real)
    assert state(p) == before


def test_chinese_headers_xlsx_template_round_trip(lite_park, tmp_path):
    p = lite_park
    r = p.get("/api/templates/records.xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["数据", "示例", "说明"]
    assert [c.value for c in wb["数据"][1]] == [header_with_unit(f) for f in RECORD_FIELDS]
    assert "研发费用金额（万元）" in [c.value for c in wb["数据"][1]]
    # the example row, moved to the data sheet, is a valid file
    example = [c.value for c in wb["示例"][2]]
    wb["数据"].append(example)
    wb.save(tmp_path / "filled.xlsx")
    r = p.upload(tmp_path / "filled.xlsx", "records")
    assert r.status_code == 201, r.get_json()
    code = example[0]
    rec = p.get(f"/api/enterprises/{code}/records", "officer").get_json()["records"][0]
    assert rec["name"] == "新乡示例科技有限公司" and rec["stage_prev1"] == "growth" and rec["credit_blacklisted"] == "false"
    # the empty template imports nothing and says so? it has no rows: zero rows imported
    r = p.get("/api/templates/contracts.xlsx")
    cwb = openpyxl.load_workbook(io.BytesIO(r.data))
    cwb["数据"].append([c.value for c in cwb["示例"][2]][:1] + [code] + [c.value for c in cwb["示例"][2]][2:])
    cwb.save(tmp_path / "contracts.xlsx")
    r = p.upload(tmp_path / "contracts.xlsx", "contracts")
    assert r.status_code == 201, r.get_json()


def test_contracts_of_unknown_enterprises_and_other_bad_contracts(lite_park, tmp_path):
    p = lite_park
    p.import_golden()
    before = state(p)
    rows = rows_of(GOLDEN / "contracts.csv")[:20]
    rows[0]["credit_code"] = "91410700MA9XAMPL0" + "0"
    from rules.records import credit_code_with_check
    rows[1]["credit_code"] = credit_code_with_check("91410700MA9XAMPL0")
    rows[2]["kind"] = "技术赠送"
    rows[3]["amount"] = "-5"
    rows[4]["contract_no"] = rows[5]["contract_no"]
    r = p.upload(write_rows(tmp_path / "c.csv", rows), "contracts")
    assert r.status_code == 422
    cells = {(c["row"], c["column"]) for c in r.get_json()["bad_cells"]}
    assert {(2, "credit_code"), (3, "credit_code"), (4, "kind"), (5, "amount"), (7, "contract_no")} <= cells
    assert state(p) == before


def test_a_large_file_is_stored_a_slice_at_a_time_as_at_once(lite_app, tmp_path, monkeypatch):
    """Records made into text and inserted a slice of rows at a time are the records stored
    all at once (the slices only bound the memory)."""
    from service import db, store
    from service.models import Record
    from conftest import GOLDEN

    def stored():
        with lite_app.app_context():
            s = db.session()
            store.import_file(s, GOLDEN / "records.csv", "records", None)
            out = {(r.credit_code, r.year): (r.name, r.park, r.registered_on, r.data)
                   for r in s.query(Record)}
            s.query(Record).delete()
            s.commit()
            return out
    whole = stored()
    monkeypatch.setattr(store, "SLICE", 97)
    assert stored() == whole and len(whole) == 993
