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
    assert "scores 300/300 agree, awards 152/152 agree" in cmp.stdout
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
