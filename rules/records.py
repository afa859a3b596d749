"""Reading and validating enterprise records and technical contracts (SPEC §3).

Every cell is checked with vectorised tests, and either every bad cell is reported or the
typed table is returned. Nothing downstream ever sees a half-valid file. A CSV file is read
by arrow's streaming reader, its number columns parsed and its word columns
dictionary-encoded (a bad cell in a typed column sends the file back to be read as text,
where it is reported as written), and checked a group of rows at a time as the groups
arrive, two groups at once beside the reading, each group's cells as read let go once it is
checked: the file's cells as read never exist whole.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import csv
import dataclasses
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .fields import CONTRACT_FIELDS, FALSE_WORDS, NUMBER_KINDS, TRUE_WORDS, by_header

CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CODE_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)


@dataclass(frozen=True)
class BadCell:
    row: int          # the row number as a spreadsheet shows it: header is row 1
    column: str
    value: str
    reason_zh: str
    reason_en: str

    def __str__(self):
        return (f"第{self.row}行 列「{self.column}」值「{self.value}」：{self.reason_zh}"
                f" | row {self.row}, column {self.column!r}, value {self.value!r}: {self.reason_en}")


class InputError(Exception):
    """A file that cannot be used; `cells` lists every bad cell found."""

    def __init__(self, source, cells, frame=None):
        self.source = source
        self.frame = frame      # what could be read, for checks that depend on this file
        self.cells = sorted(cells, key=lambda c: (c.row, c.column))
        super().__init__(f"{source}: {len(self.cells)} bad cell(s)")

    def report(self, limit=None):
        head = f"{self.source}: {len(self.cells)} 处错误 / bad cell(s)"
        shown = self.cells if limit is None else self.cells[:limit]
        lines = [head] + [f"  {c}" for c in shown]
        if limit is not None and len(self.cells) > limit:
            lines.append(f"  … 另有 {len(self.cells) - limit} 处 / {len(self.cells) - limit} more")
        return "\n".join(lines)


class Table:
    """A file read as text: column name -> pyarrow string array of stripped cells."""

    def __init__(self, columns: dict, n: int):
        self.columns = columns
        self.n = n

    def __contains__(self, key):
        return key in self.columns

    def __getitem__(self, key):
        return self.columns[key]

    @property
    def names(self) -> list:
        return list(self.columns)

    def renamed(self, names: dict, consume=False) -> "Table":
        """The columns named in `names` (as read -> new name), renamed; with `consume`, this
        table gives its columns up."""
        out = Table({new: self.columns[old] for old, new in names.items()}, self.n)
        if consume:
            self.columns = {}
        return out


class Stream:
    """A CSV file read typed (`read_table(fields=…)`), a block at a time as `_typed` checks
    it: the file's cells as read never exist whole (a million-row file's are over a
    gigabyte, and the allocator kept as much again while they were checked). Arrow's
    streaming reader parses on one core, about 40% less CPU than its whole-file reader on
    two (3.3 s against 5.3 s for 3.2 million rows), and the other core checks the groups
    already read. `n` and `kept` (the KEEP_RAW columns, whole) are known once every group
    has been read."""

    def __init__(self, path, types: dict, names: dict | None = None):
        self.path, self.types = path, types
        self.names_as_read = names if names is not None else {h: h for h in types}
        self.n, self.kept = None, {}

    @property
    def names(self) -> list:
        return list(self.names_as_read)

    def __contains__(self, key):
        return key in self.names_as_read.values()

    def renamed(self, names: dict, consume=False) -> "Stream":
        return Stream(self.path, self.types, names)

    def groups(self, size):
        """(Table of whole blocks, at least `size` rows but the last, the row it starts at,
        whether the file ends with it) in the file's order: a file that ends just after a
        full group has that group marked False and no last group. A cell (or a header) the
        reader cannot parse raises _NeedText: the file is read again as text."""
        try:
            reader = pacsv.open_csv(self.path, read_options=pacsv.ReadOptions(block_size=READ_BLOCK),
                                    parse_options=PARSE,
                                    convert_options=_convert_options(self.types, list(self.names_as_read)))
        except (pa.ArrowInvalid, pa.ArrowKeyError):     # (a header arrow reads otherwise than csv does)
            raise _NeedText("") from None
        keys = list(self.names_as_read.values())
        keep = [i for i, k in enumerate(keys) if k in KEEP_RAW]
        kept = {i: [] for i in keep}
        schema, lo, batches, rows = reader.schema, 0, [], 0

        def table(batches, n):
            return Table({k: pa.chunked_array([b.column(i) for b in batches], schema.field(i).type)
                          for i, k in enumerate(keys)}, n)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid:
                raise _NeedText("") from None
            batches.append(batch)
            rows += batch.num_rows
            for i in keep:
                kept[i].append(batch.column(i))
            if rows >= size:
                yield table(batches, rows), lo, False
                lo, batches, rows = lo + rows, [], 0
        # the whole file read: its size and KEEP_RAW columns known
        self.n = lo + rows
        self.kept = {keys[i]: pa.chunked_array(c, schema.field(i).type) for i, c in kept.items()}
        if batches or lo == 0:          # the rest, or a file of no rows: columns of no cells
            yield table(batches or [pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema],
                                                               schema=schema)], rows), lo, True


class _NeedText(Exception):
    """A column read typed (`read_table(fields=…)`) holds a bad cell: the file is read again
    as text, so that every bad cell is reported as written."""


# how a column of these kinds is read when `read_table` is given the fields: numbers parsed by
# the CSV reader itself (on both cores, no text kept), a few distinct words dictionary-encoded
TYPED_KINDS = {**{k: pa.float64() for k in ("amount", "signed", "ratio")},
               # whole numbers as 32-bit integers: a cell with decimals (3.0 too), or beyond
               # MAX_COUNT, does not parse, and the file is read as text to be checked
               **{k: pa.int32() for k in ("count", "year")},
               **{k: pa.dictionary(pa.int32(), pa.string()) for k in ("bool", "stage", "choice", "contract_kind")}}


def read_table(path, fields=None) -> Table | Stream:
    """Read a CSV (UTF-8) or XLSX file as text, null for an empty cell. Cells are stripped of
    surrounding blanks when they are checked (`_typed`), only where it matters.

    With `fields` (the fields the file's headers name), a CSV is a `Stream`, read as it is
    checked: its number columns read as numbers and its yes/no, stage and choice columns
    dictionary-encoded (about half the time and memory of text). A cell that does not parse,
    or any bad cell `_typed` finds in a typed column, raises `_NeedText`, and the callers
    (`load_records`, `load_contracts`) read the file again as text: what is reported is
    always the text."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), [BadCell(0, "", "", "文件不存在", "file not found")])
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), None)
    except UnicodeDecodeError:
        raise InputError(str(path), [BadCell(0, "", "", "文件不是 UTF-8 编码", "file is not UTF-8 text")]) from None
    if not header:
        raise InputError(str(path), [BadCell(1, "", "", "文件为空", "the file is empty")])
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise InputError(str(path), [BadCell(1, h, h, "列名重复", "duplicate column name") for h in dup])
    types = {h: pa.string() for h in header}
    if fields is not None:
        known = by_header(fields)
        types.update({h: TYPED_KINDS[known[h].kind] for h in header if h in known and known[h].kind in TYPED_KINDS})
        return Stream(path, types)
    try:
        table = _read_csv(path, types)
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "UTF8" in msg.upper():
            raise InputError(str(path), [BadCell(0, "", "", "文件不是 UTF-8 编码", "file is not UTF-8 text")]) from exc
        raise InputError(str(path), [BadCell(0, "", "", f"无法读取CSV：{msg}", f"cannot read CSV: {msg}")]) from exc
    cols = {name: table.column(i) for i, name in enumerate(table.column_names)}
    return Table(cols, table.num_rows)


# blocks of 1 MB: measured twice as fast as 16 MB blocks on a 2-core machine (the parser's
# working set stays in cache and both cores get work); streamed, 3.2 s against 3.9 s
READ_BLOCK = 1 << 20


# a quoted cell may hold line breaks (a name or address typed in Excel on two lines): the
# reader must not take every line break for a row's end when it cuts the file in blocks (a
# block then began inside the cell, and the read failed depending on where the block fell).
# Measured on the streaming reader: no difference (3.2 s for 3.2 million rows either way).
PARSE = pacsv.ParseOptions(newlines_in_values=True)


def _convert_options(types, include=None):
    return pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, null_values=[""],
                                quoted_strings_can_be_null=True, include_columns=include)


def _read_csv(path, types):
    return pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=READ_BLOCK), parse_options=PARSE,
                          convert_options=_convert_options(types))


# rows checked at a time: large enough that the per-column work of a group outweighs its
# Python calls, small enough that a group's columns stay in cache (`_typed`)
GROUP_ROWS = 1 << 17


DATA_SHEET = "数据"


def _read_xlsx(path):
    import openpyxl
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise InputError(str(path), [BadCell(0, "", "", f"无法读取Excel：{exc}", f"cannot read XLSX: {exc}")]) from exc
    # the import template's data sheet is 数据 (beside 示例 and 说明); other files: the first sheet
    sheet = wb[DATA_SHEET] if DATA_SHEET in wb.sheetnames else wb.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if not header or all(h is None for h in header):
        wb.close()
        raise InputError(str(path), [BadCell(1, "", "", "文件为空", "the file is empty")])

    def text(v):
        if v is None:
            return ""
        if isinstance(v, dt.datetime):
            return v.date().isoformat()
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()

    data = [[text(v) for v in r] for r in rows if any(v is not None for v in r)]
    wb.close()
    names = [text(h) for h in header]
    if len(set(names)) != len(names):
        dup = sorted({h for h in names if names.count(h) > 1})
        raise InputError(str(path), [BadCell(1, h, h, "列名重复", "duplicate column name") for h in dup])
    cols = {name: pa.array([(r[i] or None) if i < len(r) else None for r in data], type=pa.string())
            for i, name in enumerate(names)}
    return Table(cols, len(data))


def _headers(table, fields, source, consume=False):
    """Rename Chinese or English headers to keys; unknown or missing columns are bad cells.
    With `consume`, `table` gives its columns up (so that `_typed` can free each one once it
    is checked: a million-row file holds gigabytes as read)."""
    known = by_header(fields)
    bad, names, seen = [], {}, {}
    for col in table.names:
        f = known.get(col)
        if f is None:
            bad.append(BadCell(1, col, col, "未知的列", "unknown column"))
        elif f.key in seen:
            bad.append(BadCell(1, col, col, f"与列「{seen[f.key]}」重复", f"same column as {seen[f.key]!r}"))
        else:
            names[col] = f.key
            seen[f.key] = col
    for f in fields:
        if f.required and f.key not in seen:
            bad.append(BadCell(1, f.key, "", f"缺少必填列「{f.label}」", f"required column {f.key} is missing"))
    return table.renamed(names, consume), bad


class _Checker:
    """Collects bad cells of one table, column by column, with vectorised tests. The slow
    paths (per-cell parsing) run only for columns that the fast path finds bad."""

    def __init__(self, table, offset=0, bad=None):
        self.table = table
        self.offset = offset            # rows of the file before `table`'s first
        self.bad = [] if bad is None else bad

    def flag(self, key, mask, zh, en):
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            if not pa.types.is_string(self.table[key].type):
                raise _NeedText(key)        # a typed column: report the cells as written
            rows = np.flatnonzero(mask) + 2 + self.offset
            vals = pc.filter(self.table[key], pa.array(mask)).to_pylist()
            self.bad.extend(BadCell(int(r), key, "" if v is None else str(v), zh, en) for r, v in zip(rows, vals))

    def missing(self, f, raw):
        if isinstance(raw, _Coded):        # trimmed distinct values, each tested once
            empty = raw.take(pc.fill_null(pc.equal(pc.binary_length(raw.values), 0), True)
                             .to_numpy(zero_copy_only=False), True)
        elif f.kind in NUMERIC_KINDS:      # an empty cell is null as read
            empty = raw.is_null().to_numpy(zero_copy_only=False)
        else:                              # text is trimmed first: a blank-only cell is empty too
            empty = pc.fill_null(pc.equal(pc.binary_length(raw), 0), True).to_numpy(zero_copy_only=False)
        if f.kind in NUMERIC_KINDS and f.required and pa.types.is_string(raw.type):
            # numbers are not trimmed up front (it costs): a blank-only required cell is empty too
            empty |= pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(raw)), 0), True) \
                .to_numpy(zero_copy_only=False)
        if f.required:
            self.flag(f.key, empty, f"必填项「{f.label}」为空", "required value is missing")
        return empty

    def number_as_read(self, f, raw):
        """A number column the CSV reader parsed (`read_table(fields=…)`; counts and years as
        integers): the tests of `missing` and `number` on the numbers as read, by arrow's
        kernels; the column is returned as it is (`_floats` makes it floats). Any cell they
        would flag (a required cell empty, a cell saying 'nan', a negative count …) sends
        the file back to be read as text (`_NeedText`), where the same tests report it."""
        if f.required and raw.null_count:
            raise _NeedText(f.key)
        if pa.types.is_floating(raw.type) and pc.any(pc.is_nan(raw)).as_py():   # a cell that says 'nan'
            raise _NeedText(f.key)
        mm = pc.min_max(raw).as_py()         # arrow's kernels: no copy of the column, no fresh pages
        lo, hi = mm["min"], mm["max"]
        if lo is not None and not (np.isfinite(lo) and np.isfinite(hi) and (f.kind == "signed" or lo >= 0)
                                   and (f.kind != "ratio" or hi <= 100)):
            raise _NeedText(f.key)
        return raw

    def number(self, f, raw, empty):
        """Parse a number column read as text. Fast path: one arrow cast and a min/max decide
        that the whole column is fine; the per-cell tests run only when something is wrong."""
        try:
            arr = pc.cast(raw, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            arr = None
        if arr is not None:
            mm = pc.min_max(arr).as_py()
            lo, hi = mm["min"], mm["max"]
            fine = (lo is None or (np.isfinite(lo) and np.isfinite(hi)
                                   and (f.kind == "signed" or lo >= 0)
                                   and (f.kind != "ratio" or hi <= 100)))
            if fine and f.kind in ("count", "year") and lo is not None:
                fine = hi <= MAX_COUNT and pc.all(pc.equal(pc.floor(arr), arr)).as_py() is not False
            if fine and lo is not None:
                fine = not pc.any(pc.is_nan(arr)).as_py()          # a cell that says 'nan'
            if fine:
                return arr.to_numpy(zero_copy_only=False)
            num = arr.to_numpy(zero_copy_only=False)
        else:
            # slow path, only for a column with blanks around numbers or bad cells
            text = pd.Series(raw.to_pylist(), dtype=object).str.strip()
            empty |= (text == "").to_numpy()
            num = pd.to_numeric(text.where(text != "", None), errors="coerce").to_numpy(dtype="float64")
        num = np.where(empty, np.nan, num)
        self.flag(f.key, ~empty & np.isnan(num), "不是数字", "not a number")
        with np.errstate(invalid="ignore"):
            self.flag(f.key, np.isinf(num), "不是有限数", "not a finite number")
            num = np.where(np.isinf(num), np.nan, num)
            if f.kind in ("count", "amount", "ratio", "money", "year"):
                self.flag(f.key, num < 0, "不能为负数", "must not be negative")
            if f.kind in ("count", "year"):
                self.flag(f.key, (num >= 0) & (num != np.floor(num)), "必须是整数", "must be a whole number")
                self.flag(f.key, num > MAX_COUNT, "数值过大", "number too large")
            if f.kind == "ratio":
                self.flag(f.key, num > 100, "比例不能超过100", "a ratio cannot exceed 100")
        return num

    def words(self, f, raw, empty, table, zh, en, dtype):
        table = {w.lower(): v for w, v in table.items()}    # the cell is compared lower-cased: so are the words (C级)
        words = list(table)
        if isinstance(raw, _Coded):
            found = pc.index_in(pc.utf8_lower(raw.values), value_set=pa.array(words, pa.string()))
            idx = raw.take(found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), -1)
        else:
            idx = pc.index_in(pc.utf8_lower(raw), value_set=pa.array(words)).to_numpy(zero_copy_only=False)
            idx = np.where(np.isnan(idx.astype("float64")), -1, idx).astype(np.int64)
        self.flag(f.key, ~empty & (idx < 0), zh, en)
        values = np.array([table[w] for w in words] + [np.nan if dtype == "float64" else ""], dtype=dtype)
        return values[idx]          # index -1 takes the trailing missing value

    def date(self, f, raw, empty, today):
        try:        # fast path: every date written YYYY-MM-DD and valid
            d = pc.cast(raw, pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
            ok = ~empty
        except pa.ArrowInvalid:
            d, ok = self._dates_slowly(raw, empty)
        self.flag(f.key, ~empty & ~ok, "不是有效日期（应为YYYY-MM-DD）", "not a valid date (YYYY-MM-DD)")
        self.flag(f.key, ok & (d > np.datetime64(today)), "日期在未来", "date is in the future")
        return d

    @staticmethod
    def _dates_slowly(raw, empty):
        """Dates with slashes, blanks or no zero padding (2019/3/5); Feb 30 stays bad."""
        text = pc.replace_substring(pc.utf8_trim_whitespace(raw), "/", "-")
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        # strptime rolls 2022-02-30 over to March: keep only dates that print back the same
        same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text)
        d = parsed.to_numpy(zero_copy_only=False).astype("datetime64[D]")
        ok = same.fill_null(False).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(~ok & ~empty):
            try:
                d[i] = np.datetime64(dt.datetime.strptime(text[i].as_py(), "%Y-%m-%d").date())
                ok[i] = True
            except ValueError:
                pass
        d[~ok] = np.datetime64("NaT")
        return d, ok

    def code(self, raw):
        """Credit codes upper-cased (checked once the whole column is in: `codes`)."""
        upper = pc.ascii_upper(raw) if _is_ascii(raw) else pc.utf8_upper(raw)
        return _text(upper.fill_null(""))

    def codes(self, f, text) -> np.ndarray:
        """Check the whole column of credit codes `text` (`code`), each distinct code once,
        and return an integer per code in order of first appearance (the enterprise ids that
        history, contracts and rewards join on); -1 for an empty cell."""
        enc = pc.dictionary_encode(arrow_text(text).combine_chunks())
        ids = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        ok = check_credit_codes(enc.dictionary)[ids] if len(enc.dictionary) else np.zeros(len(ids), bool)
        empty = pc.index(enc.dictionary, "").as_py()
        if empty >= 0:
            ids[ids == empty] = -1
        self.flag(f.key, (ids >= 0) & ~ok, "统一社会信用代码校验位错误或格式不符（GB 32100-2015）",
                  "credit code fails the GB 32100-2015 check character or format")
        return ids


def check_credit_codes(codes) -> np.ndarray:
    """Vectorised GB 32100-2015 check: True where a code has 18 valid characters and the
    right check character. Reads the bytes of the arrow array without copying."""
    arr = pa.array(codes, type=pa.string()) if not isinstance(codes, pa.Array) else codes
    n = len(arr)
    ok = np.zeros(n, dtype=bool)
    good_len = pc.equal(pc.binary_length(arr), 18).fill_null(False).to_numpy(zero_copy_only=False)
    if not good_len.any():
        return ok
    sel = pc.filter(arr, pa.array(good_len))
    if isinstance(sel, pa.ChunkedArray):
        sel = sel.combine_chunks()
    offsets = np.frombuffer(sel.buffers()[1], dtype=np.int32)[sel.offset:sel.offset + len(sel) + 1]
    data = np.frombuffer(sel.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].reshape(len(sel), 18)
    vals = _LUT[data]
    valid = (vals >= 0).all(axis=1)
    check = (31 - (vals[:, :17].astype(np.int32) @ CODE_WEIGHTS.astype(np.int32)) % 31) % 31
    ok[good_len] = valid & (check == vals[:, 17])
    return ok


_LUT = np.full(256, -1, dtype=np.int64)
for _i, _ch in enumerate(CODE_CHARS):
    _LUT[ord(_ch)] = _i
_LUT = _LUT.astype(np.int16)


def credit_code_with_check(first17: str) -> str:
    """Complete 17 characters with their check character (used by generators and tests)."""
    s = sum(CODE_CHARS.index(c) * w for c, w in zip(first17, CODE_WEIGHTS))
    return first17 + CODE_CHARS[(31 - s % 31) % 31]


BOOL_WORDS = {**{w: 1.0 for w in TRUE_WORDS}, **{w: 0.0 for w in FALSE_WORDS}}


def default_data():
    """The bundled policy's data dictionary, for callers that name no policy."""
    from .policy import load_policy
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_policy().data
    return _DEFAULT


_DEFAULT = None


def stage_words(data) -> dict:
    """A stage cell as written (its key or Chinese name) -> its level."""
    return {**{k: float(v) for k, v in data.stage_level.items()},
            **{zh: float(data.stage_level[k]) for k, zh in data.stages.items()}}


def choice_words(names) -> dict:
    """A choice cell as written (key or Chinese name) -> the key."""
    return {**{k.lower(): k for k in names}, **{zh: k for k, zh in names.items()}}


def kind_words(kinds) -> dict:
    """A contract kind as written: its key, its Chinese name, or the name without 技术."""
    return {**choice_words(kinds), **{zh[2:]: k for k, zh in kinds.items() if zh.startswith("技术") and len(zh) > 2}}


def _text(arr):
    """A text column as a pandas string array over the arrow buffer (no copy)."""
    return pd.array(arr, dtype=pd.StringDtype("pyarrow"))


def _is_ascii(arr) -> bool:
    return len(arr) == 0 or pc.all(pc.string_is_ascii(arr)).as_py() is not False


def _trim(arr):
    """Cells without surrounding blanks (Unicode's, such as the ideographic space); the
    ASCII kernel, several times faster, when every cell is ASCII (the same answer then)."""
    return pc.ascii_trim_whitespace(arr) if _is_ascii(arr) else pc.utf8_trim_whitespace(arr)


class _Coded:
    """A dictionary-encoded column (`read_table(fields=…)`) as its distinct cells, trimmed,
    and each row's index into them (-1 for an empty cell)."""

    def __init__(self, col):
        if isinstance(col, pa.ChunkedArray):    # each chunk has a dictionary of its own: one for all
            col = col.unify_dictionaries()
            dictionary = col.chunk(0).dictionary if col.num_chunks else pa.array([], pa.string())
            indices = pa.chunked_array([ch.indices for ch in col.chunks], pa.int32()).combine_chunks()
        else:
            dictionary, indices = col.dictionary, col.indices
        self.codes = indices.fill_null(-1).to_numpy(zero_copy_only=False)
        self.values = pc.utf8_trim_whitespace(dictionary)

    def take(self, per_value, null):
        """A per-distinct-value array as a per-row one (`null` for an empty cell)."""
        per_value = np.append(np.asarray(per_value), null)
        return per_value[np.where(self.codes >= 0, self.codes, len(per_value) - 1)]


MAX_COUNT = 2**31 - 1      # counts and years are stored as 32-bit integers
KEEP_RAW = {"credit_code", "year", "registered_on", "contract_no"}   # checked again after the loop
NUMERIC_KINDS = ("count", "amount", "signed", "ratio", "year", "date", "money")


def _typed(table, fields, today, data, only=None):
    """Validate every cell of `table` (a Table or a Stream; headers already keys; it gives its
    columns up) and return the typed frame and a checker holding the bad cells found and,
    whole, the columns checked again across rows (KEEP_RAW). The rows are checked a group of
    GROUP_ROWS at a time (a Stream's: as they are read), two groups at once (numpy and arrow
    let go of the GIL), and a group's cells as read are let go once it is checked: a
    million-row file's columns as read and typed never coexist whole, and a group's columns
    stay in cache. A table of one group is checked two
    columns at a time. With `only` (a year and the fields every row must keep), every cell is
    still checked but the other fields are kept for that year's rows alone: the answer is
    then a `YearRecords`."""
    bad = []
    present = [f for f in fields if f.key in table]
    by_key = {f.key: f for f in present}
    if only is not None and any(f.key == "year" for f in present):
        present = [f for f in present if f.key == "year"] + [f for f in present if f.key != "year"]
    else:
        only = None
    n, size = table.n, GROUP_ROWS
    streamed = isinstance(table, Stream)
    kept = {} if streamed else {k: table[k] for k in KEEP_RAW if k in table}

    def group(part, pool=None):
        """One group of rows: its typed columns and, with `only`, the rows of its year."""
        chk = _Checker(*part, bad)
        out, rows, rest = {}, None, present
        if only is not None:
            out["year"] = _one(chk, present[0], today, data)
            rows = np.flatnonzero(out["year"] == only[0])
            rest = present[1:]

        def one(f):
            return _one(chk, f, today, data, None if only is None or f.key in only[1] else rows)
        out.update(zip([f.key for f in rest], pool.map(one, rest) if pool else map(one, rest)))
        return out, rows

    def slices():       # zero-copy slices of every column, and the row they start at
        for lo in range(0, max(n, 1), size):
            yield Table({k: c.slice(lo, size) for k, c in table.columns.items()}, min(size, n - lo)), lo

    with ThreadPoolExecutor(max_workers=2) as pool:
        if streamed:
            parts, starts = _stream_parts(table, group, pool, size)
            n, kept = table.n, table.kept
        elif n <= size:     # one group: the table itself, its columns let go one by one as checked
            parts, starts = [group((table, 0), pool)], [0]
            table.columns = {}
        else:
            # every group is in the pool's queue now (a bad typed cell cancels those not yet
            # begun: the file is read again as text)
            pending = pool.map(group, slices())
            table.columns = {}      # each group's cells as read are freed when it is checked
            parts, starts = list(pending), list(range(0, n, size))
        chk = _Checker(Table(kept, n), 0, bad)
        # the credit codes are checked across the file (arrow, on the other core) while the
        # other columns' pieces are joined
        order = list(parts[0][0])
        coded = {f.key: _join([p[0].pop(f.key) for p in parts]) for f in present if f.kind == "code"}
        ids = {k: pool.submit(chk.codes, by_key[k], v) for k, v in coded.items()}
        # each column's pieces let go as it is joined
        out = {k: coded[k] if k in coded else _join([p[0].pop(k) for p in parts]) for k in order}
        chk.code_ids = ids["credit_code"].result() if "credit_code" in ids else None
        for f in ids.values():
            f.result()
    if only is None:
        return pd.DataFrame(out, index=pd.RangeIndex(n), copy=False), chk
    rows = np.concatenate([p[1] + lo for p, lo in zip(parts, starts)])
    every = pd.DataFrame({k: v for k, v in out.items() if k in only[1]}, index=pd.RangeIndex(n), copy=False)
    current = pd.DataFrame({k: v[rows] if k in only[1] else v for k, v in out.items()}, copy=False)
    return YearRecords(every, only[0], current, rows), chk


def _stream_parts(stream, group, pool, size):
    """`_typed`'s groups of a Stream, checked as they are read: each group is given to the
    pool as soon as it is read, at most two waiting besides the two being checked (so the
    cells as read held at once are a few groups'). A file of one group is checked two columns
    at a time. The checked groups and the row each starts at."""
    parts, starts, pending = [], [], deque()
    try:
        for table, lo, last in stream.groups(size):
            if lo == 0 and last:
                return [group((table, 0), pool)], [0]
            pending.append(pool.submit(group, (table, lo)))
            starts.append(lo)
            del table
            while len(pending) > 3:
                parts.append(pending.popleft().result())
        parts += [f.result() for f in pending]
    finally:
        for f in pending:       # a bad cell: the groups not yet begun are not checked
            f.cancel()
    return parts, starts


def _one(chk, f, today, data, rows=None):
    """Check the column of field `f` of `chk.table` and return it typed; with `rows`, for
    those rows alone (it is checked on every row)."""
    table = chk.table
    raw = table[f.key]
    if pa.types.is_dictionary(raw.type):
        raw = _Coded(raw)
    elif f.kind not in NUMERIC_KINDS:
        raw = _trim(raw)
    out = _check(chk, f, raw, today, data)
    if f.key not in KEEP_RAW:
        # the column as read is let go once checked (a million-row file holds gigabytes)
        table.columns.pop(f.key, None)
    if isinstance(out, (pa.Array, pa.ChunkedArray)):        # numbers as read: as floats, NaN for an empty cell
        return _floats(out if rows is None else pc.take(out, pa.array(rows)))
    return out if rows is None else out[rows]


def _check(chk, f, raw, today, data):
    """`_one`'s checks of one column: the typed values (numpy or pandas), or the numbers as
    the CSV reader parsed them (arrow)."""
    if f.kind in NUMBER_KINDS and (pa.types.is_floating(raw.type) or pa.types.is_integer(raw.type)):
        read = chk.number_as_read(f, raw)
        if f.kind == "year" and (pc.max(read).as_py() or 0) > today.year:
            raise _NeedText(f.key)          # reported as written, by the text path
        return read
    empty = chk.missing(f, raw)
    if f.kind in ("count", "amount", "signed", "ratio"):
        out = chk.number(f, raw, empty)
    elif f.kind == "year":
        out = chk.number(f, raw, empty)
        chk.flag(f.key, out > today.year, "年度在未来", "year is in the future")
    elif f.kind == "money":
        chk.number(f, raw, empty)
        out = _text(raw.fill_null(""))  # kept as text: exact decimals, never float
    elif f.kind == "bool":
        out = chk.words(f, raw, empty, BOOL_WORDS, "不是是/否值", "not a yes/no value", "float64")
    elif f.kind == "stage":
        out = chk.words(f, raw, empty, stage_words(data), "未知的发展阶段", "unknown stage", "float64")
    elif f.kind == "choice":
        out = chk.words(f, raw, empty, choice_words(f.value_names),
                        f"未知的{f.label}（可填：{'、'.join(f.value_names.values())}）", f"unknown {f.key}", object)
    elif f.kind == "contract_kind":
        out = chk.words(f, raw, empty, kind_words(data.contract_kinds), "未知的合同类别",
                        "unknown contract kind", object)
    elif f.kind == "date":
        out = chk.date(f, raw, empty, today)
    elif f.kind == "code":
        out = chk.code(raw)
    else:
        out = _text(raw.fill_null(""))
    return out


def _chunked(pieces) -> pa.ChunkedArray:
    """Arrow arrays or chunked arrays of one type as one chunked array (no copy)."""
    return pa.chunked_array([c for p in pieces for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])],
                            pieces[0].type)


def _join(pieces):
    """The typed pieces of one column (numpy arrays, or pandas arrays of text) as one."""
    if len(pieces) == 1:
        return pieces[0]
    if isinstance(pieces[0], np.ndarray):
        return np.concatenate(pieces)
    return _text(_chunked([arrow_text(p) for p in pieces]))


def _floats(col) -> np.ndarray:
    """A number column as read (`read_table(fields=…)`) as a writable float64 array, NaN for
    an empty cell."""
    num = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return num if num.flags.writeable else num.copy()


class YearRecords:
    """Records read for one evaluation year (`load_inputs(only=…)`): `every` holds every row
    with the fields that stage and history read of other years; `current` the rows of
    `year`, in the file's order, with every field; `rows` their positions in `every`. A
    million-row zone with three earlier years takes about half the memory of the whole
    table. `rules.evaluate.evaluate` takes it as it takes the whole table."""

    def __init__(self, every: pd.DataFrame, year: int, current: pd.DataFrame, rows: np.ndarray):
        self.every, self.year, self.current, self.rows = every, year, current, rows

    def __contains__(self, key):
        return key in self.current

    def __getitem__(self, key):
        return self.every[key]

    def add(self, key, values, every=True):
        """A column given for every row: kept in `every` (when `every`) and, for the
        year's rows, in `current`."""
        values = np.asarray(values)
        if every:
            self.every[key] = values
        self.current[key] = values[self.rows]


def load_records(path, today=None, data=None, only=None) -> pd.DataFrame:
    """Read and validate an enterprise-records file against a package's data dictionary
    (`data`; the bundled policy's by default); raise InputError listing every bad cell.
    With `only` (a year, and the fields its other years need): a `YearRecords`."""
    data = data or default_data()
    try:
        return records_from_table(read_table(path, data.record_fields), str(path), today, data, consume=True,
                                  only=only)
    except _NeedText:       # a typed cell that is bad: read again as text (below, so that the
        pass                # checked groups are let go first), the cells as written reported
    return records_from_table(read_table(path), str(path), today, data, consume=True, only=only)


def table_from_rows(rows) -> Table:
    """Rows of text (dicts of header -> cell) as a Table, to validate them as a file's rows."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cols = {k: pa.array([None if r.get(k) in (None, "") else str(r[k]) for r in rows], type=pa.string())
            for k in keys}
    return Table(cols, len(rows))


PARTIAL_KEYS = ("credit_code", "year")     # what a partial file must hold: which enterprise-year


def records_from_table(raw: Table, source: str, today=None, data=None, partial=False, consume=False, only=None):
    """Validate enterprise records read as text (from a file or from `table_from_rows`).

    With `partial`, the file may hold the identity (credit code and year) and any subset of
    the fields (a department's extract): only those two columns are required, an empty cell
    is a value not reported, absent columns are not filled in, and the answer is the typed
    frame and the keys of the columns the file holds (a merge touches only those). With
    `consume`, `raw` is emptied as its columns are checked. With `only` (a year and the
    fields other years need), the answer is a `YearRecords`."""
    today = today or dt.date.today()
    data = data or default_data()
    fields = data.record_fields
    if partial:
        fields = [f if f.key in PARTIAL_KEYS or not f.required else dataclasses.replace(f, required=False)
                  for f in fields]
    table, bad = _headers(raw, fields, source, consume)
    present = [f.key for f in fields if f.key in table]
    typed, chk = _typed(table, fields, today, data, None if partial else only)
    split = typed if isinstance(typed, YearRecords) else None
    if split is not None:
        typed = split.every
    ids = chk.code_ids
    if "credit_code" in typed and "year" in typed:
        year = np.nan_to_num(typed["year"].to_numpy(), nan=-1).astype(np.int64)
        dup = duplicated_pairs(ids, year)
        chk.flag("year", dup & ~np.isnan(typed["year"].to_numpy()), "同一企业同一年度的记录重复",
                 "duplicate enterprise-year record")
        reg_year = pd.DatetimeIndex(typed["registered_on"]).year.to_numpy() if "registered_on" in typed else None
        if reg_year is not None:
            in_past = (typed["registered_on"] <= pd.Timestamp(today)).to_numpy()
            chk.flag("registered_on", in_past & (reg_year > typed["year"].to_numpy()), "注册日期晚于评价年度",
                     "registered after the record's year")
    bad += chk.bad
    if bad:
        raise InputError(source, bad, typed)
    if partial:
        typed["year"] = typed["year"].astype("int64")
        return typed, present
    if split is not None:
        for f in fields:  # optional columns absent from the file are all-missing
            if f.key not in split:
                split.add(f.key, _empty_column(f, len(typed)), every=f.key in only[1])
        split.add("year", typed["year"].to_numpy().astype("int64"))
        split.add("ent", ids)
        return split
    for f in fields:  # optional columns absent from the file are all-missing
        if f.key not in typed:
            typed[f.key] = _empty_column(f, len(typed))
    typed["year"] = typed["year"].astype("int64")
    # an integer id per enterprise: history, contracts and rewards join on it, not on text
    typed["ent"] = ids
    return typed


def load_partial_records(path, today=None, data=None):
    """A partial records file (`records_from_table(partial=True)`): the typed frame and the
    keys of the columns present."""
    return records_from_table(read_table(path), str(path), today, data, partial=True)


def enterprise_codes(records) -> pd.Index:
    """The credit code of each enterprise id of `records` (position = id)."""
    ent = records["ent"].to_numpy()
    first = first_rows(ent)         # the first row of each id present, by id
    first = first[first < len(ent)]
    return pd.Index(records["credit_code"].array.take(first))


def duplicated(values) -> np.ndarray:
    """True for each value seen in an earlier row (pandas' `duplicated(keep="first")`), hashed
    in arrow without the GIL: on a million-row file pandas held it for seconds while the
    other file was being checked. Arrow numbers the distinct values in order of first
    appearance, so a row repeats a value when its number is not above every earlier one."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    ids = pc.dictionary_encode(values, null_encoding="encode").indices.to_numpy(zero_copy_only=False).astype(np.int64)
    if not len(ids):
        return np.zeros(0, dtype=bool)
    before = np.empty_like(ids)
    before[0] = -1
    np.maximum.accumulate(ids[:-1], out=before[1:])
    return ids <= before


def duplicated_pairs(a, b) -> np.ndarray:
    """`duplicated` of the pairs of two integer columns (enterprise id and year). When the
    combinations are few (ids numbered from 0, a few years: 4 million at a million
    enterprises), each row's pair is looked up in a table of the first row holding it: a third
    of the time of hashing them (0.08-0.27 s against 0.23-0.87 s at 3.2 million rows)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if not len(a):
        return np.zeros(0, dtype=bool)
    a, b = a - a.min(), b - b.min()
    span = int(b.max()) + 1
    size = (int(a.max()) + 1) * span
    if size >= 1 << 62:         # no one integer per pair: the pairs sorted, each compared with the one before
        order = np.lexsort((np.arange(len(a)), b, a))
        out = np.zeros(len(a), dtype=bool)
        out[order[1:]] = (a[order[1:]] == a[order[:-1]]) & (b[order[1:]] == b[order[:-1]])
        return out
    if size > max(4 * len(a), 1 << 20):
        return duplicated(pa.array(a * span + b))
    key = a * span + b
    return first_rows(key)[key] != np.arange(len(key))


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
                dtype=np.uint64)


def duplicated_text(values) -> np.ndarray:
    """`duplicated` of a text column. When every value has the same length (contract
    numbers as a registry writes them), each is hashed to 64 bits in numpy and only the rows
    whose hash repeats are compared as text (arrow, `duplicated`); otherwise all are."""
    values = one_array(values)
    n = len(values)
    if n < 2 or values.null_count or not pa.types.is_string(values.type):
        return duplicated(values)
    off = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset:values.offset + n + 1]
    width = int(off[1] - off[0])
    if not 0 < width <= 64 or (np.diff(off) != width).any():
        return duplicated(values)
    cells = np.frombuffer(values.buffers()[2], dtype=np.uint8)[off[0]:off[-1]].reshape(n, width)
    words = np.zeros((n, (width + 7) // 8 * 8), dtype=np.uint8)
    words[:, :width] = cells
    words = words.view(np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(words.shape[1]):
            h ^= words[:, k] * _MIX[k % 4]
            h = (h ^ (h >> np.uint64(31))) * _MIX[(k + 1) % 4]
    del words
    order = np.argsort(h)
    same = h[order[1:]] == h[order[:-1]]
    out = np.zeros(n, dtype=bool)
    if same.any():
        rows = np.unique(np.concatenate([order[1:][same], order[:-1][same]]))
        out[rows] = duplicated(values.take(pa.array(rows)))
    return out


def one_array(arr):
    """An arrow array as one array (a chunked array's chunks joined; others as they are)."""
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def first_rows(keys) -> np.ndarray:
    """For each key 0..max(keys), the first row holding it (len(keys) for a key none holds):
    np.unique's return_index for small non-negative integer keys, without a sort."""
    keys = np.asarray(keys)
    first = np.full(int(keys.max(initial=-1)) + 1, len(keys), dtype=np.int64)
    np.minimum.at(first, keys, np.arange(len(keys)))
    return first


def arrow_text(values) -> pa.ChunkedArray:
    """A pandas text column (Series, Index or array) as arrow strings, without a copy when
    it is arrow-backed already."""
    arr = getattr(values, "array", values)
    if not hasattr(arr, "__arrow_array__"):
        arr = pd.array(np.asarray(arr, dtype=object), dtype=pd.StringDtype("pyarrow"))
    return pa.chunked_array(arr.__arrow_array__()).cast(pa.string())


def contract_enterprises(contracts, known: pd.Index) -> np.ndarray:
    """Each contract's enterprise id (its position in `known`, `enterprise_codes` of the
    records; -1 when absent): the `ent` column `load_inputs` found, when it names the same
    codes (compared, a tenth of hashing them again at a million enterprises), or hashed."""
    if "ent" in contracts:
        ent = contracts["ent"].to_numpy()
        if ent.dtype.kind in "iu" and (not len(ent) or (ent.min() >= 0 and ent.max() < len(known))):
            same = pc.equal(arrow_text(known).take(pa.array(ent)), arrow_text(contracts["credit_code"]))
            if pc.all(pc.fill_null(same, False)).as_py() is not False:       # no code missing or other
                return ent.astype(np.int64)
    return positions_of(contracts["credit_code"], known)


def positions_of(codes, known: pd.Index) -> np.ndarray:
    """Position of each credit code in `known` (-1 when absent), hashed in arrow."""
    pos = pc.index_in(arrow_text(codes), value_set=arrow_text(known).combine_chunks())
    return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _empty_column(f, n):
    if f.kind in ("text", "code", "choice", "contract_kind"):
        return np.full(n, "", dtype=object)
    if f.kind == "date":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    return np.full(n, np.nan)


def load_contracts(path, known_codes=None, today=None, data=None) -> pd.DataFrame:
    """Read and validate a technical-contracts file (SPEC §3). `known_codes`, when given, is
    the credit codes of the records (`enterprise_codes`, or any collection): a contract of
    any other enterprise is bad."""
    today = today or dt.date.today()
    try:
        return _contracts(read_table(path, CONTRACT_FIELDS), str(path), known_codes, today, data)
    except _NeedText:       # as load_records
        pass
    return _contracts(read_table(path), str(path), known_codes, today, data)


def _contracts(raw, path, known_codes, today, data):
    table, bad = _headers(raw, CONTRACT_FIELDS, path, consume=True)
    typed, chk = _typed(table, CONTRACT_FIELDS, today, data or default_data())
    if "contract_no" in typed:
        no = typed["contract_no"]
        chk.flag("contract_no", duplicated_text(arrow_text(no)) & (no != "").to_numpy(),
                 "合同登记编号重复", "duplicate contract number")
    if known_codes is not None and "credit_code" in typed:
        bad += contract_owner_errors(typed, known_codes)
    bad += chk.bad
    if bad:
        raise InputError(path, bad, typed)
    return typed


def contract_owner_errors(contracts, known_codes, positions=None) -> list:
    """Bad cells for contracts whose enterprise is not among `known_codes` (`positions`: each
    contract's position in them, when the caller has it)."""
    known = known_codes if isinstance(known_codes, pd.Index) else pd.Index(list(known_codes))
    code = contracts["credit_code"]
    pos = positions_of(code, known) if positions is None else positions
    unknown = (pos < 0) & (code != "").to_numpy()
    rows = np.flatnonzero(unknown)
    values = code.iloc[rows].to_numpy(dtype=object)       # the unknown ones alone as Python text
    return [BadCell(int(r) + 2, "credit_code", str(v), "记录中没有该企业", "no such enterprise in the records")
            for r, v in zip(rows, values)]


class InputErrors(Exception):
    """Bad cells in one or more input files (each an InputError)."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def load_inputs(records, contracts=None, today=None, data=None, only=None):
    """Load and validate a records file and (optionally) a contracts file; every bad cell of
    both is gathered before InputErrors is raised. The contracts file is read and checked on
    the second core meanwhile (arrow releases the GIL); whose contracts they are is checked
    once the records are in. `only`: see `load_records` (`rules.evaluate.year_fields` says
    which fields an evaluation reads of other years)."""
    errors, recs, cons, known = [], None, None, None
    _few_heaps()
    _small_pages()
    _arrow_pool()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load_contracts, contracts, None, today, data) if contracts else None
        try:
            recs = load_records(records, today, data, only)
            known = enterprise_codes(recs)
        except InputError as exc:
            errors.append(exc)
            if exc.frame is not None and "credit_code" in exc.frame:
                known = pd.Index(exc.frame["credit_code"].unique())
        if pending is not None:
            try:
                cons = pending.result()
                cells = []
                if known is not None:
                    # each contract's enterprise id, found once: the evaluation reads it (`ent`)
                    pos = positions_of(cons["credit_code"], known)
                    cells = contract_owner_errors(cons, known, pos)
                    if not errors and not cells:
                        cons["ent"] = pos
            except InputError as exc:
                cells = exc.cells
                if known is not None and exc.frame is not None and "credit_code" in exc.frame:
                    cells = cells + contract_owner_errors(exc.frame, known)
            if cells:
                errors.append(InputError(str(contracts), cells))
    if errors:
        raise InputErrors(errors)
    release_memory()
    return recs, cons


def _small_pages():
    """Numpy's arrays without the hint to back them with 2 MB pages (madvise hugepage), unless
    NUMPY_MADVISE_HUGEPAGE says otherwise. On this VM (transparent huge pages on request, with
    compaction when a page is taken) memory so hinted took about 4.5 times as long to touch the
    first time: 2 GB in 4.1–4.6 s against 0.9 s; making and freeing 25 MB columns with a
    1.5 GB working set took 3.0–4.3 s of system time against 0.7 s, and a million-enterprise
    evaluation 15 against 12 (2026-11-26)."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:         # a numpy without the switch: nothing to do
        return
    _set_madvise_hugepage(False)


def _arrow_pool():
    """Arrow's allocations on jemalloc (bundled with pyarrow's wheels) rather than its default
    mimalloc, unless ARROW_DEFAULT_MEMORY_POOL says otherwise. Mimalloc hands freed pages back
    to the system within milliseconds and the next column faults them in again, which on this
    VM costs about 0.45 s per GB; jemalloc keeps them a second. A million-enterprise
    evaluation, four runs alternating: 31.2–31.9 s against 30.0 s, kernel time 12.1–14.1 against
    8.9–9.2 s, reading and checking 10.8–11.3 against 8.7–8.8 s, peak memory the same (3.8 GB;
    2026-11-26). Arrays made before keep the pool they were made on."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ or pa.default_memory_pool().backend_name == "jemalloc":
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowException):       # a pyarrow built without it
        pass


def _few_heaps():
    """At most two C-library heaps (glibc's M_ARENA_MAX): the checking, scoring and writing
    threads otherwise each get a heap of their own, whose freed memory stays with it.
    Measured on 300,000 enterprises: peak 1.67 → 1.56 GB, kernel time 3.1 → 1.8 s."""
    try:
        import ctypes
        ctypes.CDLL(None).mallopt(-8, 2)        # M_ARENA_MAX; glibc only, elsewhere nothing
    except (OSError, AttributeError):
        pass


def release_memory():
    """Hand the memory freed while reading (the text and numbers as read, gigabytes for a
    million-row file) back to the system, so that it does not count on top of what the
    evaluation allocates next: arrow's pool, and the C library's heap where it has one."""
    pa.default_memory_pool().release_unused()
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)        # glibc; elsewhere there is nothing to trim
    except (OSError, AttributeError):
        pass
