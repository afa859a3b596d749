"""Policy authoring through the service: drafts, the check's precise messages, cases that
block publishing, what-if that names exactly the enterprises that change, publishing with
its diff in the audit log, and a running server switching versions with no restart."""
import json
import threading
import time

import pytest

from tests.conftest import GOLDEN


def draft(p, name="draft-1"):
    r = p.post("/api/policies/drafts", "officer", json={"name": name, "note": "测试"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def files(p, d):
    return p.get(f"/api/policies/drafts/{d}", "officer").get_json()["files"]


def put(p, d, name, content):
    return p.client.put(f"/api/policies/drafts/{d}/files/{name}", headers=p.h("officer"), json={"content": content})


ERRORS = [
    ("decay.yaml", lambda t: t.replace("effect: {factor: 0.9}", "effect: {factor: 1.9}", 1),
     ("decay.yaml", "DEC-1a", "超出范围")),
    ("decay.yaml", lambda t: t.replace("  - id: DEC-1b", "  - id: DEC-1a", 1), ("decay.yaml", "DEC-1a", "重复")),
    ("decay.yaml", lambda t: t.replace("    citation: 表4 第1项(1) 成长期企业衰减系数\n", "", 1),
     ("decay.yaml", "DEC-1a", "citation")),
    ("decay.yaml", lambda t: t.replace("when: {stage: growth, completed_years: {gte: 9, lt: 14}}",
                                       "when: {stage: growth, shoe_size: {gte: 9}}", 1), ("decay.yaml", "DEC-1a", "shoe_size")),
    ("decay.yaml", lambda t: t.replace("    effect: {factor: 0.9}", "    effect: {factor: 0.9}\n    colour: red", 1),
     ("decay.yaml", "DEC-1a", "colour")),
    ("decay.yaml", lambda t: t + "\n  - id: [oops\n", ("decay.yaml", "", "YAML")),
    ("indicators.yaml", lambda t: t.replace("tech: 0.35", "tech: 0.45", 1), ("indicators.yaml", "", "1")),
]


@pytest.mark.parametrize("name, change, expected", ERRORS, ids=["range", "duplicate id", "citation", "unknown field",
                                                                 "unknown key", "yaml", "weights"])
def test_each_kind_of_error_is_named_with_file_line_and_clause(lite_park, name, change, expected):
    p = lite_park
    d = draft(p)
    text = files(p, d)[name]
    new = change(text)
    assert new != text
    r = put(p, d, name, new)
    assert r.status_code == 200
    problems = r.get_json()["problems"]
    assert problems, "the check must refuse this draft"
    file, clause, words = expected
    hit = [x for x in problems if x["file"] == file and (not clause or x["clause"] == clause) and words in x["message"]]
    assert hit, problems
    assert all(x["line"] > 0 for x in hit if words != "1")
    r = p.post(f"/api/policies/drafts/{d}/publish", "officer")
    assert r.status_code == 409 and r.get_json()["errors"]["problems"]


def test_a_failing_case_blocks_publishing_until_the_case_is_updated(lite_park):
    p = lite_park
    before = p.get("/api/policy").get_json()["sha256"]
    d = draft(p, "dec1a-0.95")
    r = p.client.patch(f"/api/policies/drafts/{d}/clauses/DEC-1a", headers=p.h("officer"),
                       json={"changes": {"effect.factor": 0.95}})
    assert r.get_json()["problems"] == []
    assert "# 表4 评价体系衰减降档系数表" in files(p, d)["decay.yaml"]        # comments kept
    r = p.post(f"/api/policies/drafts/{d}/publish", "officer")
    assert r.status_code == 409
    failures = r.get_json()["errors"]["failures"]
    assert failures and all(f["case"].startswith("DEC-1a") for f in failures), failures
    assert "decay_factor 0.95 != expected 0.9" in str(failures)
    assert p.get("/api/policy").get_json()["sha256"] == before
    # the officer updates the cases in the same draft; then it publishes
    cases = files(p, d)["cases/decay.yaml"]
    fixed = cases.replace("{A: {stage: growth, decay_factor: 0.9, fired: [DEC-1a]}}",
                          "{A: {stage: growth, decay_factor: 0.95, fired: [DEC-1a]}}").replace(
        "{A: {decay_factor: 0.9, fired: [DEC-1a]}}", "{A: {decay_factor: 0.95, fired: [DEC-1a]}}")
    assert fixed != cases
    put(p, d, "cases/decay.yaml", fixed)
    test = p.post(f"/api/policies/drafts/{d}/test", "officer").get_json()
    assert test["ok"], test["failures"]
    r = p.post(f"/api/policies/drafts/{d}/publish", "officer")
    assert r.status_code == 201, r.get_json()
    new = r.get_json()
    active = p.get("/api/policy").get_json()
    assert active["sha256"] == new["sha256"] != before
    assert next(c for c in active["clauses"] if c["id"] == "DEC-1a")["effect"] == {"factor": 0.95}
    # the audit log has the publish with the diff of the clause file
    entry = p.get("/api/audit?action=policy.publish", "officer").get_json()[0]
    assert entry["user"] == "officer" and entry["detail"]["sha256"] == new["sha256"]
    diff = entry["detail"]["diff"]["decay.yaml"]
    assert "-    effect: {factor: 0.9}" in diff and "+    effect: {factor: 0.95}" in diff
    # published: immutable
    r = p.client.patch(f"/api/policies/drafts/{d}/clauses/DEC-1a", headers=p.h("officer"),
                       json={"changes": {"effect.factor": 0.8}})
    assert r.status_code == 409
    assert p.client.delete("/api/audit", headers=p.h("admin")).status_code == 405


def test_whatif_names_exactly_the_enterprises_that_change(park, tmp_path):
    """A draft with DEC-1a at 0.95 on the golden records: the what-if's enterprises whose
    score changes are exactly those DEC-1a applied to, and its list of changes is exactly the
    rows that differ between two batch evaluations of the same files."""
    import csv
    import shutil
    import subprocess
    import sys
    p = park
    p.import_golden()
    run_id = p.run(budget=28000000)
    d = draft(p, "whatif")
    p.client.patch(f"/api/policies/drafts/{d}/clauses/DEC-1a", headers=p.h("officer"),
                   json={"changes": {"effect.factor": 0.95}})
    r = p.post(f"/api/policies/drafts/{d}/whatif", "officer", json={"year": 2022, "budget": 28000000})
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    scored = {c["credit_code"] for c in report["enterprises"] if "score" in c["changed"]}
    dec1a = set()
    for line in p.get(f"/api/enterprises?run={run_id}&per_page=500", "officer").get_json()["items"]:
        detail = p.get(f"/api/enterprises/{line['credit_code']}?run={run_id}", "officer").get_json()
        if any(e["clause"] == "DEC-1a" for e in detail["explanation"]):
            dec1a.add(line["credit_code"])
    assert dec1a and scored == dec1a
    assert all(c["score_b"] > c["score_a"] for c in report["enterprises"] if "score" in c["changed"])
    assert report["summary"]["stage"] == 0 and report["summary"]["excluded"] == 0
    # independently: two batch runs of the same files
    draft_dir = tmp_path / "draft"
    shutil.copytree("rules/policies/xinxiang-2022", draft_dir)
    (draft_dir / "decay.yaml").write_text(files(p, d)["decay.yaml"], encoding="utf-8")
    outs = {}
    for label, pol in (("a", "rules/policies/xinxiang-2022"), ("b", str(draft_dir))):
        out = tmp_path / label
        subprocess.run([sys.executable, "-c", "from service.cli import cli; cli()", "evaluate", "--records", str(GOLDEN / "records.csv"),
                        "--contracts", str(GOLDEN / "contracts.csv"), "--year", "2022", "--budget", "28000000",
                        "--out", str(out), "--policy", pol], check=True, capture_output=True)
        with open(out / "scores.csv", encoding="utf-8") as f:
            outs[label] = {r["credit_code"]: r for r in csv.DictReader(f)}
    differ = {c for c in outs["a"] if outs["a"][c] != outs["b"][c]}
    assert {c["credit_code"] for c in report["enterprises"]} == differ
    t = report["totals"]
    assert t["granted_after"] <= 28000000 and t["eligible_change"] == t["eligible_after"] - t["eligible_before"]
    assert set(report["top_after"]) == {"startup", "growth", "expansion", "mature"}


def test_cli_whatif_and_publish(tmp_path):
    from click.testing import CliRunner

    from service.cli import cli
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    run = CliRunner()
    for kind in ("records", "contracts"):
        assert run.invoke(cli, ["import", str(GOLDEN / f"{kind}.csv"), "--kind", kind], env=env).exit_code == 0
    folder = tmp_path / "draft"
    import shutil
    shutil.copytree("rules/policies/xinxiang-2022", folder)
    text = (folder / "rewards.yaml").read_text(encoding="utf-8")
    (folder / "rewards.yaml").write_text(text.replace("contract_rate: 0.01", "contract_rate: 0.015"), encoding="utf-8")
    r = run.invoke(cli, ["rules", "whatif", str(folder), "--year", "2022"], env=env)
    assert r.exit_code == 0, r.output
    assert "RW-5 changed" in r.output and "核定合计" in r.output
    r = run.invoke(cli, ["rules", "publish", "draft:99"], env=env)
    assert r.exit_code == 2


def test_a_running_server_switches_versions_without_restart(lite_park):
    """Requests in a loop on a live server while a version is published: every answer is
    whole (its hash matches its clauses), none fails, and the first request after the
    publish returns sees the new version; a run started then uses it."""
    from werkzeug.serving import make_server
    p = lite_park
    p.import_golden()
    d = draft(p, "title-only")
    f = files(p, d)["rewards.yaml"]
    put(p, d, "rewards.yaml", f.replace("title: 经认定登记的技术合同", "title: 经认定登记的技术合同（修订）", 1))
    server = make_server("127.0.0.1", 0, p.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import urllib.request
    url = f"http://127.0.0.1:{server.server_port}/api/policy"
    seen, errors, stop = [], [], threading.Event()

    def loop():
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    body = json.loads(resp.read())
                rw5 = next(c for c in body["clauses"] if c["id"] == "RW-5")["title"]
                seen.append((time.monotonic(), body["sha256"], rw5))
            except Exception as exc:  # any failure is what this test looks for
                errors.append(repr(exc))
    threads = [threading.Thread(target=loop) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    r = p.post(f"/api/policies/drafts/{d}/publish", "officer")
    published_at = time.monotonic()
    assert r.status_code == 201, r.get_json()
    new_sha = r.get_json()["sha256"]
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    server.shutdown()
    assert not errors, errors[:3]
    pairs = {(sha, title) for _, sha, title in seen}
    assert len(pairs) == 2, pairs                      # the old and the new version, never mixed
    assert {sha for sha, _ in pairs} == {new_sha, next(s for s, _ in pairs if s != new_sha)}
    assert "（修订）" in dict(pairs)[new_sha]
    started_after = [sha for t0, sha, _ in seen if t0 > published_at + 0.05]
    assert started_after and set(started_after) == {new_sha}
    run_id = p.run()
    assert p.get(f"/api/runs/{run_id}", "officer").get_json()["policy_sha256"] == new_sha


def test_a_new_indicator_on_a_new_field_is_what_if_tested_with_no_python(park, tmp_path):
    """Issue 12: an officer adds a data field (data.yaml) and an indicator reading it
    (indicators.yaml) to a draft in the policy pages' file editor, imports records that carry
    the new column, and the what-if shows the new indicator's points per stage."""
    import csv
    p = park
    d = draft(p, "new-indicator")
    f = files(p, d)
    data = f["data.yaml"].replace(
        "  - {key: foreign_returnee_staff,",
        "  - {key: digital_rd_share, label: 数字化研发投入占研发费用的比例, kind: ratio, unit: \"%\"}\n"
        "  - {key: foreign_returnee_staff,", 1)
    assert data != f["data.yaml"]
    ind = f["indicators.yaml"].replace(
        "    key: rd_expense\n    category: tech\n    points: 12\n",
        "    key: rd_expense\n    category: tech\n    points: 8\n", 1)
    ind = ind.replace("\n  - id: IND-1.2\n", """
  - id: IND-1.X
    title: 数字化研发投入占研发费用的比例（%）
    citation: 示例修订 第1项 分值4
    effective: {from: 2022-12-30}
    key: digital_rd_share
    category: tech
    points: 4
    method: percentile
  - id: IND-1.2
""", 1)
    assert put(p, d, "data.yaml", data).status_code == 200
    r = put(p, d, "indicators.yaml", ind)
    assert r.status_code == 200, r.get_json()
    # records carrying the new column import while the draft declares it
    with open(GOLDEN / "records.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0]) + ["数字化研发投入占研发费用的比例（%）"]
    for i, row in enumerate(rows):
        row["数字化研发投入占研发费用的比例（%）"] = "" if i % 7 == 0 else f"{(i * 37) % 100}"
    path = tmp_path / "records.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    r = p.upload(path, "records")
    assert r.status_code == 201, r.get_json()
    assert p.upload(GOLDEN / "contracts.csv", "contracts").status_code == 201
    r = p.post(f"/api/policies/drafts/{d}/whatif", "officer", json={"year": 2022})
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    new = [x for x in report["indicators"] if x["clause"] == "IND-1.X"]
    assert new and new[0]["status"] == "新增" and new[0]["field"] == "digital_rd_share"
    assert sum(s["reported"] for s in new[0]["by_stage"]) > 0
    assert all(0 < s["mean_points"] <= s["max_points"] <= 4 for s in new[0]["by_stage"] if s["reported"])
    changed = {x["clause"] for x in report["indicators"]}
    assert changed == {"IND-1.1", "IND-1.X"}
    assert report["summary"]["score"] > 0
    # the draft's field is stored with the record and read back through the API
    code = rows[1]["credit_code"]
    recs = p.get(f"/api/enterprises/{code}/records", "officer").get_json()
    assert recs["records"]
