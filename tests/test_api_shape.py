"""The API's shape (issue 13, item 12): one module per resource, each with its blueprint,
and the names other modules import from `service.api` still there."""
import service.api as api
from tests.conftest import make_app

MODULE = {"enterprises": "enterprises", "data": "imports", "runs": "runs", "policies": "policies", "uses": "uses",
          "auth": "users", "me": "users", "admin": "users", "sources": "sources", "publicity": "publicity"}


def test_one_module_per_resource(sqlite_url):
    app = make_app(sqlite_url)
    try:
        seen = set()
        for rule in app.url_map.iter_rules():
            bp = rule.endpoint.split(".")[0] if "." in rule.endpoint else None
            if bp not in MODULE:
                continue
            view = app.view_functions[rule.endpoint]
            module = getattr(view, "view_class", view).__module__
            assert module == f"service.api.{MODULE[bp]}", (rule.rule, module)
            seen.add(bp)
        assert seen == set(MODULE)
        assert [bp.name for bp in api.BLUEPRINTS] == ["auth", "enterprises", "runs", "data", "sources", "publicity",
                                                       "me", "admin", "policies", "uses"]
    finally:
        app.extensions["db_engine"].dispose()


def test_names_imported_from_service_api():
    for name in ("AWARD_COLUMNS", "result_columns", "bad_cells", "decl_dict", "reap_stale_runs", "run_dict", "start",
                 "pick_run", "init_app"):
        assert callable(getattr(api, name)) or isinstance(getattr(api, name), list), name
