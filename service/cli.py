"""The `innopoints` command: batch evaluation from files, clause checks and clause cases,
and the demo park."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from rules.evaluate import EvaluationError, evaluate
from rules.output import write
from rules.policy import PolicyError, load_policy
from rules.records import InputErrors, load_inputs


def _fail(message, code=2):
    click.echo(message, err=True)
    sys.exit(code)


@click.group()
def cli():
    """新乡高新区企业创新积分制 — innovation points evaluation (新开〔2022〕110号)."""


def run_evaluation(records, contracts, year, policy=None, budget=None, strategy=None, progress=None):
    """Load, validate and evaluate; raise InputErrors/PolicyError/EvaluationError on bad input.

    Every input is checked (all bad cells of both files are gathered) before anything runs."""
    say = progress or (lambda msg: None)
    pv = load_policy(policy)
    say("读取并校验企业记录与技术合同 / reading records and contracts")
    recs, cons = load_inputs(records, contracts)
    say(f"评价 {year} 年度 / evaluating {year}")
    return evaluate(recs, year, pv, cons, budget, strategy)


@cli.command("evaluate")
@click.option("--records", required=True, type=click.Path(dir_okay=False), help="企业年度记录 CSV/XLSX")
@click.option("--contracts", type=click.Path(dir_okay=False), help="技术合同 CSV/XLSX")
@click.option("--year", required=True, type=int, help="评价年度")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="输出目录")
@click.option("--policy", default=None, help="政策版本目录或名称（默认 xinxiang-2022）")
@click.option("--budget", type=click.IntRange(min=0), default=None, help="年度奖励预算（元）；不填则不设上限")
@click.option("--strategy", type=click.Choice(["pro_rata", "rank_priority"]), default=None,
              help="预算不足时浮动奖励的分配方式")
@click.option("--no-trace", is_flag=True, help="不写 trace.jsonl 与 indicators.csv（仅用于测速）")
def evaluate_cmd(records, contracts, year, out, policy, budget, strategy, no_trace):
    """Evaluate a year from files (SPEC §5) and write scores.csv, awards.csv, trace.jsonl,
    indicators.csv, awards.html and manifest.json into OUT."""
    try:
        ev = run_evaluation(records, contracts, year, policy, budget, strategy,
                            progress=lambda m: click.echo(m, err=True))
    except InputErrors as exc:
        for e in exc.errors:
            click.echo(e.report(), err=True)
        _fail("输入有误，未写出任何结果 / bad input, nothing written")
    except PolicyError as exc:
        _fail(f"条款文件有误 / clause files rejected:\n{exc}")
    except EvaluationError as exc:
        _fail(str(exc))
    click.echo("写出结果 / writing outputs", err=True)
    write(ev, out, {"records": records, "contracts": contracts}, trace=not no_trace)
    s = ev.scores
    click.echo(f"{year}年度：评价 {len(s)} 家，排除 {int(s['excluded'].sum())} 家；奖励 {len(ev.awards)} 笔，"
               f"核定 {ev.budget.fixed_total + ev.budget.floating_total:,} 元，拨付 {ev.budget.granted_total:,} 元")
    if ev.budget.fixed_shortfall:
        click.echo(f"注意：固定奖励合计 {ev.budget.fixed_total:,} 元超出预算 {ev.budget.budget:,} 元，"
                   f"缺口 {ev.budget.fixed_shortfall:,} 元，已按比例拨付 / fixed items exceed the budget "
                   f"by {ev.budget.fixed_shortfall:,} yuan")
    click.echo(f"输出目录 / written to {Path(out)}")


@cli.group("rules")
def rules_group():
    """Clause files: check and run their cases."""


@rules_group.command("check")
@click.argument("path", required=False)
@click.option("--year", type=int, default=None, help="also compile the engine for this year")
def rules_check(path, year):
    """Validate a clause set and compile it into the rules engine."""
    from rules import engine
    try:
        pv = load_policy(path)
        years = [year] if year else [y for y in range(2000, 2101) if pv.in_force(y)][:1]
        for y in years:
            engine.check_compiles(pv, y)
    except PolicyError as exc:
        for p in exc.problems:
            click.echo(str(p), err=True)
        _fail(f"{len(exc.problems)} 个问题 / problem(s)", 1)
    click.echo(f"{pv.name}: {len(pv.clauses)} 条条款通过检查 / clauses OK (sha256 {pv.digest[:12]})")


@rules_group.command("test")
@click.argument("path", required=False)
@click.option("--cases", "cases_dir", type=click.Path(exists=True), default=None, help="条款用例目录")
def rules_test(path, cases_dir):
    """Run the clause case files against a clause set."""
    from rules.cases import DEFAULT_CASES, load_cases, run_case
    pv = load_policy(path)
    cases = load_cases(cases_dir or DEFAULT_CASES)
    failed = 0
    for case in cases:
        problems = run_case(case, pv)
        if problems:
            failed += 1
            click.echo(f"FAIL {case.file}: {case.name}")
            for p in problems:
                click.echo(f"     {p}")
    click.echo(f"{len(cases) - failed}/{len(cases)} 个用例通过 / cases passed")
    if failed:
        sys.exit(1)


@cli.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="instance/demo", show_default=True)
@click.option("--enterprises", type=int, default=1500, show_default=True)
@click.option("--year", type=int, default=2025, show_default=True)
@click.option("--seed", type=int, default=2022, show_default=True)
def demo(out, enterprises, year, seed):
    """Generate the synthetic demo park (four years of records) and evaluate its last year."""
    from service.demo import generate, write_csv
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records, contracts = generate(enterprises, year, seed=seed, history=3)
    write_csv(records, out / "records.csv")
    write_csv(contracts, out / "contracts.csv")
    click.echo(f"示范园区：{enterprises} 家企业，{len(records)} 条记录，{len(contracts)} 份合同 → {out}")
    ev = run_evaluation(out / "records.csv", out / "contracts.csv", year)
    write(ev, out / "results", {"records": out / "records.csv", "contracts": out / "contracts.csv"})
    click.echo(f"已评价 {year} 年度 → {out / 'results'}")
