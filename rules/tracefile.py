"""Reading an evaluation's trace back: trace.parquet + trace_header.json (or an older
trace.jsonl) as the per-enterprise objects of trace.jsonl.

trace.parquet has one row per enterprise, sorted by credit_code: `credit_code`, `year`, the
STAGE entry's typed columns (`stage_key`, `stage_row`, `stage_registered_on`,
`stage_completed_years`, `stage_input_<field>`), one JSON text per other part of the trace
line (`rules.output.TEXT_PARTS`: scope, history, excluded, exclusion_clauses, negative_list,
decay, bonus, rewards, rewards_not_paid; decay and bonus null for an excluded enterprise,
whose line has no such key), the score columns (`scores_cohort_size`, `scores_<column of
scores.csv>`, `scores_stage_percentile`; null for an excluded enterprise) and, for each rate
clause with a line that year, its contracts (`contracts_<clause id>_*`: lists per row of
number, kind, counted, amount, rate reward and reward, and the line's totals; null where the
row has no such line). The `stage` and `scores` parts are worded from their columns when
read, by trace_header.json's `render` (`rules.output.stage_part`, `scores_part`): writing them
as text cost a million-enterprise evaluation seconds, to restate numbers the columns hold.
The `rewards` text of a row with a rate clause's line holds slots (`rules.output.contract_slot`)
where the line lists its contracts, filled from the contract columns and `render.rewards`
(`rules.output.fill_contract_slots`): until then it is not JSON.
Entries name their clause id only: the title and citation of every clause in force are in
trace_header.json's `clauses`, and `expand` puts them back after the id. The one entry whose
clause is not in the header (the scores' `explain`, clause IND) keeps its own.

    line = {"credit_code": …, "year": …, part: json.loads(text) for each non-null part}
    (rewards: its slots filled first), expand(line, header) == the enterprise's trace.jsonl line

`compact_lines` joins a table's parts into one JSON text per row (the service stores it per
enterprise); `read_trace` reads one or a few enterprises by row-group statistics, or all.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TRACE_FILE = "trace.parquet"
HEADER_FILE = "trace_header.json"
LEGACY_FILE = "trace.jsonl"
PARTS = ("stage", "scope", "history", "excluded", "exclusion_clauses", "negative_list", "decay", "bonus",
         "scores", "rewards", "rewards_not_paid")
LIST_PARTS = ("scope", "negative_list", "decay", "bonus", "rewards", "rewards_not_paid")


def locate(path) -> Path:
    """The trace file of an OUT folder (trace.parquet, else trace.jsonl), or `path` itself."""
    path = Path(path)
    if path.is_dir():
        for name in (TRACE_FILE, LEGACY_FILE):
            if (path / name).exists():
                return path / name
        raise FileNotFoundError(f"no {TRACE_FILE} or {LEGACY_FILE} in {path}")
    return path


def read_header(path) -> dict:
    """The trace header: trace_header.json beside trace.parquet, or trace.jsonl's first line."""
    f = locate(path)
    if f.suffix == ".jsonl":
        with open(f, encoding="utf-8") as fh:
            return json.loads(fh.readline())
    return json.loads((f.parent / HEADER_FILE).read_text(encoding="utf-8"))


def expand_entry(entry, clauses: dict):
    """An entry with the title and citation of its clause put back after the id (from the
    header's `clauses`); an entry that has a title, or names no clause of the header, as is."""
    if not isinstance(entry, dict) or "title" in entry:
        return entry
    c = clauses.get(entry.get("clause"))
    if c is None:
        return entry
    out = {"clause": entry["clause"], "title": c.get("title", ""), "citation": c.get("citation", "")}
    out.update((k, v) for k, v in entry.items() if k != "clause")
    return out


def expand(line, header: dict | None) -> dict:
    """One enterprise's trace object (a dict or its JSON text), compact or full, as the full
    trace.jsonl line: every entry with its clause's title and citation. Full lines (runs
    stored before trace.parquet) come back unchanged."""
    if isinstance(line, (str, bytes)):
        line = json.loads(line)
    clauses = (header or {}).get("clauses") or {}
    if not clauses or not isinstance(line, dict):
        return line
    if "stage" in line:
        line["stage"] = expand_entry(line["stage"], clauses)
    for part in LIST_PARTS:
        if isinstance(line.get(part), list):
            line[part] = [expand_entry(e, clauses) for e in line[part]]
    h = line.get("history")
    if isinstance(h, dict) and isinstance(h.get("entries"), list):
        h["entries"] = [expand_entry(e, clauses) for e in h["entries"]]
    sc = line.get("scores")
    if isinstance(sc, dict) and "explain" in sc:
        sc["explain"] = expand_entry(sc["explain"], clauses)
    return line


def compact_lines(table: pa.Table, header: dict) -> pa.Array:
    """Each row of trace.parquet as one JSON object (trace.jsonl's key order, without the
    titles and citations the header holds), joined column-wise. The `stage` and `scores`
    parts are worded from their typed columns by the header's `render`."""
    from .output import fill_contract_slots, scores_part, stage_part, text_column
    from .records import one_array
    j = pc.binary_join_element_wise
    spec = header.get("render")
    if spec is None:
        raise ValueError("trace.parquet's stage and score columns are worded by trace_header.json's `render`, "
                         "which this header lacks")
    c = {name: text_column(table.column(name)) for name in table.column_names
         if name in PARTS or name == "credit_code"}
    typed = {name: table.column(name) for name in table.column_names if name.startswith(("stage_", "scores_"))}
    c["stage"] = stage_part(typed, spec, full=False)
    c["scores"] = scores_part(typed, spec)
    # a rate clause's contracts are columns of their own, worded into the rewards part's slots
    c["rewards"] = fill_contract_slots(c["rewards"], {name: table.column(name) for name in table.column_names
                                                      if name.startswith("contracts_")}, spec)
    pieces = ['{"credit_code":"', c["credit_code"], '","year":', pc.cast(table.column("year"), pa.string())]
    for p in PARTS:
        if p in ("decay", "bonus", "scores"):
            pieces.append(j(f',"{p}":', c[p], ""))          # null (no key) for an excluded enterprise
        else:
            pieces += [f',"{p}":', c[p]]
    out = j(*pieces, "}", "", null_handling="replace", null_replacement="")
    return one_array(out)


def read_table(path, codes=None) -> pa.Table:
    """trace.parquet's rows (all, or those of `codes`: row groups are skipped by their
    credit_code statistics)."""
    return _rows_of(locate(path), codes)


def _rows_of(f, codes=None) -> pa.Table:
    """A Parquet file's rows sorted by credit_code: all, or those of `codes` (row groups
    skipped by their statistics)."""
    if codes is None:
        return pq.read_table(f)
    codes = sorted(set(codes))
    if not codes:
        return pq.read_schema(f).empty_table()
    return pq.read_table(f, filters=[("credit_code", "in", codes)])


def read_trace(path, codes=None) -> list[dict]:
    """The per-enterprise objects of a trace (an OUT folder, trace.parquet or trace.jsonl),
    all or those of `codes`, in credit-code order, exactly as trace.jsonl's lines."""
    f = locate(path)
    header = read_header(f)
    if f.suffix == ".jsonl":
        wanted = None if codes is None else set(codes)
        out = []
        with open(f, encoding="utf-8") as fh:
            fh.readline()
            for raw in fh:
                if wanted is not None and raw[16:16 + 40].split('"', 1)[0] not in wanted:
                    continue
                out.append(expand(raw, header))
        return out
    return [expand(x, header) for x in compact_lines(read_table(f, codes), header).to_pylist()]


def read_indicators(path, codes=None) -> dict:
    """Each indicator's value and points per enterprise, from the indicators file written with
    a trace (indicators.parquet beside trace.parquet, indicators.csv beside trace.jsonl; an OUT
    folder's trace as `locate` finds it), all enterprises or those of `codes`: {credit code:
    {clause id: [value or None, points]}}, in the file's column order. Row groups of
    indicators.parquet are skipped by their credit_code statistics."""
    from .output import INDICATORS_CSV, INDICATORS_FILE
    trace = locate(path)
    f = trace.parent / (INDICATORS_CSV if trace.suffix == ".jsonl" else INDICATORS_FILE)
    if not f.exists():
        raise FileNotFoundError(f"no {f.name} beside {trace.name} in {trace.parent}")
    if f.suffix == ".csv":
        import pyarrow.csv as pacsv
        table = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(column_types={"credit_code": pa.string()}))
        if codes is not None:
            table = table.filter(pc.is_in(table.column("credit_code"), pa.array(sorted(set(codes)), pa.string())))
    else:
        table = _rows_of(f, codes)
    names = table.column_names[1:]
    ids = [n.split(" ", 1)[0] for n in names[0::2]]
    cols = [table.column(n).cast(pa.float64()).to_pylist() for n in names]
    return {code: {cid: [cols[2 * k][i], cols[2 * k + 1][i]] for k, cid in enumerate(ids)}
            for i, code in enumerate(table.column("credit_code").to_pylist())}
