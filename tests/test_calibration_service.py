"""Calibration and potential in the service (issue 15): the run's diagnostics through the
API, the CLI and the monitoring report agree with scipy on the stored scores; the draft's
what-if before and after; 提升空间 on the profile equals the API's, which equals a full
re-evaluation; the exports hold plain values."""
from __future__ import annotations

import io
import json

import numpy as np
import openpyxl
import pytest
from scipy import stats

from rules.evaluate import evaluate
from rules.policy import load_policy
from rules.records import load_inputs
from tests.conftest import GOLDEN, PASSWORD, Park, make_app


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    d = tmp_path_factory.mktemp("calib")
    app = make_app(f"sqlite:///{d / 'c.db'}", WTF_CSRF_ENABLED=False)
    p = Park(app)
    p.import_golden()
    p.run_id = p.run(budget=28000000)
    assert p.post(f"/api/runs/{p.run_id}/publish", "officer").status_code == 200
    assert p.post(f"/api/runs/{p.run_id}/honours", "officer", json={"scope": "overall", "top_n": 10}).status_code == 201
    p.db = d / "c.db"
    yield p
    app.extensions["db_engine"].dispose()


def stored_scores(p):
    """The run's reported final scores per stage key, as the enterprise list gives them."""
    rows = p.get(f"/api/enterprises?run={p.run_id}&per_page=500&excluded=false", "officer").get_json()["items"]
    out = {}
    for r in rows:
        out.setdefault(r["stage"], []).append(r["final_score"])
    return {k: np.array(v) for k, v in out.items()}


def test_api_diagnostics_equal_scipy_on_the_stored_scores(park):
    d = park.get(f"/api/runs/{park.run_id}/diagnostics", "officer").get_json()
    scores = stored_scores(park)
    assert {st["stage"] for st in d["stages"]} == set(scores)
    for st in d["stages"]:
        x = scores[st["stage"]]
        assert st["n"] == len(x)
        assert st["mean"] == pytest.approx(x.mean(), abs=1e-6)
        assert st["median"] == pytest.approx(np.median(x), abs=1e-6)
        assert st["std"] == pytest.approx(x.std(ddof=1), abs=1e-6)
        assert st["skewness"] == pytest.approx(stats.skew(x), abs=1e-6)
        assert st["excess_kurtosis"] == pytest.approx(stats.kurtosis(x), abs=1e-6)
        p = stats.shapiro(x).pvalue if len(x) < d["targets"]["normal"]["shapiro_below"] else stats.normaltest(x).pvalue
        assert st["normality_p"] == pytest.approx(p, abs=1e-8)
        assert len(st["indicators"]) == 35 and all({"reporting_rate", "gini", "corr_final", "variance_share", "flags"}
                                                    <= set(i) for i in st["indicators"])
        assert set(st["verdict"]) == {"differentiated", "normal", "healthy"}
    for role in ("finance", "enterprise", "bank"):
        assert park.get(f"/api/runs/{park.run_id}/diagnostics", role).status_code == 403


def test_cli_json_equals_the_api(park, runner, monkeypatch, tmp_path):
    from service.cli import cli
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{park.db}")
    r = runner.invoke(cli, ["diagnose", "--year", "2022", "--format", "json"])
    assert r.exit_code == 0, r.output
    cli_d = json.loads(r.output)
    api_d = park.get(f"/api/runs/{park.run_id}/diagnostics", "officer").get_json()
    for a, b in zip(cli_d["stages"], api_d["stages"]):
        assert {k: a[k] for k in ("stage", "n", "mean", "median", "std", "skewness", "excess_kurtosis", "normality_p")} == \
               {k: b[k] for k in ("stage", "n", "mean", "median", "std", "skewness", "excess_kurtosis", "normality_p")}
    r = runner.invoke(cli, ["diagnose", "--year", "2022"])
    assert r.exit_code == 0 and "正态化" in r.output and "偏度" in r.output
    out = tmp_path / "d.xlsx"
    r = runner.invoke(cli, ["diagnose", "--year", "2022", "--format", "xlsx", "--out", str(out)])
    assert r.exit_code == 0, r.output
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[:2] == ["阶段", "指标"]
    assert wb["阶段"].max_row == 1 + len(api_d["stages"])
    assert not any(isinstance(c.value, str) and c.value.startswith("=") for ws in wb for row in ws.iter_rows() for c in row)
    r = runner.invoke(cli, ["diagnose", "--year", "1999"])
    assert r.exit_code != 0


def test_xlsx_export_holds_plain_values(park):
    r = park.get(f"/api/runs/{park.run_id}/diagnostics?format=xlsx", "officer")
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    api = park.get(f"/api/runs/{park.run_id}/diagnostics", "officer").get_json()
    ws = wb["阶段"]
    header = [c.value for c in ws[1]]
    first = dict(zip(header, [c.value for c in ws[2]]))
    assert first["发展阶段"] == api["stages"][0]["stage_zh"] and first["偏度"] == api["stages"][0]["skewness"]
    assert wb["指标"].max_row == 1 + 35 * len(api["stages"])


def test_monitoring_report_has_the_calibration_section(park):
    m = park.get("/api/reports/monitoring?year=2022", "officer").get_json()
    api = park.get(f"/api/runs/{park.run_id}/diagnostics", "officer").get_json()
    assert [s["skewness"] for s in m["calibration"]["stages"]] == [s["skewness"] for s in api["stages"]]
    c = park.app.test_client()
    c.post("/login", data={"username": "officer", "password": PASSWORD})
    html = c.get("/workspace/report?year=2022").get_data(as_text=True)
    assert "七、积分模型校准" in html and 'id="r-calibration"' in html


def test_draft_diagnostics_before_and_after(park):
    """A draft that scores IND-1.1 by plain min–max: the after side flags it and the tuning
    offers the percentile method as an improvement; the before side is the run's figures."""
    d = park.post("/api/policies/drafts", "officer", json={"name": "calib-minmax"}).get_json()
    r = park.client.patch(f"/api/policies/drafts/{d['id']}/clauses/IND-1.1", headers=park.h("officer"),
                          json={"changes": {"method": "minmax"}})
    assert r.status_code == 200, r.get_json()
    both = park.post(f"/api/policies/drafts/{d['id']}/diagnostics", "officer", json={"year": 2022}).get_json()
    run = park.get(f"/api/runs/{park.run_id}/diagnostics", "officer").get_json()
    assert [s["skewness"] for s in both["before"]["stages"]] == [s["skewness"] for s in run["stages"]]
    flagged = [t for t in both["after"]["tuning"] if t["clause"] == "IND-1.1"]
    assert flagged, [t["clause"] for t in both["after"]["tuning"]]
    assert any(o["method"] == "percentile" and o["improves"] for t in flagged for o in t["options"])
    assert park.post(f"/api/policies/drafts/{d['id']}/diagnostics", "officer", json={"year": 1999}).status_code == 422


def test_profile_potential_equals_the_api_and_a_full_re_evaluation(park):
    code = park.own
    api = park.get(f"/api/enterprises/{code}/potential?run={park.run_id}", "enterprise").get_json()
    best = api["by_target"]["median"][0]
    c = park.app.test_client()
    c.post("/login", data={"username": "ent", "password": PASSWORD})
    html = c.get(f"/enterprises/{code}").get_data(as_text=True)
    assert "提升空间" in html and f"{best['final_after']:,.4f}" in html
    # the same lever, evaluated in full on the golden files
    recs, cons = load_inputs(GOLDEN / "records.csv", GOLDEN / "contracts.csv")
    key = next(c_.body["key"] for c_ in load_policy().clauses_for("indicators", 2022) if c_.id == best["clause"])
    recs.loc[(recs["credit_code"] == code) & (recs["year"] == 2022), key] = best["target_value"]
    full = evaluate(recs, 2022, load_policy(), cons).scores.set_index("credit_code").loc[code]
    assert best["final_after"] == pytest.approx(float(full["final_score"]), abs=1e-9)
    assert best["rank_in_stage_after"] == int(full["rank_in_stage"])
    # another enterprise's potential is not the enterprise's to read
    other = park.get(f"/api/enterprises?run={park.run_id}&per_page=2", "officer").get_json()["items"]
    other = next(x["credit_code"] for x in other if x["credit_code"] != code)
    assert park.get(f"/api/enterprises/{other}/potential", "enterprise").status_code == 403


def test_closest_list(park):
    d = park.get(f"/api/runs/{park.run_id}/closest", "officer").get_json()
    overall = next(b for b in d["lists"] if b["kind"] == "honour")
    ranked = park.get(f"/api/enterprises?run={park.run_id}&per_page=20&excluded=false&sort=rank_overall", "officer") \
        .get_json()["items"]
    assert overall["cutoff"] == ranked[9]["final_score"]
    assert [e["credit_code"] for e in overall["entries"]] == \
           [x["credit_code"] for x in ranked[10:] if x["final_score"] < overall["cutoff"]][:len(overall["entries"])]
    for e in overall["entries"]:
        assert e["gap"] == pytest.approx(overall["cutoff"] - e["final_score"], abs=1e-9)
        assert e["reaches"] == (e["best"]["final_after"] >= overall["cutoff"])
    assert any(b["kind"] == "seed" for b in d["lists"])
    r = park.get(f"/api/runs/{park.run_id}/closest?format=xlsx", "officer")
    assert r.status_code == 200 and r.data[:2] == b"PK"


def test_the_whatif_page_shows_the_calibration_before_and_after(park):
    d = park.post("/api/policies/drafts", "officer", json={"name": "calib-page"}).get_json()
    park.client.patch(f"/api/policies/drafts/{d['id']}/clauses/IND-1.1", headers=park.h("officer"),
                      json={"changes": {"method": "minmax"}})
    api = park.post(f"/api/policies/drafts/{d['id']}/whatif", "officer", json={"year": 2022}).get_json()
    both = park.post(f"/api/policies/drafts/{d['id']}/diagnostics", "officer", json={"year": 2022}).get_json()
    assert [c["skewness_after"] for c in api["calibration"]] == [s["skewness"] for s in both["after"]["stages"]]
    assert [c["skewness_before"] for c in api["calibration"]] == [s["skewness"] for s in both["before"]["stages"]]
    c = park.app.test_client()
    c.post("/login", data={"username": "officer", "password": PASSWORD})
    html = c.post(f"/workspace/policy/drafts/{d['id']}", data={"action": "whatif", "year": "2022"}).get_data(as_text=True)
    assert 'id="wi-calibration"' in html and html.count("<tr><td>", html.index('id="wi-calibration"')) >= len(api["calibration"])
    page = c.get(f"/workspace/policy/drafts/{d['id']}/diagnostics?year=2022").get_data(as_text=True)
    assert 'data-clause="IND-1.1"' in page and "改善" in page
    for word in ("True", "False", "None", "startup", "growth_score", "nan"):
        assert word not in page.split("<main>")[1].split('<script type="application/json"')[0], word


def test_diagnostics_read_the_matrix_file_under_its_old_name(park):
    """A run keeps its indicator matrices as `indicator_matrix.parquet` (the batch's own
    indicators file is `indicators.parquet`, laid out differently); a run stored before
    2026-12-05 evening kept them as `indicators.parquet`, and its diagnostics are the same."""
    import sqlite3

    from service import diagnostics
    before = park.get(f"/api/runs/{park.run_id}/diagnostics", "officer").get_json()
    with sqlite3.connect(park.db) as c:
        names = {r[0] for r in c.execute("SELECT name FROM run_files WHERE run_id = ?", (park.run_id,))}
        assert diagnostics.MATRIX_FILE in names and diagnostics.OLD_MATRIX_FILE not in names
        c.execute("UPDATE run_files SET name = ? WHERE run_id = ? AND name = ?",
                  (diagnostics.OLD_MATRIX_FILE, park.run_id, diagnostics.MATRIX_FILE))
    try:
        diagnostics._SCORED.clear()
        assert park.get(f"/api/runs/{park.run_id}/diagnostics", "officer").get_json() == before
    finally:
        with sqlite3.connect(park.db) as c:
            c.execute("UPDATE run_files SET name = ? WHERE run_id = ? AND name = ?",
                      (diagnostics.MATRIX_FILE, park.run_id, diagnostics.OLD_MATRIX_FILE))
        diagnostics._SCORED.clear()
