"""Unpublished results stay with the staff (issue 13, item 4): enterprises, banks and the
public read published runs only, whatever run or year they ask for."""
from tests.test_app import login


def test_an_enterprise_cannot_read_an_unpublished_run(golden_park):
    p = golden_park
    published = p.run_id
    unpublished = p.run(budget=15000000)              # newer, not published
    own = p.own
    # the attack as reported: the newest run by default, and ?run= any run
    r = p.get(f"/api/enterprises/{own}", "enterprise")
    assert r.status_code == 200 and r.get_json()["run_id"] == published
    for path in (f"/api/enterprises/{own}?run={unpublished}", f"/api/enterprises/{own}/eligibility?run={unpublished}",
                 f"/api/enterprises/{own}?run={unpublished}&format=csv"):
        r = p.get(path, "enterprise")
        assert r.status_code == 404, path
    assert p.get(f"/api/enterprises/{own}/eligibility", "enterprise").get_json()["run_id"] == published
    for role in ("public", "enterprise", "bank"):
        assert p.get(f"/api/aggregates?run={unpublished}", role).status_code == 404, role
    c = p.app.test_client()
    login(c, "ent")
    assert c.get(f"/enterprises/{own}?run={unpublished}").status_code == 404
    assert c.get(f"/api/enterprises/{own}?run={unpublished}").status_code == 404
    # the staff read it
    for role in ("officer", "finance", "admin"):
        r = p.get(f"/api/enterprises/{own}?run={unpublished}", role)
        assert r.status_code == 200 and r.get_json()["run_id"] == unpublished, role
    assert p.get(f"/api/enterprises/{own}", "finance").get_json()["run_id"] == unpublished


def test_no_honour_list_from_an_unpublished_run(golden_park):
    p = golden_park
    unpublished = p.run(budget=15000000)
    r = p.post(f"/api/runs/{unpublished}/honours", "officer", json={"scope": "overall", "top_n": 5})
    assert r.status_code == 409 and "尚未发布" in r.get_json()["message"]
    assert p.get("/api/honours").get_json()["lists"] == []
    r = p.post(f"/api/runs/{p.run_id}/honours", "officer", json={"scope": "overall", "top_n": 5})
    assert r.status_code == 201
    assert {x["run_id"] for x in p.get("/api/honours").get_json()["lists"]} == {p.run_id}
