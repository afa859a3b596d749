"""Benchmark: calibration diagnostics (§四.(二), issue 15) of a run of 10k and 100k enterprises.

For each size, in a fresh subprocess: a synthetic zone (as bench_evaluate.py makes it) is
evaluated, then timed: reading the run's stored indicator JSON into matrices (what the
service does for a stored run), the per-stage diagnostics (indicator figures, moments,
normality tests, verdict, chart data) and the tuning of flagged indicators. Peak memory: of
the diagnostics phase (tracemalloc) and of the whole process (RSS). Baseline, measured in the
same run on the same data: the evaluation itself (`rules.evaluate.evaluate`); the ratio says
what share of an evaluation the diagnostics cost. The goal: a 100k run's diagnostics in ≤ 5 s.

    python bench/bench_diagnose.py [--sizes 10000,100000]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
YEAR = 2025


def child(size, workdir):
    import numpy as np

    from rules import diagnostics as D
    from rules.evaluate import evaluate
    from rules.policy import load_policy
    from rules.records import load_inputs
    from service.diagnostics import matrices_from_bytes, matrix_bytes

    work = Path(workdir)
    pv = load_policy()
    recs, cons = load_inputs(work / "records.csv", work / "contracts.csv")
    t = {}
    t0 = time.perf_counter()
    ev = evaluate(recs, YEAR, pv, cons)
    t["baseline_evaluate"] = time.perf_counter() - t0
    # the stored form of a run's matrices (service/runs.py stores it with the run)
    stored = matrix_bytes(ev)
    codes = sorted(ev.scores["credit_code"])          # the order the store reads results in

    def diagnostics():
        t0 = time.perf_counter()
        values, points = matrices_from_bytes(stored, codes, ev.indicator_clauses)
        t["read_stored"] = time.perf_counter() - t0
        sc = D.from_evaluation(ev)
        order = np.argsort(sc.codes.astype(str))       # the stored matrices are in code order
        sc.values[order], sc.points[order] = values, points
        t0 = time.perf_counter()
        d = D.diagnose(sc)
        t["diagnose"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tuning = D.tune(sc, d)
        t["tune"] = time.perf_counter() - t0
        return d, tuning
    d, tuning = diagnostics()
    timed = dict(t)
    tracemalloc.start()                  # a second pass for the memory (tracemalloc slows Python)
    diagnostics()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t.update(timed)
    t["diagnostics_total"] = t["read_stored"] + t["diagnose"] + t["tune"]
    print(json.dumps({"stored_mb": len(stored) / 2**20, "enterprises": len(ev.scores), "rows": len(recs), "stages": len(d["stages"]),
                      "tuned": len(tuning), "timings": t, "diag_peak_mb": peak / 2**20,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        return child(int(a.child[0]), a.child[1])
    print(f"{'enterprises':>11} {'rows':>9} {'read stored':>11} {'diagnose':>9} {'tune':>7} {'diagnostics':>11} "
          f"{'evaluate (baseline)':>19} {'× baseline':>10} {'diag peak':>9} {'peak RSS':>9}")
    for size in [int(x) for x in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="bench-diag-") as work:
            subprocess.run([sys.executable, str(ROOT / "bench" / "bench_evaluate.py"), "--generate", str(size),
                            "--workdir", work],
                           check=True, stdout=subprocess.DEVNULL)
            out = subprocess.run([sys.executable, __file__, "--child", str(size), work], check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            t = r["timings"]
            print(f"{r['enterprises']:>11,} {r['rows']:>9,} {t['read_stored']:>10.2f}s {t['diagnose']:>8.2f}s "
                  f"{t['tune']:>6.2f}s {t['diagnostics_total']:>10.2f}s {t['baseline_evaluate']:>18.2f}s "
                  f"{t['diagnostics_total'] / t['baseline_evaluate']:>10.2f} {r['diag_peak_mb']:>7.0f}MB "
                  f"{r['peak_rss_mb']:>7.0f}MB", flush=True)


if __name__ == "__main__":
    main()
