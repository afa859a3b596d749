"""The REST API under /api (积分查询 and the data and run operations), documented by its
marshmallow schemas in OpenAPI 3 at /api/openapi.json and on the page /api/docs.

One module per resource, each with its own flask-smorest Blueprint and each route's roles
declared beside it (`auth.require`, `access.public`):

    enterprises  scores, records, eligibility, rankings, aggregates, credit, awards  (`enterprises`)
    imports      imports, bad-cell lists, templates, declarations                    (`data`)
    runs         runs, result files, diffs, publishing, honour lists of a run        (`runs`)
    policies     policy versions and drafts                                          (`policies`)
    sources      data sources, provenance, conflicts, published lists               (`sources`)
    publicity    公示 periods, objections and their evidence, finalisation          (`publicity`)
    uses         seed pool, services, honour lists, monitoring report                (`uses`)
    users        tokens (`auth`), the caller (`me`), users and the audit log (`admin`)

`common` holds what they share (role groups, error handling, pick_run, run helpers); the
names other modules import from `service.api` are re-exported here."""
from __future__ import annotations

from flask import current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..access import public
from .common import (InnoApi, READERS, RESULT_COLUMNS, STAFF, bad_cells, enterprise_session, pick_run,
                     reap_stale_runs, result_columns, run_dict, run_or_404, start, translate)
from .enterprises import AWARD_COLUMNS, ent_bp
from .imports import data_bp, decl_dict
from .policies import policy_bp
from .runs import run_bp
from .users import admin_bp, auth_bp, me_bp
from .publicity import pub_bp
from .sources import src_bp
from .uses import uses_bp

__all__ = ["AWARD_COLUMNS", "READERS", "RESULT_COLUMNS", "STAFF", "BLUEPRINTS", "InnoApi", "bad_cells",
           "decl_dict", "enterprise_session", "init_app", "pick_run", "reap_stale_runs", "result_columns",
           "run_dict", "run_or_404", "start", "translate"]

# registered in this order, which is the order of the tags and paths in the OpenAPI document
BLUEPRINTS = (auth_bp, ent_bp, run_bp, data_bp, src_bp, pub_bp, me_bp, admin_bp, policy_bp, uses_bp)


def init_app(app):
    app.config.update(API_TITLE="InnoPoints 创新积分 API", API_VERSION="1.0", OPENAPI_VERSION="3.0.3",
                      OPENAPI_URL_PREFIX="/api", OPENAPI_JSON_PATH="openapi.json")
    api = InnoApi(app, spec_kwargs={"info": {"description": "新乡高新区企业创新积分制（新开〔2022〕110号）政策服务"}})
    app.extensions["innopoints_api"] = api
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for bp in BLUEPRINTS:
        api.register_blueprint(bp)

    @app.route("/api/docs")
    @public
    def api_docs():
        return render_template("pages/api_docs.html", spec=api.spec.to_dict())

    @app.errorhandler(Exception)
    def _unexpected(exc):       # never a bare 500 page: a JSON error that names the request
        if isinstance(exc, HTTPException):
            return exc
        current_app.logger.exception("unexpected error")
        if request.path.startswith("/api"):
            return jsonify(code=500, status="Internal Server Error",
                           message="服务器内部错误，已记录 / internal error, logged"), 500
        return "服务器内部错误 / internal error", 500
