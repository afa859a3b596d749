"""Secret key, sessions and tokens (issue 13, items 2 and 3): a forged cookie, a disabled
user's cookie and token, logout, revocation, expiry."""
import datetime as dt
import os
import stat
import time

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from service import ConfigurationError, create_app
from service.cli import cli
from service.models import ApiToken, Run, User
from tests.conftest import PASSWORD, make_app
from tests.test_app import csrf_of, login

OLD_DEFAULT = "dev-only-change-me"


def forge(key, **data):
    """A session cookie for `data`, signed with `key` as Flask signs it."""
    fake = Flask("forger")
    fake.secret_key = key
    return SecureCookieSessionInterface().get_signing_serializer(fake).dumps(dict(data))


def user_id(app, username):
    from service import db
    with app.app_context():
        return db.session().scalar(select(User.id).where(User.username == username))


def test_a_cookie_signed_with_the_old_default_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    inst = tmp_path / "instance"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}"}, instance_path=str(inst))
    key_file = inst / "secret_key"
    assert key_file.exists() and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert app.secret_key != OLD_DEFAULT and len(app.secret_key) >= 32
    # the same instance keeps its key; another instance has another one
    again = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}"}, instance_path=str(inst))
    assert again.secret_key == app.secret_key
    other = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'k2.db'}"},
                       instance_path=str(tmp_path / "other"))
    assert other.secret_key != app.secret_key
    from service import db
    from service.auth import create_user
    with app.app_context():
        s = db.session()
        admin = create_user(s, "admin", PASSWORD, "admin")
        s.commit()
        uid = admin.id
    session = {"user_id": uid, "gen": 0, "at": int(time.time())}
    c = app.test_client()
    c.set_cookie("session", forge(OLD_DEFAULT, **session))
    assert c.get("/api/me").status_code == 401
    r = c.get("/workspace/runs")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # the same cookie signed with the instance's key is taken: the forgery above was well-formed
    c = app.test_client()
    c.set_cookie("session", forge(app.secret_key, **session))
    assert c.get("/api/me").get_json()["role"] == "admin"
    for a in (app, again, other):
        a.extensions["db_engine"].dispose()


def test_a_published_or_short_key_refuses_to_start(tmp_path):
    with pytest.raises(ConfigurationError):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}", "SECRET_KEY": OLD_DEFAULT},
                   instance_path=str(tmp_path))
    with pytest.raises(ConfigurationError):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}", "SECRET_KEY": "short"},
                   instance_path=str(tmp_path))
    key_file = tmp_path / "secret_key"
    key_file.write_text("x" * 64)
    key_file.chmod(0o644)                     # readable by others: refused
    with pytest.raises(ConfigurationError):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}"}, instance_path=str(tmp_path))


def page_client(p, username):
    c = p.app.test_client()
    assert login(c, username).status_code == 302
    return c


def runs_of(p):
    from service import db
    with p.app.app_context():
        return db.session().scalar(select(Run.id).order_by(Run.id.desc()).limit(1))


def test_a_disabled_users_cookie_and_token_stop_at_the_next_request(lite_park, sqlite_url):
    p = lite_park
    p.import_golden()
    c = page_client(p, "officer")
    token = csrf_of(c.get("/login").get_data(as_text=True))
    assert c.get("/workspace/runs").status_code == 200
    assert p.get("/api/me", "officer").status_code == 200
    r = CliRunner().invoke(cli, ["user", "disable", "officer"], env={"DATABASE_URL": sqlite_url})
    assert r.exit_code == 0 and "已停用" in r.output, r.output
    before = runs_of(p)
    # the attack as reported: the disabled user's page session creates a run
    r = c.post("/workspace/runs", data={"csrf_token": token, "year": "2022"})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert runs_of(p) == before
    assert c.get("/workspace/runs").status_code == 302
    assert c.get("/api/me").status_code == 401
    assert p.get("/api/me", "officer").status_code == 401                 # the token too
    assert p.post("/api/runs", "officer", json={"year": 2022}).status_code == 401
    assert login(p.app.test_client(), "officer").status_code == 401        # and no new login
    assert p.post("/api/tokens", json={"username": "officer", "password": PASSWORD}).status_code == 401


def test_logout_ends_the_cookie_even_when_it_was_copied(lite_park):
    p = lite_park
    c = page_client(p, "finance")
    copied = c.get_cookie("session").value
    token = csrf_of(c.get("/login").get_data(as_text=True))
    assert c.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = p.app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/api/me").status_code == 401
    assert thief.get("/workspace/awards").status_code == 302
    assert page_client(p, "finance").get("/api/me").status_code == 200     # logging in again works


def test_revoke_ends_tokens_and_sessions_but_not_the_user(lite_park, sqlite_url):
    p = lite_park
    c = page_client(p, "bank")
    assert c.get("/api/me").status_code == 200
    r = p.post(f"/api/users/{user_id(p.app, 'bank')}/revoke", "admin")
    assert r.status_code == 200 and r.get_json()["active"] is True
    assert c.get("/api/me").status_code == 401
    assert p.get("/api/me", "bank").status_code == 401
    assert page_client(p, "bank").get("/api/me").status_code == 200
    # the command does the same
    t = p.post("/api/tokens", json={"username": "bank", "password": PASSWORD}).get_json()["token"]
    assert p.client.get("/api/me", headers={"Authorization": f"Bearer {t}"}).status_code == 200
    r = CliRunner().invoke(cli, ["user", "revoke", "bank"], env={"DATABASE_URL": sqlite_url})
    assert r.exit_code == 0, r.output
    assert p.client.get("/api/me", headers={"Authorization": f"Bearer {t}"}).status_code == 401
    # only the admin may
    assert p.post(f"/api/users/{user_id(p.app, 'bank')}/disable", "officer").status_code == 403


def test_the_admin_page_disables_a_user(lite_park):
    p = lite_park
    victim = page_client(p, "finance")
    admin = page_client(p, "admin")
    page = admin.get("/workspace/users").get_data(as_text=True)
    assert "用户管理" in page and "finance" in page
    token = csrf_of(admin.get("/login").get_data(as_text=True))
    r = admin.post("/workspace/users", data={"csrf_token": token, "id": user_id(p.app, "finance"),
                                             "action": "disable"}, follow_redirects=True)
    assert "已停用用户 finance" in r.get_data(as_text=True)
    assert victim.get("/workspace/awards").status_code == 302
    assert p.get("/api/me", "finance").status_code == 401
    assert page_client(p, "officer").get("/workspace/users").status_code == 403


def test_tokens_and_sessions_expire(sqlite_url):
    from tests.conftest import Park
    app = make_app(sqlite_url, TOKEN_LIFETIME=3600, SESSION_LIFETIME=3600)
    p = Park(app)
    assert p.get("/api/me", "officer").status_code == 200
    from service import db
    with app.app_context():
        s = db.session()
        for tok in s.scalars(select(ApiToken)):
            tok.created_at -= dt.timedelta(seconds=3601)
        s.commit()
    r = p.get("/api/me", "officer")
    assert r.status_code == 401 and "过期" in r.get_json()["message"]
    c = page_client(p, "officer")
    with c.session_transaction() as sess:
        sess["at"] -= 3601
    assert c.get("/api/me").status_code == 401
    app.extensions["db_engine"].dispose()
