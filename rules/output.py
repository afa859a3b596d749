"""Writing an evaluation as files (SPEC §5): scores.csv, awards.csv, the trace
(trace.parquet + trace_header.json and indicators.parquet, or trace.jsonl and indicators.csv),
manifest.json and the printable award list awards.html.

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
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .records import arrow_text, first_rows, one_array

NUMBER_COLUMNS = ["weighted", "deductions", "decay_factor", "bonus", "final_score"]
# each indicator's value and points per enterprise: beside trace.parquet, and beside trace.jsonl
INDICATORS_FILE, INDICATORS_CSV = "indicators.parquet", "indicators.csv"


def category_columns(policy) -> list:
    """The category score columns of scores.csv: `<category key>_score`, in the package's
    order (indicators.yaml `categories`)."""
    return [f"{k}_score" for k in policy.categories()]


def trace_numbers(policy) -> list:
    """The numbers of a scores.csv row the trace's `scores` part states, with the stage percentile."""
    return category_columns(policy) + NUMBER_COLUMNS + ["rank_in_stage", "rank_overall", "stage_percentile"]


def score_columns(policy) -> list:
    """The columns of scores.csv (SPEC §5), the category columns following the package."""
    return (["credit_code", "year", "stage", "excluded", "exclusion_clauses"] + category_columns(policy)
            + NUMBER_COLUMNS + ["rank_in_stage", "rank_overall"])
PROGRAM_VERSION = "0.4.0"


def sha256_file(path, stop=None) -> str:
    """A file's sha256. `stop` (a threading.Event): set, the hashing gives up (CancelledError)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            if stop is not None and stop.is_set():
                raise CancelledError(f"hashing {path} stopped")
            h.update(block)
    return h.hexdigest()


def fixed(values, decimals) -> pa.Array:
    """Numbers as text with exactly `decimals` decimals, half up ('' for NaN), vectorised with
    integer arithmetic (the values are already rounded to `decimals`): the whole part and the
    zero-padded decimals of each value's integer in units of the last decimal, as arrow
    formats integers (twice as fast as laying the characters out in numpy, seven times for
    ranks)."""
    v = np.asarray(values, dtype="float64")
    missing = np.isnan(v)
    scaled = np.rint(np.nan_to_num(v) * 10 ** decimals).astype(np.int64)
    neg = scaled < 0
    mag = np.abs(scaled)
    if decimals:
        unit = 10 ** decimals
        text = j(pc.cast(pa.array(mag // unit), pa.string()), ".",
                 pc.utf8_lpad(pc.cast(pa.array(mag % unit), pa.string()), width=decimals, padding="0"), "")
    else:
        text = pc.cast(pa.array(mag), pa.string())
    if neg.any():
        text = pc.if_else(pa.array(neg), j("-", text, ""), text)
    if missing.any():
        text = pc.if_else(pa.array(missing), pa.scalar("", pa.string()), text)
    return text


def code_order(ev) -> np.ndarray:
    """The positions of the evaluation's rows in credit-code order (every file is sorted so):
    the evaluation's own (`by_code`, sorted beside its engine), or sorted here."""
    if getattr(ev, "by_code", None) is not None and len(ev.by_code) == len(ev.scores):
        return ev.by_code
    return pc.sort_indices(arrow_text(ev.scores["credit_code"])).to_numpy()


def scores_table(ev, order=None) -> pa.Table:
    """scores.csv as text columns, sorted by credit code (`order`, `code_order(ev)`, when the
    caller has it). The numbers are taken into order before they are formatted: taking the
    text afterwards moved every cell of the table twice (0.9 s of a million enterprises' 1.5)."""
    table, = scores_tables(ev, code_order(ev) if order is None else order)
    return table


SCORES_CHUNK = 1 << 17     # rows of scores.csv formatted at a time


def scores_tables(ev, order, chunk=None):
    """scores.csv's rows in tables of `chunk` rows (all in one by default), in the order
    `order`: written one after another, a million enterprises' file never exists whole as text
    (about 0.3 GB at the writing's peak of memory)."""
    s = ev.scores
    text = {k: arrow_text(s[k]) for k in ("credit_code", "stage", "exclusion_clauses")}   # once, not per table
    excluded, years = s["excluded"].to_numpy(), s["year"].to_numpy()
    chunk = chunk or max(len(order), 1)
    # the number columns on both cores (numpy and arrow let go of the GIL)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for lo in range(0, max(len(order), 1), chunk):
            idx = order[lo:lo + chunk]
            year = years[idx]
            cols = {"credit_code": text["credit_code"].take(idx),
                    "year": pc.cast(pa.array(year), pa.string()) if year.dtype.kind in "iu"
                    else pa.array(year.astype(str).astype(object), pa.string()),
                    # text columns taken as arrow text (no Python string per row)
                    "stage": text["stage"].take(idx),
                    "excluded": pa.array(np.where(excluded[idx], "true", "false")),
                    "exclusion_clauses": text["exclusion_clauses"].take(idx)}
            cols.update(fixed_columns(ev, idx, pool))
            yield pa.table(cols)


def fixed_columns(ev, idx, pool=None) -> dict:
    """scores.csv's number columns as text (`fixed`), rows in the order `idx`. With `pool`,
    the columns are formatted on its threads. (They were kept on `ev` while every file was
    written, for a trace that said the same figures in text; trace.parquet holds them as
    numbers, and at 1M the kept text was about 0.1 GB of the trace's peak.)"""
    s = ev.scores
    d = ev.policy.groups["policy"]["scoring"]["decimals"]
    numbers = [(col, d) for col in category_columns(ev.policy) + NUMBER_COLUMNS] \
        + [(col, 0) for col in ("rank_in_stage", "rank_overall")]
    fmt = (pool.map if pool is not None else map)(
        lambda cd: fixed(s[cd[0]].to_numpy(dtype="float64")[idx], cd[1]), numbers)
    return dict(zip([c for c, _ in numbers], fmt))


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


def _codes(values, mapping: dict, default=0) -> np.ndarray:
    """mapping[value] per value (default for others and missing ones), through the distinct
    values (a pandas map over arrow strings costs ~20 ms per 100k)."""
    codes, uniq = pd.factorize(values if isinstance(values, pd.Series) else np.asarray(values, dtype=object))
    lut = np.array([mapping.get(u, default) for u in uniq] + [default], dtype=np.int64)
    return lut[codes]


def trace_header(ev, render=False) -> str:
    """The first line of trace.jsonl: the policy version and every clause in force, by id;
    with `render` (trace_header.json), what words trace.parquet's typed columns (`render_spec`)."""
    cats = ev.policy.groups["indicators"].get("categories") or {}
    return _dump({"trace": "innopoints", "year": ev.year, "policy": ev.policy.name,
                  "policy_sha256": ev.policy.digest, "document": ev.policy.document,
                  "title": ev.policy.title,
                  "reference_date": ev.policy.reference_date(ev.year).isoformat(),
                  "clauses": {c.id: {"title": c.title, "citation": c.citation,
                                     **({"category": c.body["category"]} if c.group == "indicators" else {})}
                              for c in ev.policy.clauses_in_force(ev.year)},
                  "stages": dict(ev.policy.data.stages),
                  "categories": {k: {"title": v.get("title", k), "citation": v.get("citation", "")}
                                 for k, v in cats.items()},
                  "weights_citation": ev.policy.groups["indicators"]["weights"]["citation"],
                  "indicators": f"{INDICATORS_FILE if render else INDICATORS_CSV}: each indicator's value and points "
                                "per enterprise",
                  "scoring_order": ev.policy.groups["policy"]["scoring"]["order"],
                  **({"render": render_spec(ev)} if render else {})}) + "\n"


_JSON_UNSAFE = re.compile(r'["\\\x00-\x1f]')
j = pc.binary_join_element_wise


def _s(values) -> pa.Array:
    return pa.array(values, pa.string()) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values


def _json_unsafe(arr) -> bool:
    """Whether any value holds a quote, a backslash or a control character: a scan of the
    bytes (UTF-8 continuation bytes are all >= 0x80), much faster than a regex per value."""
    if arr.null_count:
        return pc.any(pc.match_substring_regex(arr, _JSON_UNSAFE.pattern)).as_py() or False
    b = np.frombuffer(_string_bytes(arr), dtype=np.uint8)
    return bool(len(b)) and bool((b < 0x20).any() or (b == 0x22).any() or (b == 0x5C).any())


def json_text(arr: pa.Array) -> pa.Array:
    """Text values as JSON strings (quoted, escaped where needed), column-wise; a null stays
    null."""
    arr = _s(arr)
    if _json_unsafe(arr):
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in arr.to_pylist()],
                        pa.string())
    return j('"', arr, '"', "")


def _json_list(ct, values: pa.Array, mask=None, quote=True) -> pa.Array:
    """Per enterprise position of `ct`, a JSON list of its contracts' values."""
    if quote:
        values = json_text(values)
    return j("[", ct.joined(values, ",", mask), "]", "")


def _entry_head(clause, full=True) -> str:
    """The start of a JSON trace entry naming a clause: id, title, citation (`full`), or the
    id alone (trace.parquet: the header's `clauses` hold every title and citation)."""
    if not full:
        return _dump({"clause": clause.id})[:-1]
    return _dump({"clause": clause.id, "title": clause.title, "citation": clause.citation})[:-1]


def _compact(entry, clauses) -> dict:
    """A trace entry without the title and citation its clause has in the header, so that
    the header puts them back (`rules.tracefile.expand_entry`); an entry whose title or
    citation differ from the header's keeps them."""
    c = clauses.get(entry.get("clause")) if isinstance(entry, dict) else None
    if c is None or entry.get("title") != c["title"] or entry.get("citation") != c["citation"]:
        return entry
    return {k: v for k, v in entry.items() if k not in ("title", "citation")}


def _yuan(values) -> pa.Array:
    """Yuan with thousands separators (formatted once per distinct amount)."""
    codes, uniq = pd.factorize(np.asarray(values).astype(np.int64))
    return pa.array([f"{int(x):,}" for x in uniq.tolist()], pa.string()).take(pa.array(codes))


def _reward_fragments(ev, n) -> pa.Array:
    """The rewards part of each enterprise's trace line, one text per row (trace.jsonl)."""
    index, texts = _reward_parts(ev, n)
    return one_array(texts.take(pa.array(index)))


def _reward_parts(ev, n, full=True, slots=False):
    """The rewards part of each enterprise's trace line ('[]' when it has none), built
    column-wise from the award table: each line names its clause, title and citation, the
    inputs it read (for RW-5 every contract: number, kind, amount, 1%, after the cap, whether
    its kind counts), how the budget derived the granted amount, and says all that in Chinese.
    With `slots` (trace.parquet), what a rate clause's line lists per contract (its inputs, its
    basis and its sentences about the contracts) is left as a slot (`contract_slot`), filled
    when read from the row's contract columns (`contract_columns`, `fill_contract_slots`): at a
    million enterprises those texts were most of the trace's writing."""
    aw = ev.awards
    if not len(aw):
        return np.zeros(n, dtype=np.int32), pa.array(["[]"], pa.string())
    clauses = {c.id: c for c in ev.policy.clauses_for("rewards", ev.year)}
    ids = list(clauses)
    which = pa.array(_codes(aw.clause, {cid: i for i, cid in enumerate(ids)}))
    heads = pa.array([_entry_head(clauses[c], full) for c in ids], pa.string())       # taken by `which`
    fact_json = pa.array([_dump(f) for f in aw.facts] + ["{}"], pa.string())
    inputs = fact_json.take(pa.array(np.where(aw.pattern >= 0, aw.pattern, len(aw.facts))))
    if slots:
        pieces = {cid: {p: contract_slot(k, p) for p in CONTRACT_PIECES} for k, cid in enumerate(aw.contracts)}
    else:
        pieces = {cid: contract_pieces(ct, contract_words(ev.policy.data, clauses[cid]))
                  for cid, ct in aw.contracts.items()}
    inputs = aw.per_contract_text(lambda cid, ct: pieces[cid]["inputs"], inputs)
    del fact_json
    basis = aw.per_contract_text(lambda cid, ct: pieces[cid]["basis"], "[]")
    contract_text = aw.per_contract_text(lambda cid, ct: pieces[cid]["text"])
    del pieces
    # lines of one enterprise are adjacent (sorted by code): each enterprise's are joined
    starts = np.flatnonzero(np.concatenate([[True], aw.row[1:] != aw.row[:-1]]))
    bounds = np.concatenate([starts, [len(aw)]])
    # the texts are built REWARD_CHUNK enterprises at a time: at a million enterprises the
    # award texts are about 140 MB, and whole columns of their pieces and of the joined lines
    # took half a gigabyte more at the trace's peak of memory (the pieces above are short)
    per_ent = [_reward_lines(aw, full, slots, heads, which, basis, inputs, contract_text, bounds[k:k + REWARD_CHUNK + 1])
               for k in range(0, len(starts), REWARD_CHUNK)]
    index = np.full(n, len(starts), dtype=np.int32)
    index[aw.row[starts]] = np.arange(len(starts))
    return index, pa.chunked_array(per_ent + [pa.array(["[]"], pa.string())], pa.string())


REWARD_CHUNK = 1 << 16      # enterprises whose award texts `_reward_parts` builds at a time


def _reward_lines(aw, full, slots, heads, which, basis, inputs, contract_text, bounds) -> pa.Array:
    """The rewards parts of the enterprises whose award lines start at `bounds[:-1]` (the last
    one's end at `bounds[-1]`): each one's lines as JSON, joined in a list."""
    a, b = int(bounds[0]), int(bounds[-1])
    derivation = pa.array(aw.derivation[a:b], pa.string())
    floating = aw.floating[a:b]
    kind_zh = pa.array(np.where(floating, "浮动奖励", "固定奖励"))
    said = j(kind_zh, "：核定 ", _yuan(aw.eligible[a:b]), " 元，拨付 ", _yuan(aw.granted[a:b]), " 元。", "")
    if slots:       # JSON escapes character by character: the text's pieces are escaped apart
        text = j('"', j(_json_inner(said), contract_text.slice(a, b - a), _json_inner(derivation), ""), '"', "")
    else:
        text = json_text(j(said, contract_text.slice(a, b - a), derivation, ""))
    lines = j(heads.take(which.slice(a, b - a)), ',"kind":"', pa.array(np.where(floating, "floating", "fixed")),
              '","eligible_yuan":', pc.cast(pa.array(aw.eligible[a:b]), pa.string()),
              ',"granted_yuan":', pc.cast(pa.array(aw.granted[a:b]), pa.string()),
              ',"basis":', basis.slice(a, b - a), ',"inputs":', inputs.slice(a, b - a),
              ',"derivation":', json_text(derivation), ',"text":', text, "}", "")
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array((bounds - a).astype(np.int32)), lines), ",")
    return j("[", joined, "]", "")


def _json_inner(arr) -> pa.Array:
    """`json_text` without its quotes: JSON escapes a text character by character, so the
    escaped pieces of a text joined are the escaped text."""
    return pc.utf8_slice_codeunits(json_text(arr), 1, -1)


CONTRACT_PIECES = ("inputs", "basis", "text")      # what a rate clause's line lists per contract


def contract_slot(k: int, piece: str) -> str:
    """Where trace.parquet's rewards part leaves out `piece` of the k-th rate clause's line (k:
    its place in the header's render `rewards.contracts`). U+0001 is never in JSON text as
    written (a control character is escaped), so a slot cannot be mistaken for data."""
    return f"\x01{k}:{piece}\x01"


def contract_words(data, clause) -> dict:
    """What a rate clause's sentences about its contracts need besides the contracts: the
    rate and caps as said, the counted kinds in words and every kind's label (trace_header.json
    `render.rewards`: the reader words the contracts with them)."""
    from .rewards import kind_names
    eff = clause.effect
    return {"rate": f"{float(eff['contract_rate']) * 100:g}%",
            "per_contract_cap": f"{eff.get('per_contract_cap', 0):,}",
            "per_enterprise_cap": f"{eff.get('per_enterprise_cap') or 0:,}",
            "kinds": kind_names(data, eff.get("kinds") or []),
            "kind_labels": dict(data.contract_kinds)}


def contract_pieces(ct, words: dict) -> dict:
    """Per enterprise position of a rate clause's ContractTotals: its line's `inputs` (each
    contract's number, kind, whether it counts, amount, rate reward and reward, the totals), its
    `basis` (the numbers paid at least one yuan) as JSON, and its `text` about the contracts."""
    return {"inputs": j('{"contract_no":', _json_list(ct, ct.nos_arrow()),
                        ',"kind":', _json_list(ct, pa.array(ct.kinds, pa.string())),
                        ',"counted":', _json_list(ct, pa.array(np.where(ct.counted, "true", "false")), quote=False),
                        ',"amount_wan":', _json_list(ct, pa.array(ct.amounts, pa.string())),
                        ',"rate_yuan":', _json_list(ct, pc.cast(pa.array(ct.raw), pa.string()), quote=False),
                        ',"yuan":', _json_list(ct, pc.cast(pa.array(ct.yuan), pa.string()), quote=False),
                        ',"total_before_cap":', pc.cast(pa.array(ct.total_before), pa.string()),
                        ',"total":', pc.cast(pa.array(ct.total), pa.string()), "}", ""),
            "basis": _json_list(ct, ct.nos_arrow(), ct.yuan >= 1),
            "text": _contract_sentences(ct, words)}


def _contract_sentences(ct, words: dict) -> pa.Array:
    """A rate clause's contracts (RW-5's) in words per enterprise, with that clause's `words`
    (`contract_words`): how many contracts count, each one's rate reward and cap, the total
    before and after the per-enterprise cap, and the contracts whose kind does not count."""
    labels = words["kind_labels"]
    codes, kinds = pd.factorize(np.asarray(ct.kinds, dtype=object))
    kind_zh = pa.array([labels.get(k, k) for k in kinds], pa.string()).take(pa.array(codes))
    each = j(ct.nos_arrow(), "（", kind_zh, " ",
             pa.array(ct.amounts, pa.string()), f" 万元 × {words['rate']} = ", _yuan(ct.raw), " 元",
             pa.array(np.where(ct.raw > ct.yuan, f"，按每项上限 {words['per_contract_cap']} 元计", ""), pa.string()),
             "）", "")
    counted = ct.joined(each, "；", ct.counted)
    capped = pa.array(np.where(ct.total < ct.total_before, f"，超过每个单位上限，按 {words['per_enterprise_cap']} 元核定", ""),
                      pa.string())
    head = j("计奖合同 ", pc.cast(pa.array(ct.n_counted), pa.string()), " 项：", counted, "；合计 ",
             _yuan(ct.total_before), " 元", capped, "。", "")
    not_counted = ct.joined(each, "；", ~ct.counted)
    tail = pc.if_else(pc.equal(not_counted, ""), "",
                      j(f"不属于本条款计奖类别（{words['kinds']}）、不计奖的合同：", not_counted, "。", ""))
    return j(head, tail, "")


def render_spec(ev, indicators=None) -> dict:
    """What turns trace.parquet's typed STAGE and score columns into the text of the trace's
    `stage` and `scores` parts, from the policy version (trace_header.json's `render`): the
    STAGE table's rows in words, the stages' names, the fields the rows read with their labels
    and units, the reference date; the weights per stage, the categories, the decimals and the
    order of the final score's steps, the IND entry's title and citation, the file that holds
    each indicator's value and points (`indicators`: indicators.parquet by default) and which
    of those values are yes/no."""
    from .explain import wording
    from .stage import row_fields
    data = ev.policy.data
    w = wording(data)
    c = ev.policy.clause("STAGE", ev.year)

    def row_text(r):
        conds = []
        if "when" in r:
            conds.append(w.describe(r["when"]))
        if "registered_within_years" in r:
            conds.append(f"第{r['registered_within_years']}个注册周年日在基准日当天或之后")
        return f"{'且'.join(conds) or '其余情形'} → {data.stage_name(r['stage'])}"
    weights = ev.policy.groups["indicators"]["weights"]
    cats = ev.policy.groups["indicators"].get("categories") or {}
    kinds = {f.key: f.kind for f in data.record_fields}
    return {
        "stage": {"clause": c.id, "title": c.title, "citation": c.citation,
                  "rows": [""] + [row_text(r) for r in c.body["rows"]],
                  "stages": [[k, v] for k, v in data.stages.items()],
                  "inputs": [[f, w.label(f), data.field(f).unit or ""] for f in row_fields(c)],
                  "reference_date": ev.policy.reference_date(ev.year).isoformat()},
        "scores": {"indicators": indicators or INDICATORS_FILE,
                   # the indicators whose value is yes/no (1/0 in the indicators file)
                   "yes_no": [c.id for c in ev.indicator_clauses if kinds.get(c.body["key"]) == "bool"],
                   "weights": [[k, dict(weights[k])] for k in weights if k != "citation"],
                   "categories": [[k, cats.get(k, {}).get("title", k), col]
                                  for k, col in zip(cats, category_columns(ev.policy))],
                   "numbers": trace_numbers(ev.policy),
                   "decimals": ev.policy.groups["policy"]["scoring"]["decimals"],
                   "order": "、".join({"deductions": "扣分（不低于0）", "decay": "乘衰减系数", "bonus": "加附加分"}[x]
                                     for x in ev.policy.groups["policy"]["scoring"]["order"]),
                   "explain": {"clause": "IND", "title": "指标积分、类别权重与最终得分",
                               "citation": weights.get("citation", "")}},
        # the rate clauses whose lines list contracts, in the order their slots are numbered
        "rewards": {"contracts": [[cid, contract_words(data, ev.policy.clause(cid, ev.year))]
                                  for cid in ev.awards.contracts]}}


def stage_columns(ev, rows) -> dict:
    """trace.parquet's STAGE columns of `rows` (positions): the stage, the 表1 row that matched, the
    registration date, the completed years and the fields the rows read (numbers as numbers,
    other values in words)."""
    from .explain import wording
    from .stage import row_fields
    w = wording(ev.policy.data)
    fields = row_fields(ev.policy.clause("STAGE", ev.year))
    # the columns read, taken (a row group is not a slice of the rows: they are in code order)
    s = ev.scores[["stage", "registered_on", "completed_years", *[f"stage_input:{f}" for f in fields]]].iloc[rows]
    cols = {"stage_key": pa.array(s["stage"].to_numpy(dtype=object), pa.string()),
            "stage_row": pa.array(np.asarray(ev.stage_rows[rows], dtype=np.int32)),
            "stage_registered_on": pa.array(pd.DatetimeIndex(s["registered_on"]).to_numpy().astype("datetime64[D]")),
            "stage_completed_years": pa.array(s["completed_years"].to_numpy(dtype="float64"))}
    for f in fields:
        col = s[f"stage_input:{f}"]
        cols[f"stage_input_{f}"] = (pa.array(col.to_numpy(dtype="float64")) if col.dtype.kind == "f" else
                                    pa.array(col.astype(object).map(lambda x: w.value_text(f, x)), pa.string()))
    return cols


def stage_part(cols, spec: dict, full=True) -> pa.Array:
    """The `stage` part of each row (JSON text) from its STAGE columns (`stage_columns`, or
    trace.parquet's) and the header's `render`: the fields its rows read, registration date,
    completed years, the row of the STAGE table that matched, and the sentence."""
    sp = spec["stage"]
    row_texts = pa.array(sp["rows"], pa.string())
    matched = cols["stage_row"]
    stage = text_column(cols["stage_key"])
    stage_zh = pa.array([zh for _, zh in sp["stages"]], pa.string()).take(
        pa.array(_codes(stage.to_numpy(zero_copy_only=False), {k: i for i, (k, _) in enumerate(sp["stages"])})))
    said, inputs = [], []
    for f, label, unit in sp["inputs"]:
        col = cols[f"stage_input_{f}"]
        number = pa.types.is_floating(col.type)
        v = _num(col.to_numpy(zero_copy_only=False)) if number else text_column(col)
        said += [f"{label} ", v, f" {unit}，" if unit else "，"]
        inputs += [f'{"," if inputs else ""}"{f}":', v if number else json_text(v)]
    reg = pc.strftime(pc.cast(cols["stage_registered_on"], pa.timestamp("s")), "%Y-%m-%d")
    years = _num(cols["stage_completed_years"].to_numpy(zero_copy_only=False))
    row = pc.cast(matched, pa.string())
    text = j(*said, "注册成立日期 ", reg, "，截至基准日 ", sp["reference_date"], " 注册满 ", years,
             " 周年；按表1分类第 ", row, " 行（", row_texts.take(matched), "），为", stage_zh, "")
    head = {"clause": sp["clause"], **({"title": sp["title"], "citation": sp["citation"]} if full else {})}
    return j(_dump(head)[:-1], ',"stage":"', stage, '","inputs":{', *inputs,
             '},"registered_on":"', reg, '","completed_years":', years, ',"row":', row,
             ',"text":', json_text(text), "}", "")


def text_column(col) -> pa.Array:
    """A text column (plain or dictionary-encoded, one chunk or several) as one string array."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return pc.cast(col, pa.string()) if pa.types.is_dictionary(col.type) else col


def _history_fragments(ev, rows, full=True) -> pa.Array:
    """The history entries of each enterprise (SPEC §2.4): the previous stages by name and
    where they came from (DEC-3), each history run the clauses read (its first year or its
    length, and its source), and "history may be incomplete" where a run reaches the earliest
    record and no field extends it. One JSON object per enterprise of `rows` (a slice or an
    index array)."""
    data = ev.policy.data
    h = ev.history
    y = ev.year
    readers = _readers(ev, full)
    names = list(data.stages.values())

    def stage_name(levels):
        return pa.array([names[int(v) - 1] if v == v else "未知" for v in levels], pa.string())

    sl = rows
    source = pa.array(h.source[sl], pa.string())
    entries = []
    dec3 = readers.get("level_drop")
    if dec3:
        prev_labels = "、".join(data.field(f).label for f in data.previous_stages)
        prev = j(f"上年（{y - 1}）阶段：", stage_name(h.prev1[sl]), f"，前年（{y - 2}）阶段：", stage_name(h.prev2[sl]), "")
        src = pa.array(np.where(h.source[sl] == "records", "（据各年记录）",
                                np.where(h.source[sl] == "fields", f"（没有上年记录，据本年记录填报的{prev_labels}）", "")))
        none_text = f"没有 {y - 1} 年的记录，也未填报上一年度发展阶段：无法判断降档，不适用降档衰减"
        text = pc.if_else(pc.equal(source, "none"), none_text, j(prev, src, ""))
        entries.append(j(dec3, ',"topic":"previous_stages","source":"', source, '","text":', json_text(text), "}", ""))
    for r in data.runs:
        head = readers.get(r.key)
        if not head:
            continue
        st = h.runs[r.key]
        src = st.source[sl]
        ext = data.field(r.extend_field) if r.extend_field else None
        ext_label = f"“{ext.label}”" if ext else ""
        what = data.stage_name(r.member[1]) if r.member[0] == "stage" else f"“{data.field(r.member[0]).label}”为是"
        first = pc.cast(pa.array(np.nan_to_num(st.first_year[sl]).astype(np.int64)), pa.string())
        n = pc.cast(pa.array(np.nan_to_num(st.length[sl]).astype(np.int64)), pa.string())
        how = pa.array(np.where(src == r.extend_field, f"（连续期开始前一年没有记录，据本年记录填报的{ext_label}向前延伸）",
                                "（据各年记录）"), pa.string())
        open_ = pa.array(np.where(st.open[sl], f"；该连续期延伸到最早的记录，此前没有记录，也没有填报的{ext_label or '延伸字段'}，"
                                               "历史可能不完整", ""), pa.string())
        if r.value == "years_since_start":
            since = pc.cast(pa.array(y - np.nan_to_num(st.first_year[sl]).astype(np.int64)), pa.string())
            text = j(f"当前连续{what}自 ", first, " 年起", how, "，评价年度减首个年度为 ", since, " 年", open_, "")
        else:
            text = j(f"截至评价年度{r.label} ", n, " 年", how, open_, "")
        e = j(head, f',"topic":"run","run":"{r.key}","source":"', pa.array(src, pa.string()), '","first_year":', first,
              ',"years":', n, ',"may_be_incomplete":', pa.array(np.where(st.open[sl], "true", "false")),
              ',"text":', json_text(text), "}", "")
        entries.append(pc.if_else(pa.array(src != ""), e, ""))
    entries += _status_entries(ev, rows, full)
    listed = pa.array(np.full(len(source), "", dtype=object), pa.string())
    for e in entries:
        listed = pc.if_else(pc.equal(e, ""), listed, pc.if_else(pc.equal(listed, ""), e, j(listed, ",", e, "")))
    return j('{"source":"', source, '","entries":[', listed, "]}", "")


def _readers(ev, full=True) -> dict:
    """For the history facts, the head of a trace entry naming the clause that reads them."""
    from .clauses import condition_fields
    out = {}
    for field in ["level_drop"] + [r.key for r in ev.policy.data.runs]:
        cs = [c for g in ("decay", "rewards", "negative_list", "bonus", "scope")
              for c in ev.policy.clauses_for(g, ev.year) if field in condition_fields(c.when)]
        if cs:
            out[field] = _entry_head(cs[0], full)
    return out


def _status_entries(ev, rows, full=True) -> list:
    """SPEC §2.3 (v2): next to each NL deduction, the earlier years of the records in which
    the same status was reported, as history entries (column-wise; '' where none)."""
    from .explain import wording
    from .negative_list import clause_statuses
    label = wording(ev.policy.data).label
    h = ev.history
    if h is None or not h.earlier:
        return []
    pat, entries = ev.traces["negative_list"]
    out = []
    for c in ev.policy.clauses_for("negative_list", ev.year):
        fields = [f for f in clause_statuses(c) if f in h.earlier]
        if not fields:
            continue
        fired_p = np.array([any(e["clause"] == c.id and e.get("fired", True) for e in es) for es in entries], dtype=bool)
        hit = fired_p[pat[rows]] if len(fired_p) else np.zeros(len(pat[rows]), dtype=bool)
        if not hit.any():
            continue
        texts = []
        for f in fields:
            years = [pa.array(np.where(np.nan_to_num(v[rows]) > 0, f"{y}、", ""), pa.string())
                     for y, v in sorted(h.earlier[f].items())]
            joined = pc.utf8_rtrim(j(*years, ""), "、") if years else \
                pa.array(np.full(len(hit), "", dtype=object), pa.string())
            texts.append(pc.if_else(pc.equal(joined, ""), f"{label(f)}：此前各年记录中未报告",
                                    j(f"{label(f)}：此前已在 ", joined, " 年的记录中报告（恢复前每个评价周期均扣分）", "")))
        text = j(*texts, "；") if len(texts) > 1 else texts[0]
        e = j(_entry_head(c, full), ',"topic":"status_reported_before","text":', json_text(text), "}", "")
        out.append(pc.if_else(pa.array(hit), e, ""))
    return out


def scores_columns(ev, rows) -> dict:
    """trace.parquet's score columns of `rows` (positions; null for an excluded enterprise):
    the cohort size and every number of its scores.csv row, with its stage percentile."""
    numbers = trace_numbers(ev.policy)
    s = ev.scores[["excluded", *numbers]].iloc[rows]
    gone = s["excluded"].to_numpy(dtype=bool)
    cols = {"scores_cohort_size": pa.array(np.asarray(ev.cohort_sizes[rows], dtype="float64"), mask=gone)}
    for k in numbers:
        cols[f"scores_{k}"] = pa.array(np.where(gone, 0, s[k].to_numpy(dtype="float64")), mask=gone)
    return cols


def scores_part(cols, spec: dict) -> pa.Array:
    """The `scores` part of each row (JSON text; null for an excluded enterprise) from its
    score columns and stage (`scores_columns` and `stage_columns`, or trace.parquet's) and the
    header's `render`: cohort size, weights, every number of its scores.csv row and, in words, how the
    final score was made."""
    sp = spec["scores"]
    gone = pc.is_null(cols["scores_final_score"])

    def number(k):
        return cols[f"scores_{k}"].fill_null(0).to_numpy(zero_copy_only=False)
    code = pa.array(_codes(text_column(cols["stage_key"]).to_numpy(zero_copy_only=False),
                           {k: i for i, (k, _) in enumerate(sp["weights"])}))
    w_frag = pa.array([_dump(wt) for _, wt in sp["weights"]], pa.string()).take(code)
    cohort = _num(number("cohort_size"))
    d = sp["decimals"]
    fs = {k: fixed(number(k), d) for _, _, k in sp["categories"]}
    fs.update({k: fixed(number(k), d) for k in NUMBER_COLUMNS})
    fs.update({k: fixed(number(k), 0) for k in ("rank_in_stage", "rank_overall")})
    parts = []
    for c, title, col in sp["categories"]:
        w = pa.array([f"{wt[c]:g}" for _, wt in sp["weights"]], pa.string()).take(code)
        parts += [title, " ", fs[col], " × ", w, " + "]
    text = j(*parts[:-1], " = 加权得分 ", fs["weighted"], "；扣分 ", fs["deductions"], "，衰减系数 ", fs["decay_factor"],
             "，附加分 ", fs["bonus"], f"（计算顺序：加权得分、{sp['order']}）；最终得分 ", fs["final_score"],
             "；同阶段第 ", fs["rank_in_stage"], " 名（同阶段参评 ", cohort, " 家），全区第 ", fs["rank_overall"], " 名", "")
    explain = j(_dump(sp["explain"])[:-1], ',"text":', json_text(text), "}", "")
    out = j(f'{{"indicators":{_dump(sp["indicators"])},"cohort_size":', cohort, ',"weights":', w_frag,
            *[x for k in sp["numbers"] for x in (f',"{k}":', _num(number(k)))], ',"explain":', explain, "}", "")
    return pc.if_else(gone, pa.scalar(None, pa.string()), out)


TRACE_CHUNK = 50_000       # a line is a few KB of Chinese text: 50k lines keep a chunk near 250 MB


def trace_array(ev, rows=None, shared=None, end="}") -> pa.Array:
    """One JSON object per enterprise of `rows` (positions; all rows in credit-code order by
    default), built column-wise: every clause that
    fired with its title, citation, inputs, effect and a Chinese sentence, the stage and the
    history it read, every number of its scores.csv row with what it was made from, every
    award line and every reward clause its data touch that paid nothing, with the reason.
    `shared` holds what all chunks use (see `_trace_shared`)."""
    shared = shared or _trace_shared(ev)
    rows = code_order(ev) if rows is None else np.asarray(rows)
    s = ev.scores.iloc[rows]
    frag = {g: text.take(pa.array(np.asarray(pat)[rows])) for g, (pat, text) in shared["fragments"].items()}
    codes = arrow_text(s["credit_code"])
    excluded = s["excluded"].to_numpy(dtype=bool)
    excl = pa.array(s["exclusion_clauses"].to_numpy(dtype=object), pa.string())
    excl_json = pc.if_else(pc.equal(excl, ""), "[]", j('["', pc.replace_substring(excl, ";", '","'), '"]', ""))
    not_paid = frag["rewards_not_paid"]
    if ev.awards.not_paid:
        mask = np.isin(rows, np.fromiter(ev.awards.not_paid, dtype=np.int64))
        if mask.any():
            pat, entries = ev.traces["rewards_not_paid"]
            extra = [_dump(entries[pat[r]] + ev.awards.not_paid[r]) for r in rows[mask].tolist()]
            not_paid = pc.replace_with_mask(not_paid, pa.array(mask), pa.array(extra, pa.string()))
    spec = shared["render"]
    stage = stage_columns(ev, rows)
    scored = [',"decay":', frag["decay"], ',"bonus":', frag["bonus"],
              ',"scores":', scores_part({**stage, **scores_columns(ev, rows)}, spec)]
    # an excluded enterprise has no score part: every piece of it is empty on its row
    gone = pa.array(excluded)
    blank = pa.scalar("", pa.string())
    scored = [pc.if_else(gone, blank, pa.array(np.full(len(rows), x, dtype=object), pa.string()) if isinstance(x, str) else x)
              for x in scored]
    # the whole line in one join: each piece is copied once
    return j('{"credit_code":"', codes, f'","year":{ev.year},"stage":', stage_part(stage, spec),
             ',"scope":', frag["scope"], ',"history":', _history_fragments(ev, rows), ',"excluded":',
             pa.array(np.where(excluded, "true", "false")), ',"exclusion_clauses":', excl_json,
             ',"negative_list":', frag["negative_list"], *scored,
             ',"rewards":', shared["rewards"].take(pa.array(rows)), ',"rewards_not_paid":', not_paid, end, "")


def _trace_shared(ev):
    """What every chunk of the trace reads: each engine pattern's entries as JSON, and each
    enterprise's rewards part."""
    return {"fragments": {g: (pat, pa.array([_dump(e) for e in entries], pa.string()))
                          for g, (pat, entries) in ev.traces.items()},
            "rewards": _reward_fragments(ev, len(ev.scores)), "render": render_spec(ev, INDICATORS_CSV)}


def write_trace(ev, path, order=None):
    """trace.jsonl: the header line, then one line per enterprise in credit-code order
    (`order`, `code_order(ev)`, when the caller has it), built and written in chunks of rows
    straight from the arrow buffers (the lines are contiguous in them)."""
    shared = _trace_shared(ev)
    order = code_order(ev) if order is None else order
    with open(path, "wb") as f:
        f.write(trace_header(ev).encode("utf-8"))
        for lo in range(0, len(order), TRACE_CHUNK):
            arr = trace_array(ev, order[lo:lo + TRACE_CHUNK], shared, end="}\n")
            f.write(_string_bytes(arr))


TRACE_PARTS = ("stage", "scope", "history", "excluded", "exclusion_clauses", "negative_list", "decay", "bonus",
               "scores", "rewards", "rewards_not_paid")     # the keys of a trace.jsonl line after credit_code, year
SCORED_PARTS = ("decay", "bonus", "scores")                 # absent (null) for an excluded enterprise
TYPED_PARTS = ("stage", "scores")       # in trace.parquet as typed columns (stage_*, scores_*), worded when read
TEXT_PARTS = tuple(p for p in TRACE_PARTS if p not in TYPED_PARTS)      # dictionary columns of JSON text


def _header_clauses(ev) -> dict:
    return {c.id: {"title": c.title, "citation": c.citation} for c in ev.policy.clauses_in_force(ev.year)}


def _dictionary(index, texts, mask=None) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(index, dtype=np.int32), pa.int32(), mask=mask), texts)


def _canonical(index, texts: pa.Array):
    """A dictionary column's (index per row, texts) with the texts it uses only, each once, in
    sorted order: the engine numbers its patterns in no fixed order, the file must not vary."""
    if len(texts) == 0:
        return np.asarray(index, dtype=np.int32), texts
    order = pc.array_sort_indices(texts).to_numpy()
    ordered = texts.take(pa.array(order))
    new_text = np.ones(len(texts), dtype=bool)
    new_text[1:] = pc.not_equal(ordered.slice(1), ordered.slice(0, len(texts) - 1)).to_numpy(zero_copy_only=False)
    rank = np.empty(len(texts), dtype=np.int64)
    rank[order] = np.cumsum(new_text) - 1
    return _used_only(rank[np.asarray(index)], ordered.filter(pa.array(new_text)))


IN_ROW_ORDER = ("history", "rewards", "exclusion_clauses", "excluded")    # texts in an order the rows fix


def _distinct(index, texts: pa.Array):
    """As `_canonical`, for texts whose order is already fixed by the rows' (award lines,
    history keys; one row group's at a time): each distinct text once, in order of first
    appearance, by hashing. Sorting a million enterprises' award texts to the same end took
    seconds and three copies of them at the trace's peak of memory."""
    if len(texts) == 0:
        return np.asarray(index, dtype=np.int32), texts
    enc = pc.dictionary_encode(texts)
    ids = enc.indices.to_numpy(zero_copy_only=False)
    return _used_only(ids[np.asarray(index)], enc.dictionary)


def _used_only(index, texts):
    """(index, texts) keeping the texts some row uses, in their order, as one array (`texts`
    may be chunked)."""
    used = np.zeros(len(texts), dtype=bool)
    used[index] = True
    if not used.all():
        index, texts = (np.cumsum(used) - 1)[index], texts.filter(pa.array(used))
    return np.asarray(index, dtype=np.int32), one_array(texts)


def _history_dictionary(ev):
    """The history part depends only on a few small numbers per row (where the previous
    stages came from and what they were, each run's source, first year, length and whether
    it is open, the earlier years a fired NL clause's status was reported): one key per
    distinct combination, the JSON text built once per key. Returns (key per row, texts)."""
    data = ev.policy.data
    h = ev.history
    cols = [pd.factorize(h.source)[0], np.nan_to_num(h.prev1, nan=-1), np.nan_to_num(h.prev2, nan=-1)]
    for r in data.runs:
        st = h.runs[r.key]
        cols += [pd.factorize(st.source)[0], np.nan_to_num(st.first_year, nan=-1),
                 np.nan_to_num(st.length, nan=-1), st.open]
    if h.earlier:
        from .negative_list import clause_statuses
        pat, entries = ev.traces["negative_list"]
        for c in ev.policy.clauses_for("negative_list", ev.year):
            fields = [f for f in clause_statuses(c) if f in h.earlier]
            if not fields or not len(entries):
                continue
            fired_p = np.array([any(e["clause"] == c.id and e.get("fired", True) for e in es) for es in entries], dtype=bool)
            hit = fired_p[pat]
            cols.append(hit)
            cols += [(np.nan_to_num(v) > 0) & hit for f in fields for _, v in sorted(h.earlier[f].items())]
    # one integer key: the columns' codes in mixed radix, refactorised before it could overflow
    key = np.zeros(len(h.source), dtype=np.int64)
    size = 1
    for c in cols:
        codes, uniq = pd.factorize(np.asarray(c, dtype="float64"))
        if size * max(len(uniq), 1) >= 1 << 62:
            key, kept = pd.factorize(key)
            size = max(len(kept), 1)
        key = key * max(len(uniq), 1) + codes
        size *= max(len(uniq), 1)
    inverse, _ = pd.factorize(key)
    return inverse.astype(np.int32), _history_fragments(ev, first_rows(inverse), full=False)


def _trace_parts_shared(ev):
    """What every row group of trace.parquet reads: the dictionaries of the parts that come
    from engine patterns, history keys, exclusion lists and award lines, in the compact form
    (entries without the title and citation the header holds)."""
    clauses = _header_clauses(ev)
    out = {}
    for g, (pat, entries) in ev.traces.items():
        texts = [_dump([_compact(e, clauses) for e in es]) for es in entries]
        index = np.asarray(pat, dtype=np.int32)
        if g == "rewards_not_paid" and ev.awards.not_paid:
            rows = sorted(ev.awards.not_paid)
            index = index.copy()
            index[rows] = len(texts) + np.arange(len(rows), dtype=np.int32)
            texts += [_dump([_compact(e, clauses) for e in entries[pat[r]] + ev.awards.not_paid[r]]) for r in rows]
        out[g] = (index, pa.array(texts, pa.string()))
    out["history"] = _history_dictionary(ev)
    out["rewards"] = _reward_parts(ev, len(ev.scores), full=False, slots=True)
    codes, lists = pd.factorize(pd.Series(ev.scores["exclusion_clauses"].to_numpy(dtype=object)).fillna(""))
    out["exclusion_clauses"] = (codes, pa.array([_dump([x for x in v.split(";") if x]) for v in lists], pa.string()))
    out["excluded"] = (ev.scores["excluded"].to_numpy(dtype=bool).astype(np.int32), pa.array(["false", "true"]))
    # the engine numbers its patterns in no fixed order: their texts are sorted; the others'
    # order follows the rows, and each row group keeps its own distinct texts (`_assemble`)
    return {k: v if k in IN_ROW_ORDER else _canonical(*v) for k, v in out.items()}


def trace_table(ev, rows=None, shared=None) -> pa.Table:
    """trace.parquet's rows of `rows` (positions; all in credit-code order by default):
    credit_code, year, the STAGE columns (`stage_columns`), each text part of the trace line
    as a dictionary column of JSON text (null where an excluded enterprise has no such part:
    no row's text is materialised), the score columns (`scores_columns`) and the rate
    clauses' contract columns (`contract_columns`)."""
    rows = code_order(ev) if rows is None else np.asarray(rows)
    return _assemble(ev, rows, _dense_columns(ev, rows), shared or _trace_parts_shared(ev))


def _dense_columns(ev, rows, contracts=None) -> dict:
    """The columns of `rows` that hold a value per row: credit_code, year, STAGE's, the
    scores' and the rate clauses' contracts (`contracts`: `contract_sources(ev)`)."""
    return {"credit_code": arrow_text(ev.scores["credit_code"]).take(pa.array(rows)),
            "year": pa.array(np.full(len(rows), ev.year, dtype=np.int32)),
            **stage_columns(ev, rows), **scores_columns(ev, rows), **contract_columns(ev, rows, contracts)}


CONTRACT_LISTS = ("contract_no", "kind", "counted", "amount_wan", "rate_yuan", "yuan")   # a value per contract
CONTRACT_TOTALS = ("total_before_cap", "total")                                          # a value per line


def contract_column(cid: str, name: str) -> str:
    """trace.parquet's column of a rate clause's contracts: `contracts_<clause id>_<name>`."""
    return f"contracts_{cid}_{name}"


def contract_sources(ev) -> dict:
    """For each rate clause with contracts: the position in its ContractTotals of each
    evaluation row's line (-1 where the row has none) and its contracts' values as arrow
    arrays, made once for every row group (`contract_columns`)."""
    aw = ev.awards
    out = {}
    for cid, ct in aw.contracts.items():
        lines = aw.contract_lines(cid)
        pos = np.full(len(ev.scores), -1, dtype=np.int64)
        pos[aw.row[lines]] = aw.contract_pos[lines]
        out[cid] = (pos, ct, {"contract_no": ct.nos_arrow(), "kind": pa.array(ct.kinds, pa.string()),
                              "counted": pa.array(np.asarray(ct.counted, dtype=bool)),
                              "amount_wan": pa.array(ct.amounts, pa.string()),
                              "rate_yuan": pa.array(np.asarray(ct.raw, dtype=np.int64)),
                              "yuan": pa.array(np.asarray(ct.yuan, dtype=np.int64))})
    return out


def contract_columns(ev, rows, sources=None) -> dict:
    """trace.parquet's contract columns of `rows` (positions), for each rate clause with
    contracts: each listed value of its line's contracts as a list per row (CONTRACT_LISTS,
    ordered as the line lists them: by contract number) and its totals (CONTRACT_TOTALS),
    null where the row has no such line. `fill_contract_slots` words them when read."""
    sources = contract_sources(ev) if sources is None else sources
    cols = {}
    for cid, (pos, ct, values) in sources.items():
        p = pos[rows]
        has = p >= 0
        q = p[has]
        size = np.zeros(len(p), dtype=np.int64)
        size[has] = ct.end[q] - ct.start[q]
        offsets = np.concatenate([[0], np.cumsum(size)])
        # the rows' contracts, each row's run of them in turn
        take = pa.array(np.repeat(ct.start[q] - offsets[:-1][has], size[has]) + np.arange(offsets[-1]))
        offsets, gone = pa.array(offsets.astype(np.int32)), pa.array(~has)
        for name in CONTRACT_LISTS:
            cols[contract_column(cid, name)] = pa.ListArray.from_arrays(offsets, values[name].take(take), mask=gone)
        for name, v in zip(CONTRACT_TOTALS, (ct.total_before, ct.total)):
            got = np.zeros(len(p), dtype=np.int64)
            got[has] = np.asarray(v)[q]
            cols[contract_column(cid, name)] = pa.array(got, mask=~has)
    return cols


def fill_contract_slots(rewards: pa.Array, cols, spec: dict) -> pa.Array:
    """The rewards part of each row (JSON text) with its rate clauses' slots (`contract_slot`)
    filled from the row's contract columns (`contract_columns`, or trace.parquet's) and the
    header's `render.rewards`: the line's inputs, basis and sentences about its contracts, as
    `contract_pieces` makes them when writing trace.jsonl."""
    from .rewards import ContractTotals
    for k, (cid, words) in enumerate((spec.get("rewards") or {}).get("contracts") or []):
        if contract_column(cid, "contract_no") not in cols:
            continue
        lists = {}
        for name in CONTRACT_LISTS:
            lists[name] = one_array(cols[contract_column(cid, name)])
        rows = np.flatnonzero(lists["contract_no"].is_valid().to_numpy(zero_copy_only=False))
        if not len(rows):
            continue
        take = pa.array(rows)
        lists = {name: v.take(take) for name, v in lists.items()}
        offsets = lists["contract_no"].offsets.to_numpy()
        start, end = offsets[:-1] - offsets[0], offsets[1:] - offsets[0]
        counted = lists["counted"].flatten().to_numpy(zero_copy_only=False).astype(bool)
        seen = np.concatenate([[0], np.cumsum(counted)])

        def total(name):
            return one_array(cols[contract_column(cid, name)]).take(take).to_numpy(zero_copy_only=False).astype(np.int64)
        ct = ContractTotals(np.arange(len(rows)), start, end, total("total"), lists["contract_no"].flatten(),
                            text_column(lists["amount_wan"].flatten()),
                            lists["yuan"].flatten().to_numpy(zero_copy_only=False).astype(np.int64),
                            text_column(lists["kind"].flatten()).to_numpy(zero_copy_only=False), counted,
                            lists["rate_yuan"].flatten().to_numpy(zero_copy_only=False).astype(np.int64),
                            total("total_before_cap"), seen[end] - seen[start])
        pieces = contract_pieces(ct, words)
        pieces["text"] = _json_inner(pieces["text"])
        mask = np.zeros(len(rewards), dtype=bool)
        mask[rows] = True
        mine = rewards.take(take)
        for piece in CONTRACT_PIECES:
            parts = pc.split_pattern(mine, contract_slot(k, piece), max_splits=1)
            if not pc.all(pc.equal(pc.list_value_length(parts), 2)).as_py():
                raise ValueError(f"trace.parquet: {cid}'s contract columns and the rewards part disagree")
            mine = j(pc.list_element(parts, 0), pieces[piece], pc.list_element(parts, 1), "")
        rewards = pc.replace_with_mask(rewards, pa.array(mask), mine)
    if len(rewards) and pc.any(pc.match_substring(rewards, "\x01")).as_py():
        raise ValueError("trace.parquet: a rewards part has a contract slot its row's columns do not fill")
    return rewards


def _assemble(ev, rows, cols, shared) -> pa.Table:
    """A row group of `rows`: the dense columns and, from `shared`, the dictionary columns."""
    excluded = ev.scores["excluded"].to_numpy(dtype=bool)[rows]
    for p in TEXT_PARTS:
        index, texts = shared[p]
        index, texts = _used_only(np.asarray(index)[rows], texts)      # each row group holds the entries it uses
        if p in IN_ROW_ORDER:
            index, texts = _distinct(index, texts)
        cols[p] = _dictionary(index, texts, excluded if p in SCORED_PARTS else None)
    first = ["credit_code", "year"] + [k for k in cols if k.startswith("stage_")]
    last = [k for k in cols if k.startswith(("scores_", "contracts_"))]
    return pa.table({k: cols[k] for k in first + list(TEXT_PARTS) + last})


TRACE_FILE, TRACE_HEADER_FILE = "trace.parquet", "trace_header.json"


@contextmanager
def _system_memory_pool():
    """Arrow's allocations made inside on the C library's malloc. The trace makes many
    short-lived buffers of tens of MB; arrow's default mimalloc gave them back to the system
    and faulted them in again: at 100k the trace took 0.5–1.2 s of system time with it against
    0.05–0.3 s with malloc (2 cores, 2026-11-26). Buffers remember their pool and are freed
    there; arrays made on other threads meanwhile are allocated from malloc too."""
    old = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(old)


def write_trace_parquet(ev, out_dir, shared=None, order=None):
    """trace.parquet (zstd, one row group per TRACE_CHUNK rows, in credit-code order:
    `order`, `code_order(ev)`, when the caller has it) and trace_header.json (the first line
    of trace.jsonl, with `render`) in `out_dir`; rules.tracefile reads them back as
    trace.jsonl's lines. `shared`: a future of `_trace_parts_shared(ev)`, when the caller
    started it earlier."""
    out_dir = Path(out_dir)
    (out_dir / TRACE_HEADER_FILE).write_text(trace_header(ev, render=True), encoding="utf-8")
    with _system_memory_pool():
        _write_trace_rows(ev, out_dir / TRACE_FILE, shared, code_order(ev) if order is None else order)


def _write_trace_rows(ev, path, shared, order):
    groups = [order[lo:lo + TRACE_CHUNK] for lo in range(0, max(len(order), 1), TRACE_CHUNK)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        # arrow's kernels and the parquet writer run without the GIL: the dictionaries, the
        # dense columns of the next row groups (two ahead at most) and the writing overlap
        if shared is None:
            shared = pool.submit(_trace_parts_shared, ev)
        contracts = contract_sources(ev)
        ahead = [pool.submit(_dense_columns, ev, rows, contracts) for rows in groups[:2]]
        w = None
        try:
            for k, rows in enumerate(groups):
                cols = ahead[k].result()
                if k + 2 < len(groups):
                    ahead.append(pool.submit(_dense_columns, ev, groups[k + 2], contracts))
                ahead[k] = None
                table = _assemble(ev, rows, cols, shared.result())
                if w is None:
                    # the text columns of few distinct values (a credit code is its row's own)
                    text = [f.name for f in table.schema if pa.types.is_dictionary(f.type)
                            or pa.types.is_string(f.type) and f.name != "credit_code"]
                    w = pq.ParquetWriter(path, table.schema, compression="zstd", use_dictionary=text,
                                         dictionary_pagesize_limit=1 << 30, write_statistics=["credit_code"])
                w.write_table(table, row_group_size=TRACE_CHUNK)
        finally:
            if w is not None:
                w.close()


def _string_bytes(arr) -> memoryview:
    """The concatenated bytes of a null-free arrow string array."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return memoryview(b"")
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset:arr.offset + len(arr) + 1]
    return memoryview(arr.buffers()[2])[offsets[0]:offsets[-1]]


def write_plain_csv(tables, path):
    """CSV with no quoting at all, for files that hold only codes, numbers and clause ids
    (scores.csv, awards.csv): the exact text of SPEC §5. Raises if a value would need quotes.
    `tables`: a table, or tables of the same columns written one after another."""
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)
    # arrow's own file: a Python file object takes the GIL for every block written, which
    # the other threads of the writing hold most of the time
    with pa.OSFile(str(path), "wb") as f:
        for k, table in enumerate([tables] if isinstance(tables, pa.Table) else tables):
            if k == 0:
                f.write((",".join(table.column_names) + "\n").encode("utf-8"))
            pacsv.write_csv(table, f, write_options=options)
            del table


def write_csv(frame: pd.DataFrame, path):
    """A frame as UTF-8 CSV, fast (missing numbers as empty cells)."""
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), str(path),
                    write_options=pacsv.WriteOptions(quoting_style="needed"))


def indicator_columns(ev) -> list:
    """The number columns of the indicators file: each indicator's value (`<clause id> <field
    key>`) and points (`<clause id> points`), in the package's order."""
    return [n for c in ev.indicator_clauses for n in (f"{c.id} {c.body['key']}", f"{c.id} points")]


def _indicator_column(ev, k, rows=slice(None)) -> np.ndarray:
    """The k-th number column of the indicators file (value, points, value, …); points are
    rounded to 6 decimals."""
    j, points = divmod(k, 2)
    m = ev.indicator_points if points else ev.indicator_values
    # a column's rows taken from the column (the matrices are column-major: a third faster
    # than indexing both axes)
    col = m[rows, j] if isinstance(rows, slice) else np.take(m[:, j], rows)
    return np.round(col, 6) if points else col


def write_indicators_parquet(ev, path, order, chunk=None):
    """indicators.parquet (zstd): one row per enterprise sorted by credit code (`order`, the
    rows' positions in that order), `credit_code` then each indicator's value (null where not
    reported) and points as float64, in row groups of `chunk` with statistics on credit_code
    (one enterprise's row is read without the rest: `rules.tracefile.read_indicators`). The
    same figures as indicators.csv, which wrote 70 million numbers as text at a million
    enterprises (3.5 s of the second core; this file takes about 1.5 s)."""
    chunk = chunk or TRACE_CHUNK
    names = indicator_columns(ev)
    codes = arrow_text(ev.scores["credit_code"])
    schema = pa.schema([("credit_code", pa.string())] + [(n, pa.float64()) for n in names])
    def group(lo):
        rows = order[lo:lo + chunk]
        return pa.table([codes.take(rows)] + [pa.array(_indicator_column(ev, k, rows), from_pandas=True)
                                              for k in range(len(names))], schema=schema)
    # the next row group's columns are taken (numpy) while the writer encodes this one
    # (without the GIL): about a third of the file's time is the taking
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=["credit_code"]) as w, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="innopoints-indicators") as pool:
        starts = range(0, len(order), chunk)
        pending = pool.submit(group, 0) if len(starts) else None
        for lo in starts:
            table = pending.result()
            pending = pool.submit(group, lo + chunk) if lo + chunk < len(order) else None
            w.write_table(table, row_group_size=chunk)
            del table


def write_indicators(ev, path, order=None, chunk=None):
    """indicators.csv (with the trace as trace.jsonl): each indicator's value and points per
    enterprise, sorted by credit code (`order`, `code_order(ev)`, when the caller has it),
    written in chunks of rows straight from the evaluation's matrices (no second copy of a
    wide table). A column of whole numbers (counts, yes/no, points of an indicator nobody
    scored) is written as integers: the same text as the float's, in about half the time."""
    chunk = chunk or TRACE_CHUNK
    order = code_order(ev) if order is None else order
    names = ["credit_code"] + indicator_columns(ev)
    codes = arrow_text(ev.scores["credit_code"])
    types = [pa.int64() if _whole(_indicator_column(ev, k)) else pa.float64() for k in range(len(names) - 1)]
    schema = pa.schema([("credit_code", pa.string())] + list(zip(names[1:], types)))
    with pacsv.CSVWriter(str(path), schema, write_options=pacsv.WriteOptions(quoting_style="needed")) as w:
        for lo in range(0, len(order), chunk):
            rows = order[lo:lo + chunk]
            cols = [codes.take(rows)]
            cols += [pa.array(_indicator_column(ev, k, rows), from_pandas=True).cast(t) for k, t in enumerate(types)]
            w.write_table(pa.table(cols, schema=schema))


# below this a whole float64 is written as its digits (arrow writes 1e+10 and above with an exponent)
WHOLE_BELOW = 1e10


def _whole(col, sample=1024) -> bool:
    """True when every number of `col` is whole, below WHOLE_BELOW in size and not −0 (NaN
    allowed: written empty either way), so that it reads the same written as an integer.
    A sample of the column decides most columns of fractions at once; the whole column is
    then tested by arrow's kernels (memory from its pool, no fresh pages per column)."""
    head = col[:sample]
    with np.errstate(invalid="ignore"):
        if np.any(np.isfinite(head) & (head != np.floor(head))):
            return False
    arr = pa.array(col, from_pandas=True)
    if arr.null_count == len(arr):
        return True
    lo, hi = pc.min_max(arr).values()
    return (abs(lo.as_py()) < WHOLE_BELOW and abs(hi.as_py()) < WHOLE_BELOW
            and pc.all(pc.equal(pc.floor(arr), arr)).as_py() is not False
            and not np.any(np.signbit(col) & (col == 0)))


def manifest(ev, inputs: dict, extra=None, sums=None) -> dict:
    """What makes a run reproducible: policy version and hash, input checksums, options.
    `sums` (optional): input key -> its sha256, already worked out."""
    sums = sums or {}
    m = {"program": "innopoints", "program_version": PROGRAM_VERSION,
         "policy": {"name": ev.policy.name, "document": ev.policy.document, "sha256": ev.policy.digest},
         "year": ev.year, "inputs": {k: {"file": Path(p).name, "sha256": sums.get(k) or sha256_file(p)}
                                     for k, p in inputs.items() if p},
         "budget": ev.budget.as_dict(),
         "enterprises": int(len(ev.scores)), "excluded": int(ev.scores["excluded"].sum()),
         "award_lines": len(ev.awards)}
    if extra:
        m.update(extra)
    return m


class Checksums(dict):
    """The sha256 of each input file (key -> path; empty ones skipped), hashed on a thread of
    its own from now on: key -> a future of the file's checksum, for `write(sums=…)`. Started
    once the inputs are read, the hashing (about a gigabyte for a million-row zone; hashlib
    lets go of the GIL) overlaps the evaluation, which leaves most of the second core idle,
    instead of the writing, where both cores are busy. `cancel()` when the evaluation fails:
    nobody waits for the rest of a gigabyte."""

    def __init__(self, inputs: dict):
        self._stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="innopoints-sha256")
        try:
            super().__init__({k: pool.submit(sha256_file, p, self._stop) for k, p in inputs.items() if p})
        finally:
            pool.shutdown(wait=False)

    def cancel(self):
        self._stop.set()


def write(ev, out_dir, inputs: dict, trace=True, timings=None, trace_format="parquet", sums=None,
          consume=False):
    """Write every output file of an evaluation into `out_dir` (created if needed).
    `timings`, when a dict, receives the seconds each file took. `trace_format` "parquet":
    trace.parquet + trace_header.json; "jsonl": the full trace.jsonl (header line, then one
    JSON line per enterprise with every title and citation). `sums`: the inputs' checksums
    as `Checksums` gave them (hashed here otherwise). With `consume` (the caller reads only
    `ev.scores`, `ev.awards` and `ev.budget` afterwards), the indicator matrices are let go
    once their file is written: at a million enterprises they are 0.53 GB, held otherwise
    through the whole trace."""
    from .report import write_awards
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
        with ThreadPoolExecutor(max_workers=3) as pool, ThreadPoolExecutor(max_workers=1) as trace_parts:
            # the rows' order by credit code, submitted first: scores.csv and indicators.parquet
            # wait on it (a task of this pool waits on it, which only a task submitted before
            # it may be: the pool takes its tasks in order)
            order = pool.submit(code_order, ev)
            # awards.html is built beside scores.csv (its arrow kernels let go of the GIL)
            html = pool.submit(write_awards, ev, tmp / "awards.html")
            # the input files' checksums (hashlib lets go of the GIL: a million-row zone is
            # about a gigabyte to hash) on the second core while this one writes, unless the
            # caller started them during the evaluation
            if sums is None:
                sums = {k: pool.submit(sha256_file, p) for k, p in inputs.items() if p}
            # arrow's writers run without the GIL: the wide indicator table is written on the
            # second core while this one builds the trace and the award list
            side = None

            def indicator_file(write_file, name):
                write_file(ev, tmp / name, order.result())
                if consume:
                    ev.indicator_values = ev.indicator_points = None
            if trace and trace_format == "jsonl":
                side = pool.submit(indicator_file, write_indicators, INDICATORS_CSV)
            elif trace:
                side = pool.submit(indicator_file, write_indicators_parquet, INDICATORS_FILE)
            # trace.parquet's dictionaries (the award lines' sentences above all, seconds at
            # a million enterprises, mostly in arrow's kernels) are built on a thread of their
            # own from the start, beside scores.csv and awards.csv, not after them: at 1M the
            # writing 8.8-9.0 -> 7.7-7.8 s (alternating runs, 2026-12-04)
            shared = trace_parts.submit(_trace_parts_shared, ev) if trace and trace_format != "jsonl" else None
            lap("write.start")
            done = {}               # output file -> its checksum, hashed as soon as it is written
            write_plain_csv(scores_tables(ev, order.result(), SCORES_CHUNK), tmp / "scores.csv")
            done["scores.csv"] = pool.submit(sha256_file, tmp / "scores.csv")
            write_plain_csv(awards_table(ev), tmp / "awards.csv")
            done["awards.csv"] = pool.submit(sha256_file, tmp / "awards.csv")
            lap("write.scores_awards")
            if trace and trace_format == "jsonl":
                write_trace(ev, tmp / "trace.jsonl", order.result())
            elif trace:
                write_trace_parquet(ev, tmp, shared, order.result())
            lap("write.trace")
            html.result()
            done["awards.html"] = pool.submit(sha256_file, tmp / "awards.html")
            lap("write.awards_html")
            if side is not None:
                side.result()
            lap("write.indicators_wait")
        m = manifest(ev, inputs, sums={k: f.result() for k, f in sums.items()})
        m["outputs"] = {p.name: done[p.name].result() if p.name in done else sha256_file(p)
                        for p in sorted(tmp.iterdir())}
        lap("write.checksums")
        (tmp / "manifest.json").write_text(json.dumps(m, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")
        out_dir.mkdir(exist_ok=True)
        for p in sorted(tmp.iterdir()):
            os.replace(p, out_dir / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
