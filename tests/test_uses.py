"""Uses of the results (§五, §六): the seed pool, stage services, honour lists, the banks'
credit reference and the monitoring report, on the golden data and on the demo park."""
import io
import math

import pytest
from pypdf import PdfReader

from service.uses import load_use_cases, run_use_case


@pytest.mark.parametrize("case", load_use_cases(), ids=lambda c: f"{c[0]}: {c[2]['name']}")
def test_use_rule_cases(case):
    file, rule_id, body = case
    assert run_use_case(rule_id, body) == []


def test_a_use_case_can_fail():
    body = {"name": "x", "results": [{"ent": "A", "stage": "startup", "score": 1},
                                     {"ent": "B", "stage": "startup", "score": 2}], "expect": {"in": ["A"]}}
    assert run_use_case("SEED", body) == ["A 应入库"]


def test_seed_pool_on_golden(golden_park):
    p = golden_park
    r = p.post("/api/seed-pool", "officer", json={"run": p.run_id})
    assert r.status_code == 201
    pool = r.get_json()
    rows = p.get(f"/api/enterprises?run={p.run_id}&per_page=500", "officer").get_json()["items"]
    expected = set()
    for stage in ("startup", "growth"):
        scored = sorted((x for x in rows if x["stage"] == stage and not x["excluded"]), key=lambda x: -x["final_score"])
        k = math.ceil(0.2 * len(scored))
        expected |= {x["credit_code"] for x in scored if x["final_score"] >= scored[k - 1]["final_score"]}
    assert {e["credit_code"] for e in pool["entries"]} == expected
    assert all("前 20%" in e["reason"] for e in pool["entries"])
    assert pool["exits"] == [] and pool["entered"] is None
    xlsx = p.get("/api/seed-pool?year=2022&format=xlsx", "finance")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_seed_pool_entries_and_exits_between_years_on_the_demo_park(tmp_path):
    from click.testing import CliRunner

    from service import create_app
    from service.cli import cli
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    assert CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo"), "--enterprises", "300"], env=env).exit_code == 0
    assert CliRunner().invoke(cli, ["run", "--year", "2024", "--publish"], env=env).exit_code == 0
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "TESTING": True})
    c = app.test_client()
    h = {"Authorization": "Bearer " + c.post("/api/tokens", json={"username": "officer",
                                                                  "password": "officer-demo-2025"}).get_json()["token"]}
    runs = {r["year"]: r["id"] for r in c.get("/api/runs", headers=h).get_json()}
    first = c.post("/api/seed-pool", json={"run": runs[2024]}, headers=h).get_json()
    second = c.post("/api/seed-pool", json={"run": runs[2025]}, headers=h).get_json()
    before = {e["credit_code"] for e in first["entries"]}
    after = {e["credit_code"] for e in second["entries"]}
    assert second["entered"] == len(after - before)
    assert {x["credit_code"] for x in second["exits"]} == before - after
    assert all(x["reason"] for x in second["exits"])
    kinds = {x["reason"][:4] for x in second["exits"]}
    assert kinds and all(("未进入" in x["reason"]) or ("阶段" in x["reason"]) or ("不纳入" in x["reason"])
                             or ("无评价" in x["reason"]) for x in second["exits"])
    # the bank's trend has both years
    ent = c.post("/api/tokens", json={"username": "bank", "password": "bank-demo-2025"}).get_json()["token"]
    code = c.get("/api/me", headers={"Authorization": "Bearer " + c.post("/api/tokens", json={
        "username": "enterprise", "password": "enterprise-demo-2025"}).get_json()["token"]}).get_json()["credit_code"]
    ref = c.get(f"/api/credit/{code}", headers={"Authorization": "Bearer " + ent}).get_json()
    assert [t["year"] for t in ref["trend"]] == [2024, 2025] and ref["grade"] in "ABCDE"
    app.extensions["db_engine"].dispose()


def test_services_on_the_profile_and_the_list(golden_park):
    p = golden_park
    d = p.get(f"/api/enterprises/{p.own}", "enterprise").get_json()
    services = [x["service"] for x in d["services"]]
    by_stage = {"startup": "行业先进企业技术指导", "growth": "多途径融资渠道", "expansion": "多途径融资渠道",
                "mature": "支持企业上市"}
    if not d["excluded"]:
        assert by_stage[d["stage"]] in services
        ratios = {k: d[f"{k}_score"] / d["peers"][f"{k}_score"] for k in ("tech", "growth", "aux")}
        weakest = min(ratios, key=lambda k: (ratios[k], k))
        assert (ratios[weakest] < 1) == any("最薄弱的类别" in x["reason"] for x in d["services"])
    listing = p.get("/api/services?stage=growth", "officer").get_json()["items"]
    assert listing and all(x["stage_zh"] == "成长期" for x in listing)
    assert p.get("/api/services?format=xlsx", "officer").data[:2] == b"PK"


def test_credit_grade_follows_the_clause_file(golden_park):
    p = golden_park
    p.client.put("/api/me/consent", headers=p.h("enterprise"), json={"consent": True})
    ref = p.get(f"/api/credit/{p.own}", "bank").get_json()
    d = p.get(f"/api/enterprises/{p.own}", "officer").get_json()
    from service.uses import grade
    assert (ref["grade"], ref["text"]) == tuple(grade(d["stage_percentile"], d["excluded"]).values())
    assert ref["trend"] == [{"year": 2022, "stage": d["stage"], "stage_zh": d["stage_zh"], "excluded": d["excluded"],
                             "final_score": d["final_score"], "rank_band": ref["rank_band"]}]


def test_monitoring_report_json_and_pdf(golden_park, tmp_path):
    p = golden_park
    m = p.get("/api/reports/monitoring?year=2022", "finance").get_json()
    agg = p.get("/api/aggregates").get_json()
    awards = p.get("/api/awards?year=2022", "finance").get_json()["totals"]
    assert (m["enterprises"], m["excluded"]) == (agg["enterprises"], agg["excluded"])
    assert m["awards"]["granted_yuan"] == awards["granted_yuan"]
    assert sum(x["count"] for x in m["by_stage"]) == m["enterprises"]
    nl = p.get("/api/enterprises?excluded=true&per_page=500", "officer").get_json()["items"]
    excluding = sum(x["count"] for x in m["negative_list"] if x["clause"] in ("SCOPE", "NL-1", "NL-2b", "NL-3"))
    assert excluding >= len(nl) > 0
    pdf = p.get("/api/reports/monitoring.pdf?year=2022", "finance")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "监测分析报告（2022年度）" in text
    assert str(m["enterprises"]) in text and f"{m['awards']['granted_yuan']:,}" in text
    assert m["top"][0]["name"] in text and f"{m['top'][0]['final_score']:.4f}" in text
    page = p.get("/workspace/report?year=2022")          # not logged in: to the login page
    assert page.status_code == 302
