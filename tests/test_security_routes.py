"""Every route of the app, page or API, as every role (issue 13, item 1).

The roles are declared beside each route (`auth.require`, `pages.page_role`, `access.public`);
EXPECTED below is the reviewed copy of that table. The test fails when a route is added
without declared roles, when a declaration differs from EXPECTED, and when a route answers a
role it should refuse (or refuses one it should answer)."""
import re

import pytest

from service import access
from tests.conftest import GOLDEN, PASSWORD, Park, make_app

ANY = {"public", "enterprise", "officer", "finance", "bank", "admin", "department"}
A, O, F, B, E, D = "admin", "officer", "finance", "bank", "enterprise", "department"
READERS = {O, F, A}
OFFICERS = {O, A}

EXPECTED = {
    ("GET", "static"): ANY, ("GET", "pages.favicon"): ANY, ("GET", "pages.index"): ANY,
    ("GET", "pages.login"): ANY, ("POST", "pages.login"): ANY, ("POST", "pages.logout"): ANY,
    ("GET", "api_docs"): ANY, ("GET", "api-docs.openapi_json"): ANY, ("POST", "auth.token_create"): ANY,
    ("GET", "policies.policy_active"): ANY, ("GET", "policies.policy_shape"): ANY, ("GET", "uses.honours_get"): ANY, ("GET", "data.import_template"): ANY,
    ("GET", "enterprises.aggregates"): ANY, ("GET", "enterprises.rankings"): ANY,
    # pages
    ("GET", "pages.results"): READERS, ("GET", "pages.export"): READERS,
    ("GET", "ws.profile"): READERS | {E}, ("POST", "ws.declare_page"): {E}, ("GET", "ws.bank"): {B},
    ("GET", "ws.enterprises"): READERS, ("GET", "ws.awards"): READERS, ("GET", "ws.awards_xlsx"): READERS,
    ("GET", "ws.awards_print"): READERS, ("GET", "ws.compare"): READERS,
    ("GET", "ws.report"): READERS, ("GET", "ws.services"): READERS,
    ("GET", "ws.runs"): READERS, ("POST", "ws.runs"): OFFICERS, ("GET", "ws.run"): READERS, ("POST", "ws.run"): OFFICERS,
    ("GET", "ws.seed_pool"): READERS, ("POST", "ws.seed_pool"): OFFICERS, ("POST", "ws.honours"): OFFICERS,
    ("GET", "ws.declarations"): OFFICERS, ("POST", "ws.declarations"): OFFICERS,
    ("GET", "ws.imports"): OFFICERS | {D}, ("POST", "ws.imports"): OFFICERS | {D},
    ("GET", "gather.import_detail"): OFFICERS, ("GET", "gather.conflicts"): OFFICERS,
    ("POST", "gather.conflicts"): OFFICERS, ("GET", "gather.public_lists"): OFFICERS,
    ("POST", "gather.public_lists"): OFFICERS, ("GET", "gather.publicity_manage"): OFFICERS,
    ("POST", "gather.publicity_manage"): OFFICERS, ("GET", "gather.publicity_detail"): OFFICERS,
    ("POST", "gather.publicity_detail"): OFFICERS, ("GET", "gather.publicity_public"): ANY,
    ("POST", "gather.object_page"): {E},
    ("GET", "ws.users"): {A}, ("POST", "ws.users"): {A}, ("GET", "ws.audit_log"): OFFICERS,
    ("POST", "ws.consent"): {E}, ("GET", "ws.evidence"): OFFICERS | {E},
    ("GET", "policy.index"): OFFICERS, ("POST", "policy.index"): OFFICERS, ("GET", "policy.version"): OFFICERS,
    ("GET", "policy.draft"): OFFICERS, ("POST", "policy.draft"): OFFICERS,
    ("GET", "policy.clause"): OFFICERS, ("POST", "policy.clause"): OFFICERS, ("POST", "policy.clause_check"): OFFICERS,
    ("GET", "policy.file"): OFFICERS, ("POST", "policy.file"): OFFICERS,
    ("GET", "policy.guide"): OFFICERS,
    # API
    ("GET", "enterprises.enterprise_list"): READERS, ("GET", "enterprises.enterprise_score"): READERS | {E},
    ("GET", "enterprises.enterprise_records"): READERS | {E}, ("GET", "enterprises.enterprise_eligibility"): READERS | {E},
    ("PATCH", "enterprises.record_correct"): OFFICERS, ("GET", "enterprises.awards"): READERS,
    ("GET", "enterprises.credit"): {B},
    ("GET", "runs.Runs"): READERS, ("POST", "runs.Runs"): OFFICERS, ("GET", "runs.run_get"): READERS,
    ("GET", "runs.run_manifest"): READERS, ("GET", "runs.run_files"): READERS, ("GET", "runs.run_diff"): READERS,
    ("POST", "runs.run_publish"): OFFICERS, ("POST", "runs.honours_publish"): OFFICERS,
    ("POST", "data.import_post"): OFFICERS | {D}, ("GET", "data.import_list"): OFFICERS,
    ("GET", "data.import_bad_cells"): OFFICERS,
    ("GET", "data.Declarations"): READERS | {E}, ("POST", "data.Declarations"): {E},
    ("POST", "data.declaration_decide"): OFFICERS,
    ("GET", "sources.sources_get"): READERS | {D}, ("GET", "sources.enterprise_provenance"): READERS | {E},
    ("GET", "sources.conflicts_get"): OFFICERS, ("POST", "sources.conflict_decide"): OFFICERS,
    ("POST", "sources.public_list_post"): OFFICERS, ("GET", "sources.public_lists_get"): OFFICERS,
    ("GET", "sources.public_list_get"): OFFICERS, ("POST", "sources.public_list_entry_decide"): OFFICERS,
    ("POST", "publicity.publicity_open"): OFFICERS, ("GET", "publicity.publicity_list"): ANY,
    ("GET", "publicity.publicity_get"): ANY, ("GET", "publicity.Objections"): OFFICERS | {E},
    ("POST", "publicity.Objections"): {E}, ("POST", "publicity.objection_decide"): OFFICERS,
    ("GET", "publicity.objection_evidence"): OFFICERS | {E}, ("POST", "publicity.publicity_finalise"): OFFICERS,
    ("GET", "me.me"): ANY - {"public"}, ("PUT", "me.consent"): {E}, ("GET", "me.credit_lookups"): {E},
    ("GET", "admin.Users"): {A}, ("POST", "admin.Users"): {A}, ("GET", "admin.audit_log"): OFFICERS,
    ("POST", "admin.user_disable"): {A}, ("POST", "admin.user_revoke"): {A},
    ("GET", "policies.policy_list"): OFFICERS, ("GET", "policies.policy_version_get"): OFFICERS,
    ("POST", "policies.draft_create"): OFFICERS, ("GET", "policies.draft_get"): OFFICERS,
    ("PUT", "policies.draft_file_put"): OFFICERS, ("PATCH", "policies.draft_clause_patch"): OFFICERS,
    ("POST", "policies.draft_check"): OFFICERS, ("POST", "policies.draft_test"): OFFICERS,
    ("POST", "policies.draft_whatif"): OFFICERS, ("POST", "policies.draft_publish"): OFFICERS,
    ("GET", "uses.seed_pool_get"): READERS, ("POST", "uses.seed_pool_generate"): OFFICERS,
    ("GET", "uses.services_get"): READERS, ("GET", "uses.monitoring_get"): READERS,
    ("GET", "uses.monitoring_pdf"): READERS,
    # calibration and potential (issue 15)
    ("GET", "calib.run_diagnostics"): OFFICERS, ("GET", "calib.draft_diagnostics"): OFFICERS,
    ("GET", "calib.closest"): OFFICERS, ("GET", "runs.run_diagnostics"): OFFICERS, ("GET", "runs.run_closest"): OFFICERS,
    ("GET", "enterprises.enterprise_potential"): READERS | {E}, ("POST", "policies.draft_diagnostics"): OFFICERS,
}

ROLES = ["public", "enterprise", "officer", "finance", "bank", "admin", "department"]
USERNAMES = {"enterprise": "ent", "officer": "officer", "finance": "finance", "bank": "bank", "admin": "admin",
             "department": "dept"}


@pytest.fixture
def walk_park(sqlite_url):
    """The golden data imported, run and published; CSRF off, so that a refused form is told
    by its role check and not by a missing token (the CSRF checks have tests of their own)."""
    app = make_app(sqlite_url, WTF_CSRF_ENABLED=False)
    p = Park(app)
    p.import_golden()
    p.run_id = p.run(budget=28000000)
    assert p.post(f"/api/runs/{p.run_id}/publish", "officer").status_code == 200
    with app.app_context():
        from service import db, policies
        from service.models import User
        s = db.session()
        officer = s.query(User).filter_by(username="officer").one()
        p.draft_id = policies.create_draft(s, policies.active(s), "walk", officer, "").id
        p.version_id = policies.active(s).id
        s.commit()
    r = p.post("/api/declarations", "enterprise", json={"year": 2022, "field": "revenue", "value": "1",
                                                          "reason": "walk"})
    assert r.status_code == 201, r.get_json()
    p.decl_id = r.get_json()["id"]
    assert p.client.put("/api/me/consent", headers=p.h("enterprise"), json={"consent": True}).status_code == 200
    with app.app_context():
        from service import db
        from service.auth import create_user
        s = db.session()
        p.user_id = create_user(s, "walk-victim", PASSWORD, "officer").id    # disabled and revoked by the walk
        from service.auth import issue_token
        p.tokens["department"] = issue_token(s, create_user(s, "dept", PASSWORD, "department", source="tax"))
        s.commit()
    _gathered_data(p)
    yield p
    app.extensions["db_engine"].dispose()


def _gathered_data(p):
    """A conflict, a published list with a held row, a 公示 with an objection and its evidence
    (issue 17), so that their routes are walked with real ids."""
    import datetime as dt
    import io
    from werkzeug.test import EnvironBuilder
    import csv as csv_
    with open(GOLDEN / "records.csv", encoding="utf-8") as f:
        g = next(r for r in csv_.DictReader(f) if r["year"] == "2022" and r["credit_code"] == p.own)
    body = io.BytesIO(f"credit_code,year,revenue\n{p.own},2022,{float(g['revenue']) + 1}\n".encode())
    r = p.client.open(EnvironBuilder(path="/api/imports", method="POST", headers=p.h("officer"),
                                     data={"kind": "records", "source": "self_report", "file": (body, "self.csv")}).get_environ())
    assert r.status_code == 201, r.get_json()
    p.conflict_id = p.get("/api/conflicts", "officer").get_json()["items"][0]["id"]
    body = io.BytesIO("企业名称,日期\n查无此企业,2022-12-01\n".encode())
    r = p.client.open(EnvironBuilder(path="/api/public-lists", method="POST", headers=p.h("officer"),
                                     data={"title": "名单", "field": "hte_recognized_in_year",
                                           "file": (body, "list.csv")}).get_environ())
    assert r.status_code == 201, r.get_json()
    p.list_id, p.entry_id = r.get_json()["id"], r.get_json()["entries"][0]["id"]
    today = dt.date.today()
    r = p.post(f"/api/runs/{p.run_id}/publicity", "officer",
               json={"starts_on": (today - dt.timedelta(days=1)).isoformat(),
                     "ends_on": (today + dt.timedelta(days=30)).isoformat()})
    assert r.status_code == 201, r.get_json()
    p.pid = r.get_json()["id"]
    r = p.client.open(EnvironBuilder(path=f"/api/publicity/{p.pid}/objections", method="POST", headers=p.h("enterprise"),
                                     data={"item": "营业收入", "reason": "walk",
                                           "evidence": (io.BytesIO(b"%PDF-1.4 x"), "e.pdf")}).get_environ())
    assert r.status_code == 201, r.get_json()
    p.oid, p.fid = r.get_json()["id"], r.get_json()["evidence"][0]["id"]


def args_for(p, rule):
    values = {"code": p.own, "run_id": p.run_id, "a": p.run_id, "b": p.run_id, "decl_id": p.decl_id,
              "draft_id": p.draft_id, "version_id": p.version_id, "clause_id": "IND-1.1", "year": 2022,
              "kind": "records", "filename": "favicon.svg", "user_id": p.user_id,
              "import_id": 1, "file_id": 1, "conflict_id": p.conflict_id, "list_id": p.list_id, "entry_id": p.entry_id,
              "pid": p.pid, "oid": p.oid, "fid": p.fid}
    if rule.endpoint == "pages.export":
        values["name"] = "scores.csv"
    elif rule.endpoint == "runs.run_files":
        values["name"] = "scores.csv"
    else:
        values["name"] = "indicators.yaml"
    return {k: values[k] for k in rule.arguments}


def expand(roles):
    return set(ANY) if "public" in roles else set(roles)


def refused(resp):
    if resp.status_code in (401, 403):
        return True
    return resp.status_code in (301, 302, 303) and "/login" in resp.headers.get("Location", "")


def test_every_route_declares_its_roles(walk_park):
    app = walk_park.app
    assert not access.undeclared(app), "routes without declared roles:\n" + "\n".join(access.undeclared(app))
    found = {(m, r.endpoint) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}}
    assert found - set(EXPECTED) == set(), f"routes missing from EXPECTED: {sorted(found - set(EXPECTED))}"
    assert set(EXPECTED) - found == set(), f"EXPECTED names routes that do not exist: {sorted(set(EXPECTED) - found)}"
    wrong = [f"{m} {ep}: declared {sorted(access.roles_for(app, ep, m))}, expected {sorted(EXPECTED[m, ep])}"
             for m, ep in sorted(found) if expand(access.roles_for(app, ep, m)) != EXPECTED[m, ep]]
    assert not wrong, "\n".join(wrong)


def test_walk_the_url_map_as_every_role(walk_park):
    """Each rule with real ids, as each role (a page session for pages, a token for the API,
    nothing for the public): allowed roles are answered, others get 401/403 or the login page."""
    p = walk_park
    app = p.app
    clients = {"public": app.test_client()}
    for role, name in USERNAMES.items():
        c = app.test_client()
        assert c.post("/login", data={"username": name, "password": PASSWORD}).status_code == 302
        clients[role] = c
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "pages.logout", r.rule))
    wrong = []
    for rule in rules:
        with app.test_request_context():
            url = app.url_for(rule.endpoint, **args_for(p, rule)) if rule.arguments else rule.rule
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for role in ROLES:
                c = clients[role]
                kw = {}
                if url.startswith("/api"):
                    c = clients["public"]
                    kw["headers"] = p.h(role)
                    if method != "GET":
                        kw["json"] = {}
                elif method != "GET":
                    kw["data"] = {}
                resp = c.open(url, method=method, **kw)
                resp.close()
                allowed = role in EXPECTED[method, rule.endpoint]
                if allowed == refused(resp):
                    wrong.append(f"{method} {url} as {role}: {resp.status_code} "
                                 f"{resp.headers.get('Location', '')} (expected {'allowed' if allowed else 'refused'})")
                if resp.status_code == 500:
                    wrong.append(f"{method} {url} as {role}: 500")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", ["scores.csv", "awards.csv", "awards.html"])
def test_anonymous_download_of_run_files_is_refused(walk_park, name):
    """The attack as reported: an anonymous GET of every run file."""
    p = walk_park
    url = f"/runs/{p.run_id}/export/{name}"
    r = p.app.test_client().get(url)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert b"credit_code" not in r.data and "9141" not in r.get_data(as_text=True)
    for role in ("enterprise", "bank"):
        c = p.app.test_client()
        c.post("/login", data={"username": USERNAMES[role], "password": PASSWORD})
        assert c.get(url).status_code == 403, role
    c = p.app.test_client()
    c.post("/login", data={"username": "finance", "password": PASSWORD})
    r = c.get(url)
    assert r.status_code == 200 and len(r.data) > 100
    assert not re.search(r"<script", r.get_data(as_text=True)) or name.endswith(".html")
