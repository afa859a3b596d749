"""A killed run is failed promptly (issue 13, item 9 of the issue): the worker stamps a
heartbeat every few seconds; a run without one for RUN_STALE_SECONDS is failed, with the
reason, on the next read and at start-up."""
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from service import create_app
from service.models import AuditEntry, Run, utcnow
from tests.conftest import Park, make_app

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import sys, time
import rules.evaluate
from service import create_app
from service.runs import execute_run
rules.evaluate.evaluate = lambda *a, **k: time.sleep(600)       # an evaluation that takes its time
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "k" * 32, "TESTING": True})
execute_run(app.extensions["db_sessions"], int(sys.argv[2]), heartbeat_every=0.5)
"""


def status_row(app, run_id):
    from service import db
    with app.app_context():
        s = db.session()
        s.expire_all()
        r = s.get(Run, run_id)
        return r.status, r.heartbeat, r.error


def test_a_kill_9_during_a_run_is_detected_within_seconds(sqlite_url):
    app = make_app(sqlite_url, RUN_STALE_SECONDS=3)
    p = Park(app)
    p.import_golden()
    from service import db
    from service.runs import create_run
    with app.app_context():
        run_id = create_run(db.session(), 2022, None).id
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, sqlite_url, str(run_id)], env=env, cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 60
        beats = set()
        while time.monotonic() < deadline and len(beats) < 3:       # running, and beating
            status, beat, _ = status_row(app, run_id)
            if status == "running":
                beats.add(beat)
            time.sleep(0.2)
        assert len(beats) >= 3, "the worker never showed signs of life"
        assert p.get(f"/api/runs/{run_id}", "officer").get_json()["status"] == "running"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    killed = time.monotonic()
    while True:
        body = p.get(f"/api/runs/{run_id}", "officer").get_json()
        if body["status"] == "failed":
            break
        assert time.monotonic() - killed < 60, "a killed run still looks alive after a minute"
        time.sleep(0.5)
    assert time.monotonic() - killed < 10
    status, _, error = status_row(app, run_id)
    assert status == "failed" and "心跳" in error and "heartbeat" in error        # recorded, with the reason
    with app.app_context():
        assert db.session().scalar(select(AuditEntry).where(AuditEntry.action == "run.failed"))
    app.extensions["db_engine"].dispose()


def test_a_stale_run_is_failed_at_start_up(sqlite_url):
    app = make_app(sqlite_url)
    Park(app).import_golden()
    from service import db
    from service.runs import create_run
    with app.app_context():
        s = db.session()
        stale, fresh = create_run(s, 2022, None), create_run(s, 2022, None)
        stale.status = fresh.status = "running"
        stale.heartbeat = utcnow() - dt.timedelta(seconds=120)
        s.commit()
        ids = stale.id, fresh.id
    app.extensions["db_engine"].dispose()
    again = create_app({"TESTING": True, "DATABASE_URL": sqlite_url, "SECRET_KEY": "test"})
    assert status_row(again, ids[0])[0] == "failed"
    assert status_row(again, ids[1])[0] == "running"                # a live one is left alone
    again.extensions["db_engine"].dispose()
