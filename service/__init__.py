"""The InnoPoints Flask service (app factory, as in the flaskr tutorial)."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parents[1]


def create_app(test_config=None):
    """Create the app: defaults, then instance/config.py or the test config, then the parts."""
    app = Flask(__name__, instance_relative_config=True, template_folder=str(ROOT / "templates"))
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev"),
        RESULTS_DIR=os.environ.get("INNOPOINTS_RESULTS", str(Path(app.instance_path) / "demo" / "results")),
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    register_blueprints(app)
    register_filters(app)
    return app


def register_blueprints(app):
    from . import pages
    app.register_blueprint(pages.bp)


def register_filters(app):
    from rules.report import yuan
    app.jinja_env.filters["yuan"] = yuan
