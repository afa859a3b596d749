"""Issue 16: what keeps lookups fast — a run computes in a process of its own (a killed one
fails its run at once), and a lookup reads its enterprise's provenance from its result row,
which says exactly what the run's provenance.csv says."""
import time

import pytest

from conftest import GOLDEN
from service import db
from service.models import Result, Run, RunFile


def _wait(park, rid, seconds=120):
    st = {}
    for _ in range(int(seconds / 0.05)):
        st = park.get(f"/api/runs/{rid}", "officer").get_json()
        if st["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    return st


def test_a_run_in_its_own_process_is_done_and_read_by_the_server(golden_park):
    """RUNS_IN_PROCESS (the default): the run is computed by a child process on its own
    connection; the server reads the results it stored."""
    from service import worker
    p = golden_park
    p.app.config.update(RUNS_INLINE=False, RUNS_IN_PROCESS=True)
    r = p.post("/api/runs", "officer", json={"year": 2022, "budget": 15000000})
    assert r.status_code == 202
    rid = r.get_json()["id"]
    st = _wait(p, rid)
    assert st["status"] == "done", st
    proc = worker.PROCESSES[rid]
    # done is committed just before the process ends; its exit code as the watcher read it
    # (a second reader of a forkserver child's status would race the watcher and get 255)
    assert proc.pid != __import__("os").getpid() and worker.exit_code(rid, 30) == 0
    first = p.get(f"/api/enterprises/{p.own}?run={rid}", "officer").get_json()
    before = p.get(f"/api/enterprises/{p.own}?run={p.run_id}", "officer").get_json()
    assert first["run_id"] == rid and first["final_score"] == before["final_score"]
    assert first["provenance"] and first["provenance"] == before["provenance"]


def test_a_killed_run_process_fails_its_run_at_once(golden_park):
    """Not after the heartbeat goes stale (a minute): when the child dies, its run is failed
    with the exit code, and nothing of it is kept."""
    from service import worker
    p = golden_park
    p.app.config.update(RUNS_INLINE=False, RUNS_IN_PROCESS=True, RUN_STALE_SECONDS=3600)
    r = p.post("/api/runs", "officer", json={"year": 2022})
    rid = r.get_json()["id"]
    worker.PROCESSES[rid].kill()
    t0 = time.perf_counter()
    st = _wait(p, rid, seconds=20)
    assert st["status"] == "failed", st
    assert time.perf_counter() - t0 < 10
    assert "退出码" in st["error"] and "exit code" in st["error"]
    with p.app.app_context():
        s = db.session()
        assert s.query(Result).filter(Result.run_id == rid).count() == 0
        assert s.get(Run, rid).finished_at is not None


def test_stored_provenance_is_the_runs_provenance_file(golden_park):
    """Every enterprise's provenance read from its result equals what the run's provenance.csv
    gives for it (the way runs stored before the column are still read)."""
    from service import provenance, shape
    p = golden_park
    with p.app.app_context():
        s = db.session()
        run = s.get(Run, p.run_id)
        data = shape.data(s)
        codes = [c for c, in s.query(Result.credit_code).filter(Result.run_id == run.id)]
        assert len(codes) == 300
        assert s.query(Result).filter(Result.run_id == run.id, Result.provenance_packed.is_(None)).count() == 0
        stored = {c: provenance.run_provenance(s, run, c, data) for c in codes}
        assert s.get(RunFile, (run.id, "provenance_records.parquet")) is not None
        s.query(RunFile).filter(RunFile.run_id == run.id, RunFile.name == "provenance_records.parquet").update(
            {RunFile.name: "provenance.csv", RunFile.content: provenance.run_provenance_file(s, run.id)})
        s.query(Result).filter(Result.run_id == run.id).update({Result.provenance: None,
                                                                    Result.provenance_packed: None})
        from_file = {c: provenance.run_provenance(s, run, c, data) for c in codes}
        s.rollback()
    assert stored == from_file
    assert all(stored[c] for c in codes)
    some = stored[p.own]
    assert {"source_zh", "kind_zh", "import_id", "value"} <= set(next(iter(some.values())))


def test_what_a_run_stores_per_result_agrees_with_its_files(golden_park, tmp_path):
    """The stored indicators (built from the evaluation's matrices) are indicators.parquet's
    figures, and the stage figures computed when the run was stored are those computed from
    the stored results."""
    import json

    from service import query
    p = golden_park
    with p.app.app_context():
        s = db.session()
        run = s.get(Run, p.run_id)
        stored = {r.credit_code: json.loads(query.stored_indicators(s, run, r))
                  for r in s.query(Result).filter(Result.run_id == run.id)}
    out = tmp_path / "out"
    from click.testing import CliRunner

    from service.cli import cli
    r = CliRunner().invoke(cli, ["evaluate", "--records", str(GOLDEN / "records.csv"), "--contracts",
                                 str(GOLDEN / "contracts.csv"), "--year", "2022", "--out", str(out)])
    assert r.exit_code == 0, r.output
    from rules.tracefile import read_indicators
    written = read_indicators(out)
    assert len(written) == len(stored) == 300 and all(len(v) == 35 for v in written.values())
    for code, want in written.items():
        assert stored[code] == want
    with p.app.app_context():
        s = db.session()
        run = s.get(Run, p.run_id)
        for stage in query.stage_names(s, run):
            from_file = query.stage_stats(s, run, stage)
            computed = query._computed_stage_stats(s, run, stage, ("test", stage))
            assert from_file == computed, stage
            assert from_file["count"] > 0 and from_file["final_score"] is not None


def test_two_servers_on_one_database_see_each_others_runs_and_publishes(app, tmp_path):
    """Several server processes may share one database (PostgreSQL; SQLite too): a run
    started on one is seen, done, on the other; a run published on one is what the other
    serves the public at once."""
    from conftest import Park, make_app
    a = Park(app)
    a.import_golden()
    first = a.run()
    assert a.post(f"/api/runs/{first}/publish", "officer").status_code == 200
    other = make_app(app.config["DATABASE_URL"])
    try:
        b = Park.__new__(Park)
        b.app, b.client, b.tokens, b.own = other, other.test_client(), a.tokens, a.own
        assert b.get(f"/api/enterprises/{a.own}", "enterprise").get_json()["run_id"] == first
        app.config.update(RUNS_INLINE=False, RUNS_IN_PROCESS=True)
        r = a.post("/api/runs", "officer", json={"year": 2022, "budget": 15000000})
        second = r.get_json()["id"]
        st = _wait(b, second)                           # watched on the other server
        assert st["status"] == "done", st
        assert b.get(f"/api/enterprises/{a.own}", "enterprise").get_json()["run_id"] == first
        assert a.post(f"/api/runs/{second}/publish", "officer").status_code == 200
        assert b.get(f"/api/enterprises/{a.own}", "enterprise").get_json()["run_id"] == second
        assert b.get("/api/aggregates").get_json()["run_id"] == second
    finally:
        other.extensions["db_engine"].dispose()


def test_the_runs_provenance_file_is_served_as_csv_or_gzip(golden_park):
    """Stored as Parquet; a client that takes gzip gets the CSV gzipped, any other the CSV
    itself; officers and admins only (it names who entered each value)."""
    import gzip
    p = golden_park
    url = f"/api/runs/{p.run_id}/files/provenance.csv"
    plain = p.get(url, "officer")
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    text = plain.data.decode("utf-8")
    assert text.startswith("credit_code,year,field,value,source,kind,")
    assert text.count("\n") > 300 * 30
    packed = p.client.get(url, headers={**p.h("officer"), "Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip" and gzip.decompress(packed.data) == plain.data
    assert len(packed.data) * 5 < len(plain.data)
    assert p.get(url, "enterprise").status_code == 403
    assert p.get(url, "finance").status_code == 403
    assert p.get(url, "admin").status_code == 200
    assert p.get(url, "bank").status_code == 403
    assert p.get(url, "public").status_code == 401


def test_provenance_csv_quotes_as_pythons_csv_module():
    """Free text with commas, quotes and line breaks is quoted as csv quotes it, column-wise."""
    import csv
    import io

    import pyarrow as pa

    from service.provenance import csv_as_python_writes
    rows = [["9141", "2022", "a", 'x, "y"', "1"], ["9141", "2022", "b", "two\nlines", ""],
            ["9141", "2022", "c", "plain", None]]
    table = pa.table({k: pa.array([r[i] for r in rows], pa.string())
                      for i, k in enumerate(["credit_code", "year", "field", "value", "user_id"])})
    want = io.StringIO(newline="")
    w = csv.writer(want, lineterminator="\n")
    w.writerow(table.column_names)
    w.writerows([["" if v is None else v for v in r] for r in rows])
    assert csv_as_python_writes(table).decode("utf-8") == want.getvalue()
    plain = table.slice(2, 1)
    assert csv_as_python_writes(plain).decode("utf-8") == "credit_code,year,field,value,user_id\n9141,2022,c,plain,\n"


def test_a_run_process_takes_only_idle_cpu():
    """On Linux the run's process is put in the idle scheduling class: a lookup of the server
    never waits for the CPU behind it."""
    import os
    import subprocess
    import sys
    code = ("import os; from service.worker import lower_priority; how = lower_priority(); "
            "print(how, os.sched_getscheduler(0) == os.SCHED_IDLE)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])})
    assert out.stdout.split() == ["idle", "True"]


def test_a_runs_local_postgresql_backend_takes_only_idle_cpu():
    """With PostgreSQL on the same machine, the backend that serves each of the run's
    connections is put in the idle class too (the run's reading and writing happen there),
    and starts no parallel workers; the server's own connections keep their priority."""
    import os

    from sqlalchemy import create_engine, text

    from conftest import _postgres_url
    from service.db import make_engine
    from service.worker import lower_database_priority
    url = _postgres_url()
    engine = make_engine(url)
    lower_database_priority(engine)
    other = create_engine(make_engine(url).url)
    try:
        with engine.connect() as c, other.connect() as o:
            pid = c.execute(text("SELECT pg_backend_pid()")).scalar()
            their = o.execute(text("SELECT pg_backend_pid()")).scalar()
            if not os.path.exists(f"/proc/{pid}"):
                pytest.skip("the PostgreSQL server is not on this machine")
            assert os.sched_getscheduler(pid) == os.SCHED_IDLE
            assert os.sched_getscheduler(their) != os.SCHED_IDLE
            # nor does the run's backend start workers of its own (they would run at full
            # priority): no parallel query, no parallel VACUUM, on its connections only
            for setting in ("max_parallel_workers_per_gather", "max_parallel_maintenance_workers"):
                assert c.execute(text(f"SHOW {setting}")).scalar() == "0"
                assert o.execute(text(f"SHOW {setting}")).scalar() != "0"
    finally:
        engine.dispose()
        other.dispose()


PRESTART_PROBE = r"""
import os, sys, time
from service import create_app
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "k" * 40, "TESTING": sys.argv[2] == "1"})
def forkservers():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == os.getpid() and b"forkserver" in cmd:
            found.append(pid)
    return found
before = forkservers()
app.test_client().get("/api/health")
deadline = time.time() + 60
while not forkservers() and time.time() < deadline and sys.argv[2] != "1":
    time.sleep(0.2)
time.sleep(0.5 if sys.argv[2] == "1" else 0)
idle = False
while forkservers() and time.time() < deadline and not idle:
    idle = all(os.sched_getscheduler(int(p)) == os.SCHED_IDLE for p in forkservers())
    time.sleep(0.1)
print(len(before), len(forkservers()), idle)
"""


@pytest.mark.parametrize("testing", [False, True])
def test_a_serving_process_starts_its_runs_forkserver_at_the_first_request(tmp_path, testing):
    """A server process starts the forkserver its runs fork from (imports and warming, about
    two seconds) at its first request, not at its first run, and that forkserver takes only
    idle CPU (its warming must not slow the lookups); an app made for tests, or for a command
    that serves nothing, starts none."""
    import os
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", PRESTART_PROBE, f"sqlite:///{tmp_path / 'p.db'}", "1" if testing else "0"],
                         capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])})
    assert out.stdout.split() == (["0", "0", "False"] if testing else ["0", "1", "True"]), out.stderr[-2000:]


def test_a_run_stored_before_the_compact_provenance_is_read_as_before(golden_park):
    """A run stored with every value's row (provenance.parquet) and per-result JSON objects
    of them is served the same provenance.csv, and its lookups read those objects."""
    import io
    import json

    import pyarrow.parquet as pq

    from service import provenance, shape
    p = golden_park
    with p.app.app_context():
        s = db.session()
        run = s.get(Run, p.run_id)
        data = shape.data(s)
        want_csv = provenance.run_provenance_file(s, run.id)
        want = provenance.run_provenance(s, run, p.own, data)
        compact = s.get(RunFile, (run.id, "provenance_records.parquet"))
        per_value = provenance.expand(pq.read_table(io.BytesIO(compact.content)))
        buf = io.BytesIO()
        pq.write_table(per_value, buf, compression="zstd")
        s.delete(compact)
        s.add(RunFile(run_id=run.id, name="provenance.parquet", content=buf.getvalue()))
        rows = [r for r in per_value.to_pylist() if r["credit_code"] == p.own and r["year"] == run.year]
        old = {r["field"]: ["" if r[k] is None else str(r[k]) for k in provenance.ROW_KEYS] for r in rows}
        s.query(Result).filter(Result.run_id == run.id, Result.credit_code == p.own).update(
            {Result.provenance: json.dumps(old, ensure_ascii=False), Result.provenance_packed: None})
        s.flush()
        assert provenance.run_provenance_file(s, run.id) == want_csv
        from flask import g
        g.pop("results_read", None)
        assert provenance.run_provenance(s, run, p.own, data) == want
        s.rollback()


def test_a_lookup_reads_each_row_once(golden_park):
    """An enterprise's score is four statements once its run's files are read: token and user,
    the enterprise, the current run with the enterprise's result (one statement), and (for
    staff) the names of who entered its values. The enterprise row checked for access is the
    one the answer uses (it was read twice: the session forgot it in between)."""
    from sqlalchemy import event
    p = golden_park
    path = f"/api/enterprises/{p.own}"
    assert p.get(path, "officer").status_code == 200          # the run's files, once per run
    seen, statements = [], []
    engine = p.app.extensions["db_engine"]

    def capture(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()))
        seen.append(statement.split("FROM", 1)[1].split()[0] if "FROM" in statement else statement)
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert p.get(path, "officer").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert seen.count("enterprises") == 1, seen
    # the result came with the run: one statement reads both, none the result alone
    assert [("FROM runs" in x, "JOIN results" in x) for x in statements].count((True, True)) == 1, statements
    assert "results" not in seen, seen
    assert len(seen) <= 4, seen
    # a run asked for by id is read with its own statement, the result with another
    seen.clear()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert p.get(f"{path}?run={p.run_id}", "officer").get_json()["run_id"] == p.run_id
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert seen.count("results") == 1 and len(seen) <= 5, seen


def test_a_lookup_reads_outside_a_transaction_and_may_not_write(golden_park):
    """On PostgreSQL a read-only view (the score and eligibility lookups) reads in autocommit:
    no BEGIN before its statements and no ROLLBACK after, five round trips instead of seven.
    A write from such a view is refused before it is sent. On SQLite the usual session serves it."""
    import pytest
    from sqlalchemy import event, text

    from service import db
    p = golden_park
    engine = p.app.extensions["db_engine"]
    postgres = engine.dialect.name == "postgresql"
    for path in (f"/api/enterprises/{p.own}", f"/api/enterprises/{p.own}/eligibility", "/api/enterprises"):
        modes = []

        def capture(conn, *args):
            # psycopg's flag; sqlite3 (Python 3.11) has none: it is False there as it acts
            modes.append(getattr(conn.connection.dbapi_connection, "autocommit", False) is True)
        event.listen(engine, "before_cursor_execute", capture)
        try:
            assert p.get(path, "officer").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        read_only = path != "/api/enterprises"          # the list is not marked (yet)
        assert modes and set(modes) == {postgres and read_only}, (path, modes)
    with p.app.test_request_context(f"/api/enterprises/{p.own}"):
        s = db.session()
        if postgres:
            with pytest.raises(db.WriteInReadOnlyView):
                s.execute(text("UPDATE runs SET message = message"))
        else:
            assert s.get_bind() is engine
        s.close()
    reads = ["SELECT 1", "(SELECT a FROM t) UNION (SELECT b FROM u)", "WITH x AS (SELECT 1) SELECT * FROM x"]
    writes = ["UPDATE runs SET message = ''", "INSERT INTO t VALUES (1)", "SELECT * INTO t2 FROM t", "SAVEPOINT a",
              "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "SELECT nextval('s')", "SELECT pg_advisory_lock(1)"]
    assert all(db.is_read(r) for r in reads) and not any(db.is_read(w) for w in writes)


def test_the_forkserver_warms_the_store_and_hides_what_it_holds_from_the_collector():
    """The forkserver's warming runs a small zone through the store as a run does (import,
    snapshot, storing; on a throw-away SQLite file), imports the PostgreSQL driver, and then
    freezes its objects, so that a run's first garbage collection does not copy them."""
    import os
    import subprocess
    import sys
    probe = ("import gc, sys, service.warm as w; "
             "print(w.WARMED, gc.get_freeze_count() > 1000, 'psycopg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])})
    assert out.stdout.split() == ["True", "True", "True"], out.stderr[-2000:]


SETTLE_PROBE = r"""
import gc, sys, time
from service import create_app
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "k" * 40, "TESTING": sys.argv[2] == "1",
                  "RUNS_PRESTART": False})
frozen_before = gc.get_freeze_count()
app.test_client().get("/api/health")
deadline = time.time() + 10
while gc.get_freeze_count() == 0 and time.time() < deadline and sys.argv[2] != "1":
    time.sleep(0.05)
time.sleep(0.2 if sys.argv[2] == "1" else 0)
t = time.perf_counter(); gc.collect(); full = time.perf_counter() - t
print(frozen_before, gc.get_freeze_count() > 100000, full < 0.02)
"""


@pytest.mark.parametrize("testing", [False, True])
def test_a_serving_process_freezes_what_it_holds_after_its_first_request(tmp_path, testing):
    """A serving process, after its first request, collects and freezes the objects it holds
    (modules, caches), so that a full garbage collection during a lookup walks only what
    requests made (about 75 ms before); an app made for tests does not."""
    import os
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", SETTLE_PROBE, f"sqlite:///{tmp_path / 's.db'}", "1" if testing else "0"],
                         capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])})
    assert out.stdout.split() == (["0", "False", "False"] if testing else ["0", "True", "True"]), out.stderr[-2000:]


def test_the_names_of_a_runs_imports_are_not_taken_from_an_earlier_database(golden_park):
    """The import file names a lookup shows are kept per run and its end: a database made
    again (ids from 1 again) with a run of the same id gets its own names, not the names an
    earlier database's run cached."""
    import datetime as dt

    from sqlalchemy import select

    from service import provenance
    from service.models import Import
    p = golden_park
    with p.app.app_context():
        s = db.session()
        run = s.get(Run, p.run_id)
        imp = s.scalars(select(Import).order_by(Import.id).limit(1)).one()
        assert provenance._import_names(s, {imp.id}, run) == {imp.id: imp.filename}
        # the same ids in another database's life: the import named otherwise, the run ended at another time
        imp.filename = "另一个数据库的文件.csv"
        run.finished_at = run.finished_at + dt.timedelta(seconds=1)
        s.flush()
        assert provenance._import_names(s, {imp.id}, run) == {imp.id: "另一个数据库的文件.csv"}
        s.rollback()


def test_a_run_is_done_only_after_its_stored_rows_are_vacuumed_and_a_failure_then_keeps_nothing(golden_park,
                                                                                                monkeypatch):
    """A run's rows are committed, then VACUUM (ANALYZE)d, then the run is marked done: until
    then lookups read the run before (its new rows are not yet all-visible nor in the
    planner's statistics). A failure after that commit discards what was stored."""
    from sqlalchemy import select

    from service import runs
    from service.models import AwardLine
    p = golden_park
    seen = {}

    def vacuum_then_fail(s, *tables):
        with p.app.extensions["db_sessions"]() as other:          # another connection: what lookups see
            rid = other.scalar(select(Run.id).order_by(Run.id.desc()).limit(1))
            seen.update(status=other.get(Run, rid).status, rows=other.query(Result).filter_by(run_id=rid).count(),
                        current=runs.current_run(other, 2022).id, tables=tables)
        raise RuntimeError("the database went away after the results' commit")
    monkeypatch.setattr(runs, "vacuum_analyze", vacuum_then_fail)
    r = p.post("/api/runs", "officer", json={"year": 2022})
    rid = r.get_json()["id"]
    assert seen == {"status": "running", "rows": 300, "current": p.run_id, "tables": ("results", "award_lines")}
    st = p.get(f"/api/runs/{rid}", "officer").get_json()
    assert st["status"] == "failed" and "went away" in st["error"]
    with p.app.app_context():
        s = db.session()
        assert [s.query(m).filter_by(run_id=rid).count() for m in (Result, AwardLine, RunFile)] == [0, 0, 0]
        assert s.query(Result).filter_by(run_id=p.run_id).count() == 300     # the run before keeps its own
    assert p.get(f"/api/enterprises/{p.own}", "officer").get_json()["run_id"] == p.run_id


def test_a_runs_rows_are_analyzed_but_not_their_packed_texts(golden_park):
    """On PostgreSQL a run's results get planner statistics before it is done (VACUUM
    ANALYZE), for the columns the queries filter and sort by; the wide columns (packed
    texts, migration 0012) get none: their sample was most of ANALYZE's time."""
    from sqlalchemy import text

    from service.models import Result
    p = golden_park
    with p.app.app_context():
        s = db.session()
        if s.get_bind().dialect.name != "postgresql":
            pytest.skip("PostgreSQL's statistics")
        analyzed = s.execute(text("SELECT relname, last_analyze FROM pg_stat_user_tables "
                                  "WHERE relname IN ('results', 'award_lines')")).all()
        assert {name for name, when in analyzed if when is not None} == {"results", "award_lines"}
        stats = set(s.scalars(text("SELECT attname FROM pg_stats WHERE tablename = 'results'")))
        assert {"run_id", "credit_code", "stage", "excluded", "final_score", "rank_in_stage"} <= stats
        wide = {"trace", "trace_packed", "indicators", "indicators_packed", "provenance", "provenance_packed",
                "category_scores"}
        assert wide <= set(Result.__table__.columns.keys()) and not stats & wide


def test_a_stale_run_that_had_stored_its_rows_keeps_nothing(golden_park):
    """A run whose process died between its rows' commit and done (found by its heartbeat)
    is failed and its rows discarded, as the reason says; a done run is never touched."""
    import datetime as dt

    from service import runs
    from service.models import AwardLine, utcnow
    p = golden_park
    with p.app.app_context():
        s = db.session()
        dead = runs.create_run(s, 2022, None)
        s.flush()
        for src in s.query(Result).filter_by(run_id=p.run_id).limit(5).all():
            s.add(Result(**{c.key: getattr(src, c.key) for c in Result.__table__.columns if c.key != "id"} | {
                "run_id": dead.id}))
        s.add(AwardLine(run_id=dead.id, credit_code=p.own, clause="RW-1", eligible_yuan=1, granted_yuan=1, basis=""))
        s.add(RunFile(run_id=dead.id, name="scores.csv", content=b"x"))
        dead.status, dead.heartbeat = "running", utcnow() - dt.timedelta(seconds=3600)
        s.commit()
        assert runs.fail_stale(s, limit=60) == [dead.id]
        assert s.get(Run, dead.id).status == "failed"
        assert [s.query(m).filter_by(run_id=dead.id).count() for m in (Result, AwardLine, RunFile)] == [0, 0, 0]
        assert s.query(Result).filter_by(run_id=p.run_id).count() == 300
        assert runs.fail_stale(s, limit=60) == []


def test_a_run_failed_while_its_rows_were_stored_stays_failed_and_a_done_run_stays_done(golden_park, monkeypatch):
    """The run is marked done only if it is still running: one failed meanwhile (its heartbeat
    went stale while the VACUUM ran) stays failed with nothing kept. And what fails after a
    run is done (here the progress callback) leaves it done with its results."""
    import datetime as dt

    import pytest

    from service import runs
    from service.models import AwardLine, utcnow
    p = golden_park
    maker = p.app.extensions["db_sessions"]

    def stale_meanwhile(s, *tables):
        with maker() as other:
            rid = other.query(Run.id).order_by(Run.id.desc()).limit(1).scalar()
            other.get(Run, rid).heartbeat = utcnow() - dt.timedelta(seconds=3600)
            other.commit()
            assert runs.fail_stale(other, limit=60) == [rid]
    monkeypatch.setattr(runs, "vacuum_analyze", stale_meanwhile)
    rid = p.post("/api/runs", "officer", json={"year": 2022}).get_json()["id"]
    st = p.get(f"/api/runs/{rid}", "officer").get_json()
    assert st["status"] == "failed" and "心跳" in st["error"], st
    with p.app.app_context():
        s = db.session()
        assert [s.query(m).filter_by(run_id=rid).count() for m in (Result, AwardLine, RunFile)] == [0, 0, 0]
        assert s.get(Run, rid).enterprises == 0                 # no figures of a run that kept nothing
    monkeypatch.undo()

    with p.app.app_context():
        s = db.session()
        run = runs.create_run(s, 2022, None)
        s.commit()
        rid = run.id

    def progress(pct, message):
        if pct == 100:
            raise RuntimeError("the terminal went away")
    with pytest.raises(RuntimeError, match="terminal"):
        runs.execute_run(maker, rid, progress=progress)
    with p.app.app_context():
        s = db.session()
        assert s.get(Run, rid).status == "done"
        assert s.query(Result).filter_by(run_id=rid).count() == 300
