"""The InnoPoints Flask service (app factory, as in the flaskr tutorial)."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parents[1]


def create_app(test_config=None):
    """Create the app: defaults, then instance/config.py or the test config, then the parts.
    The database is upgraded to the newest migration at start (`DB_UPGRADE`, on by default)."""
    app = Flask(__name__, instance_relative_config=True, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev-only-change-me"),
        DATABASE_URL=None,
        DB_UPGRADE=True,
        RUNS_INLINE=False,
        MAX_CONTENT_LENGTH=200 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    app.json.ensure_ascii = False      # Chinese as such in every JSON answer
    app.json.sort_keys = False         # stages and columns in their own order
    from . import access, api, authoring, db, pages, workspace
    db.init_app(app)
    if app.config["DB_UPGRADE"]:
        db.upgrade(app.config["DATABASE_URL"])
    from flask_wtf.csrf import CSRFProtect
    csrf = CSRFProtect(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(workspace.bp)
    app.register_blueprint(authoring.bp)
    api.init_app(app)
    for name, bp in app.blueprints.items():
        if name not in ("pages", "ws", "policy"):          # the API authenticates with tokens, not cookies: no CSRF there
            csrf.exempt(bp)
    access.init_app(app)
    register_filters(app)
    return app


def register_filters(app):
    from rules.report import yuan

    def wan(v):
        """Yuan as 万元 with two decimals and thousands separators."""
        return "" if v is None else f"{v / 10000:,.2f}"

    def score(v, digits=4):
        return "—" if v is None else f"{v:.{digits}f}"

    from rules.fields import RATINGS, RECORD_FIELDS, STAGES
    kinds = {f.key: f.kind for f in RECORD_FIELDS}

    def shown(text, key):
        """A stored record value as a person reads it: 是/否, stages and ratings in Chinese."""
        kind = kinds.get(key)
        if kind == "bool":
            return {"true": "是", "false": "否"}.get(text, text)
        if kind == "stage":
            return STAGES.get(text, text)
        if kind == "rating":
            return RATINGS.get(text, text)
        return text

    app.jinja_env.filters.update(yuan=yuan, wan=wan, score=score, shown=shown)
