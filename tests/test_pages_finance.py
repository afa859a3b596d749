"""The finance bureau's award list (issue 14, item 2): filters, sort, paging, each
enterprise's total, item names beside clause ids, money in 元 with separators, the budget,
shortfall and strategy in Chinese; the XLSX a finance bureau files (title row, totals row
equal to the page's, number formats, widths, frozen header) and the printable list with its
signature block."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, Park, make_app


@pytest.fixture(scope="module")
def fin(tmp_path_factory):
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('fin') / 'f.db'}")
    p = Park(app)
    p.import_golden()
    p.run_id = p.run(budget=15000000)           # short of the eligible total: a shortfall to report
    p.c = app.test_client()
    assert p.c.post("/login", data={"username": "finance", "password": PASSWORD}).status_code in (302, 400)
    yield p
    app.extensions["db_engine"].dispose()


def login(p, name):
    c = p.app.test_client()
    html = c.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    assert c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return c


def money(text):
    return int(text.replace(",", ""))


def api_lines(p):
    return p.get(f"/api/awards?run={p.run_id}", "finance").get_json()


def test_page_shows_budget_shortfall_strategy_and_item_names(fin):
    c = login(fin, "finance")
    html = c.get(f"/workspace/awards?run={fin.run_id}").get_data(as_text=True)
    assert "pro_rata" not in html and "rank_priority" not in html
    assert "按比例分配" in html and "缺口" in html
    assert "年度奖励预算 15,000,000 元" in html
    assert "高新技术企业" in html          # an item's name (rewards.yaml title) beside its clause id
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", html)       # (the items' own titles may quote 万元)
    assert not [h for h in heads if "万元" in h] and sum("（元）" in h for h in heads) >= 5, heads
    lines = api_lines(fin)
    total = sum(r["granted_yuan"] for r in (lines["items"] if isinstance(lines, dict) else lines))
    m = re.search(r'id="granted">([\d,]+)<', html)
    assert money(m.group(1)) == total


def test_paging_filter_sort_and_enterprise_totals(fin):
    c = login(fin, "finance")
    html = c.get(f"/workspace/awards?run={fin.run_id}").get_data(as_text=True)
    n = money(re.search(r'id="line-count">([\d,]+)<', html).group(1))
    assert n > 50, "the golden run has more lines than a page"
    assert html.count('<tr data-code=') == 50 and 'id="next-page"' in html
    html2 = c.get(f"/workspace/awards?run={fin.run_id}&page=2").get_data(as_text=True)
    assert html2.count('<tr data-code=') == min(50, n - 50)
    # the filter by item: every line shown is that item, and the count matches the API
    clause = re.search(r'<option value="(RW-[^"]+)"', html).group(1)
    f = c.get(f"/workspace/awards?run={fin.run_id}&clause={clause}").get_data(as_text=True)
    clauses = set(re.findall(r'<tr data-code="[^"]+" data-clause="([^"]+)"', f))
    assert clauses == {clause}
    # sort by granted amount descending: the column is non-increasing
    s = c.get(f"/workspace/awards?run={fin.run_id}&sort=granted_yuan&order=desc").get_data(as_text=True)
    granted = [money(x) for x in re.findall(r'class="num granted" data-label="[^"]+">([\d,]+)<', s)]
    assert granted == sorted(granted, reverse=True) and len(granted) == 50
    # an enterprise's total equals the sum of its lines
    q = c.get(f"/workspace/awards?run={fin.run_id}&sort=enterprise_total&order=desc").get_data(as_text=True)
    rows = re.findall(r'<tr data-code="([^"]+)".*?class="num granted"[^>]*>([\d,]+)<.*?class="num ent-total"[^>]*>([\d,]+)<',
                      q, re.S)
    top = rows[0][0]
    e = c.get(f"/workspace/awards?run={fin.run_id}&q={top}").get_data(as_text=True)
    mine = re.findall(r'<tr data-code="[^"]+".*?class="num granted"[^>]*>([\d,]+)<.*?class="num ent-total"[^>]*>([\d,]+)<', e, re.S)
    assert sum(money(g) for g, _ in mine) == money(mine[0][1]) == money(rows[0][2])


def test_xlsx_title_totals_formats_widths_frozen(fin):
    import openpyxl
    c = login(fin, "finance")
    html = c.get(f"/workspace/awards?run={fin.run_id}").get_data(as_text=True)
    page_total = money(re.search(r'id="lines-granted">([\d,]+)<', html).group(1))
    page_eligible = money(re.search(r'<tfoot><tr><th colspan="4">[^<]*</th><th class="num">([\d,]+)<', html).group(1))
    r = c.get(f"/workspace/awards/list.xlsx?run={fin.run_id}")
    assert r.status_code == 200 and r.content_type.startswith("application/vnd.openxmlformats")
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    ws = wb["奖励名单"]
    title = ws["A1"].value
    assert "2022年度" in title and f"第 {fin.run_id} 批次" in title
    basis = ws["A2"].value
    assert "新开〔2022〕110号" in basis and "15,000,000" in basis and "按比例分配" in basis
    assert "xinxiang-2022" not in basis and "pro_rata" not in basis
    headers = [c.value for c in ws[3]]
    assert headers[:3] == ["序号", "企业名称", "统一社会信用代码"] and "拨付金额（元）" in headers
    gcol = headers.index("拨付金额（元）") + 1
    ecol = headers.index("核定金额（元）") + 1
    last = ws.max_row
    assert ws.cell(last, 1).value == "合计"
    lines = [ws.cell(r, gcol).value for r in range(4, last)]
    assert ws.cell(last, gcol).value == sum(lines) == page_total
    assert ws.cell(last, ecol).value == page_eligible
    assert all(isinstance(ws.cell(r, gcol).value, int) for r in range(4, last + 1))
    assert ws.cell(4, gcol).number_format == "#,##0" and ws.cell(last, gcol).number_format == "#,##0"
    assert ws.freeze_panes == "A4"
    assert ws.column_dimensions["B"].width >= 20 and ws.column_dimensions["G"].width >= 20
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", "no live formula in an export"
    # filtered export carries the filter in words and only those lines
    clause = re.search(r'<option value="(RW-[^"]+)"', html).group(1)
    r2 = c.get(f"/workspace/awards/list.xlsx?run={fin.run_id}&clause={clause}")
    ws2 = openpyxl.load_workbook(io.BytesIO(r2.data))["奖励名单"]
    assert "筛选：奖励事项：" in ws2["A2"].value
    assert {ws2.cell(r, 6).value for r in range(4, ws2.max_row)} == {clause}
    out = Path(__file__).parents[1] / "test-output"
    out.mkdir(exist_ok=True)
    (out / "award-list.xlsx").write_bytes(r.data)


def test_printable_list_has_signature_block_and_page_numbers(fin):
    c = login(fin, "finance")
    html = c.get(f"/workspace/awards/print?run={fin.run_id}").get_data(as_text=True)
    for word in ("经办人", "审核人", "日期", "新开〔2022〕110号", "合计"):
        assert word in html
    assert "print-list.css" in html
    css = (Path(__file__).parents[1] / "static" / "css" / "print-list.css").read_text(encoding="utf-8")
    assert "counter(page)" in css and "counter(pages)" in css and "table-header-group" in css
    assert "pro_rata" not in html and "xinxiang-2022" not in html


@pytest.mark.parametrize("role,status", [("enterprise", 403), ("bank", 403), ("officer", 200), ("admin", 200)])
def test_award_list_roles(fin, role, status):
    c = login(fin, {"enterprise": "ent"}.get(role, role))
    for path in ("/workspace/awards", "/workspace/awards/list.xlsx", "/workspace/awards/print"):
        assert c.get(f"{path}?run={fin.run_id}").status_code == status, path
