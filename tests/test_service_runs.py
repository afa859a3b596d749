"""Runs through the API on both databases: the golden scores and awards, reproducibility,
the current run, failures that leave nothing, and run comparison."""
import csv
import io
import subprocess
import sys

import pytest

from tests.conftest import GOLDEN

def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


FOLDERS = {"expected-no-budget": {}, "expected-budget-28000000-pro_rata": {"budget": 28000000},
           "expected-budget-28000000-rank_priority": {"budget": 28000000, "strategy": "rank_priority"},
           "expected-budget-15000000-pro_rata": {"budget": 15000000}}


def test_golden_through_the_api(park, tmp_path):
    """Import the golden files through the API, run each budget setting, fetch the files and
    compare them with the expected ones by the golden comparison tool."""
    park.import_golden()
    for folder, options in FOLDERS.items():
        run_id = park.run(**options)
        out = tmp_path / folder
        out.mkdir()
        for name in ("scores.csv", "awards.csv"):
            got = park.get(f"/api/runs/{run_id}/files/{name}", "finance")
            assert got.status_code == 200
            (out / name).write_bytes(got.data)
        cmp = subprocess.run([sys.executable, str(GOLDEN / "compare_outputs.py"), str(out), str(GOLDEN / folder)],
                             capture_output=True, text=True)
        assert cmp.returncode == 0, cmp.stdout + cmp.stderr
        # the JSON lists say the same as the files
        expected = read_csv(GOLDEN / folder / "awards.csv")
        body = park.get(f"/api/awards?run={run_id}", "finance").get_json()
        assert [(a["credit_code"], a["clause"], a["eligible_yuan"], a["granted_yuan"], ";".join(a["basis"]))
                for a in body["items"]] == [(e["credit_code"], e["clause"], int(e["eligible_yuan"]),
                                             int(e["granted_yuan"]), e["basis"]) for e in expected]
        assert body["totals"]["granted_yuan"] == sum(int(e["granted_yuan"]) for e in expected)
        if "budget" in options:
            assert body["totals"]["granted_yuan"] <= options["budget"]
    scores = read_csv(GOLDEN / "expected-budget-15000000-pro_rata" / "scores.csv")
    page = park.get(f"/api/enterprises?run={run_id}&per_page=500&sort=credit_code", "officer").get_json()
    assert page["total"] == len(scores)
    for row, exp in zip(page["items"], scores):
        assert row["credit_code"] == exp["credit_code"]
        assert row["excluded"] == (exp["excluded"] == "true")
        if exp["final_score"]:
            assert f"{row['final_score']:.4f}" == exp["final_score"]
            assert row["rank_in_stage"] == int(exp["rank_in_stage"])


def test_rerun_on_unchanged_data_is_identical_and_current(golden_park):
    p = golden_park
    first = p.get(f"/api/runs/{p.run_id}", "officer").get_json()
    second_id = p.run(budget=28000000)
    second = p.get(f"/api/runs/{second_id}", "officer").get_json()
    assert second["data_sha256"] == first["data_sha256"] and second["policy_sha256"] == first["policy_sha256"]
    for name in ("scores.csv", "awards.csv", "awards.html", "manifest.json"):
        assert p.get(f"/api/runs/{second_id}/files/{name}", "officer").data == \
            p.get(f"/api/runs/{p.run_id}/files/{name}", "officer").data
    assert second["current"] and not p.get(f"/api/runs/{p.run_id}", "officer").get_json()["current"]
    diff = p.get(f"/api/runs/{p.run_id}/diff/{second_id}", "officer").get_json()
    assert diff["enterprises"] == [] and diff["awards"] == []
    manifest = p.get(f"/api/runs/{second_id}/manifest", "officer").get_json()
    assert manifest["policy"]["sha256"] == second["policy_sha256"]
    assert set(manifest["inputs"]) == {"records", "contracts"}


def test_stored_trace_is_compact_and_the_api_gives_it_in_full(golden_park, tmp_path):
    """Each result stores its trace without the titles and citations the run's header holds;
    the API's trace and explanation have them back, the same as the batch file's."""
    import json

    from click.testing import CliRunner

    from rules.tracefile import read_trace
    from service import db
    from service.cli import cli
    from service.models import Result
    p = golden_park
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["evaluate", "--records", str(GOLDEN / "records.csv"), "--contracts",
                                   str(GOLDEN / "contracts.csv"), "--year", "2022", "--budget", "28000000",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    batch = {t["credit_code"]: t for t in read_trace(out)}
    from service.models import Run
    from service.query import stored_trace
    with p.app.app_context():
        s = db.session()
        run = s.get(Run, p.run_id)
        results = s.query(Result).filter_by(run_id=p.run_id).all()
        assert all(r.trace is None and r.trace_packed for r in results)       # packed (service.packing)
        assert sum(len(r.trace_packed) for r in results) * 4 < sum(len(stored_trace(s, run, r)) for r in results)
        stored = {r.credit_code: stored_trace(s, run, r) for r in results}
    assert set(stored) == set(batch)
    excluded = [c for c, t in batch.items() if t["excluded"]]
    for code in sorted(batch)[:3] + excluded[:2]:
        assert '"title"' not in stored[code].replace('"clause":"IND","title"', "")
        body = p.get(f"/api/enterprises/{code}?run={p.run_id}", "officer").get_json()
        assert body["trace"] == batch[code]
        assert len(json.dumps(body["trace"], ensure_ascii=False)) > len(stored[code])
        assert body["explanation"] and all(e["title"] and e["citation"] for e in body["explanation"])


def test_a_correction_changes_the_next_run_and_the_diff_names_it(golden_park):
    p = golden_park
    code = p.own
    before = p.get(f"/api/enterprises/{code}", "officer").get_json()
    assert not before["excluded"]
    r = p.client.patch(f"/api/enterprises/{code}/records/2022", headers=p.h("officer"),
                       json={"field": "credit_blacklisted", "value": "是", "reason": "核查发现列入经营异常名录"})
    assert r.status_code == 200, r.get_json()
    # the published run is unchanged until a new run completes
    assert not p.get(f"/api/enterprises/{code}", "officer").get_json()["excluded"]
    new_id = p.run(budget=28000000)
    after = p.get(f"/api/enterprises/{code}?run={new_id}", "officer").get_json()
    assert after["excluded"] and after["exclusion_clauses"] == ["NL-1"]
    assert any(e["clause"] == "NL-1" and "排除" in e["text"] for e in after["explanation"])
    diff = p.get(f"/api/runs/{p.run_id}/diff/{new_id}", "officer").get_json()
    changed = {c["credit_code"]: c for c in diff["enterprises"]}
    assert "excluded" in changed[code]["changed"] and changed[code]["excluded_b"] is True
    assert diff["summary"]["excluded"] == 1
    # ranks behind it moved up: every other change is a rank or score change only
    assert all(set(c["changed"]) <= {"rank", "score"} for k, c in changed.items() if k != code)
    xlsx = p.get(f"/api/runs/{p.run_id}/diff/{new_id}?format=xlsx", "officer")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_a_failed_run_leaves_no_results_and_the_previous_stays_current(golden_park, monkeypatch):
    p = golden_park
    from service import runs

    def broken(*a, **kw):
        raise RuntimeError("disk full while writing")
    monkeypatch.setattr(runs, "write", broken)
    r = p.post("/api/runs", "officer", json={"year": 2022})
    body = r.get_json()
    assert body["status"] == "failed" and "disk full" in body["error"]
    from service import db
    from service.models import AwardLine, Result, RunFile
    from sqlalchemy import func, select
    with p.app.app_context():
        s = db.session()
        for model in (Result, AwardLine, RunFile):
            assert s.scalar(select(func.count()).select_from(model).where(model.run_id == body["id"])) == 0
    cur = p.get("/api/enterprises?per_page=1", "officer").get_json()
    assert cur["run_id"] == p.run_id


def test_a_killed_run_counts_as_failed(golden_park):
    import datetime as dt

    from service import db
    from service.models import Run
    p = golden_park
    with p.app.app_context():
        s = db.session()
        run = Run(year=2022, status="running", heartbeat=dt.datetime(2020, 1, 1), policy_name="xinxiang-2022")
        s.add(run)
        s.commit()
        rid = run.id
    assert p.get(f"/api/runs/{rid}", "officer").get_json()["status"] == "failed"
    assert p.get("/api/enterprises?per_page=1", "officer").get_json()["run_id"] == p.run_id


@pytest.mark.parametrize("body, field", [({}, "year"), ({"year": "二〇二二"}, "year"), ({"year": 1900}, "year"),
                                         ({"year": 2022, "budget": -1}, "budget"),
                                         ({"year": 2022, "strategy": "lottery"}, "strategy"),
                                         ({"year": 2022, "extra": 1}, "extra"),
                                         ({"year": 2021}, "year"), ({"year": 2022, "policy": "../etc"}, "policy"),
                                         ({"year": 2022, "policy": "no-such-policy"}, "policy")])
def test_bad_run_requests_are_422_with_the_field(golden_park, body, field):
    r = golden_park.post("/api/runs", "officer", json=body)
    assert r.status_code == 422, r.get_json()
    assert field in str(r.get_json()["errors"])


def test_a_run_on_a_thread_reports_progress_until_done(golden_park):
    import time
    p = golden_park
    p.app.config["RUNS_INLINE"] = False
    r = p.post("/api/runs", "officer", json={"year": 2022})
    assert r.status_code == 202
    rid = r.get_json()["id"]
    seen = set()
    for _ in range(600):
        st = p.get(f"/api/runs/{rid}", "officer").get_json()
        seen.add(st["status"])
        if st["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert st["status"] == "done" and st["progress"] == 100, st
    assert seen <= {"queued", "running", "done"}


def test_exports_in_csv_and_xlsx(golden_park):
    import openpyxl
    p = golden_park
    r = p.get("/api/enterprises?format=csv&stage=growth", "officer")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows and all(x["发展阶段"] == "成长期" for x in rows)
    total = p.get("/api/enterprises?stage=growth", "officer").get_json()["total"]
    assert len(rows) == total
    r = p.get("/api/awards?format=xlsx", "finance")
    ws = openpyxl.load_workbook(io.BytesIO(r.data)).active
    header = [c.value for c in ws[1]]
    assert header[:4] == ["统一社会信用代码", "企业名称", "条款", "奖励事项"]
    granted = sum(row[header.index("拨付金额（元）")] for row in ws.iter_rows(min_row=2, values_only=True))
    assert granted == p.get("/api/awards", "finance").get_json()["totals"]["granted_yuan"]
    for path in ("/api/runs?format=csv", "/api/imports?format=xlsx", "/api/audit?format=csv",
                 f"/api/enterprises/{p.own}/eligibility?format=csv", "/api/rankings?format=xlsx",
                 "/api/aggregates?format=csv", "/api/declarations?format=csv", f"/api/enterprises/{p.own}/records?format=xlsx"):
        resp = p.get(path, "admin" if "eligibility" not in path else "finance")
        assert resp.status_code == 200, path
        assert resp.headers["Content-Type"].startswith(("text/csv", "application/vnd.openxml")), path


@pytest.mark.parametrize("sort", ["final_score", "rank_overall"])
def test_enterprise_list_pages_put_unscored_enterprises_last_either_way(golden_park, sort):
    """The enterprise list, page by page, sorted either way: the scored enterprises in order
    (ties by credit code), the excluded ones (no score) after them; the total counted from the
    results alone, or with the enterprise's columns when a filter reads them."""
    p = golden_park
    for order in ("asc", "desc"):
        items, page, total = [], 1, None
        while total is None or len(items) < total:
            body = p.get(f"/api/enterprises?run={p.run_id}&sort={sort}&order={order}&per_page=40&page={page}",
                         "officer").get_json()
            total, items, page = body["total"], items + body["items"], page + 1
            assert body["items"]
        assert total == len(items) == 300
        scored = [i for i in items if i[sort] is not None]
        assert items[:len(scored)] == scored and 0 < len(scored) < total
        keys = [(i[sort], i["credit_code"]) for i in scored]
        assert keys == sorted(keys, key=lambda k: ((-k[0] if order == "desc" else k[0]), k[1]))
    park = items[0]["park"]
    body = p.get(f"/api/enterprises?run={p.run_id}&park={park}&per_page=500", "officer").get_json()
    assert body["total"] == len(body["items"]) == sum(i["park"] == park for i in items) > 0
