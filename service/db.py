"""Database connection: SQLite in instance/ by default, `DATABASE_URL` for PostgreSQL.

One engine per app; one session per request (or per command), removed at teardown. The
schema is made and upgraded by Alembic only (`upgrade`), never by `create_all`."""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

from flask import current_app, g, has_request_context, request
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
    # `read_only` views' sessions (the same as the others where `reader` has nothing to add)
    app.extensions["db_read_sessions"] = sessionmaker(reader(engine) or engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close(_exc):
        s = g.pop("db", None)
        if s is not None:
            s.close()


def session() -> Session:
    """The request's (or app context's) session; a `read_only` view's reads outside a
    transaction where the database has them (`reader`)."""
    if "db" not in g:
        g.db = current_app.extensions["db_read_sessions" if _read_only_view() else "db_sessions"]()
    return g.db


def read_only(view):
    """Mark an API view that only reads (outermost, under its route): see `reader`."""
    view.read_only = True
    return view


def _read_only_view() -> bool:
    if not has_request_context() or request.endpoint is None:
        return False
    return getattr(current_app.view_functions.get(request.endpoint), "read_only", False)


class WriteInReadOnlyView(RuntimeError):
    pass


def reader(engine):
    """For `read_only` views on PostgreSQL: the engine in autocommit, so that a request's
    statements are sent without the BEGIN before and the ROLLBACK after them: a score lookup's
    round trips 7 → 5 (the pool's ping, four reads), in the server 2.8 → 2.3 ms a lookup at
    10,000 enterprises (2026-12-04). Each statement then reads its own snapshot, as it does
    at READ COMMITTED anyway, and what such a view reads of a completed run never changes. A
    statement that is not a read (`is_read`) is refused before it is sent, so that a view
    marked by mistake cannot write outside a transaction. SQLite starts no transaction for
    reads anyway: None, the usual session."""
    if engine.dialect.name != "postgresql":
        return None
    ro = engine.execution_options(isolation_level="AUTOCOMMIT")

    @event.listens_for(ro, "before_cursor_execute")
    def _reads_only(_conn, _cursor, statement, _params, _context, _many):
        if not is_read(statement):
            raise WriteInReadOnlyView(f"a read-only view may only read: {statement[:60]}")
    return ro


_READ = re.compile(r"\s*\(*\s*(SELECT|WITH)\b", re.IGNORECASE)
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|INTO|nextval|setval|pg_advisory\w*)\b", re.IGNORECASE)


def is_read(statement: str) -> bool:
    """Whether a statement only reads: a SELECT or WITH (a compound one in parentheses too)
    that names no write (a data-modifying WITH, SELECT … INTO, a sequence or an advisory
    lock). The service's statements carry their values as parameters, so a word in a value
    cannot make a read look like a write."""
    return bool(_READ.match(statement)) and not _WRITES.search(statement)


@contextmanager
def new_session(app):
    """A session of its own, for work outside a request (a run in a background thread)."""
    s = app.extensions["db_sessions"]()
    try:
        yield s
    finally:
        s.close()
