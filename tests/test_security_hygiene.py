"""Hygiene (issue 13, item 10): security headers and a CSP without inline scripts, Secure
cookies over HTTPS, the bank's one answer for every refusal, literal % and _ in searches."""
import re

from tests.test_app import csrf_of, login

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def test_security_headers_and_no_inline_scripts(golden_park):
    p = golden_park
    c = p.app.test_client()
    login(c, "admin")
    with p.app.app_context():
        from service import db, policies
        from service.models import User
        s = db.session()
        admin = s.query(User).filter_by(username="admin").one()
        draft = policies.create_draft(s, policies.active(s), "hygiene", admin, "").id
        s.commit()
    pages = ["/", "/login", "/results", "/workspace/enterprises", "/workspace/runs", f"/workspace/runs/{p.run_id}",
             "/workspace/awards", "/workspace/report", "/workspace/users", "/workspace/imports", "/api/docs",
             f"/enterprises/{p.own}", f"/workspace/policy/drafts/{draft}/clauses/IND-1.1", "/workspace/policy/",
             f"/runs/{p.run_id}/export/awards.html"]
    for path in pages:
        r = c.get(path)
        assert r.status_code == 200, path
        csp = r.headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)
        assert script_src.strip() == "'self'" and "frame-ancestors 'none'" in csp, path
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in r.headers
        html = r.get_data(as_text=True)
        assert not INLINE_SCRIPT.search(html), (path, INLINE_SCRIPT.search(html).group(0))
        assert not INLINE_HANDLER.search(html), (path, INLINE_HANDLER.search(html).group(0))
    assert "X-Frame-Options" in p.get("/api/me", "officer").headers


def test_over_https_the_cookie_is_secure_and_hsts_is_sent(lite_park):
    c = lite_park.app.test_client()
    page = c.get("/login", base_url="https://localhost")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    r = c.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"}, data={"username": "officer", "password": "secret-password-1",
                                                               "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    r = login(lite_park.app.test_client(), "officer")                  # plain http (make run): not Secure
    assert "Secure" not in r.headers["Set-Cookie"]


def test_the_bank_gets_one_answer_for_every_refusal(golden_park):
    p = golden_park
    unknown = p.own[:-1] + ("0" if p.own[-1] != "0" else "1")
    missing = p.get(f"/api/credit/{unknown}", "bank")
    declined = p.get(f"/api/credit/{p.other}", "bank")                # exists, has not consented
    assert missing.status_code == declined.status_code == 404
    assert missing.get_json() == declined.get_json()
    c = p.app.test_client()
    login(c, "bank")
    a = c.get(f"/bank?code={unknown}").get_data(as_text=True)
    b = c.get(f"/bank?code={p.other}").get_data(as_text=True)

    def same(page, code):     # the form's CSRF token carries the second it was signed in
        return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value="TOKEN"', page.replace(code, "CODE"))
    assert same(a, unknown) == same(b, p.other)
    assert 'name="csrf_token" value="TOKEN"' in same(a, unknown)


def test_percent_and_underscore_are_searched_literally(golden_park):
    p = golden_park
    everyone = p.get("/api/enterprises?per_page=1", "officer").get_json()["total"]
    assert everyone > 10
    for q in ("%", "_", "%25", "__", "企业%"):
        r = p.get("/api/enterprises", "officer", query_string={"q": q})
        assert r.status_code == 200 and r.get_json()["total"] == 0, q
    assert p.get("/api/enterprises", "officer", query_string={"q": "企业0000"}).get_json()["total"] > 0
