"""Writing an evaluation as files (SPEC §5): scores.csv, awards.csv, trace.jsonl,
indicators.csv, manifest.json and the printable award list awards.html.

Files are written to a fresh folder beside the target and moved in only when all are
complete, so a failed run leaves the target as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .records import arrow_text

SCORE_COLUMNS = ["credit_code", "year", "stage", "excluded", "exclusion_clauses", "tech_score",
                 "growth_score", "aux_score", "weighted", "deductions", "decay_factor", "bonus",
                 "final_score", "rank_in_stage", "rank_overall"]
PROGRAM_VERSION = "0.3.0"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fixed(values, decimals) -> pa.Array:
    """Numbers as text with exactly `decimals` decimals, half up ('' for NaN), vectorised with
    integer arithmetic (the values are already rounded to `decimals`)."""
    v = np.asarray(values, dtype="float64")
    missing = np.isnan(v)
    scaled = np.rint(np.nan_to_num(v) * 10 ** decimals).astype(np.int64)
    sign = np.where(scaled < 0, "-", "")
    scaled = np.abs(scaled)
    whole = pc.cast(pa.array(scaled // 10 ** decimals), pa.string())
    if decimals:
        frac = pc.utf8_lpad(pc.cast(pa.array(scaled % 10 ** decimals), pa.string()), decimals, "0")
        text = pc.binary_join_element_wise(pa.array(sign), whole, ".", frac, "")
    else:
        text = pc.binary_join_element_wise(pa.array(sign), whole, "")
    return pc.if_else(pa.array(missing), pa.scalar("", pa.string()), text)


def scores_table(ev) -> pa.Table:
    """scores.csv as text columns, sorted by credit code."""
    s = ev.scores
    d = ev.policy.groups["policy"]["scoring"]["decimals"]
    codes = arrow_text(s["credit_code"])
    order = pc.sort_indices(codes)
    cols = {"credit_code": codes,
            "year": pa.array(s["year"].astype(str).to_numpy(dtype=object), pa.string()),
            "stage": pa.array(s["stage"].to_numpy(dtype=object), pa.string()),
            "excluded": pa.array(np.where(s["excluded"], "true", "false")),
            "exclusion_clauses": pa.array(s["exclusion_clauses"], pa.string())}
    for col in SCORE_COLUMNS[5:13]:
        cols[col] = fixed(s[col], d)
    for col in ("rank_in_stage", "rank_overall"):
        cols[col] = fixed(s[col], 0)
    return pa.table(cols).take(order)


def awards_table(ev) -> pa.Table:
    """awards.csv (SPEC §5) as a table of text columns."""
    aw = ev.awards
    return pa.table({
        "credit_code": pa.array(aw.code, pa.string()),
        "year": pa.array(np.full(len(aw), str(ev.year), dtype=object), pa.string()),
        "clause": pa.array(aw.clause, pa.string()),
        "eligible_yuan": pc.cast(pa.array(aw.eligible), pa.string()),
        "granted_yuan": pc.cast(pa.array(aw.granted), pa.string()),
        "basis": aw.basis_text(";"),
    })


def _dump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def _num(values, digits=6):
    """Numbers as JSON text, vectorised (rounded to `digits`; integers without a point)."""
    return pc.cast(pa.array(np.round(np.asarray(values, dtype="float64"), digits)), pa.string())


def _take(fragments, pattern):
    return pa.array(fragments, type=pa.string()).take(pa.array(pattern))


def trace_header(ev) -> str:
    """The first line of trace.jsonl: the policy version and every clause in force, by id."""
    return _dump({"trace": "innopoints", "year": ev.year, "policy": ev.policy.name,
                  "policy_sha256": ev.policy.digest, "document": ev.policy.document,
                  "clauses": {c.id: {"title": c.title, "citation": c.citation}
                              for c in ev.policy.clauses_in_force(ev.year)},
                  "weights_citation": ev.policy.groups["indicators"]["weights"]["citation"],
                  "indicators": "indicators.csv: each indicator's value and points per enterprise",
                  "scoring_order": ev.policy.groups["policy"]["scoring"]["order"]}) + "\n"


_JSON_UNSAFE = re.compile(r'["\\\x00-\x1f]')


def _json_list(ct, values: pa.Array, mask=None, quote=True) -> pa.Array:
    """Per enterprise position of `ct`, a JSON list of its contracts' values."""
    if quote:
        if pc.any(pc.match_substring_regex(values, _JSON_UNSAFE.pattern)).as_py():
            values = pa.array([json.dumps(v, ensure_ascii=False) for v in values.to_pylist()], pa.string())
        else:
            values = pc.binary_join_element_wise('"', values, '"', "")
    return pc.binary_join_element_wise("[", ct.joined(values, ",", mask), "]", "")


def _reward_fragments(ev, n) -> pa.Array:
    """The rewards part of each enterprise's trace line ('[]' when it has none), built
    column-wise from the award table."""
    aw = ev.awards
    if not len(aw):
        return pa.array(np.full(n, "[]", dtype=object), pa.string())
    fact_json = pa.array([_dump(f) for f in aw.facts] + ["{}"], pa.string())
    inputs = fact_json.take(pa.array(np.where(aw.pattern >= 0, aw.pattern, len(aw.facts))))
    contract_inputs = aw.per_contract_text(lambda ct: pc.binary_join_element_wise(
        '{"contract_no":', _json_list(ct, ct.nos_arrow()),
        ',"amount_wan":', _json_list(ct, pa.array(ct.amounts, pa.string())),
        ',"yuan":', _json_list(ct, pc.cast(pa.array(ct.yuan), pa.string()), quote=False), "}", ""))
    inputs = pc.if_else(pa.array(aw.contract_pos >= 0), contract_inputs, inputs)
    basis = aw.per_contract_text(lambda ct: _json_list(ct, ct.nos_arrow(), ct.yuan >= 1), empty="[]")
    j = pc.binary_join_element_wise
    # derivations are this module's own sentences (digits, Chinese, × ÷): no JSON escaping needed
    derivation = j('"', pa.array(aw.derivation, pa.string()), '"', "")
    kind = np.where(aw.floating, "floating", "fixed")
    lines = j('{"clause":"', pa.array(aw.clause, pa.string()), '","kind":"', pa.array(kind), '","eligible_yuan":',
              pc.cast(pa.array(aw.eligible), pa.string()), ',"granted_yuan":', pc.cast(pa.array(aw.granted), pa.string()),
              ',"basis":', basis, ',"inputs":', inputs, ',"derivation":', derivation, "}", "")
    # lines of one enterprise are adjacent (sorted by code): join them per enterprise
    starts = np.flatnonzero(np.concatenate([[True], aw.row[1:] != aw.row[:-1]]))
    offsets = np.concatenate([starts, [len(aw)]]).astype(np.int32)
    per_ent = j("[", pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), lines), ","), "]", "")
    index = np.full(n, len(starts), dtype=np.int64)
    index[aw.row[starts]] = np.arange(len(starts))
    return pa.concat_arrays([per_ent, pa.array(["[]"], pa.string())]).take(pa.array(index))


TRACE_CHUNK = 200_000


def trace_array(ev, lo=0, hi=None, shared=None) -> pa.Array:
    """One JSON object per enterprise of rows lo:hi (built column-wise): every clause that
    fired with its inputs and effect, and every number of its scores.csv row with what it
    was made from. `shared` holds what all chunks use (see `_trace_shared`)."""
    shared = shared or _trace_shared(ev)
    s = ev.scores.iloc[lo:hi]
    hi = lo + len(s)
    weights = ev.policy.groups["indicators"]["weights"]
    frag = {g: text.take(pa.array(pat[lo:hi])) for g, (pat, text) in shared["fragments"].items()}
    codes = arrow_text(s["credit_code"])
    stage = pa.array(s["stage"].to_numpy(dtype=object), type=pa.string())
    st_codes = {k: i for i, k in enumerate(k for k in weights if k != "citation")}
    w_frag = _take([_dump(dict(weights[k])) for k in st_codes], pd.Series(s["stage"]).map(st_codes).to_numpy())
    excluded = s["excluded"].to_numpy(dtype=bool)
    j = pc.binary_join_element_wise
    head = j('{"credit_code":"', codes, f'","year":{ev.year},"stage":{{"clause":"STAGE","stage":"', stage,
             '","completed_years":', _num(s["completed_years"]),
             '},"history":"', pa.array(ev.history_source[lo:hi], type=pa.string()), '","excluded":',
             pa.array(np.where(excluded, "true", "false")), ',"negative_list":', frag["negative_list"], "")
    safe = ~excluded
    fs = {k: _num(np.where(safe, s[k].to_numpy(dtype="float64"), 0)) for k in
          ("tech_score", "growth_score", "aux_score", "weighted", "deductions", "decay_factor", "bonus",
           "final_score", "stage_percentile", "rank_in_stage", "rank_overall")}
    scored = j(',"decay":', frag["decay"], ',"bonus":', frag["bonus"],
               ',"scores":{"indicators":"indicators.csv","cohort_size":', _num(ev.cohort_sizes[lo:hi]),
               ',"weights":', w_frag,
               *[x for k in ("tech_score", "growth_score", "aux_score", "weighted", "deductions", "decay_factor",
                             "bonus", "final_score", "rank_in_stage", "rank_overall", "stage_percentile")
                 for x in (f',"{k}":', fs[k])], "}", "")
    middle = pc.if_else(pa.array(excluded), pa.scalar("", pa.string()), scored)
    return j(head, middle, ',"rewards":', shared["rewards"].slice(lo, hi - lo), "}", "")


def _trace_shared(ev):
    """What every chunk of the trace reads: each engine pattern's fired clauses as JSON, and
    each enterprise's rewards part."""
    return {"fragments": {g: (pat, pa.array([_dump(e) for e in entries], pa.string()))
                          for g, (pat, entries) in ev.traces.items()},
            "rewards": _reward_fragments(ev, len(ev.scores))}


def write_trace(ev, path):
    """trace.jsonl: the header line, then one line per enterprise, built and written in
    chunks of rows straight from the arrow buffers (the lines are contiguous in them)."""
    shared = _trace_shared(ev)
    with open(path, "wb") as f:
        f.write(trace_header(ev).encode("utf-8"))
        for lo in range(0, len(ev.scores), TRACE_CHUNK):
            arr = pc.binary_join_element_wise(trace_array(ev, lo, lo + TRACE_CHUNK, shared), "\n", "")
            f.write(_string_bytes(arr))


def _string_bytes(arr) -> memoryview:
    """The concatenated bytes of a null-free arrow string array."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return memoryview(b"")
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset:arr.offset + len(arr) + 1]
    return memoryview(arr.buffers()[2])[offsets[0]:offsets[-1]]


def write_plain_csv(table: pa.Table, path):
    """CSV with no quoting at all, for files that hold only codes, numbers and clause ids
    (scores.csv, awards.csv): the exact text of SPEC §5. Raises if a value would need quotes."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(quoting_style="none", include_header=False))
    with open(path, "wb") as f:
        f.write((",".join(table.column_names) + "\n").encode("utf-8"))
        f.write(sink.getvalue().to_pybytes())


def write_csv(frame: pd.DataFrame, path):
    """A frame as UTF-8 CSV, fast (missing numbers as empty cells)."""
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), str(path),
                    write_options=pacsv.WriteOptions(quoting_style="needed"))


def write_indicators(ev, path, chunk=TRACE_CHUNK):
    """indicators.csv: each indicator's value and points per enterprise, written in chunks of
    rows straight from the evaluation's matrices (no second copy of a wide table)."""
    names = ["credit_code"] + [n for c in ev.indicator_clauses for n in (f"{c.id} {c.body['key']}", f"{c.id} points")]
    codes = arrow_text(ev.scores["credit_code"])
    schema = pa.schema([("credit_code", pa.string())] + [(n, pa.float64()) for n in names[1:]])
    with pacsv.CSVWriter(str(path), schema, write_options=pacsv.WriteOptions(quoting_style="needed")) as w:
        for lo in range(0, len(ev.scores), chunk):
            hi = lo + chunk
            cols = [codes.slice(lo, hi - lo)]
            for j in range(len(ev.indicator_clauses)):
                cols.append(pa.array(ev.indicator_values[lo:hi, j], from_pandas=True))
                cols.append(pa.array(np.round(ev.indicator_points[lo:hi, j], 6)))
            w.write_table(pa.table(cols, schema=schema))


def manifest(ev, inputs: dict, extra=None) -> dict:
    """What makes a run reproducible: policy version and hash, input checksums, options."""
    m = {"program": "innopoints", "program_version": PROGRAM_VERSION,
         "policy": {"name": ev.policy.name, "document": ev.policy.document, "sha256": ev.policy.digest},
         "year": ev.year, "inputs": {k: {"file": Path(p).name, "sha256": sha256_file(p)} for k, p in inputs.items() if p},
         "budget": ev.budget.as_dict(),
         "enterprises": int(len(ev.scores)), "excluded": int(ev.scores["excluded"].sum()),
         "award_lines": len(ev.awards)}
    if extra:
        m.update(extra)
    return m


def write(ev, out_dir, inputs: dict, trace=True, timings=None):
    """Write every output file of an evaluation into `out_dir` (created if needed).
    `timings`, when a dict, receives the seconds each file took."""
    from .report import render_awards
    t = timings if timings is not None else {}
    clock = [time.perf_counter()]

    def lap(name):
        now = time.perf_counter()
        t[name] = now - clock[0]
        clock[0] = now

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".innopoints-", dir=out_dir.parent))
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            # arrow's CSV writer runs without the GIL: the wide indicator table is written
            # on the second core while this one builds the trace and the award list
            side = pool.submit(write_indicators, ev, tmp / "indicators.csv") if trace else None
            lap("write.start")
            write_plain_csv(scores_table(ev), tmp / "scores.csv")
            write_plain_csv(awards_table(ev), tmp / "awards.csv")
            lap("write.scores_awards")
            if trace:
                write_trace(ev, tmp / "trace.jsonl")
            lap("write.trace")
            (tmp / "awards.html").write_text(render_awards(ev), encoding="utf-8")
            lap("write.awards_html")
            if side is not None:
                side.result()
            lap("write.indicators_wait")
        m = manifest(ev, inputs)
        m["outputs"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        lap("write.checksums")
        (tmp / "manifest.json").write_text(json.dumps(m, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")
        out_dir.mkdir(exist_ok=True)
        for p in sorted(tmp.iterdir()):
            os.replace(p, out_dir / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
