"""Benchmark: evaluate synthetic zones of 10k, 100k and 1M enterprises (one evaluated year,
three earlier years of history in the same file, about 3.3 rows per enterprise).

For each size, in a fresh subprocess (so peak memory is that size's own): seconds per phase
(parse+validate, stage+history, rules engine, indicator scoring, rewards, writing outputs),
enterprises per second and peak RSS. Baseline, measured in a subprocess of its own on the
same file (its memory would otherwise count in the evaluation's peak): a bare
`pandas.read_csv` of the records (the I/O floor no evaluation can beat); the ratio says how
many times that floor the whole evaluation costs. Also the CPU seconds (user and kernel) of
the evaluation's process: on a shared machine they say more than the wall clock.

    python bench/bench_evaluate.py [--sizes 10000,100000,1000000] [--no-trace]
"""
from __future__ import annotations

import argparse
import json
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
    """Run in its own subprocess (its memory is not the evaluation's): write the zone."""
    from service.demo import generate, write_csv
    work = Path(workdir)
    records, contracts = generate(size, YEAR, seed=7, history=3)
    write_csv(records, work / "records.csv")
    write_csv(contracts, work / "contracts.csv")
    print(json.dumps({"rows": len(records), "contracts": len(contracts)}))


def baseline(workdir):
    """Run in a subprocess: a bare read of the records file, its seconds and peak memory."""
    import pandas as pd
    t0 = time.perf_counter()
    pd.read_csv(Path(workdir) / "records.csv", dtype=str, keep_default_na=False, engine="pyarrow")
    print(json.dumps({"seconds": time.perf_counter() - t0,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def child(size, workdir, trace):
    """Run in a subprocess: time every phase of one evaluation of the written zone."""
    from rules import output
    from rules.evaluate import evaluate, reading_for
    from rules.policy import load_policy
    from rules.records import load_inputs

    work = Path(workdir)
    t = {}
    t0 = time.perf_counter()
    pv = load_policy()
    recs, cons = load_inputs(work / "records.csv", work / "contracts.csv", only=reading_for(pv, YEAR))
    t["parse_validate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    inputs = {"records": work / "records.csv", "contracts": work / "contracts.csv"}
    sums = output.Checksums(inputs)       # as `innopoints evaluate` does
    ev = evaluate(recs, YEAR, pv, cons, budget=None, consume=True)
    t["evaluate_total"] = time.perf_counter() - t0
    t.update({f"evaluate.{k}": v for k, v in ev.timings.items()})
    del recs, cons      # emptied by the evaluation (consume), as `innopoints evaluate` does
    t0 = time.perf_counter()
    parts = {}
    output.write(ev, work / "out", inputs, trace=trace, timings=parts, sums=sums, consume=True)
    t["write_outputs"] = time.perf_counter() - t0
    t.update(parts)
    t["total"] = t["parse_validate"] + t["evaluate_total"] + t["write_outputs"]
    t = {k: t[k] for k in ["parse_validate", "evaluate_total"]
         + [k for k in t if k.startswith("evaluate.")] + ["write_outputs"]
         + [k for k in t if k.startswith("write.")] + ["total"]}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    files = {p.name: p.stat().st_size for p in sorted((work / "out").iterdir())}
    print(json.dumps({"size": size, "seconds": t, "peak_mb": usage.ru_maxrss / 1024,
                      "cpu": {"user": usage.ru_utime, "system": usage.ru_stime},
                      "engine_patterns": ev.engine_patterns, "files": files}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--no-trace", action="store_true", help="skip the trace and the indicators file")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.generate:
        return generate_files(a.generate, a.workdir)
    if a.baseline:
        return baseline(a.workdir)
    if a.child:
        return child(a.child, a.workdir, not a.no_trace)
    results = []
    for size in [int(s) for s in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            gen = subprocess.run([sys.executable, __file__, "--generate", str(size), "--workdir", tmp],
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            base = json.loads(subprocess.run([sys.executable, __file__, "--baseline", "--workdir", tmp], capture_output=True,
                                             text=True, check=True).stdout.strip().splitlines()[-1])
            cmd = [sys.executable, __file__, "--child", str(size), "--workdir", tmp] + (["--no-trace"] if a.no_trace else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            results.append({**json.loads(gen), **json.loads(out)})
            r = results[-1]
            s = {"baseline_read_csv": base["seconds"], **r["seconds"]}
            print(f"\n== {size:,} enterprises ({r['rows']:,} record rows, {r['contracts']:,} contracts) ==")
            for k, v in s.items():
                share = f"{100 * v / s['total']:5.1f}% of total" if not k.startswith("baseline") and k != "total" else ""
                k = ("  " + k) if "." in k else k
                print(f"  {k:<28} {v:8.2f} s  {share}")
            print(f"  enterprises per second       {size / s['total']:10,.0f}")
            print(f"  peak memory                  {r['peak_mb']:8.0f} MB")
            print(f"  CPU user / kernel            {r['cpu']['user']:8.1f} s / {r['cpu']['system']:.1f} s")
            print(f"  bare read_csv peak memory    {base['peak_mb']:8.0f} MB (own process)")
            print(f"  total / baseline read_csv    {s['total'] / s['baseline_read_csv']:8.1f} ×")
            print(f"  engine patterns per group    {r['engine_patterns']}")
            print("  output files (MB)            " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in r["files"].items()))
    if len(results) > 1:
        first = results[0]
        print("\nscaling against the smallest size (per-enterprise time ratio):")
        for r in results[1:]:
            ratio = (r["seconds"]["total"] / r["size"]) / (first["seconds"]["total"] / first["size"])
            print(f"  {r['size']:>9,}: {ratio:5.2f} × the per-enterprise time of {first['size']:,}")


if __name__ == "__main__":
    main()
