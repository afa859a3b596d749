"""Shared fixtures: the bundled policy, the golden example, a CLI runner, the Flask app."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rules.policy import load_policy, resolve
from service import create_app

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"


@pytest.fixture(scope="session")
def policy():
    return load_policy()


@pytest.fixture
def policy_copy(tmp_path):
    """A writable copy of the bundled policy folder, for tests that edit clause files."""
    dst = tmp_path / "policy"
    shutil.copytree(resolve(None), dst)
    return dst


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def golden():
    return GOLDEN


BACKENDS = ["sqlite", "postgresql"]


def _postgres_url():
    url = os.environ.get("INNOPOINTS_TEST_PG_URL")
    if not url:
        if os.environ.get("INNOPOINTS_REQUIRE_PG"):
            pytest.fail("INNOPOINTS_TEST_PG_URL is not set: run the tests through `make test` "
                        "(scripts/with-postgres starts a PostgreSQL server)")
        pytest.skip("no PostgreSQL server (make test starts one)")
    return url


def _fresh_postgres(url):
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """An empty database of each backend: SQLite in a temporary folder, and PostgreSQL
    (the server that `make test` starts) with its schema dropped and made again."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url = _postgres_url()
    _fresh_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'test.db'}"


def make_app(url, **extra):
    return create_app({"TESTING": True, "DATABASE_URL": url, "RUNS_INLINE": True, "SECRET_KEY": "test",
                       "WTF_CSRF_ENABLED": True, **extra})


@pytest.fixture
def app(db_url):
    app = make_app(db_url)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def lite_app(sqlite_url):
    """The app on SQLite only, for tests that are about the service, not the database."""
    app = make_app(sqlite_url)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


# ---- the service with users of every role and the golden records imported --------------------

ROLE_USERS = {"officer": "officer", "finance": "finance", "bank": "bank", "admin": "admin",
              "enterprise": "ent", "other_enterprise": "ent2"}
PASSWORD = "secret-password-1"


class Park:
    """An app with one user per role (two enterprises), their API tokens, and helpers."""

    def __init__(self, app):
        from service import db
        from service.auth import create_user, issue_token
        self.app = app
        self.client = app.test_client()
        import csv
        with open(GOLDEN / "records.csv", encoding="utf-8") as f:
            codes = sorted({r["credit_code"] for r in csv.DictReader(f)})
        with open(GOLDEN / "expected-no-budget" / "scores.csv", encoding="utf-8") as f:
            scored = sorted(r["credit_code"] for r in csv.DictReader(f) if r["excluded"] == "false")
        self.codes = codes
        self.own, self.other = scored[0], scored[1]        # two enterprises that are scored in 2022
        self.tokens = {}
        with app.app_context():
            s = db.session()
            for role, name in ROLE_USERS.items():
                r = "enterprise" if role.endswith("enterprise") else role
                code = self.own if role == "enterprise" else self.other if role == "other_enterprise" else None
                u = create_user(s, name, PASSWORD, r, code, f"{name} 显示名")
                self.tokens[role] = issue_token(s, u)
            s.commit()

    def h(self, role):
        return {} if role == "public" else {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path, role="public", **kw):
        return self.client.get(path, headers=self.h(role), **kw)

    def post(self, path, role="public", **kw):
        return self.client.post(path, headers=self.h(role), **kw)

    def upload(self, path, kind, role="officer", name=None):
        """POST a file to /api/imports. The environ is built here so that the encoded body
        (spooled to a temporary file when large) is closed after the request."""
        from werkzeug.test import EnvironBuilder
        with open(path, "rb") as f:
            builder = EnvironBuilder(path="/api/imports", method="POST", headers=self.h(role),
                                     data={"kind": kind, "file": (f, name or Path(path).name)})
            environ = builder.get_environ()
            try:
                return self.client.open(environ)
            finally:
                environ["wsgi.input"].close()
                builder.close()

    def import_golden(self):
        for kind in ("records", "contracts"):
            r = self.upload(GOLDEN / f"{kind}.csv", kind)
            assert r.status_code == 201, r.get_json()

    def run(self, year=2022, **body):
        r = self.post("/api/runs", "officer", json={"year": year, **body})
        assert r.status_code == 202, r.get_json()
        assert r.get_json()["status"] == "done", r.get_json()
        return r.get_json()["id"]


@pytest.fixture
def park(app):
    return Park(app)


@pytest.fixture
def lite_park(lite_app):
    return Park(lite_app)


@pytest.fixture
def golden_park(park):
    """Golden records imported, 2022 run with a budget of 28,000,000 and published."""
    park.import_golden()
    park.run_id = park.run(budget=28000000)
    assert park.post(f"/api/runs/{park.run_id}/publish", "officer").status_code == 200
    return park
