"""积分计算: runs of the evaluation over the stored data.

A run reads a snapshot of the stored (approved) data written as import files, evaluates it
with the batch code (`innopoints evaluate`'s own functions) and stores what the files say.
Its results are committed, VACUUM (ANALYZE)d on PostgreSQL, then the run is marked done with
its figures (a guarded update: never over a failure): the previous run of the year stays
current until then, and a run that fails, or whose process dies, is marked failed with what
it had stored deleted (`fail`, `fail_stale`, the worker's watcher)."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import tempfile
import threading
import traceback
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy import delete, select, text, update

from rules.evaluate import EvaluationError
from rules.output import Checksums, code_order, write
from rules.policy import PolicyError, load_policy
from rules.records import InputErrors

from . import policies
from .models import AwardLine, PolicyVersion, Result, Run, RunFile, utcnow
from .store import audit, bulk_insert, snapshot

HEARTBEAT_EVERY = 5.0       # seconds between a running run's signs of life (RUN_HEARTBEAT_SECONDS)
STALE_AFTER = 60.0          # seconds without one after which the run is failed (RUN_STALE_SECONDS)
STORED_FILES = ("scores.csv", "awards.csv", "awards.html", "manifest.json")
PROVENANCE_FILE = "provenance.parquet"  # every value's row (runs stored before the compact file)
PROVENANCE_COMPACT = "provenance_records.parquet"  # what the run read and where from, served as provenance.csv
PROVENANCE_FIELDS = "provenance_fields.json"        # the fields it names: [[key, kind, owner source], ...]
PHASES = {"snapshot": (5, "导出已审核数据"), "evaluate": (20, "校验并评价"), "write": (60, "生成结果文件"),
          "store": (80, "保存结果"), "done": (100, "完成")}


def policy_version(s, policy=None) -> PolicyVersion:
    """The version a run uses: the active one by default; a published version by id or
    name; else a folder (or bundled name), kept as an 'external' version."""
    if policy is None:
        return policies.active(s)
    row = policies.version_named(s, policy)
    if row is not None:
        return row
    return policies.register_external(s, load_policy(policy))


def create_run(s, year, user, policy=None, budget=None, strategy=None) -> Run:
    """A queued run (committed, so that its progress can be watched)."""
    from .store import has_records
    if not has_records(s, year):
        raise EvaluationError(f"{year} 年度没有企业记录 / no records for {year}")
    row = policy_version(s, policy)
    pv = policies.loaded(row)       # kept per content hash: no files parsed once warm (`warm_policy`)
    if not pv.in_force(year):
        raise EvaluationError(f"政策版本 {pv.name} 不适用于 {year} 年度 / policy {pv.name} is not in force for {year}")
    run = Run(year=year, policy_id=row.id, policy_name=row.name, policy_sha256=pv.digest, budget=budget,
              strategy=strategy, started_by=user.id if user else None, status="queued",
              message="排队中", heartbeat=utcnow())
    s.add(run)
    s.flush()
    audit(s, user, "run.create", f"run:{run.id}", year=year, policy=row.name, policy_sha256=pv.digest,
          budget=budget, strategy=strategy)
    s.commit()
    return run


def publish(s, run, user):
    """Publish a completed run: the public pages and the banks read the newest published run."""
    run.published_at = utcnow()
    run.published_by = user.id if user else None
    audit(s, user, "run.publish", f"run:{run.id}", year=run.year)


def _set(s, run, **kw):
    for k, v in kw.items():
        setattr(run, k, v)
    run.heartbeat = utcnow()
    s.commit()


class Heartbeat:
    """A thread that stamps the run's heartbeat every `every` seconds, on a connection of its
    own, while the run works (the evaluation itself may take minutes without a phase change).
    When the process dies the stamps stop, and `fail_stale` fails the run soon after."""

    def __init__(self, sessionmaker, run_id, every):
        self.sessionmaker, self.run_id, self.every = sessionmaker, run_id, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"run-{run_id}-heartbeat")

    def _beat(self):
        while not self.stop.wait(self.every):
            try:
                with self.sessionmaker() as s:
                    s.execute(update(Run).where(Run.id == self.run_id, Run.status.in_(("queued", "running")))
                              .values(heartbeat=utcnow()))
                    s.commit()
            except Exception:            # a busy database: the next beat tries again
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def stale_reason(limit) -> str:
    return (f"计算进程已停止：超过 {int(limit)} 秒没有心跳（进程被终止或服务重启），本批次未保存任何结果，请重新发起 / "
            f"the worker stopped: no heartbeat for {int(limit)} s (killed or restarted); nothing was kept")


def fail_stale(s, limit=STALE_AFTER, now=None) -> list[int]:
    """Mark failed, with the reason, every queued or running run whose heartbeat is older
    than `limit` seconds (its worker is gone). Called when runs are read and at start-up."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=limit)
    ids = list(s.scalars(select(Run.id).where(Run.status.in_(("queued", "running")),
                                              (Run.heartbeat.is_(None)) | (Run.heartbeat < cutoff))))
    if not ids:
        return []
    reason = stale_reason(limit)
    failed_ids = []
    for run_id in ids:
        if not fail(s, run_id, reason, (Run.heartbeat.is_(None)) | (Run.heartbeat < cutoff), now=now):
            continue                      # it finished (or beat) meanwhile
        failed_ids.append(run_id)
        audit(s, None, "run.failed", f"run:{run_id}", reason="no heartbeat", limit_seconds=limit)
    s.commit()
    return failed_ids


def execute_run(sessionmaker, run_id, progress=None, heartbeat_every=HEARTBEAT_EVERY):
    """Evaluate a queued run and store its results; never raises for bad data or clauses:
    the run is marked failed with the reason. `progress(percent, message)` is told each phase;
    the run's heartbeat is stamped every `heartbeat_every` seconds meanwhile."""
    with Heartbeat(sessionmaker, run_id, heartbeat_every):
        return _execute(sessionmaker, run_id, progress)


def _execute(sessionmaker, run_id, progress=None):
    tell = progress or (lambda pct, msg: None)
    with sessionmaker() as s:
        run = s.get(Run, run_id)

        def phase(name):
            pct, msg = PHASES[name]
            _set(s, run, status="running" if name != "done" else "done", progress=pct, message=msg)
            tell(pct, msg)

        sums = None
        try:
            pv = policies.load_files(policies.files_of(s.get(PolicyVersion, run.policy_id)))
            if pv.digest != run.policy_sha256:
                raise PolicyError([f"政策版本 {pv.name} 的内容与发起时不同（哈希不同），请重新发起计算"])
            with tempfile.TemporaryDirectory(prefix="innopoints-run-", ignore_cleanup_errors=True) as tmp:
                phase("snapshot")
                snap = snapshot(s, tmp, pv.data)
                phase("evaluate")
                from rules.evaluate import evaluate, reading_for
                from rules.records import load_inputs
                # other years' rows keep only what stage and history read of them
                recs, cons = load_inputs(snap["records"], snap["contracts"], data=pv.data,
                                         only=reading_for(pv, run.year))
                inputs = {"records": snap["records"], "contracts": snap["contracts"]}
                sums = Checksums(inputs)          # hashed while the evaluation runs
                ev = evaluate(recs, run.year, pv, cons, run.budget, run.strategy, consume=True)
                phase("write")
                out = write(ev, Path(tmp) / "out", inputs, sums=sums)
                phase("store")
                _store(s, run, ev, out, snap["sha256"], snap["provenance"], snap["provenance_table"])
        except Exception as exc:  # the run fails as a whole, whatever the cause; nothing is kept
            if sums is not None:
                sums.cancel()           # the inputs' hashing, if the evaluation failed under it
            s.rollback()
            reason = _reason(exc)
            fail(s, run_id, reason)         # unless it is done (or failed by `fail_stale`) already
            s.commit()
            run = s.get(Run, run_id)
            s.refresh(run)
            tell(run.progress, f"失败：{run.error or reason}")
            if not isinstance(exc, (InputErrors, PolicyError, EvaluationError)):
                traceback.print_exc()
            return run_id
        tell(*PHASES["done"])
        return run_id


def _reason(exc) -> str:
    if isinstance(exc, InputErrors):
        return "\n".join(e.report(limit=20) for e in exc.errors)
    return f"{type(exc).__name__}: {exc}"


def _num(text):
    return float(text) if text != "" else None


def _int(text):
    return int(text) if text != "" else None


def _indicator_json(ids, values, points) -> list[bytes]:
    """Per enterprise, {clause id: [value, points]} as JSON text (UTF-8), built column-wise
    (a missing value is null)."""
    import pyarrow.compute as pc
    n = len(values)
    if not ids:
        return [b"{}"] * n

    from .store import float_json

    def text(col):
        return pc.fill_null(float_json(pa.array(col, pa.float64(), from_pandas=True)), "null")
    parts = []
    for j, cid in enumerate(ids):
        parts += [f'{"{" if j == 0 else ","}{json.dumps(cid)}:[', text(values[:, j]), ",", text(points[:, j]), "]"]
    return pc.binary_join_element_wise(*parts, "}", "").cast(pa.binary()).to_pylist()


def _store(s, run, ev, out: Path, data_sha, provenance=None, provenance_table=None):
    """Insert the results from the written files and commit them, VACUUM (ANALYZE) them, then
    mark the run done (see below)."""
    scores = list(csv.DictReader(io.StringIO((out / "scores.csv").read_text(encoding="utf-8"))))
    # each enterprise's trace as one compact JSON object (entries without the titles and
    # citations of the header); query.expand_trace puts them back for every reader
    from rules.tracefile import HEADER_FILE, compact_lines, read_table
    header = (out / HEADER_FILE).read_text(encoding="utf-8")
    head = json.loads(header)
    trace_table = read_table(out)
    if trace_table.num_rows != len(scores):
        raise RuntimeError("the trace and scores.csv name different numbers of enterprises")
    # each indicator's value and points, as the batch's indicators file has them, from the same matrices
    # the files are in credit-code order, the evaluation's rows in the input's: line them up
    ev_codes = ev.scores["credit_code"].to_numpy(dtype=object)
    pos = code_order(ev)            # the order the files were written in
    if ev_codes[pos].tolist() != [row["credit_code"] for row in scores]:
        raise RuntimeError("scores.csv and the evaluation name different enterprises")
    ids = [c.id for c in ev.indicator_clauses]
    values, points = ev.indicator_values[pos], np.round(ev.indicator_points[pos], 6)
    numbers = ("weighted", "deductions", "decay_factor", "bonus", "final_score")
    cat_cols = [c for c in scores[0] if c.endswith("_score") and c != "final_score"] if scores else []
    percentile = np.round(ev.scores["stage_percentile"].to_numpy(dtype="float64")[pos], 6)   # as the trace says
    from .provenance import META, per_result
    from .store import SLICE
    prov = per_result(provenance_table, run.year) if provenance_table is not None else {}
    cat_dicts, excluded_of, finals = [], [], []
    columns = ["run_id", "credit_code", "stage", "excluded", "exclusion_clauses", "category_scores", *numbers,
               "rank_in_stage", "rank_overall", "stage_percentile", "trace_packed", "indicators_packed", "provenance_packed"]
    # the traces, provenance and indicator texts packed against dictionaries trained on the
    # first slice's (service.packing)
    from .packing import Packer
    from .query import INDICATORS_DICTIONARY, PROVENANCE_DICTIONARY, TRACE_DICTIONARY
    packers = {}

    def packed(name, texts):
        if name not in packers:
            packers[name] = Packer(texts)
        return packers[name].pack(texts)
    # a slice of enterprises at a time: their traces and indicators made into text, inserted
    # and let go (a zone's traces are hundreds of MB: reused memory, not fresh)
    for lo in range(0, len(scores), SLICE):
        hi = min(lo + SLICE, len(scores))
        traces = compact_lines(trace_table.slice(lo, hi - lo), head).cast(pa.binary()).to_pylist()
        for i, row, tr in zip(range(lo, hi), scores[lo:hi], traces, strict=True):
            if not tr.startswith(b'{"credit_code":"' + row["credit_code"].encode() + b'"'):
                raise RuntimeError(f"trace line {i + 2} is not {row['credit_code']}'s")
        traces = packed(TRACE_DICTIONARY, traces)
        # "{}": the run read no provenance for it (a lookup need not look further)
        provs = (packed(PROVENANCE_DICTIONARY, [prov.get(row["credit_code"], "{}").encode() for row in scores[lo:hi]])
                 if provenance_table is not None else [None] * (hi - lo))
        indicators = packed(INDICATORS_DICTIONARY, _indicator_json(ids, values[lo:hi], points[lo:hi]))
        results = []
        for i, row, tr, ind, pr in zip(range(lo, hi), scores[lo:hi], traces, indicators, provs, strict=True):
            excluded = row["excluded"] == "true"
            cat_dicts.append({c[:-len("_score")]: _num(row[c]) for c in cat_cols if row[c] != ""})
            cats = json.dumps(cat_dicts[-1], separators=(",", ":"))
            nums = [_num(row[k]) for k in numbers]
            excluded_of.append(excluded)
            finals.append(nums[-1])
            results.append((run.id, row["credit_code"], row["stage"], excluded, row["exclusion_clauses"], cats,
                            *nums, _int(row["rank_in_stage"]), _int(row["rank_overall"]),
                            None if excluded else float(percentile[i]), tr, ind, pr))
        del traces, indicators, provs
        bulk_insert(s, Result.__table__, columns, results)
        del results
    del trace_table, prov
    for name, packer in packers.items():
        if packer.dictionary is not None:
            s.add(RunFile(run_id=run.id, name=name, content=packer.dictionary))
    # the stage figures every profile shows (medians, top deciles), computed once here
    from .query import stats_of
    by_stage = {}
    for i, row in enumerate(scores):
        if not excluded_of[i]:
            by_stage.setdefault(row["stage"], []).append(i)
    stats = {st: stats_of(st, {k[:-len("_score")]: [cat_dicts[i].get(k[:-len("_score")]) for i in rs] for k in cat_cols},
                          [finals[i] for i in rs],
                          {cid: (values[rs, j], points[rs, j]) for j, cid in enumerate(ids)})
             for st, rs in by_stage.items()}
    s.add(RunFile(run_id=run.id, name="stage_stats.json",
                  content=json.dumps(stats, ensure_ascii=False, separators=(",", ":")).encode("utf-8")))
    awards = list(csv.DictReader(io.StringIO((out / "awards.csv").read_text(encoding="utf-8"))))
    bulk_insert(s, AwardLine.__table__, ["run_id", "credit_code", "clause", "eligible_yuan", "granted_yuan", "basis"],
                [(run.id, a["credit_code"], a["clause"], int(a["eligible_yuan"]), int(a["granted_yuan"]), a["basis"])
                 for a in awards])
    for name in STORED_FILES:
        s.add(RunFile(run_id=run.id, name=name, content=(out / name).read_bytes()))
    if provenance is not None:
        # the provenance of every value the snapshot read; the trace header names it, so a
        # figure of the trace can be followed to the import, declaration or list behind it
        content = Path(provenance).read_bytes()
        # stored compactly (per record, with the few values of another source), served as CSV
        s.add(RunFile(run_id=run.id, name=PROVENANCE_COMPACT, content=content))
        s.add(RunFile(run_id=run.id, name=PROVENANCE_FIELDS, content=provenance_table.schema.metadata[META]))
        head["provenance"] = {"file": "provenance.csv", "stored_as": PROVENANCE_COMPACT,
                              "stored_sha256": hashlib.sha256(content).hexdigest()}
        header = json.dumps(head, ensure_ascii=False, separators=(",", ":")) + "\n"
    s.add(RunFile(run_id=run.id, name="trace_header.json", content=header.encode("utf-8")))
    from .diagnostics import MATRIX_FILE, matrix_bytes          # read by the run's calibration diagnostics
    s.add(RunFile(run_id=run.id, name=MATRIX_FILE, content=matrix_bytes(ev)))
    b = ev.budget
    figures = dict(data_sha256=data_sha, manifest=(out / "manifest.json").read_text(encoding="utf-8"),
                   enterprises=len(scores), excluded=sum(excluded_of), award_lines=len(awards),
                   eligible_yuan=int(b.fixed_total + b.floating_total), granted_yuan=int(b.granted_total))
    # committed before the run is done, and VACUUM (ANALYZE)d: a lookup switches to the run
    # only when its pages are marked all-visible and its figures are in the planner's
    # statistics. Done in the same commit, the lookups of every server thread met the new
    # rows while the VACUUM read them: p99 42-65 ms instead of 21-35 ms for the run's
    # seconds (PostgreSQL, 10,000 enterprises, 2026-12-05). A failure from here on discards
    # what was stored (`fail`).
    s.commit()
    vacuum_analyze(s, "results", "award_lines")
    now = utcnow()
    done = s.execute(update(Run).where(Run.id == run.id, Run.status == "running")
                     .values(status="done", progress=100, message="完成", heartbeat=now, finished_at=now, **figures))
    if not done.rowcount:
        # failed meanwhile (its heartbeat went stale: `fail_stale` discarded what it stored)
        s.rollback()
        raise RuntimeError("the run was failed while its results were stored (no heartbeat)")
    audit(s, None, "run.done", f"run:{run.id}", year=run.year, data_sha256=data_sha,
          enterprises=figures["enterprises"], granted_yuan=figures["granted_yuan"])
    s.commit()


def fail(s, run_id, reason, *also, now=None) -> bool:
    """Mark a queued or running run failed with `reason` (and only if the conditions `also`
    hold) and delete what it had stored (its results, award lines and files, committed just
    before it would be marked done): a failed run keeps nothing. A run already done or failed
    is left as it is. Whether it was failed; the caller commits."""
    failed = s.execute(update(Run).where(Run.id == run_id, Run.status.in_(("queued", "running")), *also)
                       .values(status="failed", message="失败", error=reason, finished_at=now or utcnow()))
    if not failed.rowcount:
        return False
    for model in (Result, AwardLine, RunFile):
        s.execute(delete(model).where(model.run_id == run_id))
    return True


def vacuum_analyze(s, *tables):
    """On PostgreSQL, `tables`' planner statistics and visibility map made now (VACUUM
    ANALYZE): autovacuum makes them within a minute or so, and until then a page of the
    enterprise list, planned for a few hundred rows, sorted the whole run (at 50k enterprises
    120 ms a page instead of 5), and a count read every row of the run instead of the index
    alone. Nothing to do on SQLite. Made after the run's rows are committed and before it
    is marked done; a failure of any kind leaves them to autovacuum (and a role that does
    not own the tables gets only PostgreSQL's warning), never fails the run. The results' wide
    columns (packed texts) have no statistics (migration 0012): their sample was most of the
    ANALYZE. A column list would skip them too, but leave the table's count of changes for
    autovacuum to ANALYZE the whole table again a minute later."""
    try:
        engine = s.get_bind()
        if engine.dialect.name != "postgresql":
            return
        with getattr(engine, "engine", engine).connect() as c:      # VACUUM runs outside a transaction
            c.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM (ANALYZE) " + ", ".join(tables)))
    except Exception:       # noqa: BLE001 — see above
        pass


def effective_status(run: Run, now=None, limit=STALE_AFTER) -> str:
    """A run still 'running' without a sign of life for `limit` seconds was killed: it
    counts as failed (and `fail_stale` records it so)."""
    now = now or utcnow()
    if run.status in ("queued", "running") and run.heartbeat and (now - run.heartbeat).total_seconds() > limit:
        return "failed"
    return run.status


def current_run_query(year=None, published=False):
    """The statement of `current_run` (a caller may join to it what it reads next)."""
    q = select(Run).where(Run.status == "done")
    if year is not None:
        q = q.where(Run.year == year)
    if published:
        q = q.where(Run.published_at.is_not(None))
        return q.order_by(Run.published_at.desc(), Run.id.desc()).limit(1)
    return q.order_by(Run.year.desc(), Run.id.desc()).limit(1)


def current_run(s, year=None, published=False) -> Run | None:
    """The newest completed run (of `year`, when given; published only, when asked)."""
    return s.scalar(current_run_query(year, published))
