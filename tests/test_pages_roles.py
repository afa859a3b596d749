"""Each role's missing pieces (issue 14, item 6), through the pages as each role uses them:
the enterprise's consent switch beside its lookup history, the finance menu, the
administrator's users page (add, disable, enable, reset password, change role) and the
searchable audit log, the bank's list of consenting enterprises and its trimming of pasted
codes, the dashboard naming the batch of its honour lists, the officer's reminder that lists
are published separately. Every change is audited."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, Park, make_app


@pytest.fixture(scope="module")
def rp(tmp_path_factory):
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('roles') / 'r.db'}", WTF_CSRF_ENABLED=False)
    p = Park(app)
    p.import_golden()
    p.run_id = p.run(budget=28000000)
    p.post(f"/api/runs/{p.run_id}/publish", "officer")
    p.post(f"/api/runs/{p.run_id}/honours", "officer", json={"scope": "overall", "top_n": 10})
    yield p
    app.extensions["db_engine"].dispose()


def login(p, name, password=PASSWORD):
    c = p.app.test_client()
    r = c.post("/login", data={"username": name, "password": password})
    return c if r.status_code == 302 else None


def audit_actions(p, role="admin"):
    return [e["action"] for e in p.get("/api/audit", role).get_json()]


def test_enterprise_consent_switch_and_lookup_history(rp):
    c = login(rp, "ent")
    html = c.get(f"/enterprises/{rp.own}").get_data(as_text=True)
    assert 'id="consent-form"' in html and "点此同意" in html and 'id="lookups"' in html
    r = c.post(f"/enterprises/{rp.own}/consent", data={"consent": "1"})
    assert r.status_code == 302
    assert rp.get("/api/me", "enterprise").get_json()["credit_consent"] is True
    assert "credit.consent" in audit_actions(rp)
    b = login(rp, "bank")
    assert "信用参考等级" in b.get(f"/bank?code={rp.own}").get_data(as_text=True)
    html = c.get(f"/enterprises/{rp.own}").get_data(as_text=True)
    assert "点此撤回" in html and "已提供" in html          # the bank's lookup, beside the switch
    c.post(f"/enterprises/{rp.own}/consent", data={"consent": "0"})
    assert rp.get("/api/me", "enterprise").get_json()["credit_consent"] is False
    # another enterprise's switch is refused
    assert c.post(f"/enterprises/{rp.other}/consent", data={"consent": "1"}).status_code == 403


def test_bank_lists_consenting_enterprises_and_trims_pasted_codes(rp):
    c = login(rp, "ent")
    c.post(f"/enterprises/{rp.own}/consent", data={"consent": "1"})
    b = login(rp, "bank")
    html = b.get("/bank").get_data(as_text=True)
    listed = re.findall(r'<tr data-code="([^"]+)">', html)
    assert listed == [rp.own]
    pasted = " " + rp.own[:6] + "-" + rp.own[6:12] + " " + rp.own[12:].lower() + "\u3000"
    fullwidth = "".join(chr(ord(ch) + 0xFEE0) if ch.isalnum() else ch for ch in rp.own)
    for raw in (pasted, fullwidth):
        html = b.get("/bank", query_string={"code": raw}).get_data(as_text=True)
        assert 'id="grade"' in html and 'id="cleaned"' in html, raw


def test_finance_menu_reaches_what_finance_may_read(rp):
    c = login(rp, "finance")
    nav = re.search(r"<nav.*?</nav>", c.get("/").get_data(as_text=True), re.S).group(0)
    hrefs = re.findall(r'href="([^"]+)"', nav)
    for path in ("/workspace/awards", "/workspace/runs", "/workspace/compare", "/results", "/workspace/enterprises",
                 "/workspace/report", "/workspace/seed-pool", "/workspace/services"):
        assert path in hrefs, path
        r = c.get(path)
        assert r.status_code in (200, 302), (path, r.status_code)
    assert "/workspace/imports" not in hrefs and "/workspace/audit" not in hrefs


def test_admin_adds_disables_enables_resets_and_changes_roles(rp):
    a = login(rp, "admin")
    r = a.post("/workspace/users", data={"action": "add", "username": "clerk", "display_name": "经办员",
                                         "role": "finance", "password": "Clerk-pass-2025"})
    assert r.status_code == 302
    assert login(rp, "clerk", "Clerk-pass-2025") is not None
    html = a.get("/workspace/users").get_data(as_text=True)
    uid = int(re.search(r'<tr data-id="(\d+)" data-username="clerk">', html).group(1))
    # a weak password is refused in Chinese, nothing changes
    a.post("/workspace/users", data={"action": "password", "id": uid, "password": "short"})
    assert "密码至少" in a.get("/workspace/users").get_data(as_text=True)
    a.post("/workspace/users", data={"action": "password", "id": uid, "password": "New-clerk-pass-9"})
    assert login(rp, "clerk", "Clerk-pass-2025") is None and login(rp, "clerk", "New-clerk-pass-9") is not None
    a.post("/workspace/users", data={"action": "role", "id": uid, "role": "officer"})
    html = a.get("/workspace/users").get_data(as_text=True)
    assert re.search(rf'<tr data-id="{uid}".*?class="role"[^>]*>科技局工作人员<', html, re.S)
    a.post("/workspace/users", data={"action": "disable", "id": uid})
    assert login(rp, "clerk", "New-clerk-pass-9") is None
    a.post("/workspace/users", data={"action": "enable", "id": uid})
    assert login(rp, "clerk", "New-clerk-pass-9") is not None
    actions = audit_actions(rp)
    for act in ("user.add", "user.password", "user.role", "user.disable", "user.enable"):
        assert act in actions, act
    # the administrator cannot disable itself; others may not use the page
    me = int(re.search(r'<tr data-id="(\d+)" data-username="admin">', html).group(1))
    a.post("/workspace/users", data={"action": "disable", "id": me})
    assert login(rp, "admin") is not None
    assert login(rp, "officer").post("/workspace/users", data={"action": "add"}).status_code == 403


def test_audit_log_page_searches(rp):
    o = login(rp, "officer")
    html = o.get("/workspace/audit").get_data(as_text=True)
    total = int(re.search(r'id="audit-total">([\d,]+)<', html).group(1).replace(",", ""))
    assert total >= 5 and "发布批次" in html
    html = o.get("/workspace/audit?action=run.publish").get_data(as_text=True)
    assert set(re.findall(r'<tr data-action="([^"]+)"', html)) == {"run.publish"}
    assert f"第 {rp.run_id} 批次" in html
    html = o.get("/workspace/audit?q=officer").get_data(as_text=True)
    n = int(re.search(r'id="audit-total">([\d,]+)<', html).group(1).replace(",", ""))
    assert 0 < n < total
    assert login(rp, "finance").get("/workspace/audit").status_code == 403


def test_dashboard_names_the_batch_and_run_page_reminds(rp):
    html = rp.app.test_client().get("/").get_data(as_text=True)
    assert re.search(rf'id="honours-batch">以下榜单依据第 {rp.run_id} 批次（2022年度）', html)
    o = login(rp, "officer")
    html = o.get(f"/workspace/runs/{rp.run_id}").get_data(as_text=True)
    assert "发布批次不会自动发布榜单" in html
    assert "年度奖励预算 28,000,000 元" in html and "pro_rata" not in html
    assert "xinxiang-2022" not in html and "新开〔2022〕110号" in html


def test_errors_in_chinese(rp):
    c = rp.app.test_client()
    r = c.get("/no-such-page")
    assert r.status_code == 404 and "页面不存在" in r.get_data(as_text=True)
    r = login(rp, "bank").get("/workspace/awards")
    assert r.status_code == 403 and "无权访问" in r.get_data(as_text=True)
    r = login(rp, "officer").get("/workspace/runs/999999")
    assert r.status_code == 404 and "页面不存在" in r.get_data(as_text=True)
    r = c.get("/api/no-such")
    assert r.status_code == 404 and r.is_json


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"1 0 obj <<>> endobj\n" * 20


def declare(c, p, files, value="3"):
    from io import BytesIO
    data = {"year": "2022", "field": "standards", "value": value, "reason": "补报",
            "evidence": [(BytesIO(body), name) for name, body in files]}
    return c.post(f"/enterprises/{p.own}/declare", data=data, content_type="multipart/form-data")


def test_evidence_files_checked_and_seen_by_the_officer(rp):
    c = login(rp, "ent")
    before = len(rp.get("/api/declarations", "officer").get_json())
    # a file that says it is a PDF but is not, an executable, and an oversize file: refused, nothing declared
    rp.app.config["EVIDENCE_MAX_BYTES"] = 50_000        # (small: the test client would spool a real 5 MB to disk)
    for files in ([("证书.pdf", b"MZ\x90\x00 not a pdf")], [("run.exe", b"MZ\x90\x00")],
                  [("big.png", PNG + b"\x00" * 60_000)]):
        declare(c, rp, files)
        html = c.get(f"/enterprises/{rp.own}").get_data(as_text=True)
        assert "申报未提交" in html, files[0][0]
    assert len(rp.get("/api/declarations", "officer").get_json()) == before
    declare(c, rp, [("标准证书.pdf", PDF), ("scan.png", PNG)])
    decls = rp.get("/api/declarations", "officer").get_json()
    assert len(decls) == before + 1
    did = decls[-1]["id"]
    o = login(rp, "officer")
    html = o.get("/workspace/declarations").get_data(as_text=True)
    links = re.findall(rf'href="(/declarations/{did}/evidence/\d+)">证明材料：([^<]+)<', html)
    assert [name for _, name in links] == ["标准证书.pdf", "scan.png"]
    r = o.get(links[0][0])
    assert r.status_code == 200 and r.data == PDF and r.content_type == "application/pdf"
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert c.get(links[1][0]).data == PNG                        # the enterprise sees its own
    assert login(rp, "finance").get(links[0][0]).status_code == 403
    assert login(rp, "ent2").get(links[0][0]).status_code == 403  # another enterprise does not
    assert "declaration.evidence" in audit_actions(rp)
