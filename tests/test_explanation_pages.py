"""The Chinese explanation of the trace where people read it (issue: policy v2): the
enterprise profile's 计分说明 and contract list, and the finance bureau's eligibility lookup."""
import csv
import html
import re

from tests.conftest import GOLDEN
from tests.test_app import login


def _golden_2022():
    with open(GOLDEN / "contracts.csv", encoding="utf-8") as f:
        contracts = [r for r in csv.DictReader(f) if r["registered_on"].startswith("2022")]
    with open(GOLDEN / "expected-budget-28000000-pro_rata" / "scores.csv", encoding="utf-8") as f:
        scores = {r["credit_code"]: r for r in csv.DictReader(f)}
    with open(GOLDEN / "expected-budget-28000000-pro_rata" / "awards.csv", encoding="utf-8") as f:
        awards = {(r["credit_code"], r["clause"]): r for r in csv.DictReader(f)}
    return contracts, scores, awards


def _eligibility_row(page, clause):
    table = re.search(r'<table id="eligibility">(.*?)</table>', page, re.S)
    assert table, page[:2000]
    row = re.search(rf'<tr data-clause="{clause}">(.*?)</tr>', table.group(1), re.S)
    assert row
    return _text(row.group(1))


def _text(page):
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_profile_explains_each_clause_and_shows_license_contracts(lite_park):
    p = lite_park
    p.import_golden()
    run_id = p.run(budget=28000000)
    contracts, scores, awards = _golden_2022()
    # a scored enterprise with an RW-5 line and a 技术许可 contract among its 2022 contracts
    code = next(c["credit_code"] for c in contracts
                if c["kind"].strip() in ("license", "技术许可") and (c["credit_code"], "RW-5") in awards)
    client = p.app.test_client()
    login(client, "officer")
    page = client.get(f"/enterprises/{code}?run={run_id}").get_data(as_text=True)
    text = _text(page)
    assert 'id="explanation"' in page and 'id="contract-list"' in page
    for clause, citation in (("STAGE", "表1"), ("SCOPE", "§三.(一)"), ("RW-5", "§五.(四)")):
        assert f'data-clause="{clause}"' in page and citation in text
    assert "技术许可" in text and "不属于计奖的合同类别" in text
    assert "按表1分类第" in text                                  # the STAGE row that matched
    # category titles from indicators.yaml, not hard-coded ones
    assert "技术创新指标" in text and "科技创新类" not in text
    assert "True" not in text and "False" not in text


def test_finance_eligibility_lookup_says_why_not_paid(lite_park):
    p = lite_park
    p.import_golden()
    run_id = p.run(budget=28000000)
    p.post(f"/api/runs/{run_id}/publish", "officer")
    contracts, scores, awards = _golden_2022()
    # an excluded enterprise with 2022 contracts: RW-5 is refused with the reason
    code = next(c["credit_code"] for c in contracts if scores[c["credit_code"]]["excluded"] == "true")
    client = p.app.test_client()
    login(client, "finance")
    page = client.get(f"/workspace/awards?run={run_id}&code={code}").get_data(as_text=True)
    cell = _eligibility_row(page, "RW-5")
    assert "不符合" in cell and ("排除" in cell or "评价对象" in cell)
    # and a paid one shows its computation
    paid = next(k for (k, c), a in awards.items() if c == "RW-5" and int(a["granted_yuan"]) > 0)
    page = client.get(f"/workspace/awards?run={run_id}&code={paid}").get_data(as_text=True)
    cell = _eligibility_row(page, "RW-5")
    assert "计奖合同" in cell and f"{int(awards[(paid, 'RW-5')]['granted_yuan']):,}" in cell
    api = p.get(f"/api/enterprises/{code}/eligibility?run={run_id}", "finance").get_json()
    rw5 = next(i for i in api["items"] if i["clause"] == "RW-5")
    assert not rw5["eligible"] and rw5["explanation"]


def test_status_fields_say_they_state_the_end_of_year(lite_park):
    """SPEC §2.3 (v2): the NL-4/NL-5 fields state the status at the end of Y — in their
    labels, the import template's help sheet and the self-declaration form."""
    import io

    import openpyxl

    from rules.policy import load_policy
    RECORD_FIELDS = load_policy().data.record_fields
    status = [f for f in RECORD_FIELDS if f.key in ("hte_requalification_failed", "tech_sme_reevaluation_failed",
                                                     "delisted_platforms_national", "delisted_platforms_provincial",
                                                     "delisted_platforms_municipal")]
    assert len(status) == 5 and all(f.label.startswith("截至当年年末") for f in status)
    p = lite_park
    data = p.get("/api/templates/records.xlsx", "officer").data
    help_sheet = openpyxl.load_workbook(io.BytesIO(data))["说明"]
    rows = {r[1]: r for r in help_sheet.iter_rows(values_only=True) if r and r[1]}
    for f in status:
        assert rows[f.key][0] == f.label and "截至评价年度12月31日的状态" in rows[f.key][5]
    p.import_golden()
    p.run()
    client = p.app.test_client()
    login(client, "ent")
    page = _text(client.get(f"/enterprises/{p.own}").get_data(as_text=True))
    assert "截至评价年度12月31日的状态" in page and "截至当年年末被摘牌且未恢复的国家级研发或创新平台数" in page
