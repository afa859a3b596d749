"""Clause case files (tests/cases/*.yaml), each case a test; and the runner itself."""
import pytest

from rules.cases import DEFAULT_CASES, Case, load_cases, load_defaults, run_case

CASES = load_cases(DEFAULT_CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file}:{c.name}" for c in CASES])
def test_clause_case(case, policy):
    assert run_case(case, policy) == []


def test_every_clause_id_has_a_case(policy):
    text = "\n".join(p.read_text(encoding="utf-8") for p in DEFAULT_CASES.glob("*.yaml"))
    missing = sorted({c.id for c in policy.clauses if c.id not in text})
    assert missing == []


def test_a_wrong_expectation_fails(policy):
    case = Case("x.yaml", "NL-2a", "wrong on purpose", {
        "year": 2022, "enterprises": [{"ent": "A", "env_credit_rating": "warning"}],
        "expect": {"A": {"deductions": 4, "awards": {"RW-1": {"eligible": 1}}}},
        "_defaults": load_defaults(DEFAULT_CASES)})
    problems = run_case(case, policy)
    assert any("deductions 5.0 != expected 4" in p for p in problems)
    assert any("no RW-1 award line" in p for p in problems)


def test_rules_test_command(runner):
    from service.cli import cli
    res = runner.invoke(cli, ["rules", "test"])
    assert res.exit_code == 0, res.output
    assert f"{len(CASES)}/{len(CASES)}" in res.output
