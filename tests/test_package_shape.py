"""A policy package is the whole policy (issue 12): the example package runs end to end with
no Python naming any of it, a renamed copy of the 新乡 package gives the same results, and
the code names no stage, field, category, contract kind or choice value of either package."""
from __future__ import annotations

import ast
import csv
import io
import json
import re
import shutil
import tokenize
from pathlib import Path

import pytest

from rules.cases import load_cases, run_case
from rules.policy import load_policy, resolve
from service.cli import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "rules" / "policies" / "example-five-stage"
SAMPLE = EXAMPLE / "sample"
GOLDEN = Path(__file__).parent / "golden"
EXAMPLE_CASES = load_cases(EXAMPLE / "cases")


@pytest.fixture(scope="module")
def example():
    return load_policy(EXAMPLE)


def _newest_year():
    with open(SAMPLE / "records.csv", encoding="utf-8") as f:
        return max(int(r["year"]) for r in csv.DictReader(f))


# ---- (a) the example package passes the check and all its own cases -------------------------------

def test_example_is_labelled_as_an_example(example):
    assert "示例，非正式政策" in example.title
    assert len(example.data.stages) == 5
    assert len(example.categories()) == 4
    ind = example.clauses_for("indicators", 2025)
    assert 10 <= len(ind) <= 14
    xinxiang = {f.key for f in load_policy().data.fields}
    assert len({c.body["key"] for c in ind} - xinxiang) >= 2       # indicators on fields 新乡 lacks
    assert all("示例" in c.citation for c in example.clauses)


def test_example_check_command(runner):
    res = runner.invoke(cli, ["rules", "check", str(EXAMPLE)])
    assert res.exit_code == 0, res.output
    assert "example-five-stage" in res.output


@pytest.mark.parametrize("case", EXAMPLE_CASES, ids=[f"{c.file}:{c.name}" for c in EXAMPLE_CASES])
def test_example_case(case, example):
    assert run_case(case, example) == []


def test_every_example_clause_has_a_case(example):
    text = "\n".join(p.read_text(encoding="utf-8") for p in (EXAMPLE / "cases").glob("*.yaml"))
    assert sorted({c.id for c in example.clauses if c.id not in text}) == []


def test_rules_test_reads_the_package_cases(runner):
    res = runner.invoke(cli, ["rules", "test", str(EXAMPLE)])
    assert res.exit_code == 0, res.output
    assert f"{len(EXAMPLE_CASES)}/{len(EXAMPLE_CASES)}" in res.output


# ---- (b) batch evaluation of the sample data ---------------------------------------------------------

def test_example_batch_evaluate(runner, tmp_path, example):
    year = _newest_year()
    out = tmp_path / "out"
    res = runner.invoke(cli, ["evaluate", "--policy", str(EXAMPLE), "--records", str(SAMPLE / "records.csv"),
                              "--contracts", str(SAMPLE / "contracts.csv"), "--year", str(year), "--out", str(out)])
    assert res.exit_code == 0, res.output
    with open(out / "scores.csv", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        cols = reader.fieldnames
    assert [c for c in cols if c.endswith("_score") and c != "final_score"] == \
        [f"{k}_score" for k in example.categories()]
    assert {r["stage"] for r in rows} == set(example.data.stages)
    assert 250 <= len(rows) <= 350
    scored = [r for r in rows if r["excluded"] == "false"]
    assert scored and all(float(r["final_score"]) >= 0 for r in scored)
    from rules.tracefile import read_header, read_trace
    header = read_header(out)
    assert len(read_trace(out)) == len(rows)
    assert "示例" in json.dumps(header, ensure_ascii=False)
    with open(out / "awards.csv", encoding="utf-8") as f:
        clauses = {r["clause"] for r in csv.DictReader(f)}
    assert clauses and clauses <= {c.id for c in example.clauses if c.group == "rewards"}


def test_make_sample_data_is_reproducible(tmp_path):
    import subprocess
    import sys
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "make-sample-data"), "example-five-stage",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    for name in ("records.csv", "contracts.csv"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


# ---- (c) through the service: publish, import, run, API and profile page ---------------------------

def _publish_example(p):
    """Make the example package the version in force as a new zone would: a draft from the
    folder (innopoints rules draft), then publish through the API (check and its cases)."""
    from service import db, policies
    with p.app.app_context():
        s = db.session()
        d = policies.draft_from_folder(s, EXAMPLE, "example-five-stage", None, "新园区政策包")
        s.commit()
        draft_id = d.id
    r = p.post(f"/api/policies/drafts/{draft_id}/publish", "officer")
    assert r.status_code == 201, r.get_json()
    with p.app.app_context():
        assert policies.active(db.session()).name == "example-five-stage"


def test_example_through_the_service(park, example, tmp_path):
    from tests.test_app import login
    p = park
    _publish_example(p)
    shape = p.get("/api/policy/shape", "officer")
    assert shape.status_code == 200
    assert example.data.stages["seed_stage"] in shape.get_data(as_text=True)
    for kind in ("records", "contracts"):
        r = p.upload(SAMPLE / f"{kind}.csv", kind)
        assert r.status_code == 201, r.get_json()
    year = _newest_year()
    run_id = p.run(year=year)
    items = p.get(f"/api/enterprises?run={run_id}&per_page=500", "officer").get_json()
    rows = items.get("items", items) if isinstance(items, dict) else items
    assert {r["stage"] for r in rows} <= set(example.data.stages)
    scored = next(r for r in rows if not r["excluded"])
    code = scored["credit_code"]
    detail = p.get(f"/api/enterprises/{code}?run={run_id}", "officer")
    assert detail.status_code == 200, detail.get_json()
    text = json.dumps(detail.get_json(), ensure_ascii=False)
    assert example.data.stages[scored["stage"]] in text
    for key, cat in example.categories().items():
        assert cat["title"] in text
    client = p.app.test_client()
    login(client, "officer")
    page = client.get(f"/enterprises/{code}?run={run_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert example.data.stages[scored["stage"]] in html
    for cat in example.categories().values():
        assert cat["title"] in html
    for cat in load_policy().categories().values():          # nothing of the 新乡 package is shown
        assert cat["title"] not in html
    run_page = client.get(f"/workspace/runs/{run_id}").get_data(as_text=True)    # honour lists per stage
    for key, name in example.data.stages.items():
        assert f'<option value="{key}">{name}</option>' in run_page
    assert client.get("/workspace/seed-pool").status_code == 200
    # a what-if of a revised example on the draft page: captions by the package's stage names
    from service import db, policies
    revised = tmp_path / "revised"
    shutil.copytree(EXAMPLE, revised)
    dec = revised / "decay.yaml"
    dec.write_text(dec.read_text(encoding="utf-8").replace("factor: 0.85", "factor: 0.8"), encoding="utf-8")
    with p.app.app_context():
        s = db.session()
        draft_id = policies.draft_from_folder(s, revised, "revised", None).id
        s.commit()
    url = f"/workspace/policy/drafts/{draft_id}"
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)
    r = client.post(url, data={"csrf_token": token, "action": "whatif", "year": str(year)})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert all(f"<caption>{name}</caption>" in html for name in example.data.stages.values())


# ---- (d) a renamed copy of the 新乡 package gives the same results ---------------------------------

RENAME = {"expansion": "kuozhang", "rd_expense": "yanfa_feiyong"}


def _rename(text):
    for old, new in RENAME.items():
        text = re.sub(rf"(?<![A-Za-z0-9_]){old}(?![A-Za-z0-9_])", new, text)
    return text


def test_renamed_package_gives_the_same_results(runner, tmp_path):
    src = resolve(None)
    dst = tmp_path / "renamed"
    shutil.copytree(src, dst)
    changed = 0
    for f in dst.rglob("*"):
        if f.is_file() and f.suffix in (".yaml", ".md", ".csv"):
            old = f.read_text(encoding="utf-8")
            new = _rename(old)
            changed += new != old
            f.write_text(new, encoding="utf-8")
    assert changed >= 4           # data, stage, indicators, decay, sample … all name them
    data = tmp_path / "data"
    data.mkdir()
    for name in ("records.csv", "contracts.csv"):
        (data / name).write_text(_rename((GOLDEN / name).read_text(encoding="utf-8")), encoding="utf-8")
    assert "yanfa_feiyong" in (data / "records.csv").read_text(encoding="utf-8").splitlines()[0]
    renamed = load_policy(dst)
    assert "kuozhang" in renamed.data.stages and renamed.data.field("yanfa_feiyong") is not None
    assert "expansion" not in renamed.data.stages and renamed.data.field("rd_expense") is None

    def run(policy, folder, out):
        res = runner.invoke(cli, ["evaluate", "--policy", str(policy), "--records", str(folder / "records.csv"),
                                  "--contracts", str(folder / "contracts.csv"), "--year", "2022",
                                  "--budget", "28000000", "--out", str(out)])
        assert res.exit_code == 0, res.output
        return {n: (out / n).read_text(encoding="utf-8") for n in ("scores.csv", "awards.csv")}

    bundled = run(src, GOLDEN, tmp_path / "a")
    other = run(dst, data, tmp_path / "b")
    assert "kuozhang" in other["scores.csv"] and "expansion" not in other["scores.csv"]
    for name in ("scores.csv", "awards.csv"):
        assert other[name] == _rename(bundled[name]), name


# ---- (e) the code names nothing of either package --------------------------------------------------

# Words that are a package's name and also an ordinary word the code uses for something else.
ALLOWED = {
    "service",   # 新乡's contract kind 技术服务; in service/uses.py and service/api/uses.py it is the
                 # key of a recommended service (分阶段服务) in the results' uses, not a contract kind
}


def _package_names():
    names = {}
    for pkg in (resolve(None), EXAMPLE):
        pv = load_policy(pkg)
        d = pv.data
        for k in d.stages:
            names[k] = f"{pv.name} stage"
        for f in d.fields:
            names[f.key] = f"{pv.name} field"
            for v, _ in f.values:
                names[v] = f"{pv.name} choice value of {f.key}"
        for k in d.contract_kinds:
            names[k] = f"{pv.name} contract kind"
        for r in d.runs:
            names[r.key] = f"{pv.name} history run"
        for k in pv.categories():
            names[k] = f"{pv.name} category"
    return names


def _literals(path):
    """(line, value) of every string literal of a Python file that is not a docstring;
    comments are not tokens of this kind. f-strings give their literal parts."""
    toks = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
            if t.type not in (tokenize.NL, tokenize.COMMENT)]
    out = []
    for i, t in enumerate(toks):
        if t.type != tokenize.STRING:
            continue
        prev = toks[i - 1].type if i else tokenize.NEWLINE
        nxt = toks[i + 1].type if i + 1 < len(toks) else tokenize.NEWLINE
        if prev in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT) and nxt == tokenize.NEWLINE:
            continue            # a string standing alone as a statement: a docstring
        try:
            v = ast.literal_eval(t.string)
        except (ValueError, SyntaxError):
            continue            # an f-string: its parts are checked below
        if isinstance(v, str):
            out.append((t.start[0], v))
    return out


def _subscript_keys(path):
    """Keys of subscripts, .get/.pop/.setdefault calls and f-string parts, from the AST."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            out.append((node.lineno, node.slice.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("get", "pop", "setdefault") and node.args \
                and isinstance(node.args[0], ast.Constant):
            out.append((node.lineno, node.args[0].value))
        elif isinstance(node, ast.JoinedStr):
            out += [(node.lineno, v.value) for v in node.values if isinstance(v, ast.Constant)]
    return [(line, v) for line, v in out if isinstance(v, str)]


def test_code_names_no_policy_name():
    names = _package_names()
    assert {"seed_stage", "expansion", "rd_expense", "tech", "transfer", "warning", "prior_year_stage"} <= set(names)
    found = []
    for f in sorted(list((ROOT / "rules").rglob("*.py")) + list((ROOT / "service").rglob("*.py"))):
        for line, v in _literals(f) + _subscript_keys(f):
            if v in names and v not in ALLOWED:
                found.append(f"{f.relative_to(ROOT)}:{line} {v!r} ({names[v]})")
    assert sorted(set(found)) == []


def test_the_scan_finds_a_name(tmp_path):
    """The scan itself: a literal, a subscript key and a .get key are found; a docstring and a
    comment are not."""
    f = tmp_path / "x.py"
    f.write_text('"""expansion in a docstring"""\n# rd_expense in a comment\n'
                 'a = {"startup": 1}\nb = row["rd_expense"]\nc = d.get("tech")\n', encoding="utf-8")
    got = {v for _, v in _literals(f) + _subscript_keys(f)}
    assert {"startup", "rd_expense", "tech"} <= got and "expansion in a docstring" not in got


def test_rules_draft_command_makes_a_draft_of_a_folder(tmp_path):
    from click.testing import CliRunner
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    run = CliRunner()
    r = run.invoke(cli, ["rules", "draft", str(EXAMPLE), "--name", "new-zone"], env=env)
    assert r.exit_code == 0, r.output
    assert "draft:1" in r.output and "检查通过" in r.output
    r = run.invoke(cli, ["rules", "publish", "draft:1"], env=env)
    assert r.exit_code == 0, r.output
    assert "已发布版本" in r.output


# ---- the guide for policy staff -----------------------------------------------------------------------

def test_the_guide_covers_every_file_and_is_linked(lite_park):
    from tests.test_app import login
    text = (ROOT / "docs" / "policy-guide.md").read_text(encoding="utf-8")
    for name in ("data.yaml", "policy.yaml", "stage.yaml", "scope.yaml", "indicators.yaml", "negative_list.yaml",
                 "decay.yaml", "bonus.yaml", "rewards.yaml", "sample.yaml", "cases/", "defaults.yaml",
                 "innopoints rules check", "innopoints rules test", "whatif", "publish", "example-five-stage"):
        assert name in text, name
    assert "docs/policy-guide.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    client = lite_park.app.test_client()
    assert client.get("/workspace/policy/guide").status_code == 302          # log in first
    login(client, "officer")
    index = client.get("/workspace/policy/").get_data(as_text=True)
    assert "/workspace/policy/guide" in index
    page = client.get("/workspace/policy/guide")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>如何为新的园区建立政策包</h1>" in html and "<table>" in html and "<pre><code>" in html
    assert "<script" not in html.split("<article", 1)[1].split("</article>", 1)[0]


def test_markdown_escapes_everything():
    from service.docs import markdown_html
    html = str(markdown_html("# T <b>\n\n段落 `x<y` **粗** [链接](javascript:alert(1)) [好](/a)\n\n| a | b |\n|---|---|\n| <i> | 2 |\n"))
    assert "<b>" not in html and "<i>" not in html and "&lt;b&gt;" in html
    assert "<code>x&lt;y</code>" in html and "<strong>粗</strong>" in html
    assert 'href="javascript' not in html and '<a href="/a">好</a>' in html


def test_templates_and_scripts_name_no_policy_name():
    """The pages follow the package too: no template or script quotes a package's name."""
    names = _package_names()
    allowed = ALLOWED | {"bad"}     # 新乡's 环境信用等级 不良; in static/js/clause.js a CSS state of the live check
    found = []
    for f in sorted(list((ROOT / "templates").rglob("*.html")) + list((ROOT / "static" / "js").rglob("*.js"))):
        text = f.read_text(encoding="utf-8")
        for m in re.finditer(r"""['"]([A-Za-z_][A-Za-z0-9_]*)['"]""", text):
            if m.group(1) in names and m.group(1) not in allowed:
                found.append(f"{f.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1} {m.group(1)!r}")
    assert found == []
