"""Self-declarations and their review, officers' corrections, the banks' credit reference
with consent and its log, and the append-only audit log; on both databases."""
import pytest


def record(p, code, year=2022):
    recs = p.get(f"/api/enterprises/{code}/records", "officer").get_json()["records"]
    return next(r for r in recs if r["year"] == str(year))


def test_a_declaration_counts_only_after_approval(golden_park):
    p = golden_park
    before = record(p, p.own)["graduates_hired"]
    r = p.post("/api/declarations", "enterprise", json={"year": 2022, "field": "graduates_hired", "value": "37",
                                                         "reason": "漏报了应届生"})
    assert r.status_code == 201, r.get_json()
    decl = r.get_json()
    assert decl["status"] == "pending" and decl["previous"] == before and decl["field_zh"] == "当年吸纳高校应届毕业生人数"
    assert record(p, p.own)["graduates_hired"] == before          # not yet counted
    assert [d["id"] for d in p.get("/api/declarations?status=pending", "officer").get_json()] == [decl["id"]]
    assert p.get("/api/declarations", "other_enterprise").get_json() == []   # others' declarations are not shown
    r = p.post(f"/api/declarations/{decl['id']}/decision", "officer", json={"approve": True, "reason": "附件核实无误"})
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    assert record(p, p.own)["graduates_hired"] == "37"
    # decided once only
    r = p.post(f"/api/declarations/{decl['id']}/decision", "officer", json={"approve": False, "reason": "x"})
    assert r.status_code == 409
    actions = [a["action"] for a in p.get("/api/audit", "officer").get_json()]
    assert "declaration.submit" in actions and "declaration.approved" in actions and "record.correct" in actions
    mine = p.get("/api/declarations", "enterprise").get_json()
    assert mine[0]["decision_reason"] == "附件核实无误"


def test_a_rejected_declaration_changes_nothing_and_keeps_its_reason(golden_park):
    p = golden_park
    before = record(p, p.own)
    d = p.post("/api/declarations", "enterprise", json={"year": 2022, "field": "revenue", "value": "99999",
                                                         "reason": "更正"}).get_json()
    r = p.post(f"/api/declarations/{d['id']}/decision", "officer", json={"approve": False, "reason": "与税务数据不符"})
    assert r.get_json()["status"] == "rejected" and r.get_json()["decision_reason"] == "与税务数据不符"
    assert record(p, p.own) == before


@pytest.mark.parametrize("body, status", [
    ({"year": 2022, "field": "revenue", "value": "很多"}, 422),
    ({"year": 2022, "field": "rd_intensity", "value": "120"}, 422),
    ({"year": 2022, "field": "credit_code", "value": "x"}, 422),
    ({"year": 2022, "field": "no_such_field", "value": "1"}, 422),
    ({"year": 2022, "field": "revenue"}, 422),
    ({"year": 2005, "field": "revenue", "value": "1"}, 404),
    ({"year": 2022, "field": "env_credit_rating", "value": "优秀"}, 422),
    ({"year": 2022, "field": "graduates_hired", "value": "99999999999999999999"}, 422)])
def test_bad_declarations_are_refused_with_the_field(golden_park, body, status):
    r = golden_park.post("/api/declarations", "enterprise", json=body)
    assert r.status_code == status, r.get_json()
    if status == 422:
        assert r.get_json()["errors"]


def test_officer_corrections_are_checked_and_audited(golden_park):
    p = golden_park
    url = f"/api/enterprises/{p.own}/records/2022"
    r = p.client.patch(url, headers=p.h("officer"), json={"field": "rd_intensity", "value": "101"})
    assert r.status_code == 422 and "rd_intensity" in r.get_json()["errors"]["json"]
    r = p.client.patch(url, headers=p.h("officer"), json={"field": "env_credit_rating", "value": "警示", "reason": "生态环境局通报"})
    assert r.status_code == 200 and r.get_json()["new"] == "warning"
    assert record(p, p.own)["env_credit_rating"] == "warning"
    entry = p.get("/api/audit?action=record.correct", "officer").get_json()[0]
    assert entry["user"] == "officer" and entry["detail"]["field"] == "env_credit_rating"
    assert entry["detail"]["new"] == "warning" and entry["detail"]["reason"] == "生态环境局通报"
    assert p.client.patch(f"/api/enterprises/{p.own}/records/1990", headers=p.h("officer"),
                          json={"field": "revenue", "value": "1"}).status_code == 404


def test_bank_lookups_need_consent_and_are_logged(golden_park):
    p = golden_park
    r = p.get(f"/api/credit/{p.own}", "bank")
    assert r.status_code == 404 and "未同意" in r.get_json()["message"]     # the same answer as no such enterprise
    assert p.client.put("/api/me/consent", headers=p.h("enterprise"), json={"consent": True}).status_code == 200
    ref = p.get(f"/api/credit/{p.own}", "bank").get_json()
    score = p.get(f"/api/enterprises/{p.own}", "officer").get_json()
    assert ref["final_score"] == score["final_score"] and ref["stage"] == score["stage"]
    assert ref["rank_band"].startswith("同阶段") and "rank_in_stage" not in ref
    assert "CREDIT-BAND" in ref["basis"]
    assert p.get(f"/api/credit/{p.other}", "bank").status_code == 404     # the other has not consented
    log = p.get("/api/me/credit-lookups", "enterprise").get_json()
    assert [x["granted"] for x in log] == [True, False]
    assert log[0]["bank"] == "bank 显示名"
    # withdrawing consent stops lookups
    p.client.put("/api/me/consent", headers=p.h("enterprise"), json={"consent": False})
    assert p.get(f"/api/credit/{p.own}", "bank").status_code == 404
    assert len(p.get("/api/me/credit-lookups", "enterprise").get_json()) == 3


def test_rank_band_follows_the_clause_file():
    from service.query import rank_band
    assert rank_band(95) == "同阶段前10%" and rank_band(90) == "同阶段前10%"
    assert rank_band(80) == "同阶段前25%" and rank_band(10) == "同阶段后50%" and rank_band(None) == "未参与排名"


def test_the_audit_log_cannot_be_changed(golden_park):
    p = golden_park
    n = len(p.get("/api/audit?per_page=1000", "admin").get_json())
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert p.client.open("/api/audit", method=method, headers=p.h("admin"), json={}).status_code == 405
    from service import db
    from service.models import AuditEntry, AuditLogIsAppendOnly
    from sqlalchemy import select
    with p.app.app_context():
        s = db.session()
        entry = s.scalar(select(AuditEntry).limit(1))
        entry.action = "forged"
        with pytest.raises(AuditLogIsAppendOnly):
            s.commit()
        s.rollback()
        s.delete(s.scalar(select(AuditEntry).limit(1)))
        with pytest.raises(AuditLogIsAppendOnly):
            s.commit()
        s.rollback()
    assert len(p.get("/api/audit?per_page=1000", "admin").get_json()) == n
