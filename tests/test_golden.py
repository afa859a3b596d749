"""The golden example of SPEC §5: all four expected folders, byte for byte where it matters."""
import subprocess
import sys

import pytest

from service.cli import cli

CASES = {
    "expected-no-budget": [],
    "expected-budget-28000000-pro_rata": ["--budget", "28000000"],
    "expected-budget-28000000-rank_priority": ["--budget", "28000000", "--strategy", "rank_priority"],
    "expected-budget-15000000-pro_rata": ["--budget", "15000000"],
}


def evaluate(runner, golden, out, extra):
    return runner.invoke(cli, ["evaluate", "--records", str(golden / "records.csv"), "--contracts",
                               str(golden / "contracts.csv"), "--year", "2022", "--out", str(out), *extra])


@pytest.mark.parametrize("folder", CASES)
def test_golden_folder(runner, golden, tmp_path, folder):
    out = tmp_path / "out"
    res = evaluate(runner, golden, out, CASES[folder])
    assert res.exit_code == 0, res.output
    cmp = subprocess.run([sys.executable, str(golden / "compare_outputs.py"), str(out), str(golden / folder)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout
    n_awards = len((golden / folder / "awards.csv").read_text(encoding="utf-8").splitlines()) - 1
    assert f"scores 300/300 agree, awards {n_awards}/{n_awards} agree" in cmp.stdout
    # the score file is exactly the expected one (same columns, formatting and order)
    assert (out / "scores.csv").read_text(encoding="utf-8") == (golden / folder / "scores.csv").read_text(encoding="utf-8")
    assert (out / "awards.csv").read_text(encoding="utf-8") == (golden / folder / "awards.csv").read_text(encoding="utf-8")


def test_fixed_shortfall_is_reported(runner, golden, tmp_path):
    res = evaluate(runner, golden, tmp_path / "out", ["--budget", "15000000"])
    assert "缺口 6,664,964 元" in res.output
    import json
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert m["budget"]["fixed_shortfall"] == 6664964
    assert m["budget"]["granted_total"] == 15000000


def test_two_runs_are_byte_identical(runner, golden, tmp_path):
    for name in ("a", "b"):
        assert evaluate(runner, golden, tmp_path / name, ["--budget", "28000000"]).exit_code == 0
    for f in ("scores.csv", "awards.csv", "trace.jsonl", "indicators.csv", "awards.html", "manifest.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_every_score_is_explained_by_its_trace(runner, golden, tmp_path):
    """Recompute each scores.csv figure from trace.jsonl and indicators.csv alone."""
    import csv
    import json
    out = tmp_path / "out"
    assert evaluate(runner, golden, out, ["--budget", "28000000"]).exit_code == 0
    lines = (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    traces = {t["credit_code"]: t for t in map(json.loads, lines[1:])}
    with open(out / "scores.csv", encoding="utf-8") as f:
        scores = {r["credit_code"]: r for r in csv.DictReader(f)}
    with open(out / "indicators.csv", encoding="utf-8") as f:
        points = {r["credit_code"]: r for r in csv.DictReader(f)}
    with open(out / "awards.csv", encoding="utf-8") as f:
        awards = {(r["credit_code"], r["clause"]): r for r in csv.DictReader(f)}
    assert len(traces) == len(scores) == 300
    for code, row in scores.items():
        t = traces[code]
        assert t["stage"]["stage"] == row["stage"]
        if row["excluded"] == "true":
            fired = [e["clause"] for e in t["negative_list"] if e["effect"].get("exclude")]
            assert ";".join(fired) == row["exclusion_clauses"]
            continue
        for e in t["negative_list"] + t["decay"] + t["bonus"]:
            assert e["clause"] in header["clauses"] and header["clauses"][e["clause"]]["citation"]
        ded = sum(e["effect"].get("deduct", 0) for e in t["negative_list"])
        factor = 1.0
        for e in t["decay"]:
            factor *= e["effect"]["factor"]
        bonus = sum(e["effect"]["add"] for e in t["bonus"])
        s = t["scores"]
        cats = {cat: sum(float(v) for k, v in points[code].items() if k.startswith(f"IND-{n}.") and k.endswith("points"))
                for cat, n in (("tech_score", 1), ("growth_score", 2), ("aux_score", 3))}
        w = s["weights"]
        weighted = w["tech"] * cats["tech_score"] + w["growth"] * cats["growth_score"] + w["aux"] * cats["aux_score"]
        final = max(0.0, weighted - ded) * factor + bonus
        for key, value in (("deductions", ded), ("decay_factor", factor), ("bonus", bonus), ("weighted", weighted),
                           ("final_score", final), *cats.items()):
            assert abs(float(row[key]) - value) < 2e-4, (code, key, row[key], value)
    for (code, clause), a in awards.items():
        line = next(x for x in traces[code]["rewards"] if x["clause"] == clause)
        assert (line["eligible_yuan"], line["granted_yuan"]) == (int(a["eligible_yuan"]), int(a["granted_yuan"]))
        if clause == "RW-5":
            assert ";".join(line["basis"]) == a["basis"]
            assert sum(line["inputs"]["yuan"]) >= int(a["eligible_yuan"])


def test_printable_award_list_totals_match_awards_csv(runner, golden, tmp_path):
    import csv
    import re
    out = tmp_path / "out"
    assert evaluate(runner, golden, out, ["--budget", "15000000"]).exit_code == 0
    html = (out / "awards.html").read_text(encoding="utf-8")
    for heading in ("企业", "奖励事项", "核定金额", "拨付金额", "依据", "合计"):
        assert f"<th>{heading}</th>" in html or f'<th colspan="3">{heading}</th>' in html
    with open(out / "awards.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total_eligible = sum(int(r["eligible_yuan"]) for r in rows)
    total_granted = sum(int(r["granted_yuan"]) for r in rows)
    assert total_granted == 15000000
    m = re.search(r'<th colspan="3">合计</th><th class="num">([\d,]+)</th><th class="num">([\d,]+)</th>', html)
    assert m and (m.group(1), m.group(2)) == (f"{total_eligible:,}", f"{total_granted:,}")
    for clause in ("RW-1", "RW-2", "RW-3", "RW-4", "RW-5"):
        granted = sum(int(r["granted_yuan"]) for r in rows if r["clause"] == clause)
        assert re.search(rf"<td>{clause}</td><td class=\"num\">\d+</td>\s*<td class=\"num\">[\d,]+</td><td class=\"num\">{granted:,}</td>", html)
    assert "固定奖励缺口 6,664,964 元" in html


def test_trace_written_in_chunks_is_the_same_file(runner, golden, tmp_path, monkeypatch):
    from rules import output
    assert evaluate(runner, golden, tmp_path / "a", []).exit_code == 0
    monkeypatch.setattr(output, "TRACE_CHUNK", 7)
    assert evaluate(runner, golden, tmp_path / "b", []).exit_code == 0
    assert (tmp_path / "a" / "trace.jsonl").read_bytes() == (tmp_path / "b" / "trace.jsonl").read_bytes()


def test_manifest_names_policy_inputs_and_outputs(runner, golden, tmp_path):
    import hashlib
    import json
    from rules.policy import load_policy
    out = tmp_path / "out"
    assert evaluate(runner, golden, out, ["--budget", "28000000", "--strategy", "rank_priority"]).exit_code == 0
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["policy"]["sha256"] == load_policy().digest and m["policy"]["document"] == "新开〔2022〕110号"
    assert m["inputs"]["records"]["sha256"] == hashlib.sha256((golden / "records.csv").read_bytes()).hexdigest()
    assert m["inputs"]["contracts"]["sha256"] == hashlib.sha256((golden / "contracts.csv").read_bytes()).hexdigest()
    assert (m["year"], m["budget"]["budget"], m["budget"]["strategy"]) == (2022, 28000000, "rank_priority")
    assert m["program_version"]
    for name, digest in m["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_year_outside_the_policy_or_the_data_is_a_clear_error(runner, golden, tmp_path):
    res = evaluate(runner, golden, tmp_path / "a", []).exit_code
    assert res == 0
    from service.cli import cli as command
    for year, message in (("2021", "不适用于 2021 年度"), ("2023", "没有 2023 年度的记录")):
        r = runner.invoke(command, ["evaluate", "--records", str(golden / "records.csv"), "--year", year,
                                    "--out", str(tmp_path / year)])
        assert r.exit_code != 0 and message in r.output and not (tmp_path / year).exists()
