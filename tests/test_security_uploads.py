"""Upload bombs (issue 13, item 6 of the issue): what an upload may expand to is bounded
before any parser reads it, and the bad-cell list in an answer is capped (with the total)."""
import csv
import io
import time
import tracemalloc
import zipfile

from tests.conftest import GOLDEN


def zip_bomb(path, expanded_mb=64):
    """An 'XLSX' whose sheet is a few hundred KB compressed and `expanded_mb` MB inflated."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with zf.open("xl/worksheets/sheet1.xml", "w") as f:
            f.write(b'<?xml version="1.0"?><worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>')
            block = b"A" * (1 << 20)
            for _ in range(expanded_mb):
                f.write(block)
            f.write(b"</t></is></c></row></sheetData></worksheet>")
    return path


def test_a_zip_bomb_xlsx_is_refused_quickly_without_being_inflated(lite_park, tmp_path):
    p = lite_park
    bomb = zip_bomb(tmp_path / "bomb.xlsx")
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    t = time.perf_counter()
    r = p.upload(bomb, "records")
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    body = r.get_json()
    assert r.status_code == 422, body
    assert "压缩" in body["message"] or "压缩" in body["bad_cells"][0]["reason"], body
    assert elapsed < 5 and peak < 32 * 2**20, (elapsed, peak)
    # too large in total (a member each under the ratio, together over the bound)
    p.app.config["IMPORT_MAX_EXPANDED_BYTES"] = 8 * 2**20
    r = p.upload(zip_bomb(tmp_path / "big.xlsx", expanded_mb=9), "records")
    assert r.status_code == 422 and "解压后" in r.get_json()["bad_cells"][0]["reason"]


def test_a_sheet_declaring_too_many_cells_is_refused(lite_park, tmp_path):
    p = lite_park
    p.app.config["IMPORT_MAX_CELLS"] = 1000
    path = tmp_path / "wide.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", '<?xml version="1.0"?><worksheet><dimension ref="A1:ZZ100000"/>'
                                                 '<sheetData/></worksheet>')
    r = p.upload(path, "records")
    assert r.status_code == 422 and "单元格" in r.get_json()["bad_cells"][0]["reason"]


def bad_rows_csv(path, n, every=1):
    with open(GOLDEN / "records.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            r = dict(rows[i % len(rows)])
            r["year"] = str(2000 + i)                  # no duplicate enterprise-years
            if i % every == 0:
                r["year"] = "20x9"
                r["revenue"] = "lots"
            if i % 997 == 5:
                r["name"] = "多行\n名称"              # a quoted field across lines
            w.writerow([r[h] for h in header])
    return path


def test_a_large_csv_of_bad_rows_gets_a_capped_answer(lite_park, tmp_path):
    p = lite_park
    p.app.config.update(IMPORT_SLICE_ABOVE_BYTES=0, IMPORT_SLICE_ROWS=5000)   # checked in slices
    path = bad_rows_csv(tmp_path / "bad.csv", 20000)
    tracemalloc.start()
    t = time.perf_counter()
    r = p.upload(path, "records")
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20, peak
    body = r.get_json()
    assert r.status_code == 422
    assert len(body["bad_cells"]) == 1000 and body["bad_cells_total"] >= 40000 and body["bad_cells_truncated"]
    assert str(body["bad_cells_total"]) in body["message"]
    assert len(r.data) < 1_000_000 and elapsed < 60, (len(r.data), elapsed)
    # the whole list is a file to download
    f = p.get(body["bad_cells_file"], "officer")
    lines = f.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert f.status_code == 200 and len(lines) == body["bad_cells_total"] + 1 and lines[0].startswith("行,列")
    assert p.get(body["bad_cells_file"], "finance").status_code == 403
    # a CSV over the rows × columns bound is refused before it is parsed
    p.app.config["IMPORT_MAX_CELLS"] = 10_000
    r = p.upload(path, "records")
    assert r.status_code == 422 and "单元格" in r.get_json()["bad_cells"][0]["reason"]


def test_a_header_only_file_is_refused(lite_park, tmp_path):
    p = lite_park
    for kind in ("records", "contracts"):
        head = (GOLDEN / f"{kind}.csv").read_text(encoding="utf-8").splitlines()[0]
        path = tmp_path / f"{kind}.csv"
        path.write_text(head + "\n", encoding="utf-8")
        r = p.upload(path, kind)
        assert r.status_code == 422 and "没有数据行" in r.get_json()["bad_cells"][0]["reason"], kind


def test_the_import_page_shows_the_total_and_the_first_cells(lite_park, tmp_path):
    from tests.test_app import csrf_of, login
    p = lite_park
    p.app.config["IMPORT_SHOWN_BAD_CELLS"] = 5
    text = (GOLDEN / "records.csv").read_text(encoding="utf-8").replace(",2019,", ",20x9,")
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    c = p.app.test_client()
    login(c, "officer")
    token = csrf_of(c.get("/login").get_data(as_text=True))
    r = c.post("/workspace/imports", data={"csrf_token": token, "kind": "records",
                                           "file": (io.BytesIO(path.read_bytes()), "bad.csv")})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "下表列出前 5 处" in html


def test_merged_header_cells_get_a_message_that_says_so(lite_park, tmp_path):
    import openpyxl
    p = lite_park
    header = (GOLDEN / "records.csv").read_text(encoding="utf-8").splitlines()[:2]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "数据"
    ws.append(header[0].split(","))
    ws.append(header[1].split(","))
    ws.merge_cells("B1:C1")
    wb.create_sheet("说明").merge_cells("A1:D1")
    path = tmp_path / "merged.xlsx"
    wb.save(path)
    r = p.upload(path, "records")
    assert r.status_code == 422
    cell = r.get_json()["bad_cells"][0]
    assert "合并单元格 B1:C1" in cell["reason"] and cell["row"] == 1


def test_the_sliced_check_finds_the_same_cells_as_the_whole_file(lite_park, tmp_path):
    """The same bad cells, with the same row numbers, whether the file is checked in slices
    (large uploads) or as one."""
    from service.demo import generate, write_csv
    p = lite_park
    records, _ = generate(2000, 2024, history=3)
    good = tmp_path / "good.csv"
    write_csv(records, good)
    with open(good, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    bad = [i for i in range(len(rows)) if i % 700 == 3]
    for i in bad:
        rows[i]["revenue"] = "lots"
    for i in range(5, len(rows), 997):
        rows[i]["name"] = "多行\n名称"                  # a quoted field across lines
    path = tmp_path / "some-bad.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lists = []
    for above, n in ((2**40, 50_000), (0, 1000)):
        p.app.config.update(IMPORT_SLICE_ABOVE_BYTES=above, IMPORT_SLICE_ROWS=n)
        r = p.upload(path, "records")
        body = r.get_json()
        assert r.status_code == 422 and body["bad_cells_total"] == len(bad), body["message"]
        lists.append((body["bad_cells"], p.get(body["bad_cells_file"], "officer").get_data(as_text=True)))
    assert lists[0] == lists[1]
    assert [c["row"] for c in lists[0][0]] == [i + 2 for i in bad]
