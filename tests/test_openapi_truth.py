"""What the OpenAPI document promises about answers (issue 13, item 11), checked directly:
every 200 (and 201) documented, file answers with their media types, one charset, times with
their time zone, Allow on 405."""
import re

from tests.conftest import make_app

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_every_success_answer_is_documented(lite_park):
    spec = lite_park.get("/api/openapi.json").get_json()
    for path, ops in spec["paths"].items():
        for method, op in ((m, o) for m, o in ops.items() if m != "parameters"):
            ok = {c: r for c, r in op["responses"].items() if c.startswith("2")}
            assert ok, (method, path)
            for code, r in ok.items():
                r = spec["components"]["responses"][r["$ref"].rsplit("/", 1)[1]] if "$ref" in r else r
                assert r.get("content"), (method, path, code)
            params = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
            if "format" in params:        # csv and xlsx exports are documented beside the JSON
                assert {"application/json", "text/csv", XLSX} <= set(op["responses"]["200"]["content"]), path
    assert set(spec["paths"]["/api/templates/{kind}.xlsx"]["get"]["responses"]["200"]["content"]) == {XLSX}


def test_one_charset_times_with_zone_and_allow_on_405(lite_park):
    p = lite_park
    p.import_golden()
    run_id = p.run()
    for path in ("/api/enterprises?format=csv", f"/api/runs/{run_id}/files/scores.csv",
                 f"/api/runs/{run_id}/files/awards.html", "/api/audit?format=csv"):
        ctype = p.get(path, "officer").headers["Content-Type"]
        assert ctype.count("charset") == 1, (path, ctype)
    zone = re.compile(r"T\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)$")
    run = p.get(f"/api/runs/{run_id}", "officer").get_json()
    assert zone.search(run["created_at"]) and zone.search(run["finished_at"])
    assert all(zone.search(a["at"]) for a in p.get("/api/audit", "officer").get_json())
    assert all(zone.search(i["at"]) for i in p.get("/api/imports", "officer").get_json())
    r = p.client.delete("/api/runs", headers=p.h("officer"))
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert r.get_json()["code"] == 405
