"""The `innopoints` command: batch evaluation from files, clause checks and clause cases,
and the demo park."""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import click

from rules.evaluate import EvaluationError, evaluate, reading_for
from rules.output import Checksums, write
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
    The evaluation, and the inputs' checksums (`rules.output.Checksums`, hashed during
    the evaluation) for `write(sums=…)`.

    Every input is checked (all bad cells of both files are gathered) before anything runs."""
    say = progress or (lambda msg: None)
    pv = load_policy(policy)
    say("读取并校验企业记录与技术合同 / reading records and contracts")
    # other years' rows keep only what stage and history read of them
    recs, cons = load_inputs(records, contracts, data=pv.data, only=reading_for(pv, year))
    sums = Checksums({"records": records, "contracts": contracts})
    say(f"评价 {year} 年度 / evaluating {year}")
    try:
        return evaluate(recs, year, pv, cons, budget, strategy, consume=True), sums
    except BaseException:
        sums.cancel()
        raise


@cli.command("evaluate")
@click.option("--records", required=True, type=click.Path(dir_okay=False), help="企业年度记录 CSV/XLSX")
@click.option("--contracts", type=click.Path(dir_okay=False), help="技术合同 CSV/XLSX")
@click.option("--year", required=True, type=int, help="评价年度")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="输出目录")
@click.option("--policy", default=None, help="政策版本目录或名称（默认 xinxiang-2022）")
@click.option("--budget", type=click.IntRange(min=0), default=None, help="年度奖励预算（元）；不填则不设上限")
@click.option("--strategy", type=click.Choice(["pro_rata", "rank_priority"]), default=None,
              help="预算不足时浮动奖励的分配方式")
@click.option("--no-trace", is_flag=True, help="不写计算过程文件与各项指标文件（仅用于测速）")
@click.option("--trace-format", type=click.Choice(["parquet", "jsonl"]), default="parquet", show_default=True,
              help="计算过程文件：trace.parquet + trace_header.json，或完整的 trace.jsonl（每行一家企业）")
def evaluate_cmd(records, contracts, year, out, policy, budget, strategy, no_trace, trace_format):
    """Evaluate a year from files (SPEC §5) and write scores.csv, awards.csv, the trace
    (trace.parquet + trace_header.json, or trace.jsonl with --trace-format jsonl), each
    indicator's value and points (indicators.parquet, or indicators.csv beside trace.jsonl),
    awards.html and manifest.json into OUT."""
    try:
        ev, sums = run_evaluation(records, contracts, year, policy, budget, strategy,
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
    write(ev, out, {"records": records, "contracts": contracts}, trace=not no_trace, trace_format=trace_format,
          sums=sums, consume=True)
    s = ev.scores
    click.echo(f"{year}年度：评价 {len(s)} 家，排除 {int(s['excluded'].sum())} 家；奖励 {len(ev.awards)} 笔，"
               f"核定 {ev.budget.fixed_total + ev.budget.floating_total:,} 元，拨付 {ev.budget.granted_total:,} 元")
    if ev.budget.fixed_shortfall:
        click.echo(f"注意：固定奖励合计 {ev.budget.fixed_total:,} 元超出预算 {ev.budget.budget:,} 元，"
                   f"缺口 {ev.budget.fixed_shortfall:,} 元，已按比例拨付 / fixed items exceed the budget "
                   f"by {ev.budget.fixed_shortfall:,} yuan")
    click.echo(f"输出目录 / written to {Path(out)}")


@cli.command("explain")
@click.argument("trace", type=click.Path(exists=True))
@click.argument("credit_code")
def explain_cmd(trace, credit_code):
    """Print one enterprise's explanation from a trace (an OUT folder, its trace.parquet, or
    a trace.jsonl): every entry with its clause id, title, citation and sentence, in Chinese;
    then, for a scored enterprise, each indicator's value and points (the indicators file
    written with the trace)."""
    from rules.explain import explain_line
    from rules.tracefile import read_header, read_indicators, read_trace
    code = credit_code.strip().upper()
    try:
        header = read_header(trace)
        lines = read_trace(trace, [code])
    except (FileNotFoundError, OSError, ValueError) as exc:
        _fail(f"读取计算过程文件失败 / cannot read the trace: {exc}")
    if not lines:
        _fail(f"计算过程文件中没有企业 {code} / no enterprise {code} in the trace")
    line = lines[0]
    click.echo(f"{header.get('title', '')}（{header.get('document', '')}）{header.get('year')}年度 · {code}")
    for e in explain_line(line, header):
        click.echo(f"[{e['clause']}] {e['title']}\n    {e['text']}\n    依据：{e['citation']}")
    if line.get("scores") is None:          # excluded: no indicator counted
        return
    try:
        indicators = read_indicators(trace, [code]).get(code)
    except (FileNotFoundError, OSError, ValueError):
        return                              # a trace written without its indicators file
    if indicators:
        clauses = header.get("clauses", {})
        spec = (header.get("render") or {}).get("scores") or {}
        yes_no, decimals = set(spec.get("yes_no", [])), spec.get("decimals", 4)
        click.echo("各项指标的数值与得分：")
        for cid, (value, points) in indicators.items():
            shown = "未填报" if value is None else ("是" if value else "否") if cid in yes_no else _figure(value)
            click.echo(f"[{cid}] {clauses.get(cid, {}).get('title', '')}：数值 {shown}，"
                       f"得分 {_figure(round(points, decimals))}")


def _figure(x) -> str:
    """A number as an official writes it: thousands separated, up to six decimals, no
    trailing zeros."""
    x = float(x)
    return f"{int(x):,}" if x.is_integer() else f"{x:,.6f}".rstrip("0").rstrip(".")


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
    """Run the clause case files against a clause set: the --cases folder, else the package's
    own cases/ folder when it has one, else tests/cases."""
    from rules.cases import DEFAULT_CASES, load_cases, run_case
    pv = load_policy(path)
    own = pv.path / "cases"
    cases = load_cases(cases_dir or (own if path is not None and own.is_dir() else DEFAULT_CASES))
    failed = sum(_case_result(case.file, case.name, run_case(case, pv)) for case in cases)
    click.echo(f"{len(cases) - failed}/{len(cases)} 个用例通过 / cases passed")
    if path is None and cases_dir is None:       # the bundled set: also the rules of the results' uses
        from service.uses import load_use_cases, run_use_case
        uses_cases = load_use_cases()
        bad = sum(_case_result(file, case["name"], run_use_case(rule_id, case)) for file, rule_id, case in uses_cases)
        failed += bad
        click.echo(f"{len(uses_cases) - bad}/{len(uses_cases)} 个结果运用规则用例通过（rules/uses）/ use-rule cases passed")
    if failed:
        sys.exit(1)


DEMO_USERS = [("admin", "admin", "系统管理员"), ("officer", "officer", "区科学技术局 张科员"),
              ("finance", "finance", "区财政局 李会计"), ("bank", "bank", "合作银行 新乡分行"),
              ("enterprise", "enterprise", None), ("department", "department", None)]


def _version_files(s, ref, default_active=False):
    """Clause files named on the command line: a folder, 'draft:N', or a published version
    (id or name); None means the active version when `default_active`."""
    from service import policies
    from service.models import PolicyDraft
    if ref is None and default_active:
        return policies.files_of(policies.active(s)), "当前版本"
    if Path(ref).is_dir():
        return policies.folder_files(ref), str(ref)
    if str(ref).startswith("draft:") and str(ref)[6:].isdigit():
        d = s.get(PolicyDraft, int(str(ref)[6:]))
        if d is None:
            _fail(f"没有草稿 {ref}")
        return json.loads(d.files), f"草稿 {d.id}（{d.name}）"
    row = policies.version_named(s, ref)
    if row is None:
        _fail(f"没有政策版本、草稿或目录 {ref} / no such version, draft or folder")
    return policies.files_of(row), f"版本 {row.id}（{row.name}）"


@rules_group.command("whatif")
@click.argument("draft")
@click.option("--year", required=True, type=int)
@click.option("--against", default=None, help="比较的版本（编号、名称、draft:N 或目录；默认当前版本）")
@click.option("--budget", type=click.IntRange(min=0), default=None)
@click.option("--strategy", type=click.Choice(["pro_rata", "rank_priority"]), default=None)
@click.option("--top", type=int, default=10, show_default=True)
@click.option("--limit", type=int, default=20, show_default=True, help="列出的企业与奖励变化条数")
def rules_whatif(draft, year, against, budget, strategy, top, limit):
    """What a draft would change: the stored data of YEAR evaluated under DRAFT (a folder,
    draft:N, or a version) and under the version it is compared with."""
    from service import policies
    with _session() as (_, s):
        new_files, new_label = _version_files(s, draft)
        old_files, old_label = _version_files(s, against, default_active=True)
        for files, label in ((new_files, new_label), (old_files, old_label)):
            problems = policies.check(files)
            if problems:
                for p in problems:
                    click.echo(f"{p['file']}:{p['line']} [{p['clause'] or '-'}] {p['message']}", err=True)
                _fail(f"{label} 未通过检查 / check failed")
        with click.progressbar(length=1, label=f"测算 {year} 年度 / evaluating twice", file=sys.stderr) as bar:
            try:
                r = policies.whatif(s, new_files, year, old_files, budget, strategy, top)
            except PolicyError as exc:
                _fail(str(exc))
            bar.update(1)
    sm, t = r["summary"], r["totals"]
    click.echo(f"{year}年度：{new_label} 对比 {old_label}")
    click.echo(f"  企业变化 {sm['enterprises_changed']} 家：阶段 {sm['stage']}，排除 {sm['excluded']}，积分 {sm['score']}，"
               f"排名 {sm['rank']}")
    click.echo(f"  奖励：新增 {sm['awards_added']}，取消 {sm['awards_removed']}，金额变化 {sm['awards_changed']} 笔")
    click.echo(f"  核定合计 {t['eligible_before']:,} → {t['eligible_after']:,} 元（{t['eligible_change']:+,}）；"
               f"拨付合计 {t['granted_before']:,} → {t['granted_after']:,} 元（{t['granted_change']:+,}）"
               + (f"；预算 {budget:,} 元，超出 {t['over_budget_after']:,} 元" if budget is not None else ""))
    for c in [c for c in r["enterprises"] if set(c["changed"]) - {"rank"}][:limit]:
        click.echo(f"  {c['credit_code']} {c['name']}: {','.join(c['changed'])} 积分 {c['score_a']} → {c['score_b']} "
                   f"排名 {c['rank_a']} → {c['rank_b']}")
    for w in r["awards"][:limit]:
        click.echo(f"  {w['credit_code']} {w['clause']} {w['change']}: 核定 {w['eligible_a']} → {w['eligible_b']}，"
                   f"拨付 {w['granted_a']} → {w['granted_b']}")
    for stage, rows in r["top_after"].items():
        before = [x["credit_code"] for x in r["top_before"][stage]]
        after = [x["credit_code"] for x in rows]
        if before != after:
            click.echo(f"  {stage} 前 {top} 名变化：移出 {sorted(set(before) - set(after))}，进入 {sorted(set(after) - set(before))}")


@rules_group.command("draft")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--name", required=True, help="草稿名称")
@click.option("--note", default="", help="修改说明")
@click.option("--user", "username", default=None)
def rules_draft(folder, name, note, username):
    """Make a draft of the service from a policy folder (a new zone's package): its clause
    files, data dictionary, sample.yaml and cases/; then whatif and publish it."""
    from service import policies
    with _session() as (_, s):
        d = policies.draft_from_folder(s, folder, name, _user(s, username), note)
        s.commit()
        problems = policies.check(json.loads(d.files))
        for p in problems:
            click.echo(f"{p['file']}:{p['line']} [{p['clause'] or '-'}] {p['message']}", err=True)
        click.echo(f"已建草稿 draft:{d.id}（{d.name}），{'检查通过' if not problems else f'{len(problems)} 个问题'}；"
                   f"发布：innopoints rules publish draft:{d.id}")


@rules_group.command("publish")
@click.argument("draft")
@click.option("--user", "username", default=None)
def rules_publish(draft, username):
    """Publish draft:N (its check and every case must pass); the running service switches."""
    from service import policies
    from service.models import PolicyDraft
    with _session() as (_, s):
        if not (draft.startswith("draft:") and draft[6:].isdigit()) or s.get(PolicyDraft, int(draft[6:])) is None:
            _fail(f"没有草稿 {draft}（应写 draft:编号）")
        try:
            row = policies.publish(s, s.get(PolicyDraft, int(draft[6:])), _user(s, username))
        except policies.PublishRefused as exc:
            for p in exc.problems:
                click.echo(f"{p['file']}:{p['line']} [{p['clause'] or '-'}] {p['message']}", err=True)
            for f in exc.failures:
                click.echo(f"FAIL {f['file']}: {f['case']}: {'; '.join(f['problems'])}", err=True)
            _fail(str(exc), 1)
        s.commit()
        click.echo(f"已发布版本 {row.id}（{row.name}），sha256 {row.sha256[:12]}")


def _case_result(file, name, problems) -> int:
    """Print a failed case with its differences; 1 when it failed."""
    if problems:
        click.echo(f"FAIL {file}: {name}")
        for p in problems:
            click.echo(f"     {p}")
    return 1 if problems else 0


@cli.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="instance/demo", show_default=True)
@click.option("--enterprises", type=int, default=1500, show_default=True)
@click.option("--year", type=int, default=2025, show_default=True)
@click.option("--seed", type=int, default=2022, show_default=True)
@click.option("--fresh", is_flag=True,
              help="先删除 SQLite 数据库（全部导入、批次、用户与审计日志）再生成示范数据 / delete the database first")
def demo(out, enterprises, year, seed, fresh):
    """The demo park: four years of synthetic records, imported with one user per role; the
    last two years evaluated and published. Only into an empty database: a database with any
    user, import or run is left as it is (nothing stored is ever deleted implicitly);
    `--fresh` (make reset-demo) deletes the SQLite database first, on purpose."""
    if fresh:
        _delete_sqlite_database()
    from service import create_app
    app = create_app()
    with app.app_context():
        from service import db
        held = _stored(db.session())
    if held:
        click.echo(f"数据库已有数据（{held}），未写入示范数据，原有数据保持不变；"
                   f"如需删除全部数据重新开始：make reset-demo（innopoints demo --fresh）。"
                   f"示范用户的初始密码为「用户名-demo-{year}」。")
        return
    from service.demo import generate, write_csv
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records, contracts = generate(enterprises, year, seed=seed, history=3)
    write_csv(records, out / "records.csv")
    write_csv(contracts, out / "contracts.csv")
    click.echo(f"示范园区：{enterprises} 家企业，{len(records)} 条记录，{len(contracts)} 份合同 → {out}")
    from service.auth import create_user
    from service.models import Enterprise
    from service.runs import create_run, execute_run
    from service.runs import publish as publish_run
    from service.store import import_file
    with app.app_context():
        from service import db, shape
        s = db.session()
        import_file(s, out / "records.csv", "records", None)
        import_file(s, out / "contracts.csv", "contracts", None)
        s.commit()
        from service import uses
        batches = []
        # two years evaluated and published, so that the year-on-year parts of the profile,
        # the bank's trend and the monitoring report have something to compare
        for y in (year - 1, year):
            run = create_run(s, y, None)
            execute_run(app.extensions["db_sessions"], run.id)
            s.expire_all()
            run = s.get(type(run), run.id)
            if run.status != "done":
                _fail(run.error, 1)
            publish_run(s, run, None)
            for scope in uses.honour_scopes():
                uses.publish_honours(s, run, scope, 10, None)
            uses.generate_pool(s, run, None)
            s.commit()
            batches.append((y, run.id))
        code = _demo_enterprise(s, run) or str(records["credit_code"].iloc[0])
        ent = s.get(Enterprise, code)
        logins = []
        for username, role, name in DEMO_USERS:
            password = f"{username}-demo-{year}"
            if _exists(s, username):
                continue
            ent = s.get(Enterprise, code)
            # the demo's department user reports for the package's first department source
            dept = shape.data(s).source_of_kind("department") if role == "department" else None
            create_user(s, username, password, role, code if role == "enterprise" else None,
                        name or (f"{dept.name} 数据报送员" if dept else ent.name), source=dept.key if dept else None)
            logins.append((username, password, role))
        ent.credit_consent = True
        s.commit()
    from service.models import ROLES
    done = "、".join(f"{y} 年度（第 {rid} 批次）" for y, rid in batches)
    click.echo(f"已评价并发布 {done}，已发布各阶段与总榜前 10 名、生成种子企业后备库；数据库 {app.config['DATABASE_URL']}")
    click.echo("示范账号（密码为「用户名-demo-年度」，首次登录后请在「用户管理」中修改）：")
    for username, password, role in logins:
        who = f"（{ent.name}，统一社会信用代码 {ent.credit_code}，{ent.park}）" if role == "enterprise" else ""
        click.echo(f"  登录 / login  {username:<10} 密码 {password:<24} 角色 {ROLES[role]}{who}")
    click.echo(f"浏览器打开 http://127.0.0.1:{os.environ.get('PORT', '5000')}/ 即公众看板；以上账号登录后可见各角色的页面。")
    app.extensions["db_engine"].dispose()


def _demo_enterprise(s, run) -> str | None:
    """The demo enterprise login's enterprise: one of the zone's scored enterprises with an
    award in the newest run (so that its profile shows scores, awards and contracts)."""
    from sqlalchemy import select

    from service.models import AwardLine, Result
    return s.scalar(select(AwardLine.credit_code).join(Result, (Result.run_id == AwardLine.run_id)
                                                       & (Result.credit_code == AwardLine.credit_code))
                    .where(AwardLine.run_id == run.id, Result.excluded.is_(False))
                    .order_by(Result.rank_overall, AwardLine.credit_code).limit(1))


def _stored(s) -> str:
    """What the database holds that the demo must not touch ('' when it is empty)."""
    from sqlalchemy import func, select

    from service.models import Import, Run, User, records_table
    counts = [(s.scalar(select(func.count()).select_from(User)), "个用户"),
              (s.scalar(select(func.count()).select_from(Import)), "次导入"),
              (s.scalar(select(func.count()).select_from(records_table)), "条记录"),
              (s.scalar(select(func.count()).select_from(Run)), "个计算批次")]
    return "，".join(f"{n} {what}" for n, what in counts if n)


def _delete_sqlite_database():
    """Delete the configured SQLite database (asked for with --fresh); a server database
    (PostgreSQL) is never dropped by this command."""
    from service import create_app
    url = create_app({"DB_UPGRADE": False}).config["DATABASE_URL"]
    if not url.startswith("sqlite:///"):
        _fail("--fresh 只删除 SQLite 数据库；服务器数据库（如 PostgreSQL）请由管理员自行清空 / "
              "--fresh deletes SQLite databases only")
    path = Path(url.removeprefix("sqlite:///"))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    click.echo(f"已删除数据库 {path}")


def _exists(s, username):
    from sqlalchemy import select

    from service.models import User
    return s.scalar(select(User).where(User.username == username)) is not None


# ---- the service's store, for ops ------------------------------------------------------------

def _app():
    from service import create_app
    return create_app()


@contextlib.contextmanager
def _session():
    """An app context and a session on the configured database (DATABASE_URL or instance/)."""
    app = _app()
    with app.app_context():
        from service import db
        yield app, db.session()


def _user(s, username):
    from sqlalchemy import select

    from service.models import User
    if username is None:
        return None
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        _fail(f"没有用户 {username} / no such user")
    return user


@cli.group("db")
def db_group():
    """The database (SQLite in instance/ unless DATABASE_URL is set)."""


@db_group.command("upgrade")
def db_upgrade():
    """Create or upgrade the tables to the newest migration."""
    from service import db
    app = _app()
    db.upgrade(app.config["DATABASE_URL"])
    click.echo(f"数据库已是最新结构 / database at head: {app.config['DATABASE_URL'].split('@')[-1]}")


@cli.group("user")
def user_group():
    """Users and their roles."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["enterprise", "officer", "finance", "bank", "admin", "department"]))
@click.option("--enterprise", "credit_code", default=None, help="企业用户的统一社会信用代码")
@click.option("--source", default=None, help="数据报送单位所属的数据来源（如 tax）")
@click.option("--name", "display_name", default="", help="显示名称")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="至少10个字符，混合字母、数字或符号")
def user_add(username, role, credit_code, source, display_name, password):
    """Create a user (the password is stored hashed)."""
    from service.auth import UserError, create_user
    with _session() as (_, s):
        try:
            create_user(s, username, password, role, credit_code, display_name, source=source)
        except UserError as exc:
            _fail(str(exc))
        s.commit()
    click.echo(f"已创建用户 {username}（{role}）")


@user_group.command("token")
@click.argument("username")
@click.option("--label", default="cli")
def user_token(username, label):
    """Issue an API token for a user (printed once)."""
    from service.auth import issue_token
    with _session() as (_, s):
        token = issue_token(s, _user(s, username), label)
        s.commit()
    click.echo(token)


@user_group.command("disable")
@click.argument("username")
def user_disable(username):
    """Disable a user: no more logins; its page sessions and API tokens stop at the next request."""
    from service.auth import disable_user
    with _session() as (_, s):
        n = disable_user(s, _user(s, username))
        s.commit()
    click.echo(f"已停用用户 {username}，撤销令牌 {n} 个，页面会话已全部失效")


@user_group.command("revoke")
@click.argument("username")
def user_revoke(username):
    """Revoke all of a user's API tokens and end its page sessions (it may log in again)."""
    from service.auth import revoke_access
    with _session() as (_, s):
        n = revoke_access(s, _user(s, username))
        s.commit()
    click.echo(f"已撤销用户 {username} 的令牌 {n} 个，页面会话已全部失效")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--kind", type=click.Choice(["records", "contracts"]), required=True)
@click.option("--user", "username", default=None, help="记入导入记录的用户名")
def import_cmd(file, kind, username):
    """Import a CSV/XLSX file: all or nothing, every bad cell listed."""
    from service.store import ImportRejected, import_file
    with _session() as (_, s):
        user = _user(s, username)
        click.echo(f"校验 {file} / checking", err=True)
        try:
            with click.progressbar(length=_rows_of(file), label="写入数据库 / storing", file=sys.stderr) as bar:
                out = import_file(s, file, kind, user, progress=bar.update)
        except ImportRejected as exc:
            for c in exc.cells:
                click.echo(f"  {c}", err=True)
            if exc.total > len(exc.cells):
                click.echo(f"  … 另有 {exc.total - len(exc.cells)} 处 / {exc.total - len(exc.cells)} more", err=True)
            _fail(f"{exc.total} 处错误，未导入任何数据 / nothing imported")
    click.echo(f"已导入 {out.rows} 行（新增 {out.added}，替换 {out.replaced}）；导入编号 {out.import_id}，"
               f"sha256 {out.sha256[:12]}")


def _rows_of(file):
    if str(file).lower().endswith(".csv"):
        with open(file, "rb") as f:
            return max(sum(1 for _ in f) - 1, 1)
    return 1


@cli.command("run")
@click.option("--year", required=True, type=int)
@click.option("--policy", default=None, help="政策版本目录或名称（默认 xinxiang-2022）")
@click.option("--budget", type=click.IntRange(min=0), default=None, help="年度奖励预算（元）")
@click.option("--strategy", type=click.Choice(["pro_rata", "rank_priority"]), default=None)
@click.option("--user", "username", default=None)
@click.option("--publish", is_flag=True, help="完成后发布（公众榜单、银行查询读取已发布批次）")
def run_cmd(year, policy, budget, strategy, username, publish):
    """Evaluate a year over the stored, approved data and store the run."""
    from service.models import Run
    from service.runs import create_run, execute_run
    from service.runs import publish as publish_run
    with _session() as (app, s):
        user = _user(s, username)
        try:
            run = create_run(s, year, user, policy, budget, strategy)
        except (PolicyError, EvaluationError) as exc:
            _fail(str(exc))
        with click.progressbar(length=100, label=f"第 {run.id} 批次 {year} 年度", file=sys.stderr,
                               item_show_func=lambda m: m) as bar:
            def progress(pct, msg):
                bar.update(pct - bar.pos, msg)
            execute_run(app.extensions["db_sessions"], run.id, progress)
        s.expire_all()
        run = s.get(Run, run.id)
        if run.status != "done":
            _fail(f"计算失败 / run failed:\n{run.error}", 1)
        if publish:
            publish_run(s, run, user)
            s.commit()
        click.echo(f"第 {run.id} 批次完成：{run.enterprises} 家，排除 {run.excluded} 家，奖励 {run.award_lines} 笔，"
                   f"核定 {run.eligible_yuan:,} 元，拨付 {run.granted_yuan:,} 元；数据 sha256 {run.data_sha256[:12]}"
                   + ("；已发布" if publish else ""))


@cli.command("export")
@click.option("--run", "run_id", type=int, default=None, help="批次编号（默认最新年度的当前批次）")
@click.option("--year", type=int, default=None)
@click.option("--what", type=click.Choice(["scores", "awards", "scores.csv", "awards.csv", "awards.html", "manifest.json"]),
              default="scores", show_default=True,
              help="scores/awards: 带中文表头的列表；*.csv 等：与 innopoints evaluate 相同的文件")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="xlsx", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def export_cmd(run_id, year, what, fmt, out):
    """Export a stored run's list (XLSX or CSV) or one of its files."""
    from service import query
    from service.api import AWARD_COLUMNS, result_columns
    from service.exports import csv_bytes, xlsx_bytes
    from service.models import Run
    from service.runs import current_run
    with _session() as (_, s):
        run = s.get(Run, run_id) if run_id else current_run(s, year)
        if run is None or run.status != "done":
            _fail("没有该已完成批次 / no such completed run")
        if "." in what:
            data = query.run_file(s, run.id, what)
        else:
            with click.progressbar(length=1, label="读取 / reading", file=sys.stderr) as bar:
                if what == "scores":
                    rows, _ = query.enterprises(s, run, per_page=None)
                    cols = result_columns(query.category_titles(s, run))
                else:
                    rows, cols = query.award_lines(s, run), AWARD_COLUMNS
                bar.update(1)
            data = csv_bytes(rows, cols) if fmt == "csv" else xlsx_bytes(rows, cols)
    tmp = Path(out).with_name(Path(out).name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    click.echo(f"第 {run.id} 批次 {what} → {out}")


@cli.group("runs")
def runs_group():
    """Stored runs: list and compare."""


@runs_group.command("list")
def runs_list():
    from sqlalchemy import select

    from service.labels import RUN_STATUS_ZH
    from service.models import Run
    from service.runs import effective_status
    with _session() as (_, s):
        for r in s.scalars(select(Run).order_by(Run.id)):
            budget = f"{r.budget:,} 元" if r.budget is not None else "不设上限"
            click.echo(f"第 {r.id:>3} 批次  {r.year} 年度  {RUN_STATUS_ZH.get(effective_status(r), '')}  预算 {budget}"
                       f"  {r.enterprises or 0:,} 家  拨付 {r.granted_yuan or 0:,} 元  {'已发布' if r.published_at else '未发布'}")


@runs_group.command("diff")
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="把企业变化写入 XLSX/CSV")
@click.option("--limit", type=int, default=20, show_default=True, help="终端上列出的企业数")
def runs_diff(run_a, run_b, out, limit):
    """Compare two runs: stage, exclusion, score and rank changes; award lines."""
    from service import query
    from service.models import Run
    with _session() as (_, s):
        a, b = s.get(Run, run_a), s.get(Run, run_b)
        if not a or not b or a.status != "done" or b.status != "done":
            _fail("两个批次都须已完成 / both runs must be completed")
        with click.progressbar(length=1, label="比较 / comparing", file=sys.stderr) as bar:
            d = query.diff(s, a, b)
            bar.update(1)
    sm = d["summary"]
    click.echo(f"批次 {run_a} → {run_b}：新增 {sm['added']:,}，移除 {sm['removed']:,}，阶段变化 {sm['stage']:,}，排除变化 "
               f"{sm['excluded']:,}，积分变化 {sm['score']:,}，排名变化 {sm['rank']:,}；奖励新增 {sm['awards_added']:,}、取消 "
               f"{sm['awards_removed']:,}、变化 {sm['awards_changed']:,}；拨付 {sm['granted_a']:,} → {sm['granted_b']:,} 元")
    from service.exports import diff_awards_zh, diff_rows_zh

    def num(v, fmt):
        return "—" if v is None else format(v, fmt)
    for c in diff_rows_zh(d["enterprises"][:limit]):
        click.echo(f"  {c['credit_code']} {c['name']}：{c['changed']}，积分 {num(c['score_a'], '.4f')} → "
                   f"{num(c['score_b'], '.4f')}，排名 {num(c['rank_a'], ',')} → {num(c['rank_b'], ',')}")
    for w in diff_awards_zh(d["awards"][:limit]):
        click.echo(f"  {w['credit_code']} {w['clause']} {w['change']}：拨付 {num(w['granted_a'], ',')} → "
                   f"{num(w['granted_b'], ',')} 元")
    if out:
        from service.exports import csv_bytes, diff_columns, diff_rows_zh, xlsx_bytes
        cols, rows = diff_columns(run_a, run_b), diff_rows_zh(d["enterprises"])     # Chinese headers and words
        Path(out).write_bytes(csv_bytes(rows, cols) if out.endswith(".csv") else xlsx_bytes(rows, cols))
        click.echo(f"→ {out}")


@cli.command("report")
@click.option("--year", type=int, default=None, help="评价年度（默认最新年度）")
@click.option("--run", "run_id", type=int, default=None, help="计算批次（默认该年度的当前批次）")
@click.option("--out", type=click.Path(file_okay=False), default="instance/reports", show_default=True)
@click.option("--no-pdf", is_flag=True, help="只写 HTML")
def report_cmd(year, run_id, out, no_pdf):
    """The yearly monitoring report (§六.三): report-YEAR.html (printable, self-contained)
    and report-YEAR.pdf."""
    from service import uses
    from service.models import Run
    from service.report import ReportError, monitoring_pdf, render
    from service.runs import current_run
    app = _app()
    with app.app_context(), app.test_request_context():
        from service import db
        s = db.session()
        run = s.get(Run, run_id) if run_id else current_run(s, year)
        if run is None or run.status != "done":
            _fail("没有该年度已完成的计算批次 / no completed run")
        with click.progressbar(length=3, label=f"{run.year} 年度监测分析报告", file=sys.stderr) as bar:
            m = uses.monitoring(s, run)
            bar.update(1)
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            html = out / f"report-{run.year}.html"
            html.write_text(render(m, standalone=True), encoding="utf-8")
            bar.update(1)
            pdf = None
            if not no_pdf:
                try:
                    pdf = out / f"report-{run.year}.pdf"
                    pdf.write_bytes(monitoring_pdf(m))
                except ReportError as exc:
                    _fail(str(exc))
            bar.update(1)
    click.echo(f"→ {html}" + (f"\n→ {pdf}" if pdf else ""))


@cli.command("diagnose")
@click.option("--year", required=True, type=int, help="评价年度")
@click.option("--run", "run_id", type=int, default=None, help="计算批次（默认该年度的当前批次）")
@click.option("--draft", type=int, default=None, help="草稿编号：诊断草稿的模拟测算（对比当前版本）")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "xlsx"]), default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="写入文件（xlsx 必须给出）")
def diagnose_cmd(year, run_id, draft, fmt, out):
    """Calibration diagnostics (§四.(二)) of YEAR's current run, or of draft N's what-if: per
    stage the final scores' distribution (moments, normality test), every indicator's figures,
    the verdict against the policy's targets, and the tuning of flagged indicators."""
    from service import diagnostics, policies
    from service.models import PolicyDraft, Run
    from service.runs import current_run
    with _session() as (_, s):
        if draft is not None:
            d = s.get(PolicyDraft, draft)
            if d is None:
                _fail(f"没有草稿 {draft} / no such draft")
            files = json.loads(d.files)
            problems = policies.check(files)
            if problems:
                _fail(f"草稿 {draft} 未通过检查 / check failed: " + "；".join(p["message"] for p in problems[:5]))
            try:
                both = diagnostics.draft_diagnostics(s, files, year, policies.files_of(policies.active(s)))
            except (PolicyError, EvaluationError) as exc:
                _fail(str(exc))
            result = both["after"]
            result.update(source=f"草稿 {d.id}（{d.name}）的模拟测算", before=both["before"])
        else:
            run = s.get(Run, run_id) if run_id else current_run(s, year)
            if run is None or run.status != "done" or run.year != year:
                _fail(f"没有 {year} 年度已完成的计算批次 / no completed run of {year}")
            result = diagnostics.run_diagnostics(s, run)
    if fmt == "json":
        data = json.dumps(diagnostics.json_form(result), ensure_ascii=False, indent=1)
        Path(out).write_text(data, encoding="utf-8") if out else click.echo(data)
    elif fmt == "xlsx":
        if not out:
            _fail("--format xlsx 需要 --out FILE")
        Path(out).write_bytes(diagnostics.xlsx(result))
    else:
        data = diagnostics.text(result)
        Path(out).write_text(data, encoding="utf-8") if out else click.echo(data)
    if out:
        click.echo(f"→ {out}")
