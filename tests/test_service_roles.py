"""Who may see what: every endpoint for every role (public, enterprise, officer, finance,
bank, admin), on both databases."""
import pytest

ROLES = ["public", "enterprise", "officer", "finance", "bank", "admin"]
OK, NO_AUTH, FORBIDDEN = 200, 401, 403


def matrix(p):
    own, other = p.own, p.other
    # path -> {role: expected status}; roles not named get the default of the row
    return [
        ("GET", "/api/enterprises", {"officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/enterprises/{own}", {"enterprise": OK, "officer": OK, "finance": OK, "admin": OK,
                                            "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/enterprises/{other}", {"officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH},
         FORBIDDEN),
        ("GET", f"/api/enterprises/{own}/records", {"enterprise": OK, "officer": OK, "finance": OK, "admin": OK,
                                                    "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/enterprises/{other}/records", {"officer": OK, "finance": OK, "admin": OK,
                                                      "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/enterprises/{own}/eligibility", {"enterprise": OK, "officer": OK, "finance": OK, "admin": OK,
                                                        "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/enterprises/{other}/eligibility", {"officer": OK, "finance": OK, "admin": OK,
                                                          "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/rankings", {"public": 404, "enterprise": 404, "bank": 404}, OK),
        ("GET", "/api/honours", {}, OK),
        ("GET", "/api/seed-pool", {"officer": 404, "finance": 404, "admin": 404, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/services", {"officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/reports/monitoring", {"officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("POST", "/api/seed-pool", {"officer": 422, "admin": 422, "public": NO_AUTH}, FORBIDDEN),
        ("POST", f"/api/runs/{p.run_id}/honours", {"officer": 422, "admin": 422, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/aggregates", {}, OK),
        ("GET", "/api/awards", {"officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/runs", {"officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/runs/{p.run_id}", {"officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/runs/{p.run_id}/manifest", {"officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH},
         FORBIDDEN),
        ("GET", f"/api/runs/{p.run_id}/files/scores.csv", {"officer": OK, "finance": OK, "admin": OK,
                                                           "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/runs/{p.run_id}/diff/{p.run_id}", {"officer": OK, "finance": OK, "admin": OK,
                                                          "public": NO_AUTH}, FORBIDDEN),
        ("GET", f"/api/credit/{own}", {"bank": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/imports", {"officer": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/declarations", {"enterprise": OK, "officer": OK, "finance": OK, "admin": OK, "public": NO_AUTH},
         FORBIDDEN),
        ("GET", "/api/me", {"public": NO_AUTH}, OK),
        ("GET", "/api/me/credit-lookups", {"enterprise": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/users", {"admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/audit", {"officer": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/templates/records.xlsx", {}, OK),
        ("GET", "/api/openapi.json", {}, OK),
        ("GET", "/api/docs", {}, OK),
        ("GET", "/api/policy", {}, OK),
        ("GET", "/api/policies", {"officer": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("GET", "/api/policies/versions/1", {"officer": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("POST", "/api/policies/drafts", {"officer": 422, "admin": 422, "public": NO_AUTH}, FORBIDDEN),
        ("POST", "/api/policies/drafts/999/publish", {"officer": 404, "admin": 404, "public": NO_AUTH}, FORBIDDEN),
        ("POST", "/api/runs", {"officer": 422, "admin": 422, "public": NO_AUTH}, FORBIDDEN),
        ("POST", f"/api/runs/{p.run_id}/publish", {"officer": OK, "admin": OK, "public": NO_AUTH}, FORBIDDEN),
        ("POST", "/api/users", {"admin": 422, "public": NO_AUTH}, FORBIDDEN),
        ("POST", "/api/declarations", {"enterprise": 422, "public": NO_AUTH}, FORBIDDEN),
        ("POST", "/api/declarations/999/decision", {"officer": 422, "admin": 422, "public": NO_AUTH}, FORBIDDEN),
        ("PATCH", f"/api/enterprises/{own}/records/2022", {"officer": 422, "admin": 422, "public": NO_AUTH},
         FORBIDDEN),
        ("PUT", "/api/me/consent", {"enterprise": 422, "public": NO_AUTH}, FORBIDDEN),
        ("POST", "/api/imports", {"officer": 422, "admin": 422, "public": NO_AUTH}, FORBIDDEN),
    ]


def test_every_endpoint_for_every_role(golden_park):
    """The expected status for each role; a request with an empty body is enough to tell a
    refusal (401/403) from an accepted role (422: the body is then checked)."""
    p = golden_park
    assert p.client.put("/api/me/consent", headers=p.h("enterprise"), json={"consent": True}).status_code == 200
    wrong = []
    for method, path, expected, default in matrix(p):
        for role in ROLES:
            want = expected.get(role, default)
            headers = p.h(role)
            resp = p.client.open(path, method=method, headers=headers, json={} if method != "GET" else None)
            if resp.status_code != want:
                wrong.append(f"{method} {path} as {role}: {resp.status_code}, expected {want}")
            if resp.status_code in (401, 403, 404, 422):
                body = resp.get_json()
                assert body is not None and "status" in body, f"{method} {path} as {role}: JSON error expected"
    assert not wrong, "\n".join(wrong)


def test_an_enterprise_cannot_read_another_through_any_door(golden_park):
    p = golden_park
    for path in (f"/api/enterprises/{p.other}", f"/api/enterprises/{p.other}/records",
                 f"/api/enterprises/{p.other}/eligibility", f"/api/enterprises/{p.other}?format=xlsx"):
        r = p.get(path, "enterprise")
        assert r.status_code == 403 and "本企业" in r.get_json()["message"], path
    r = p.post("/api/declarations", "enterprise", json={"credit_code": p.other, "year": 2022, "field": "revenue",
                                                          "value": "1", "reason": "x"})
    assert r.status_code == 403
    own = p.get(f"/api/enterprises/{p.own}", "enterprise").get_json()
    assert own["credit_code"] == p.own and own["explanation"][0]["clause"] == "STAGE"


def test_the_public_sees_published_honour_lists_only(golden_park):
    p = golden_park
    assert p.get("/api/rankings").status_code == 404                 # no list published yet
    assert p.get("/api/honours").get_json()["lists"] == []
    r = p.post(f"/api/runs/{p.run_id}/honours", "officer", json={"scope": "growth", "top_n": 3})
    assert r.status_code == 201 and len(r.get_json()["entries"]) == 3
    assert p.post(f"/api/runs/{p.run_id}/honours", "public", json={"scope": "growth", "top_n": 3}).status_code == 401
    assert p.post(f"/api/runs/{p.run_id}/honours", "finance", json={"scope": "growth", "top_n": 3}).status_code == 403
    assert p.post(f"/api/runs/{p.run_id}/honours", "officer", json={"scope": "all", "top_n": 0}).status_code == 422
    pub = p.get("/api/rankings").get_json()
    assert list(pub["stages"]) == ["growth"] and [r["rank_in_stage"] for r in pub["stages"]["growth"]] == [1, 2, 3]
    staff = p.get("/api/rankings?stage=growth&top=3", "officer").get_json()["stages"]["growth"]
    assert [r["credit_code"] for r in staff] == [r["credit_code"] for r in pub["stages"]["growth"]]
    p.post(f"/api/runs/{p.run_id}/honours", "officer", json={"scope": "overall", "top_n": 5})
    lists = p.get("/api/honours").get_json()["lists"]
    assert [x["scope"] for x in lists] == ["growth", "overall"] and [e["rank"] for e in lists[1]["entries"]] == [1, 2, 3, 4, 5]
    entry = p.get("/api/audit?action=honours.publish", "officer").get_json()[0]
    assert entry["detail"]["scope"] == "overall" and entry["user"] == "officer"
    agg = p.get("/api/aggregates").get_json()
    assert sum(x["count"] for x in agg["by_stage"]) == agg["enterprises"]
    assert sum(b["count"] for b in agg["score_histogram"]) == agg["enterprises"] - agg["excluded"]
    # a newer run that is not published is not what the public's aggregates read
    p.run(budget=1)
    assert p.get("/api/aggregates").get_json()["run_id"] == p.run_id


def test_tokens_and_passwords(golden_park):
    p = golden_park
    assert p.post("/api/tokens", json={"username": "officer", "password": "wrong"}).status_code == 401
    assert p.post("/api/tokens", json={"username": "nobody", "password": "x"}).status_code == 401
    r = p.post("/api/tokens", json={"username": "officer"})
    assert r.status_code == 422 and "password" in r.get_json()["errors"]["json"]
    assert p.client.get("/api/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert p.client.get("/api/me", headers={"Authorization": "Basic abc"}).status_code == 401
    token = p.post("/api/tokens", json={"username": "finance", "password": "secret-password-1"}).get_json()["token"]
    me = p.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["role"] == "finance" and me["role_zh"] == "财政局"
    from service import db
    from service.models import ApiToken, User
    from sqlalchemy import select
    with p.app.app_context():
        s = db.session()
        hashes = [u.password_hash for u in s.scalars(select(User))]
        assert all(h.startswith(("scrypt:", "pbkdf2:")) and "secret-password-1" not in h for h in hashes)
        assert all(token not in t.token_sha256 for t in s.scalars(select(ApiToken)))


def test_admin_creates_users_with_checked_fields(golden_park):
    p = golden_park
    r = p.post("/api/users", "admin", json={"username": "clerk", "password": "long-enough-1", "role": "officer"})
    assert r.status_code == 201 and "password" not in r.get_json()
    assert p.post("/api/tokens", json={"username": "clerk", "password": "long-enough-1"}).status_code == 201
    for body, field in (({"username": "x", "password": "short", "role": "officer"}, "password"),
                        ({"username": "y", "password": "long-enough-1", "role": "king"}, "role"),
                        ({"username": "clerk", "password": "long-enough-1", "role": "officer"}, "user"),
                        ({"username": "z", "password": "long-enough-1", "role": "enterprise"}, "user")):
        r = p.post("/api/users", "admin", json=body)
        assert r.status_code == 422 and field in r.get_json()["errors"]["json"], body


@pytest.mark.parametrize("path", ["/api/enterprises?page=0", "/api/enterprises?per_page=100000",
                                  "/api/enterprises?stage=baby", "/api/enterprises?min_score=abc",
                                  "/api/enterprises?sort=password_hash", "/api/enterprises?format=pdf",
                                  "/api/enterprises?run=-1", "/api/enterprises?year=99999",
                                  "/api/awards?credit_code=123", "/api/rankings?top=0"])
def test_bad_queries_are_422_never_500(lite_park, path):
    lite_park.import_golden()
    lite_park.run()
    r = lite_park.get(path, "officer")
    assert r.status_code == 422, (path, r.status_code)
    assert r.get_json()["errors"]["query"]
