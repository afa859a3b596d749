"""Runs in a process of their own (issue 16): a run evaluating a zone holds a core and the
GIL for seconds to minutes; in the server's process it would hold up every lookup. The
server hands the run's id to a child process, forked from a small server process that has
already imported the evaluation code (multiprocessing's forkserver, preloaded once), so a
run starts in milliseconds, and at the idle scheduling class, so the server's threads keep
answering meanwhile.

The child opens its own connection to the database (SQLite in WAL mode or PostgreSQL: the
results appear to every server process at once when the run's transaction commits). A
thread of the server waits for the child: a child that dies (killed, out of memory) fails
its run at once with the exit code, without waiting for the heartbeat to go stale.

As with every multiprocessing start method but fork, the child imports the server's main
module under another name: a script that starts the server must do so under
`if __name__ == "__main__":` (gunicorn, waitress-serve, flask and the innopoints command do)."""
from __future__ import annotations

import multiprocessing
import os
import threading

from sqlalchemy import event, update

# service.warm first: it puts the forkserver in the idle class before anything is imported or
# evaluated there (a server warming its forkserver at its first request slowed its lookups)
PRELOAD = ["service.warm", "service.runs", "service.store", "service.provenance", "service.diagnostics",
           "rules.evaluate", "rules.output", "rules.engine", "rules.records", "rules.tracefile"]
# service.diagnostics imports scipy.stats (0.8 s), which every run needs to store its matrices
NICENESS = 5                # where SCHED_IDLE is not to be had: the run yields the cores
_ctx = None
_lock = threading.Lock()
PROCESSES: dict = {}        # run id -> its process (this server's runs; tests kill one)
# run id -> its process's exit code, as its watcher read it. Only the watcher may wait for a
# process or ask its exit code: a forkserver child's status is one message on a pipe, and a
# second thread reading it meanwhile gets end-of-file, which multiprocessing reports as 255.
EXITED: dict = {}
_exited = threading.Condition(_lock)


def context():
    global _ctx
    with _lock:
        if _ctx is None:
            _ctx = multiprocessing.get_context("forkserver")
            _ctx.set_forkserver_preload(PRELOAD)
        return _ctx


_prestarted = False


def prestart():
    """Start the forkserver (its imports and warming take about two seconds) in the
    background, so that the first run does not wait for it. Once per process."""
    global _prestarted
    with _lock:
        if _prestarted:
            return
        _prestarted = True

    def boot():
        try:
            context()
            from multiprocessing import forkserver
            forkserver.ensure_running()
        except Exception:        # noqa: BLE001 - the first run then starts it, as before
            pass
    threading.Thread(target=boot, daemon=True, name="forkserver-prestart").start()


def lower_priority():
    """The run takes the CPU only when the server's processes leave it idle (Linux
    SCHED_IDLE: a lookup never waits behind it); elsewhere, a lower nice value."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "idle"
    except (AttributeError, OSError):
        pass
    try:
        os.nice(max(0, NICENESS - os.nice(0)))      # the forkserver's children call it again
        return "nice"
    except OSError:
        return ""


def lower_database_priority(engine):
    """With PostgreSQL on this same machine, the database's server process for each of the
    run's connections (its backend) is put in the idle class as well: the run's reading and
    writing are done there, and at full priority they took the cores from the lookups' own
    backends (p99 224 ms while a run computed, 2 cores). Only a backend reached over a local
    socket or loopback whose process is a postgres process is touched; a database elsewhere,
    or one this user may not reschedule, is left as it is."""
    if engine.dialect.name != "postgresql" or not hasattr(os, "sched_setscheduler"):
        return

    @event.listens_for(engine, "connect")
    def _idle_backend(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        try:
            cur.execute("SELECT pg_backend_pid(), coalesce(host(inet_server_addr()) IN ('127.0.0.1', '::1'), true)")
            pid, local = cur.fetchone()
        finally:
            cur.close()
        dbapi_conn.commit()
        if local and idle_process(pid, "postgres"):
            # a parallel query's or VACUUM's workers are processes of their own, started by
            # the server at full priority: they took the cores from the lookups while the
            # run's snapshot was read and its VACUUM made (p50 130-260 ms for a second, 2
            # cores, 10,000 enterprises, 2026-12-04); the run's work stays in its backend
            # (a server without one of the settings, before PostgreSQL 11, keeps its own)
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT set_config('max_parallel_workers_per_gather', '0', false), "
                            "set_config('max_parallel_maintenance_workers', '0', false)")
                dbapi_conn.commit()
            except Exception:       # noqa: BLE001 - the driver's error, whichever the driver
                dbapi_conn.rollback()
            finally:
                cur.close()


def idle_process(pid, name) -> bool:
    """Put process `pid` in the idle scheduling class if it is a `name` process we may
    reschedule; whether it was done."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            if not f.read().startswith(name):
                return False
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        return True
    except (OSError, AttributeError):
        return False


def _child(url, run_id, heartbeat_every):
    from sqlalchemy.orm import sessionmaker

    from .db import make_engine
    from .runs import execute_run
    lower_priority()
    engine = make_engine(url)
    lower_database_priority(engine)
    try:
        execute_run(sessionmaker(engine, expire_on_commit=False), run_id, heartbeat_every=heartbeat_every)
    finally:
        engine.dispose()


def _watch(proc, maker, run_id, every):
    """While the child lives, stamp its run's heartbeat too (a run at the idle scheduling class
    may wait for the CPU longer than the stale limit while the server is busy, yet it is
    alive); when it dies, fail its run unless it finished."""
    from .models import Run, utcnow
    while True:
        proc.join(every)
        if proc.exitcode is not None:
            break
        try:
            with maker() as s:
                s.execute(update(Run).where(Run.id == run_id, Run.status.in_(("queued", "running")))
                          .values(heartbeat=utcnow()))
                s.commit()
        except Exception:             # noqa: BLE001 - a busy database: the next beat tries again
            pass
    with _exited:
        EXITED[run_id] = proc.exitcode
        _exited.notify_all()
    if proc.exitcode == 0:
        return
    from .store import audit
    reason = (f"计算进程异常退出（退出码 {proc.exitcode}），本批次未保存任何结果，请重新发起 / "
              f"the run's process ended with exit code {proc.exitcode}; nothing was kept")
    from .runs import fail
    with maker() as s:
        if fail(s, run_id, reason):
            audit(s, None, "run.failed", f"run:{run_id}", reason="process exit", exitcode=proc.exitcode)
        s.commit()


def exit_code(run_id, timeout=None):
    """The exit code of run `run_id`'s process once its watcher has seen it end (None if it
    has not within `timeout` seconds)."""
    with _exited:
        _exited.wait_for(lambda: run_id in EXITED, timeout)
        return EXITED.get(run_id)


def start(url, maker, run_id, heartbeat_every) -> "multiprocessing.Process":
    """Start run `run_id` in a child process; a thread fails the run if the child dies."""
    proc = context().Process(target=_child, args=(url, run_id, heartbeat_every), name=f"innopoints-run-{run_id}",
                             daemon=False)
    proc.start()
    with _lock:
        if len(PROCESSES) > 256:            # forget the runs whose watcher has seen them end
            for k in [k for k in PROCESSES if k in EXITED]:
                del PROCESSES[k]
                del EXITED[k]
        PROCESSES[run_id] = proc
    threading.Thread(target=_watch, args=(proc, maker, run_id, heartbeat_every), daemon=True,
                     name=f"run-{run_id}-watch").start()
    return proc
