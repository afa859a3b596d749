"""Data as the plan gathers it (§四.(一), issue 17): department extracts merged field by field
with their source, provenance of every value (to the run that read it), conflicts between
sources, published lists, and 公示 with objections."""
from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import GOLDEN, PASSWORD, Park, make_app


def rows_of(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path, rows, header=None):
    header = header or list(rows[0])
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def add_department_users(p, **sources):
    """A department user per source (username -> source key), with an API token."""
    from service import db
    from service.auth import create_user, issue_token
    with p.app.app_context():
        s = db.session()
        for name, source in sources.items():
            u = create_user(s, name, PASSWORD, "department", display_name=f"{name} 报送员", source=source)
            p.tokens[name] = issue_token(s, u)
        s.commit()


@pytest.fixture
def dept(park):
    """Golden records imported, a tax-bureau and an environment-bureau user; on SQLite and
    PostgreSQL (merges, provenance rows and conflicts go through both drivers)."""
    p = park
    p.import_golden()
    add_department_users(p, tax="tax", env="environment")
    return p


def records(p, code):
    return {r["year"]: r for r in p.get(f"/api/enterprises/{code}/records", "officer").get_json()["records"]}


def tax_file(tmp_path, rows, name="tax.csv"):
    return write_rows(tmp_path / name, rows, ["credit_code", "year", "revenue", "rd_tax_deduction"])


def test_tax_file_changes_its_two_fields_and_nothing_else(dept, tmp_path):
    p = dept
    golden = [r for r in rows_of(GOLDEN / "records.csv") if r["year"] == "2022"][:3]
    before = {r["credit_code"]: records(p, r["credit_code"]) for r in golden}
    rows = [{"credit_code": r["credit_code"], "year": "2022", "revenue": "4321.5", "rd_tax_deduction": "12"}
            for r in golden]
    r = p.upload(tax_file(tmp_path, rows), "records", role="tax")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["rows"], body["added"], body["replaced"]) == (3, 0, 3)
    for g in golden:
        after = records(p, g["credit_code"])
        old = before[g["credit_code"]]
        assert after["2022"]["revenue"] == "4321.5" and after["2022"]["rd_tax_deduction"] == "12.0"
        changed = {k for k in after["2022"] if after["2022"][k] != old["2022"][k]}
        assert changed == {"revenue", "rd_tax_deduction"}
        assert {y: v for y, v in after.items() if y != "2022"} == {y: v for y, v in old.items() if y != "2022"}


def test_a_field_of_another_source_is_refused_naming_its_owner(dept, tmp_path):
    p = dept
    golden = [r for r in rows_of(GOLDEN / "records.csv") if r["year"] == "2022"][:2]
    before = {r["credit_code"]: records(p, r["credit_code"]) for r in golden}
    rows = [{"credit_code": r["credit_code"], "year": "2022", "revenue": "1", "rd_tax_deduction": "1"} for r in golden]
    r = p.upload(tax_file(tmp_path, rows), "records", role="env")
    assert r.status_code == 422, r.get_json()
    cells = {c["column"]: c["reason"] for c in r.get_json()["bad_cells"]}
    assert "税务局" in cells["revenue"] and "生态环境局" in cells["revenue"]
    assert "税务局" in cells["rd_tax_deduction"]
    assert {r["credit_code"]: records(p, r["credit_code"]) for r in golden} == before
    audit = p.get("/api/audit?action=import.rejected", "officer").get_json()
    assert audit and audit[0]["target"].endswith("tax.csv")
    # a department may not name another source, nor import contracts
    assert p.upload(GOLDEN / "contracts.csv", "contracts", role="env").status_code == 422


def test_a_new_enterprise_year_needs_the_required_columns(dept, tmp_path):
    p = dept
    code = rows_of(GOLDEN / "records.csv")[0]["credit_code"]
    r = p.upload(tax_file(tmp_path, [{"credit_code": code, "year": "2023", "revenue": "5", "rd_tax_deduction": "1"}]),
                 "records", role="tax")
    assert r.status_code == 422
    reasons = " ".join(c["reason"] for c in r.get_json()["bad_cells"])
    assert "尚无 2023 年度记录" in reasons and "注册成立日期" in reasons
    assert "2023" not in records(p, code)


def test_per_source_template_and_sources(dept):
    import openpyxl
    p = dept
    r = p.get("/api/templates/records.xlsx?source=tax")
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    header = [c.value for c in wb["数据"][1]]
    assert {"统一社会信用代码", "评价年度", "营业收入（万元）"} <= set(header)
    assert "环境信用等级" not in header
    assert p.get("/api/templates/records.xlsx?source=nobody").status_code == 404
    body = p.get("/api/sources", "tax").get_json()
    tax = next(s for s in body["sources"] if s["key"] == "tax")
    assert tax["name"] == "税务局" and {"revenue", "rd_tax_deduction"} <= {f["key"] for f in tax["fields"]}
    assert body["precedence"][0] == "tax"


def test_conflicting_sources_are_flagged_and_precedence_decides(dept, tmp_path):
    """The tax bureau's revenue stands against the enterprise's own report of it (an officer
    imports the enterprises' forms as 企业自报): the conflict is listed, tax is kept."""
    p = dept
    g = [r for r in rows_of(GOLDEN / "records.csv") if r["year"] == "2022"][0]
    code = g["credit_code"]
    assert p.upload(tax_file(tmp_path, [{"credit_code": code, "year": "2022", "revenue": "800",
                                         "rd_tax_deduction": "3"}]), "records", role="tax").status_code == 201
    path = write_rows(tmp_path / "self.csv", [{"credit_code": code, "year": "2022", "revenue": "950"}])
    from werkzeug.test import EnvironBuilder
    with open(path, "rb") as f:
        b = EnvironBuilder(path="/api/imports", method="POST", headers=p.h("officer"),
                           data={"kind": "records", "source": "self_report", "file": (f, "self.csv")})
        r = p.client.open(b.get_environ())
    assert r.status_code == 201, r.get_json()
    assert records(p, code)["2022"]["revenue"] == "800.0"          # tax ranks before the enterprise
    conflicts = p.get("/api/conflicts?status=open", "officer").get_json()["items"]
    assert len(conflicts) == 1
    c = conflicts[0]
    assert (c["credit_code"], c["year"], c["field"]) == (code, 2022, "revenue")
    assert (c["kept_source_zh"], c["kept_value"], c["other_source_zh"], c["other_value"]) == \
        ("税务局", "800.0", "企业自报", "950.0")
    prov = p.get(f"/api/enterprises/{code}/provenance?year=2022", "officer").get_json()
    rev = prov["records"]["2022"]["revenue"]
    assert rev["source_zh"] == "税务局" and rev["kind"] == "import" and rev["import_filename"] == "tax.csv"
    assert rev["user"] == "tax"
    # the officer takes the enterprise's figure: a correction, the conflict closed
    r = p.post(f"/api/conflicts/{c['id']}/decision", "officer", json={"use": "other", "reason": "核实"})
    assert r.status_code == 200 and r.get_json()["status"] == "resolved"
    assert records(p, code)["2022"]["revenue"] == "950.0"
    assert p.get("/api/conflicts?status=open", "officer").get_json()["items"] == []
    rev = p.get(f"/api/enterprises/{code}/provenance?year=2022", "officer").get_json()["records"]["2022"]["revenue"]
    assert rev["kind"] == "correction"
    actions = {a["action"] for a in p.get("/api/audit", "officer").get_json()}
    assert {"conflict.open", "conflict.resolve", "record.correct"} <= actions


def test_public_list_sets_a_field_and_holds_unmatched_and_ambiguous_names(dept, tmp_path):
    p = dept
    golden = [r for r in rows_of(GOLDEN / "records.csv") if r["year"] == "2022"]
    a, b = golden[0], golden[1]
    # two stored enterprises share a name: a list row naming it is ambiguous
    from service import db
    from service.models import Enterprise
    with p.app.app_context():
        s = db.session()
        s.get(Enterprise, golden[2]["credit_code"]).name = "同名科技有限公司"
        s.get(Enterprise, golden[3]["credit_code"]).name = "同名科技有限公司"
        s.commit()
    path = write_rows(tmp_path / "hte.csv", [
        {"统一社会信用代码": a["credit_code"], "企业名称": "", "认定日期": "2022-12-20"},
        {"统一社会信用代码": "", "企业名称": b["name"], "认定日期": "2022年12月20日"},
        {"统一社会信用代码": "", "企业名称": "查无此企业有限公司", "认定日期": "2022-12-20"},
        {"统一社会信用代码": "", "企业名称": "同名科技有限公司", "认定日期": "2022-12-20"}])
    from werkzeug.test import EnvironBuilder
    with open(path, "rb") as f:
        env = EnvironBuilder(path="/api/public-lists", method="POST", headers=p.h("officer"),
                             data={"title": "河南省2022年第一批高新技术企业名单", "field": "hte_recognized_in_year",
                                   "file": (f, "hte.csv")}).get_environ()
        r = p.client.open(env)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["rows"], body["applied"], body["held"]) == (4, 2, 2)
    status = {e["row"]: e["status"] for e in body["entries"]}
    assert status == {2: "applied", 3: "applied", 4: "unmatched", 5: "ambiguous"}
    amb = next(e for e in body["entries"] if e["status"] == "ambiguous")
    assert sorted(amb["candidates"]) == sorted([golden[2]["credit_code"], golden[3]["credit_code"]])
    # a: the science bureau's "no" (golden) stands against the list's "yes": flagged, and the
    # package's precedence (科技局 before 公开数据) keeps it until an officer decides
    assert a["hte_recognized_in_year"] == "false" and b["hte_recognized_in_year"] == "true"
    assert records(p, a["credit_code"])["2022"]["hte_recognized_in_year"] == "false"
    conflicts = p.get("/api/conflicts?status=open", "officer").get_json()["items"]
    assert [(c["credit_code"], c["field"], c["kept_source_zh"], c["other_source_zh"], c["other_value"])
            for c in conflicts] == [(a["credit_code"], "hte_recognized_in_year", "科技局", "公开数据", "true")]
    # b: the list agrees with what is stored; its value now comes from the list
    prov = p.get(f"/api/enterprises/{b['credit_code']}/provenance?year=2022", "officer").get_json()
    got = prov["records"]["2022"]["hte_recognized_in_year"]
    assert got["source_zh"] == "公开数据" and got["kind"] == "public_list" and got["public_list_id"] == body["id"]
    # the held rows are not guessed: an officer names the enterprise the ambiguous row means
    r = p.post(f"/api/public-lists/entries/{amb['id']}/decision", "officer",
               json={"credit_code": golden[3]["credit_code"], "reason": "核对地址"})
    assert r.status_code == 200 and r.get_json()["status"] == "applied"
    assert len(p.get("/api/conflicts?status=open", "officer").get_json()["items"]) == 2
    unmatched = next(e for e in body["entries"] if e["status"] == "unmatched")
    r = p.post(f"/api/public-lists/entries/{unmatched['id']}/decision", "officer", json={"reason": "非本区企业"})
    assert r.get_json()["status"] == "dismissed"
    detail = p.get(f"/api/public-lists/{body['id']}", "officer").get_json()
    assert (detail["applied"], detail["held"]) == (3, 0)
    actions = [x["action"] for x in p.get("/api/audit", "officer").get_json()]
    assert "public_list.import" in actions and actions.count("public_list.review") == 2


def post_objection(p, pid, role="enterprise", files=(), **form):
    from werkzeug.test import EnvironBuilder
    data = dict(form)
    if files:
        data["evidence"] = [(io.BytesIO(content), name) for name, content in files]
    env = EnvironBuilder(path=f"/api/publicity/{pid}/objections", method="POST", headers=p.h(role),
                         data=data).get_environ()
    return p.client.open(env)


def test_publicity_objection_correction_new_run_and_final_list(park):
    p = park
    p.import_golden()
    run_id = p.run(budget=28000000)
    assert p.post(f"/api/runs/{run_id}/publicity", "officer",
                  json={"starts_on": "2023-03-01", "ends_on": "2023-03-07"}).status_code == 409   # not published
    assert p.post(f"/api/runs/{run_id}/publish", "officer").status_code == 200
    assert p.post(f"/api/runs/{run_id}/honours", "officer", json={"scope": "overall", "top_n": 5}).status_code in (200, 201)
    p.app.config["TODAY"] = "2023-03-03"
    r = p.post(f"/api/runs/{run_id}/publicity", "officer", json={"starts_on": "2023-03-01", "ends_on": "2023-03-07"})
    assert r.status_code == 201, r.get_json()
    pub = r.get_json()
    assert pub["state"] == "open" and pub["awards"] and pub["honours"]
    listed = p.get("/api/publicity").get_json()["items"][0]
    assert (listed["starts_on"], listed["ends_on"], listed["state_zh"]) == ("2023-03-01", "2023-03-07", "公示中")
    pid = pub["id"]
    # evidence is checked by type, content and size before it is kept
    bad = post_objection(p, pid, item="RW-1", reason="x", files=[("a.exe", b"MZ...")])
    assert bad.status_code == 422 and "类型" in bad.get_json()["message"]
    fake = post_objection(p, pid, item="RW-1", reason="x", files=[("a.pdf", b"not a pdf")])
    assert fake.status_code == 422 and "不符" in fake.get_json()["message"]
    p.app.config["OBJECTION_MAX_FILE_BYTES"] = 1000
    big = post_objection(p, pid, item="RW-1", reason="x", files=[("a.pdf", b"%PDF-" + b"0" * 2000)])
    assert big.status_code == 422 and "超过" in big.get_json()["message"]
    assert p.get(f"/api/publicity/{pid}/objections", "officer").get_json()["items"] == []
    # the enterprise objects: its revenue was reported wrong
    r = post_objection(p, pid, item="营业收入有误", reason="税务局数据未含第四季度",
                       files=[("完税证明.pdf", b"%PDF-1.4 evidence")])
    assert r.status_code == 201, r.get_json()
    o = r.get_json()
    assert o["status"] == "open" and o["evidence"][0]["content_type"] == "application/pdf"
    assert p.get(o["evidence"][0]["url"], "other_enterprise").status_code in (403, 404)
    assert p.get(o["evidence"][0]["url"], "officer").data == b"%PDF-1.4 evidence"
    other = post_objection(p, pid, role="other_enterprise", item="排名", reason="不服")
    assert other.status_code == 201
    # finalising now is refused: the period runs and objections are open
    assert p.post(f"/api/publicity/{pid}/finalise", "officer").status_code == 409
    # upheld: corrected, a new run, its diff attached
    r = p.post(f"/api/objections/{o['id']}/decision", "officer",
               json={"uphold": True, "reason": "核实完税证明", "field": "revenue", "value": "99999"})
    assert r.status_code == 200, r.get_json()
    up = r.get_json()
    assert up["status"] == "upheld" and up["new_run_id"] and up["new_run_id"] != run_id
    assert up["correction"]["field"] == "revenue" and up["correction"]["new"] == "99999.0"
    assert up["diff"]["summary"] and any(e["credit_code"] == p.own for e in up["diff"]["enterprises"])
    assert p.get(f"/api/publicity/{pid}").get_json()["run_id"] == up["new_run_id"]
    r = p.post(f"/api/objections/{other.get_json()['id']}/decision", "officer", json={"uphold": False,
                                                                                        "reason": "排名依规计算"})
    assert r.get_json()["status"] == "rejected"
    mine = p.get(f"/api/publicity/{pid}/objections", "enterprise").get_json()["items"]
    assert [x["status_zh"] for x in mine] == ["异议成立，已更正并重新计算"]
    assert p.post(f"/api/publicity/{pid}/finalise", "officer").status_code == 409       # the period has not ended
    p.app.config["TODAY"] = "2023-03-08"
    assert post_objection(p, pid, item="迟到", reason="x").status_code == 422
    r = p.post(f"/api/publicity/{pid}/finalise", "officer")
    assert r.status_code == 200, r.get_json()
    final = p.get(f"/api/publicity/{pid}").get_json()
    st = final["statement"]
    assert final["state_zh"] == "已定稿" and (st["starts_on"], st["ends_on"]) == ("2023-03-01", "2023-03-07")
    assert (st["objections"], st["upheld"], st["rejected"]) == (2, 1, 1)
    assert {x["decision"] for x in st["outcomes"]} == {"核实完税证明", "排名依规计算"}
    assert "reason" not in st["outcomes"][0] and "evidence" not in st["outcomes"][0]
    actions = [a["action"] for a in p.get("/api/audit", "officer").get_json()]
    for a in ("publicity.open", "objection.file", "objection.uphold", "objection.reject", "publicity.run",
              "publicity.finalise", "record.correct"):
        assert a in actions, a


def test_rules_check_names_an_unknown_source_and_a_bad_precedence(policy_copy, runner):
    from service.cli import cli
    data = policy_copy / "data.yaml"
    text = data.read_text(encoding="utf-8")
    assert "source: tax}" in text
    data.write_text(text.replace("{key: rd_tax_deduction, label: 研发费用加计扣除所得税减免额, kind: amount, unit: 万元, source: tax}",
                                 "{key: rd_tax_deduction, label: 研发费用加计扣除所得税减免额, kind: amount, unit: 万元, source: customs}")
                    .replace("source_precedence: [tax, ", "source_precedence: ["), encoding="utf-8")
    r = runner.invoke(cli, ["rules", "check", str(policy_copy)])
    assert r.exit_code != 0
    assert "rd_tax_deduction" in r.output and "customs" in r.output and "未在 sources 中声明" in r.output
    assert "source_precedence" in r.output


def test_every_field_of_the_bundled_package_names_a_declared_source(policy):
    data = policy.data
    assert all(f.source in data.sources for f in data.fields)
    assert {s.kind for s in data.sources.values()} == {"department", "declared", "public"}


def test_an_approved_declaration_is_the_enterprises_own_report(dept):
    p = dept
    r = p.post("/api/declarations", "enterprise", json={"year": 2022, "field": "graduates_hired", "value": "12",
                                                          "reason": "漏报"})
    assert r.status_code == 201, r.get_json()
    assert p.post(f"/api/declarations/{r.get_json()['id']}/decision", "officer",
                  json={"approve": True, "reason": "核实"}).status_code == 200
    got = p.get(f"/api/enterprises/{p.own}/provenance?year=2022", "enterprise").get_json()
    g = got["records"]["2022"]["graduates_hired"]
    assert (g["value"], g["source_zh"], g["kind_zh"], g["declaration_id"]) == ("12", "企业自报", "企业申报", r.get_json()["id"])
    assert "user" not in g                 # who entered a value is for staff
    assert p.get(f"/api/enterprises/{p.own}/provenance?year=2022", "officer").get_json()["records"]["2022"][
        "graduates_hired"]["user"] == "officer"
    assert p.get(f"/api/enterprises/{p.other}/provenance", "enterprise").status_code == 403
