"""`make run` never deletes stored data (issue 13, item 5): the demo park is seeded into an
empty database only; `innopoints demo --fresh` (make reset-demo) starts afresh on purpose."""
from click.testing import CliRunner
from sqlalchemy import func, select

from service import create_app
from service.cli import cli
from tests.conftest import GOLDEN


def imports_and_users(url):
    from service import db
    from service.models import AuditEntry, Import, User
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    with app.app_context():
        s = db.session()
        out = ([i.filename for i in s.scalars(select(Import).order_by(Import.id))],
               s.scalar(select(func.count()).select_from(User)), s.scalar(select(func.count()).select_from(AuditEntry)))
    app.extensions["db_engine"].dispose()
    return out


def test_running_the_demo_twice_keeps_an_import_made_in_between(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {"DATABASE_URL": url}
    demo = ["demo", "--out", str(tmp_path / "demo"), "--enterprises", "120", "--year", "2024"]
    r = CliRunner().invoke(cli, demo, env=env)
    assert r.exit_code == 0 and "登录 / login  officer" in r.output, r.output
    r = CliRunner().invoke(cli, ["import", str(GOLDEN / "records.csv"), "--kind", "records", "--user", "officer"],
                           env=env)
    assert r.exit_code == 0, r.output
    before = imports_and_users(url)
    assert before[0][-1] == "records.csv"
    r = CliRunner().invoke(cli, demo, env=env)                   # what `make run` does the second time
    assert r.exit_code == 0 and "未写入示范数据" in r.output and "reset-demo" in r.output, r.output
    after = imports_and_users(url)
    assert after == before                                       # the import, the users, the audit log kept
    r = CliRunner().invoke(cli, demo + ["--fresh"], env=env)     # starting afresh is asked for by name
    assert r.exit_code == 0 and "已删除数据库" in r.output, r.output
    fresh = imports_and_users(url)
    assert "records.csv" in fresh[0] and len(fresh[0]) == 2 and fresh[1] == before[1]


def test_fresh_never_drops_a_server_database(tmp_path):
    r = CliRunner().invoke(cli, ["demo", "--fresh"], env={"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/none"})
    assert r.exit_code == 2 and "只删除 SQLite" in r.output
