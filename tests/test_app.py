"""The pages (login with CSRF, results by stage from the stored run) and the ops commands
(demo, user add, import, run, export, runs diff)."""
import csv
import io
import re

import openpyxl
from click.testing import CliRunner

from service import create_app
from service.cli import cli
from tests.conftest import GOLDEN, PASSWORD


def csrf_of(html):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def login(client, username, password=PASSWORD):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_login_needs_the_csrf_token_and_the_right_password(lite_park):
    c = lite_park.app.test_client()
    r = c.post("/login", data={"username": "officer", "password": PASSWORD})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    r = login(c, "officer", "wrong-password")
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)
    r = login(c, "officer")
    assert r.status_code == 302
    assert "科技局工作人员" in c.get("/").get_data(as_text=True) or c.get("/").status_code == 404
    # the session reads the API (GET only) as that user
    assert c.get("/api/me").get_json()["role"] == "officer"
    # logging out needs the token too
    assert c.post("/logout").status_code == 400
    token = csrf_of(c.get("/login").get_data(as_text=True))
    assert c.post("/logout", data={"csrf_token": token}).status_code == 302
    assert c.get("/api/me").status_code == 401


def test_the_session_cannot_write_through_the_api(lite_park):
    c = lite_park.app.test_client()
    login(c, "officer")
    # a cross-site form post riding on the cookie is not authenticated
    assert c.post("/api/runs", json={"year": 2022}).status_code == 401


def test_results_page_lists_each_stage_for_staff(lite_park):
    p = lite_park
    p.import_golden()
    run_id = p.run()
    client = p.app.test_client()
    assert client.get("/").status_code == 404                  # nothing published yet for the public
    assert "尚无评价结果" in client.get("/").get_data(as_text=True)
    assert client.get(f"/runs/{run_id}/export/scores.csv").status_code == 302     # staff only: log in first
    p.post(f"/api/runs/{run_id}/publish", "officer")
    assert "创新积分榜单" in client.get("/").get_data(as_text=True)
    assert client.get("/results").status_code == 302            # the full results: staff only
    login(client, "officer")
    html = client.get("/results").get_data(as_text=True)
    for label in ("初创期", "成长期", "扩张期", "成熟期", "不纳入当年度积分管理"):
        assert label in html
    scores = p.get(f"/api/runs/{run_id}/files/scores.csv", "officer").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(scores)))
    top = next(r for r in rows if r["rank_overall"] == "1")
    assert top["credit_code"] in html and top["final_score"] in html
    excluded = [r for r in rows if r["excluded"] == "true"]
    assert f"不纳入（{len(excluded)}）" in html
    mature = html.split('id="mature"')[1].split('id="excluded"')[0]
    codes = [r["credit_code"] for r in sorted((r for r in rows if r["stage"] == "mature" and r["excluded"] == "false"),
                                              key=lambda r: (int(r["rank_in_stage"]), r["credit_code"]))]
    positions = [mature.index(c) for c in codes]
    assert positions == sorted(positions)
    r = client.get(f"/runs/{run_id}/export/scores.csv")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"] and r.get_data(as_text=True) == scores
    assert "核定金额" in client.get(f"/runs/{run_id}/export/awards.html").get_data(as_text=True)
    assert client.get(f"/runs/{run_id}/export/manifest.json").status_code == 404
    assert client.get(f"/runs/{run_id}/export/..%2Fsecret").status_code == 404


def test_api_docs_and_openapi(lite_park):
    c = lite_park.app.test_client()
    spec = c.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    paths = set(spec["paths"])
    for path in ("/api/enterprises", "/api/enterprises/{code}", "/api/rankings", "/api/awards", "/api/runs",
                 "/api/runs/{a}/diff/{b}", "/api/credit/{code}", "/api/imports", "/api/declarations", "/api/tokens"):
        assert path in paths, path
    assert "EnterpriseQuery" in str(spec) or "per_page" in str(spec)
    html = c.get("/api/docs").get_data(as_text=True)
    assert "/api/enterprises" in html and "企业列表" in html and "<script" not in html


def run_cli(args, env, input=None):
    res = CliRunner().invoke(cli, args, env=env, input=input)
    return res


def test_ops_commands_end_to_end(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'ops.db'}"}
    r = run_cli(["user", "add", "ops", "--role", "officer", "--password", "ops-password-1"], env)
    assert r.exit_code == 0, r.output
    r = run_cli(["user", "add", "ops", "--role", "officer", "--password", "ops-password-1"], env)
    assert r.exit_code == 2 and "已存在" in r.output
    bad = tmp_path / "bad.csv"
    text = (GOLDEN / "records.csv").read_text(encoding="utf-8").replace(",2019,", ",20x9,", 1)
    bad.write_text(text, encoding="utf-8")
    r = run_cli(["import", str(bad), "--kind", "records", "--user", "ops"], env)
    assert r.exit_code == 2 and "未导入任何数据" in r.output and "第2行" in r.output
    for kind in ("records", "contracts"):
        r = run_cli(["import", str(GOLDEN / f"{kind}.csv"), "--kind", kind, "--user", "ops"], env)
        assert r.exit_code == 0, r.output
    r = run_cli(["run", "--year", "2022", "--budget", "28000000", "--user", "ops"], env)
    assert r.exit_code == 0 and "第 1 批次完成" in r.output, r.output
    r = run_cli(["run", "--year", "2022", "--budget", "15000000", "--publish"], env)
    assert r.exit_code == 0 and "已发布" in r.output
    out = tmp_path / "scores.csv"
    r = run_cli(["export", "--run", "1", "--what", "scores.csv", "--out", str(out)], env)
    assert r.exit_code == 0
    expected = (GOLDEN / "expected-budget-28000000-pro_rata" / "scores.csv").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8").splitlines() == expected.splitlines()
    r = run_cli(["export", "--what", "awards", "--format", "xlsx", "--out", str(tmp_path / "awards.xlsx")], env)
    assert r.exit_code == 0
    ws = openpyxl.load_workbook(tmp_path / "awards.xlsx").active
    assert ws.cell(1, 4).value == "奖励事项" and ws.max_row > 1
    r = run_cli(["runs", "diff", "1", "2", "--out", str(tmp_path / "diff.csv")], env)
    assert r.exit_code == 0 and "奖励新增 0" in r.output and "变化" in r.output
    assert "拨付 27,999,999 → 14,999,999 元" in r.output or "→" in r.output
    header = (tmp_path / "diff.csv").read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert header[:3] == ["统一社会信用代码", "企业名称", "变化"] and not [h for h in header if re.fullmatch(r"[a-z_]+", h)]
    r = run_cli(["runs", "list"], env)
    assert "已发布" in r.output.splitlines()[1] and "xinxiang-2022" not in r.output and "done" not in r.output
    r = run_cli(["run", "--year", "2030"], env)
    assert r.exit_code == 2 and "2030" in r.output


def test_demo_command_loads_a_database_with_a_user_per_role(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    r = run_cli(["demo", "--out", str(tmp_path / "demo"), "--enterprises", "200", "--year", "2024"], env)
    assert r.exit_code == 0, r.output
    for role, zh in (("admin", "系统管理员"), ("officer", "科技局工作人员"), ("finance", "财政局"), ("bank", "合作银行"),
                     ("enterprise", "企业")):
        line = next(x for x in r.output.splitlines() if f"登录 / login  {role} " in x)
        assert line.rstrip().split("角色 ")[1].startswith(zh), line
    # the enterprise login names its enterprise; two years are evaluated and published
    assert re.search(r"角色 企业（.+，统一社会信用代码 [0-9A-Z]{18}，", r.output), r.output
    assert "2023 年度（第 1 批次）、2024 年度（第 2 批次）" in r.output
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "TESTING": True})
    c = app.test_client()
    token = c.post("/api/tokens", json={"username": "finance", "password": "finance-demo-2024"}).get_json()["token"]
    page = c.get("/api/enterprises?per_page=1", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert page["total"] == 200 and page["year"] == 2024
    assert c.get("/api/rankings").status_code == 200            # published for the public
    runs = c.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert sorted((x["year"], bool(x["published_at"])) for x in runs) == [(2023, True), (2024, True)]
    m = c.get("/api/reports/monitoring?year=2024", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert m["change"] is not None                              # the report's year-on-year part is filled
    app.extensions["db_engine"].dispose()


def test_page_forms_refuse_bad_input_with_a_message(lite_park):
    p = lite_park
    p.import_golden()
    run_id = p.run()
    off = p.app.test_client()
    login(off, "officer")
    token = csrf_of(off.get("/login").get_data(as_text=True))
    r = off.post("/workspace/runs", data={"csrf_token": token, "year": "2022", "budget": "-5"}, follow_redirects=True)
    assert "非负整数" in r.get_data(as_text=True)
    r = off.post("/workspace/runs", data={"csrf_token": token, "year": "1990"}, follow_redirects=True)
    assert "没有企业记录" in r.get_data(as_text=True)
    r = off.post("/workspace/runs", data={"year": "2022"})
    assert r.status_code == 400                                 # no CSRF token
    r = off.post("/workspace/imports", data={"csrf_token": token, "kind": "records",
                                             "file": (io.BytesIO(b"x"), "notes.txt")})
    assert "请选择 .csv 或 .xlsx 文件" in r.get_data(as_text=True)
    r = off.post("/workspace/declarations", data={"csrf_token": token, "id": "999", "decision": "approve"})
    assert r.status_code == 404
    ent = p.app.test_client()
    login(ent, "ent")
    token = csrf_of(ent.get("/login").get_data(as_text=True))
    for data, message in (({"year": "二〇二二", "field": "revenue", "value": "1"}, "年度应为整数"),
                          ({"year": "2022", "field": "revenue", "value": "很多"}, "不是数字"),
                          ({"year": "2005", "field": "revenue", "value": "1"}, "没有 2005 年度的记录")):
        r = ent.post(f"/enterprises/{p.own}/declare", data={"csrf_token": token, **data}, follow_redirects=True)
        assert message in r.get_data(as_text=True), message
    assert ent.post(f"/enterprises/{p.other}/declare", data={"csrf_token": token, "year": "2022"}).status_code == 403
    assert ent.get(f"/workspace/runs/{run_id}").status_code == 403
    assert ent.get("/enterprises/NOSUCHCODE").status_code == 403
    assert off.get("/enterprises/NOSUCHCODE").status_code == 404
    assert off.get("/workspace/runs/99999").status_code == 404
    assert off.get("/workspace/compare?a=1&b=99999").status_code == 404
    assert off.get("/workspace/enterprises?page=-3&min_score=abc&sort=evil").status_code == 200
