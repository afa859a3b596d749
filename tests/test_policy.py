"""Clause files: malformed ones are rejected with file, line, clause and reason; a changed
number in a clause file changes the results with no Python edited."""
import csv
import json
import re

import pytest

from rules.policy import PolicyError, load_policy
from service.cli import cli


def edit(folder, name, old, new, count=1):
    p = folder / f"{name}.yaml"
    text = p.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}.yaml"
    p.write_text(text.replace(old, new, count), encoding="utf-8")


def problems(folder):
    with pytest.raises(PolicyError) as exc:
        load_policy(folder)
    return [str(p) for p in exc.value.problems]


def test_bundled_policy_loads(policy):
    assert policy.name == "xinxiang-2022"
    ids = [c.id for c in policy.clauses]
    assert len(ids) == len(set(ids)) == 1 + 1 + 35 + 9 + 6 + 3 + 5     # STAGE, SCOPE, IND, NL, DEC, BON, RW
    assert all(c.citation for c in policy.clauses)


@pytest.mark.parametrize("name,old,new,expected", [
    ("decay", "    effect: {factor: 0.9}\n", "    effect: {factor: 0.9}\n    colour: red\n",
     r"decay\.yaml:\d+ \[DEC-1a\] 未知的键 'colour'"),
    ("bonus", "  - id: BON-1b", "  - id: BON-1a", r"bonus\.yaml:\d+ \[BON-1a\] 条款编号重复且生效期重叠"),
    ("negative_list", "    citation: 表3 第3项 安全生产情况\n", "", r"negative_list\.yaml:\d+ \[NL-3\] 缺少 citation"),
    ("decay", "effect: {factor: 0.7}\n    supersedes", "effect: {factor: 1.7}\n    supersedes",
     r"decay\.yaml:\d+ \[DEC-3b\] factor = 1\.7 超出范围"),
    ("negative_list", "effect: {deduct: 5}", "effect: {deduct: -5}", r"\[NL-2a\] deduct = -5 超出范围"),
    ("rewards", "effect: {kind: fixed, amount: 10000}", "effect: {kind: fixed, amount: 10000.5}",
     r"\[RW-2\] amount = 10000\.5 应为非负整数"),
    ("rewards", "contract_rate: 0.01", "contract_rate: 1.5", r"\[RW-5\] contract_rate = 1\.5 超出范围"),
    ("negative_list", "when: {major_safety_incident: true}", "when: {major_safety_incidents: true}",
     r"\[NL-3\] 条件错误：未知字段 'major_safety_incidents'"),
    ("negative_list", "when: {env_credit_rating: bad}", "when: {env_credit_rating: terrible}",
     r"\[NL-2b\] 条件错误：字段 env_credit_rating 的取值应为"),
    ("indicators", "startup: {tech: 0.50, growth: 0.30, aux: 0.20}", "startup: {tech: 0.50, growth: 0.40, aux: 0.20}",
     r"weights\.startup 之和为"),
    ("indicators", "    points: 14\n", "    points: 15\n", r"tech 类指标分值合计 101"),
    ("indicators", "    method: percentile\n", "    method: magic\n", r"\[IND-1\.1\] 未知的计分方法 'magic'"),
    ("decay", "    title: 成长期企业注册满14年以上", "    title: 成长期企业注册满14年以上\n    title: 重复", r"decay\.yaml:\d+ .*duplicate key 'title'"),
    ("stage", "      - {stage: growth}\n", "      - {stage: decline}\n", r"\[STAGE\] 第4行的 stage 应为"),
    ("rewards", "strategy: pro_rata", "strategy: lottery", r"rewards\.yaml .*strategy 应为 pro_rata 或 rank_priority"),
    # policy v2: an effect may only read a field that is exact in the engine's pattern key
    ("negative_list", "effect: {deduct: 5}", "effect: {deduct: 5, per: env_credit_rating}",
     r"\[NL-2a\] per 应为本组的计数字段.*pattern key"),
    ("rewards", "effect: {kind: floating, amount: 100000, maximum: 100000}\n",
     "effect: {kind: floating, amount: 100000, maximum: 100000, per: in_scope}\n", r"\[RW-1\] per 应为本组的计数字段"),
    ("rewards", "kinds: [transfer, development, consulting, service]", "kinds: [transfer, barter]",
     r"\[RW-5\] kinds 应为合同类别列表"),
    ("scope", "effect: {in_scope: true}", "effect: {in_scope: true, deduct: 3}", r"\[SCOPE\] 未知的效果 'deduct'"),
    ("policy", "history: {runs: extend}", "history: {runs: sometimes}", r"policy\.yaml:\d+ \[-\] history\.runs 应为"),
    ("policy", "reference_date: {month: 12, day: 31}", "reference_date: {month: 2, day: 30}",
     r"policy\.yaml:\d+ \[-\] reference_date"),
    # issue 12: the clause files and the data dictionary (data.yaml) must agree
    ("indicators", "    key: rd_expense\n", "    key: rd_spend\n",
     r"\[IND-1\.1\] 指标字段 'rd_spend' 不在数据字典"),
    ("data", "  - {key: major_safety_incident,", "  - {key: safety_incident,",
     r"\[NL-3\] 条件错误：未知字段 'major_safety_incident'"),
    ("indicators", "    category: tech\n", "    category: innovation\n",
     r"\[IND-1\.1\] category 应为 indicators\.yaml categories 中的"),
    ("indicators", "  mature: {tech: 0.20, growth: 0.30, aux: 0.50}", "  mature: {tech: 0.20, growth: 0.30, aux: 0.50}\n  decline: {tech: 1}",
     r"weights\.decline：数据字典中没有这个阶段"),
    ("data", "  - {key: mature, name: 成熟期}\n", "  - {key: mature, name: 成熟期}\n  - {key: decline, name: 衰退期}\n",
     r"weights\.decline 应给出 tech, growth, aux 各类的权重"),
    ("data", "  - {key: mature, name: 成熟期}\n", "  - {key: mature, name: 成熟期}\n  - {key: decline, name: 衰退期}\n",
     r"\[STAGE\] 数据字典中的阶段 decline 没有任何分类行"),
    ("indicators", "  aux: {title: 辅助指标, citation: 表2 一级指标}", "  aux: {title: 辅助指标, citation: 表2 一级指标, points: 90}",
     r"aux 类指标分值合计 100（自 2022-12-30 起），应为 90"),
    ("stage", "      - {stage: growth}\n", "      - {stage: growth, when: {revenue: {gte: 0}}}\n",
     r"\[STAGE\] 最后一行应只有 stage（兜底），否则有的企业没有阶段"),
    ("stage", "{stage: mature, when: {revenue: {gte: 10000}}}", "{stage: mature, when: {turnover: {gte: 10000}}}",
     r"\[STAGE\] 第1行的条件错误：未知字段 'turnover'"),
    ("data", "  - {key: service, name: 技术服务}\n", "",
     r"\[RW-5\] kinds 应为合同类别列表"),
    ("data", "while: {stage: expansion}", "while: {stage: expanding}",
     r"data\.yaml:\d+ \[-\] 连续期 expansion_years 的 while 应为"),
    ("data", "    kind: choice\n", "    kind: rating\n", r"data\.yaml:\d+ \[-\] 字段 env_credit_rating 的 kind 'rating' 应为"),
])
def test_malformed_clause_file_is_rejected(policy_copy, name, old, new, expected):
    edit(policy_copy, name, old, new)
    found = problems(policy_copy)
    assert any(re.search(expected, p) for p in found), found


def test_overlapping_effective_dates(policy_copy):
    # a second version of BON-1c from 2024: fine when the first ends 2023-12-31, rejected when it does not
    extra = """  - id: BON-1c
    title: 承担1个以上市级重大科技项目，加2分（假设的新版本）
    citation: 表5 第1项(3)
    effective: {from: 2024-01-01}
    when: {major_projects_municipal: {gte: 1}}
    effect: {add: 2}
"""
    p = policy_copy / "bonus.yaml"
    p.write_text(p.read_text(encoding="utf-8") + extra, encoding="utf-8")
    found = problems(policy_copy)
    assert any("[BON-1c] 条款编号重复且生效期重叠" in x for x in found), found
    text = p.read_text(encoding="utf-8").replace(
        "    citation: 表5 第1项(3) 重大科技项目附加分\n    effective: {from: 2022-12-30}",
        "    citation: 表5 第1项(3) 重大科技项目附加分\n    effective: {from: 2022-12-30, to: 2023-12-31}")
    p.write_text(text, encoding="utf-8")
    pv = load_policy(policy_copy)
    assert pv.clause("BON-1c", 2023).effect["add"] == 1
    assert pv.clause("BON-1c", 2024).effect["add"] == 2


def test_rules_check_command(runner, policy_copy):
    assert runner.invoke(cli, ["rules", "check"]).exit_code == 0
    edit(policy_copy, "decay", "effect: {factor: 0.9}", "effect: {factor: 0}")
    res = runner.invoke(cli, ["rules", "check", str(policy_copy)])
    assert res.exit_code == 1
    assert "decay.yaml" in res.output and "DEC-1a" in res.output and "factor = 0" in res.output


def read(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run(runner, golden, out, policy=None, extra=()):
    args = ["evaluate", "--records", str(golden / "records.csv"), "--contracts", str(golden / "contracts.csv"),
            "--year", "2022", "--out", str(out), *extra]
    if policy:
        args += ["--policy", str(policy)]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    return read(out / "scores.csv"), read(out / "awards.csv")


def test_changing_a_coefficient_changes_exactly_the_affected_scores(runner, golden, tmp_path, policy_copy):
    base, _ = run(runner, golden, tmp_path / "a")
    edit(policy_copy, "decay", "when: {stage: growth, completed_years: {gte: 9, lt: 14}}\n    effect: {factor: 0.9}",
         "when: {stage: growth, completed_years: {gte: 9, lt: 14}}\n    effect: {factor: 0.95}")
    new, _ = run(runner, golden, tmp_path / "b", policy_copy)
    changed = {a["credit_code"] for a, b in zip(base, new) if a["decay_factor"] != b["decay_factor"]}
    from rules.tracefile import read_trace
    dec1a = {t["credit_code"] for t in read_trace(tmp_path / "a")
             if '"clause":"DEC-1a"' in json.dumps(t, ensure_ascii=False, separators=(",", ":"))}
    assert changed == dec1a and changed
    for a, b in zip(base, new):
        if a["credit_code"] in changed:
            assert float(b["decay_factor"]) == pytest.approx(float(a["decay_factor"]) / 0.9 * 0.95, abs=1e-4)


def test_changing_the_contract_rate_and_parks_changes_awards(runner, golden, tmp_path, policy_copy):
    _, base = run(runner, golden, tmp_path / "a")
    edit(policy_copy, "rewards", "contract_rate: 0.01", "contract_rate: 0.015")
    _, rate = run(runner, golden, tmp_path / "b", policy_copy)
    b5 = {r["credit_code"]: int(r["eligible_yuan"]) for r in base if r["clause"] == "RW-5"}
    r5 = {r["credit_code"]: int(r["eligible_yuan"]) for r in rate if r["clause"] == "RW-5"}
    assert set(b5) <= set(r5)
    assert all(r5[c] >= b5[c] for c in b5) and sum(r5.values()) > sum(b5.values())
    # one contract of 12.34565 万元: 1% = 1234.565 → 1235 yuan; 1.5% = 1851.8475 → 1852 yuan
    assert (b5["91410700MLT1XLW71C"], r5["91410700MLT1XLW71C"]) == (1235, 1852)
    edit(policy_copy, "rewards", "per_enterprise_cap: 500000", "per_enterprise_cap: 300000")
    _, cap = run(runner, golden, tmp_path / "d", policy_copy)
    c5 = {r["credit_code"]: int(r["eligible_yuan"]) for r in cap if r["clause"] == "RW-5"}
    assert max(c5.values()) == 300000 and max(r5.values()) == 500000
    assert all(c5[c] == min(r5[c], 300000) for c in r5)
    edit(policy_copy, "rewards", "parks: [主园区]", "parks: all")
    _, parks = run(runner, golden, tmp_path / "c", policy_copy)
    assert len({r["credit_code"] for r in parks}) > len({r["credit_code"] for r in rate})


def test_changing_a_bonus_amount_changes_final_scores(runner, golden, tmp_path, policy_copy):
    base, _ = run(runner, golden, tmp_path / "a")
    edit(policy_copy, "bonus", "effect: {add: 3}", "effect: {add: 4}")
    new, _ = run(runner, golden, tmp_path / "b", policy_copy)
    diffs = [float(b["bonus"]) - float(a["bonus"]) for a, b in zip(base, new) if a["bonus"]]
    assert set(round(d, 4) for d in diffs) == {0.0, 1.0}


def test_rw5_kinds_list_and_rw2_first_year_are_clause_settings(runner, golden, tmp_path, policy_copy):
    """Policy v2: which contract kinds RW-5 counts and the plan's first year for RW-2 are
    settings of their clauses: changing them in a copy of the clause files changes the
    award list, with no Python edited."""
    _, base = run(runner, golden, tmp_path / "a")
    edit(policy_copy, "rewards", "kinds: [transfer, development, consulting, service]",
         "kinds: [transfer, development, consulting, service, license]")
    _, lic = run(runner, golden, tmp_path / "b", policy_copy)
    with open(golden / "contracts.csv", encoding="utf-8") as f:
        license_firms = {r["credit_code"] for r in csv.DictReader(f)
                         if r["registered_on"].startswith("2022") and r["kind"].strip() in ("license", "技术许可")}
    b5 = {r["credit_code"]: int(r["eligible_yuan"]) for r in base if r["clause"] == "RW-5"}
    l5 = {r["credit_code"]: int(r["eligible_yuan"]) for r in lic if r["clause"] == "RW-5"}
    grew = {c for c in l5 if l5[c] > b5.get(c, 0)}
    assert grew and grew <= license_firms
    assert all(l5[c] == b5[c] for c in b5 if c not in license_firms)
    # RW-2: with the first year moved to 2021, runs of 4 and more in 2022 are no longer paid
    edit(policy_copy, "rewards", "{evaluation_year: 2022, tech_sme_streak: {gte: 3}}",
         "{evaluation_year: 2021, tech_sme_streak: {gte: 3}}")
    _, moved = run(runner, golden, tmp_path / "c", policy_copy)
    b2 = {r["credit_code"] for r in base if r["clause"] == "RW-2"}
    m2 = {r["credit_code"] for r in moved if r["clause"] == "RW-2"}
    assert m2 < b2
    from rules.tracefile import read_trace
    trace = read_trace(tmp_path / "c")
    for t in trace:
        if t["credit_code"] in b2 - m2:
            runs = [e for e in t["history"]["entries"] if e.get("run") == "tech_sme_streak"]
            assert runs and runs[0]["years"] > 3
            assert any(e["clause"] == "RW-2" and e["reason"] == "condition" for e in t["rewards_not_paid"])
