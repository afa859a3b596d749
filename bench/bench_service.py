"""Benchmark of the service's store: import a zone's records and contracts, run the
evaluation over the stored data, and read its pages of results, on SQLite (and PostgreSQL
when INNOPOINTS_TEST_PG_URL or --pg names a server).

Baseline, measured in the same run on the same files: `innopoints evaluate` from the files
(read, evaluate, write; no database). The ratio says what the store costs on top of it.
Each (size, backend) runs in a fresh subprocess, so peak memory is its own.

    python bench/bench_service.py [--sizes 1000,10000,50000] [--pg URL]
    scripts/with-postgres .venv/bin/python bench/bench_service.py   # with a throw-away PostgreSQL
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
YEAR = 2025


def generate_files(size, workdir):
    from service.demo import generate, write_csv
    records, contracts = generate(size, YEAR, seed=11, history=3)
    write_csv(records, Path(workdir) / "records.csv")
    write_csv(contracts, Path(workdir) / "contracts.csv")
    print(json.dumps({"rows": len(records), "contracts": len(contracts)}))


def child(workdir, backend, url):
    work = Path(workdir)
    t = {}
    if backend == "files":
        from rules.output import write
        from service.cli import run_evaluation
        t0 = time.perf_counter()
        # exactly what `innopoints evaluate` does
        ev, sums = run_evaluation(work / "records.csv", work / "contracts.csv", YEAR)
        write(ev, work / "out", {"records": work / "records.csv", "contracts": work / "contracts.csv"}, sums=sums)
        t["evaluate_files"] = time.perf_counter() - t0
    else:
        if backend == "postgresql":
            from sqlalchemy import create_engine, text
            eng = create_engine(url)
            with eng.begin() as c:
                c.execute(text("DROP SCHEMA public CASCADE"))
                c.execute(text("CREATE SCHEMA public"))
            eng.dispose()
        from service import create_app, db
        from service.runs import create_run, execute_run
        from service.store import import_file
        app = create_app({"DATABASE_URL": url})
        with app.app_context():
            s = db.session()
            t0 = time.perf_counter()
            import_file(s, work / "records.csv", "records", None)
            t["import_records"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            import_file(s, work / "contracts.csv", "contracts", None)
            t["import_contracts"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            run = create_run(s, YEAR, None)
            execute_run(app.extensions["db_sessions"], run.id)
            t["run"] = time.perf_counter() - t0
            s.expire_all()
            assert s.get(type(run), run.id).status == "done"
        client = app.test_client()
        from service.auth import create_user, issue_token
        with app.app_context():
            s = db.session()
            token = issue_token(s, create_user(s, "bench", "bench-password", "officer"))
            s.commit()
        h = {"Authorization": f"Bearer {token}"}
        t0 = time.perf_counter()
        for page in range(1, 21):
            r = client.get(f"/api/enterprises?stage=growth&sort=final_score&order=desc&page={page}", headers=h)
            assert r.status_code == 200
        t["api_20_pages"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert client.get("/api/awards?format=xlsx", headers=h).status_code == 200
        t["api_awards_xlsx"] = time.perf_counter() - t0
    t["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(t))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,10000,50000")
    ap.add_argument("--pg", default=os.environ.get("INNOPOINTS_TEST_PG_URL"))
    a = ap.parse_args()
    backends = ["files", "sqlite"] + (["postgresql"] if a.pg else [])
    print(f"{'enterprises':>11} {'rows':>8} {'backend':>10} {'import s':>9} {'run s':>7} {'20 pages s':>10} "
          f"{'awards.xlsx s':>13} {'total s':>8} {'× files':>8} {'peak MB':>8}")
    for size in [int(x) for x in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as work:
            meta = json.loads(subprocess.check_output([sys.executable, __file__, "--generate", str(size), work]))
            base = None
            for backend in backends:
                url = {"files": "", "sqlite": f"sqlite:///{work}/bench.db", "postgresql": a.pg}[backend]
                t = json.loads(subprocess.check_output([sys.executable, __file__, "--child", work, backend, url]))
                if backend == "files":
                    base = t["evaluate_files"]
                    print(f"{size:>11,} {meta['rows']:>8,} {backend:>10} {'':>9} {base:>7.2f} {'':>10} {'':>13} "
                          f"{base:>8.2f} {1:>8.1f} {t['peak_rss_mb']:>8.0f}")
                    continue
                imp = t["import_records"] + t["import_contracts"]
                total = imp + t["run"]
                print(f"{size:>11,} {meta['rows']:>8,} {backend:>10} {imp:>9.2f} {t['run']:>7.2f} "
                      f"{t['api_20_pages']:>10.2f} {t['api_awards_xlsx']:>13.2f} {total:>8.2f} {total / base:>8.1f} "
                      f"{t['peak_rss_mb']:>8.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        generate_files(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
    else:
        main()
