"""The Flask app: the results page lists the evaluated year's enterprises by stage."""
import csv

from service import create_app
from service.cli import cli


def test_results_page_lists_each_stage(runner, golden, tmp_path):
    out = tmp_path / "results"
    res = runner.invoke(cli, ["evaluate", "--records", str(golden / "records.csv"), "--contracts",
                              str(golden / "contracts.csv"), "--year", "2022", "--out", str(out)])
    assert res.exit_code == 0, res.output
    client = create_app({"TESTING": True, "RESULTS_DIR": str(out)}).test_client()
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for label in ("初创期", "成长期", "扩张期", "成熟期", "不纳入当年度积分管理"):
        assert label in html
    with open(out / "scores.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    top = next(r for r in rows if r["rank_overall"] == "1")
    assert top["credit_code"] in html and top["final_score"] in html
    excluded = [r for r in rows if r["excluded"] == "true"]
    assert f"不纳入（{len(excluded)}）" in html
    # mature firms are listed in their stage section in rank order
    mature = html.split('id="mature"')[1].split('id="excluded"')[0]
    codes = [r["credit_code"] for r in sorted((r for r in rows if r["stage"] == "mature" and r["excluded"] == "false"),
                                              key=lambda r: (int(r["rank_in_stage"]), r["credit_code"]))]
    positions = [mature.index(c) for c in codes]
    assert positions == sorted(positions)
    # every table on the page can be downloaded as written
    def fetch(path):
        resp = client.get(path)
        try:
            return resp.status_code, resp.headers.get("Content-Disposition", ""), resp.get_data()
        finally:
            resp.close()
    status, disposition, data = fetch("/export/scores.csv")
    assert status == 200 and "attachment" in disposition and data == (out / "scores.csv").read_bytes()
    assert fetch("/export/awards.csv")[2] == (out / "awards.csv").read_bytes()
    assert "核定金额" in fetch("/export/awards.html")[2].decode("utf-8")
    assert client.get("/export/manifest.json").status_code == 404
    assert client.get("/export/..%2Fsecret").status_code == 404


def test_no_results_yet_is_a_clear_404(client):
    page = client.get("/")
    assert page.status_code == 404
    assert "尚无评价结果" in page.get_data(as_text=True)


def test_demo_command_generates_and_evaluates(runner, tmp_path):
    res = runner.invoke(cli, ["demo", "--out", str(tmp_path / "demo"), "--enterprises", "200", "--year", "2024"])
    assert res.exit_code == 0, res.output
    with open(tmp_path / "demo" / "results" / "scores.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 200
    assert {r["stage"] for r in rows} == {"startup", "growth", "expansion", "mature"}
    with open(tmp_path / "demo" / "records.csv", encoding="utf-8") as f:
        years = {r["year"] for r in csv.DictReader(f)}
    assert years == {"2021", "2022", "2023", "2024"}
