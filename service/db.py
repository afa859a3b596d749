"""Database connection: SQLite in instance/ by default, `DATABASE_URL` for PostgreSQL.

One engine per app; one session per request (or per command), removed at teardown. The
schema is made and upgraded by Alembic only (`upgrade`), never by `create_all`."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from flask import current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session, sessionmaker



def database_url(instance_path) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        if url.startswith("postgresql://"):          # the usual form: use the psycopg 3 driver
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(instance_path) / 'innopoints.db'}"


def make_engine(url):
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url):
    from alembic.config import Config
    cfg = Config()
    from rules import assets
    cfg.set_main_option("script_location", str(assets.path("migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url):
    """Bring the database at `url` to the newest migration."""
    from alembic import command
    command.upgrade(alembic_config(url), "head")


def init_app(app):
    url = app.config.get("DATABASE_URL") or database_url(app.instance_path)
    app.config["DATABASE_URL"] = url
    engine = make_engine(url)
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = sessionmaker(engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close(_exc):
        s = g.pop("db", None)
        if s is not None:
            s.close()


def session() -> Session:
    """The request's (or app context's) session."""
    if "db" not in g:
        g.db = current_app.extensions["db_sessions"]()
    return g.db


@contextmanager
def new_session(app):
    """A session of its own, for work outside a request (a run in a background thread)."""
    s = app.extensions["db_sessions"]()
    try:
        yield s
    finally:
        s.close()
