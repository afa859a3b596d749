"""Logins (issue 13, item 8 of the issue): no open redirect, throttled failures with
Retry-After, the same time for unknown usernames, a password policy, clean usernames."""
import statistics
import time

import pytest

from service.auth import UserError, check_password, check_username
from tests.conftest import PASSWORD, Park, make_app
from tests.test_app import csrf_of


def login_next(c, nxt, username="officer", password=PASSWORD):
    token = csrf_of(c.get("/login").get_data(as_text=True))
    return c.post("/login", query_string={"next": nxt},
                  data={"username": username, "password": password, "csrf_token": token})


@pytest.mark.parametrize("nxt", ["//evil.example", "//evil.example/workspace", "/\\evil.example",
                                 "/\\/evil.example", "https://evil.example/", "http:/evil.example",
                                 "\t//evil.example", "/\t/evil.example", "javascript:alert(1)", "evil.example"])
def test_login_never_redirects_off_site(lite_park, nxt):
    r = login_next(lite_park.app.test_client(), nxt)
    assert r.status_code == 302
    assert r.headers["Location"] == "/", r.headers["Location"]


def test_login_returns_to_a_local_page(lite_park):
    r = login_next(lite_park.app.test_client(), "/workspace/runs?x=1")
    assert r.headers["Location"] == "/workspace/runs?x=1"


def test_failed_logins_are_throttled_by_user(lite_park):
    p = lite_park
    c = p.app.test_client()
    for _ in range(5):
        assert login_next(c, "/", password="wrong-password").status_code == 401
    r = login_next(c, "/")                                 # the right password, too late
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "秒后再试" in r.get_data(as_text=True)
    r = p.post("/api/tokens", json={"username": "officer", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # another user from another address is not held up
    r = p.client.post("/api/tokens", json={"username": "finance", "password": PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert r.status_code == 201


def test_failed_logins_are_throttled_by_address(lite_park):
    p = lite_park
    for i in range(20):
        r = p.client.post("/api/tokens", json={"username": f"nobody{i}", "password": "x"},
                          environ_base={"REMOTE_ADDR": "10.0.0.7"})
        assert r.status_code == 401
    r = p.client.post("/api/tokens", json={"username": "finance", "password": PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert r.status_code == 429 and "Retry-After" in r.headers
    r = p.client.post("/api/tokens", json={"username": "finance", "password": PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.0.0.8"})
    assert r.status_code == 201


def test_unknown_usernames_take_as_long_as_known_ones(sqlite_url):
    app = make_app(sqlite_url, LOGIN_MAX_FAILURES_PER_USER=1000, LOGIN_MAX_FAILURES_PER_ADDRESS=1000)
    p = Park(app)

    def timed(username):
        t = time.perf_counter()
        r = p.client.post("/api/tokens", json={"username": username, "password": "wrong-password-1"})
        assert r.status_code == 401
        return time.perf_counter() - t

    timed("officer"), timed("no-such-user")                 # warm up
    known = statistics.median(timed("officer") for _ in range(7))
    unknown = statistics.median(timed("no-such-user") for _ in range(7))
    assert 0.5 < unknown / known < 2, (known, unknown)
    app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("password", ["short", "123456789", "1234567890", "aaaaaaaaaaaa", "abababababab",
                                      "password123", "onlyletterspassword", "newclerk01"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(UserError):
        check_password(password, "newclerk01")


@pytest.mark.parametrize("username", ["a\nb", "a\rb", "nul\x00", "tab\tname", " lead", "trail ", "rtl\u202eab",
                                      "zero\u200bwidth", "", "x" * 81])
def test_usernames_without_control_characters(username):
    with pytest.raises(UserError):
        check_username(username)


def test_good_usernames_and_passwords_pass(lite_park):
    check_username("张科员")
    check_username("li si")
    check_password("long-enough-1", "clerk")
    r = lite_park.post("/api/users", "admin", json={"username": "bad\nname", "password": "long-enough-1",
                                                      "role": "officer"})
    assert r.status_code == 422
    r = lite_park.post("/api/users", "admin", json={"username": "clerk", "password": "1234567890",
                                                      "role": "officer"})
    assert r.status_code == 422 and "简单" in r.get_json()["message"]
