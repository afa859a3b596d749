"""Never a 500 for any input: every documented GET endpoint and the JSON bodies of the
write endpoints, with generated parameters and bodies (hypothesis), as each role."""
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Park

TEXT = st.text(alphabet=string.printable + "中文；，。‰％—\u0000\ufeff", max_size=30)
VALUE = st.one_of(TEXT, st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(str),
                  st.sampled_from(["", "true", "null", "[]", "{}", "%00", "../", "9" * 400]))
JSON_VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), TEXT),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                          max_leaves=6)

_park = {}


def park(lite_app):
    """One imported and run park per app (hypothesis calls the test many times)."""
    key = id(lite_app)
    if key not in _park:
        p = Park(lite_app)
        p.import_golden()
        p.run_id = p.run()
        _park.clear()
        _park[key] = p
    return _park[key]


def get_paths(p):
    spec = p.get("/api/openapi.json").get_json()
    out = []
    for path, ops in spec["paths"].items():
        if "get" not in ops:
            continue
        params = [x["name"] for x in ops["get"].get("parameters", []) if x["in"] == "query"]
        path = (path.replace("{code}", p.own).replace("{run_id}", str(p.run_id)).replace("{a}", str(p.run_id))
                .replace("{b}", str(p.run_id)).replace("{kind}", "records").replace("{name}", "scores.csv"))
        out.append((path, params))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_query_makes_a_500(lite_app, data):
    p = park(lite_app)
    path, params = data.draw(st.sampled_from(get_paths(p)))
    names = st.sampled_from(params + ["unknown", "page", "format"]) if params else st.just("x")
    query = data.draw(st.dictionaries(names, VALUE, max_size=4))
    role = data.draw(st.sampled_from(["public", "officer", "finance", "enterprise", "bank", "admin"]))
    r = p.client.get(path, query_string=query, headers=p.h(role))
    assert r.status_code < 500, (path, query, role, r.get_data(as_text=True)[:300])


WRITES = [("POST", "/api/runs"), ("POST", "/api/tokens"), ("POST", "/api/users"), ("POST", "/api/declarations"),
          ("POST", "/api/declarations/1/decision"), ("PUT", "/api/me/consent"),
          ("PATCH", "/api/enterprises/{own}/records/2022"), ("POST", "/api/runs/{run}/publish")]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_body_makes_a_500(lite_app, data):
    p = park(lite_app)
    method, path = data.draw(st.sampled_from(WRITES))
    path = path.replace("{own}", p.own).replace("{run}", str(p.run_id))
    keys = st.sampled_from(["year", "budget", "strategy", "policy", "field", "value", "reason", "approve",
                            "consent", "username", "password", "role", "credit_code", "label"]) | TEXT
    body = data.draw(st.one_of(st.dictionaries(keys, JSON_VALUE, max_size=5), JSON_VALUE))
    role = data.draw(st.sampled_from(["officer", "enterprise", "admin"]))
    r = p.client.open(path, method=method, json=body, headers=p.h(role))
    assert r.status_code < 500, (method, path, body, role, r.get_data(as_text=True)[:300])
    raw = data.draw(st.binary(max_size=40))
    r = p.client.open(path, method=method, data=raw, content_type="application/json", headers=p.h(role))
    assert r.status_code < 500, (method, path, raw, r.get_data(as_text=True)[:300])
