"""数据采集: imports, corrections, self-declarations and the audit log, over the store.

Every check is the batch command's own (`rules.records`): a file imports here exactly when
`innopoints evaluate` would accept it. A file with any bad cell changes nothing."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import bindparam, delete, select, tuple_, update

from rules.fields import CONTRACT_FIELDS, IDENTITY, IDENTITY_KEYS as RECORD_IDENTITY, by_header
from rules.output import json_text
from rules.records import (DATA_SHEET, PARTIAL_KEYS, BadCell, InputError, contract_owner_errors, load_contracts,
                           load_records, read_table, records_from_table, table_from_rows)

from . import shape
from .models import (AuditEntry, Contract, Declaration, Enterprise, Import, Record, User, records_table,
                     utcnow)

IDENTITY_KEYS = ("name", "park", "industry", "registered_on")
CHUNK = 5_000
SLICE = 10_000          # rows made into text at a time, for a large file (memory reused, not fresh)


def audit(s, user: User | None, action: str, target: str = "", **detail):
    s.add(AuditEntry(user_id=user.id if user else None, username=user.username if user else "system",
                     action=action, target=target,
                     detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)))


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- typed frame <-> database values <-> text -------------------------------------------

def _python_values(f, v, data) -> list:
    """One column of the loader's typed frame as Python values (None for a missing value)."""
    if f.kind in ("code", "text"):
        return [str(x) for x in v]
    if f.kind == "choice":
        return [x or None for x in v]
    if f.kind == "date":
        return np.asarray(v, dtype="datetime64[D]").astype(object).tolist()
    num = np.asarray(v, dtype="float64")
    missing = np.isnan(num)
    out = np.full(len(num), None, dtype=object)
    present = num[~missing]
    if f.kind in ("year", "count"):
        out[~missing] = present.astype(np.int64).tolist()
    elif f.kind == "bool":
        out[~missing] = (present != 0).tolist()
    elif f.kind == "stage":
        keys = np.array([None] + list(data.stages), dtype=object)
        out[~missing] = keys[present.astype(np.int64)]
    else:
        out[~missing] = present.tolist()
    return out.tolist()


def float_json(arr: pa.Array) -> pa.Array:
    """Floats as text that reads back as the same float, with a point where Python's repr
    has one (3 -> 3.0); nulls stay null."""
    text = pc.cast(arr, pa.string())
    whole = pc.match_substring_regex(text, r"^-?[0-9]+$")
    return pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)


def _json_values(f, v, data) -> pa.Array:
    """One column of the loader's typed frame as JSON values, null where missing: the text
    json.dumps gives `_python_values` (floats keep their point), built column-wise."""
    n = len(v)
    if f.kind in ("code", "text"):
        return json_text(pa.array([str(x) for x in v], pa.string()))
    if f.kind == "choice":
        a = pa.array(v, pa.string(), from_pandas=True)
        return json_text(pc.if_else(pc.equal(a, ""), pa.scalar(None, pa.string()), a))
    if f.kind == "date":
        d = pa.array(np.asarray(v, dtype="datetime64[D]"), pa.date32(), from_pandas=True)
        return pc.binary_join_element_wise('"', pc.cast(d, pa.string()), '"', "")
    num = np.asarray(v, dtype="float64")
    missing = np.isnan(num)
    if f.kind in ("year", "count"):
        return pc.cast(pa.array(np.where(missing, 0, num).astype(np.int64), mask=missing), pa.string())
    if f.kind == "bool":
        return pa.array(np.where(num != 0, "true", "false"), pa.string(), mask=missing)
    if f.kind == "stage":
        keys = np.array(["null"] + [json.dumps(k) for k in data.stages], dtype=object)
        return pa.array(keys[np.where(missing, 0, num).astype(np.int64)], pa.string(), mask=missing)
    return float_json(pa.array(num, pa.float64(), mask=missing)) if n else pa.array([], pa.string())


def _data_json(frame: pd.DataFrame, data) -> list:
    """Each row's fields as one JSON object (keys sorted, a missing value left out), as
    json.dumps(sort_keys=True) writes `_python_values`, built column-wise."""
    fields = sorted((f for f in data.fields if f.key in frame), key=lambda f: f.key)
    if not fields:
        return ["{}"] * len(frame)
    parts = []
    for f in fields:
        v = _json_values(f, frame[f.key].to_numpy(), data)
        parts.append(pc.binary_join_element_wise(json.dumps(f.key, ensure_ascii=False) + ": ", v, ""))
    body = pc.binary_join_element_wise(*parts, ", ", null_handling="skip")
    return pc.binary_join_element_wise("{", body, "}", "").to_pylist()


def _db_columns(frame: pd.DataFrame, data) -> dict:
    """Validated records (the loader's typed frame) as the records table's columns: the
    identity columns, and `data`, the package's fields as one JSON object per row (a missing
    value left out; dates as ISO text)."""
    cols = {f.key: _python_values(f, frame[f.key].to_numpy(), data) for f in IDENTITY}
    cols["data"] = _data_json(frame, data)
    return cols


def _db_values(frame: pd.DataFrame, data) -> list[dict]:
    cols = _db_columns(frame, data)
    out = [dict(zip(cols, row)) for row in zip(*cols.values())]
    for r in out:
        r.update(json.loads(r.pop("data")))
    return out


def bulk_insert(s, table, columns, rows, tick=None, chunk=CHUNK):
    """Insert many rows (tuples in `columns` order) in the session's transaction, past the
    ORM: COPY on PostgreSQL, the driver's executemany on SQLite."""
    conn = s.connection()
    raw = conn.connection.dbapi_connection
    names = ", ".join(columns)
    postgres = conn.dialect.name == "postgresql"
    cur = raw.cursor()
    try:
        for i in range(0, len(rows), chunk):
            part = rows[i:i + chunk]
            if postgres:
                with cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as cp:
                    for r in part:
                        cp.write_row(r)
            else:
                cur.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})", part)
            if tick:
                tick(len(part))
    finally:
        cur.close()


def text_of(value) -> str:
    """A stored value as the text of an import file (the inverse of the loader's parsing)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)          # the shortest text that reads back as the same float
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def record_text(rec, data=None) -> dict:
    """A stored record as the text of an import row: its identity and the fields of the
    package's dictionary (`data`, the policy in force by default)."""
    data = data or shape.data()
    values = rec.values()
    out = {k: text_of(getattr(rec, k)) for k in RECORD_IDENTITY}
    out.update({f.key: text_of(values.get(f.key)) for f in data.fields})
    return out


# ---- import ---------------------------------------------------------------------------

@dataclass
class ImportOutcome:
    import_id: int
    kind: str
    rows: int
    added: int
    replaced: int
    sha256: str


class ImportRejected(Exception):
    """A rejected file: `cells` are its bad cells (for a large file, the first ones only),
    `total` how many there are in all."""

    def __init__(self, import_id, cells, total=None):
        self.import_id = import_id
        self.cells = cells
        self.total = len(cells) if total is None else total
        super().__init__(f"{self.total} bad cell(s)")


BAD_CELL_COLUMNS = [("row", "行"), ("column", "列"), ("value", "值"), ("reason_zh", "原因"), ("reason_en", "reason")]


class BadCellFile:
    """Bad cells written as they come to a gzip-compressed CSV (UTF-8 with BOM, cells
    neutralised as in every export: the values come from the uploaded file)."""

    def __init__(self):
        import csv
        import gzip
        import io
        self.buf = io.BytesIO()
        self.gz = gzip.GzipFile(fileobj=self.buf, mode="wb", compresslevel=6)
        self.text = io.TextIOWrapper(self.gz, encoding="utf-8", newline="")
        self.writer = csv.writer(self.text, lineterminator="\r\n")
        self.text.write("\ufeff")
        self.writer.writerow([label for _, label in BAD_CELL_COLUMNS])

    def add(self, c, offset=0):
        self.add_all([c], offset)

    def add_all(self, cells, offset=0):
        from .exports import FORMULA_START, neutralise

        def safe(v):
            v = str(v)
            return neutralise(v) if v.startswith(FORMULA_START) else v
        self.writer.writerows([c.row + offset, safe(c.column), safe(c.value), c.reason_zh, c.reason_en] for c in cells)

    def close(self) -> bytes:
        self.text.flush()
        self.text.detach()
        self.gz.close()
        return self.buf.getvalue()


def bad_cells_gzip(cells) -> bytes:
    f = BadCellFile()
    f.add_all(cells)
    return f.close()


def _reject(s, kind, filename, digest, user, cells, total=None, gz=None):
    s.rollback()
    total = len(cells) if total is None else total
    imp = Import(kind=kind, filename=filename, sha256=digest, user_id=user.id if user else None,
                 status="rejected", bad_cells=total, bad_cells_csv=gz if gz is not None else bad_cells_gzip(cells))
    s.add(imp)
    s.flush()
    audit(s, user, "import.rejected", f"{kind}:{filename}", sha256=digest, bad_cells=total)
    s.commit()
    raise ImportRejected(imp.id, cells, total)


@dataclass
class UploadLimits:
    """What an uploaded file may expand to before it is parsed (config IMPORT_MAX_*)."""
    expanded_bytes: int = 256 * 2**20     # XLSX: all members uncompressed; CSV: the file
    ratio: float = 100.0                  # XLSX: uncompressed / compressed, per member of 1 MB or more
    cells: int = 100_000_000              # rows × columns
    members: int = 1000                   # XLSX: files in the zip
    slice_above_bytes: int = 16 * 2**20   # CSV: checked in slices first when at least this large
    slice_rows: int = 50_000              # ... of this many rows
    keep_cells: int = 1000                # ... keeping this many bad cells (all are counted)


def _too_big(reason_zh, reason_en):
    return InputError("upload", [BadCell(0, "", "", reason_zh, reason_en)])


def check_bounds(path: Path, limits: UploadLimits):
    """Refuse (InputError) a file that would expand past `limits`, before any parser reads
    it: an XLSX by its zip directory (sizes, ratios, the sheets' declared dimensions; zipfile
    never inflates a member past its declared size), a CSV by size and rows × columns."""
    mb = 2**20
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import re
        import zipfile
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError):
            return                             # not a zip: the reader says it cannot read it
        with zf:
            infos = zf.infolist()
            if len(infos) > limits.members:
                raise _too_big(f"Excel 文件包含 {len(infos)} 个部件，超过上限 {limits.members}",
                               f"the XLSX has {len(infos)} parts, more than {limits.members}")
            total = sum(i.file_size for i in infos)
            if total > limits.expanded_bytes:
                raise _too_big(f"Excel 文件解压后 {total // mb} MB，超过上限 {limits.expanded_bytes // mb} MB",
                               f"the XLSX expands to {total // mb} MB, over {limits.expanded_bytes // mb} MB")
            for i in infos:
                if i.file_size >= mb and i.file_size > limits.ratio * max(i.compress_size, 1):
                    raise _too_big(f"Excel 文件的部件 {i.filename} 压缩比异常（{i.file_size // max(i.compress_size, 1)}:1），"
                                   f"疑为压缩炸弹，拒绝读取",
                                   f"part {i.filename} is compressed {i.file_size // max(i.compress_size, 1)}:1: "
                                   f"refused as a zip bomb")
            for i in infos:
                if i.filename.startswith("xl/worksheets/") and i.filename.endswith(".xml"):
                    with zf.open(i) as f:
                        head = f.read(4096).decode("utf-8", "replace")
                    m = re.search(r'<(?:\w+:)?dimension ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"', head)
                    if m and m.group(3):
                        cols = _column_number(m.group(3)) - _column_number(m.group(1)) + 1
                        rows = int(m.group(4)) - int(m.group(2)) + 1
                        if rows * cols > limits.cells:
                            raise _too_big(f"工作表 {rows} 行 × {cols} 列，超过上限 {limits.cells:,} 个单元格",
                                           f"the sheet is {rows} rows × {cols} columns, over {limits.cells:,} cells")
            merged = _merged_header(zf)
            if merged:
                raise InputError("upload", [BadCell(1, merged, "", f"表头（第1行）有合并单元格 {merged}：请取消合并，"
                                                    f"每列一个列名后再导入",
                                                    f"the header row has merged cells {merged}: unmerge them, "
                                                    f"one column name per column")])
        return
    size = path.stat().st_size
    if size > limits.expanded_bytes:
        raise _too_big(f"文件 {size // mb} MB，超过上限 {limits.expanded_bytes // mb} MB",
                       f"the file is {size // mb} MB, over {limits.expanded_bytes // mb} MB")
    import csv
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        header = next(csv.reader([f.readline()]), [])
    lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            lines += chunk.count(b"\n")
    if lines * max(len(header), 1) > limits.cells:
        raise _too_big(f"文件 {lines} 行 × {len(header)} 列，超过上限 {limits.cells:,} 个单元格",
                       f"the file is {lines} rows × {len(header)} columns, over {limits.cells:,} cells")


def _data_sheet(zf) -> str | None:
    """The zip path of the sheet an import reads: 数据 (the template's), else the first."""
    import posixpath
    import xml.etree.ElementTree as ET
    try:
        book = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ET.ParseError):
        return None
    rid = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    sheets = [(s.get("name"), s.get(rid)) for s in book.iter() if s.tag.endswith("}sheet")]
    if not sheets:
        return None
    name, ref = next((x for x in sheets if x[0] == DATA_SHEET), sheets[0])
    target = next((r.get("Target") for r in rels.iter() if r.get("Id") == ref), None)
    if not target:
        return None
    return target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))


def _merged_header(zf) -> str:
    """The first merged range that touches the header row of the data sheet ('' if none);
    openpyxl would read it as one name and empty ones, which says nothing to the user."""
    import re
    sheet = _data_sheet(zf)
    if sheet is None or sheet not in zf.namelist():
        return ""
    pattern = re.compile(rb'<(?:\w+:)?mergeCell ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')
    tail = b""
    with zf.open(sheet) as f:
        while chunk := f.read(1 << 20):
            data = tail + chunk
            for m in pattern.finditer(data):
                if int(m.group(2)) <= 1 <= int(m.group(4)):
                    return m.group(0).split(b'"')[1].decode("ascii")
            tail = data[-200:]
    return ""


def prevalidate_csv(path: Path, kind, limits: UploadLimits):
    """A large CSV upload checked in slices of `limits.slice_rows` rows first, so that a file
    of bad rows is rejected with bounded memory: the first `limits.keep_cells` bad cells are
    kept, all of them are counted and written to the downloadable list as they come.
    Returns (kept, total, gzip list) when a slice has bad cells, None otherwise (then the
    whole file is checked as one, which also finds what spans slices, such as duplicates)."""
    import dataclasses
    if path.suffix.lower() != ".csv" or path.stat().st_size < limits.slice_above_bytes:
        return None
    loader = load_records if kind == "records" else load_contracts
    kept, total, out = [], 0, None
    try:
        with open(path, "rb") as f, tempfile.TemporaryDirectory(prefix="innopoints-slice-") as tmp:
            header = f.readline()
            if not header.strip():
                return None
            part, offset, more = Path(tmp) / "slice.csv", 0, True
            while more:
                n = 0
                with open(part, "wb") as w:         # the raw lines: a record goes on while a quote is open
                    w.write(header)
                    while n < limits.slice_rows:
                        line = f.readline()
                        if not line:
                            more = False
                            break
                        if not line.strip(b"\r\n"):
                            continue                 # blank lines are not records
                        w.write(line)
                        odd = line.count(b'"') % 2
                        while odd and (line := f.readline()):
                            w.write(line)
                            odd ^= line.count(b'"') % 2
                        n += 1
                if not n:
                    break
                try:
                    loader(part)
                except InputError as exc:
                    if any(c.row <= 1 for c in exc.cells):
                        return None                # the header or the file itself: the whole-file check says it
                    out = out or BadCellFile()
                    out.add_all(exc.cells, offset)
                    total += len(exc.cells)
                    kept += [dataclasses.replace(c, row=c.row + offset)
                             for c in exc.cells[:max(0, limits.keep_cells - len(kept))]]
                offset += n
    except Exception:                              # noqa: BLE001 - undecodable, unreadable: the whole-file
        return None                                # check reports it as such
    if not total:
        return None
    return kept, total, out.close()


def _column_number(letters):
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def import_file(s, path, kind: str, user: User | None, filename: str | None = None, progress=None,
                limits: UploadLimits | None = None, source: str | None = None) -> ImportOutcome:
    """Validate a records or contracts file and, when every cell is good, store it in one
    transaction. A rejected file is recorded as such, with its bad-cell count. With
    `limits` (uploads), a file that would expand past them is refused before parsing.

    A records file holding every column of the dictionary, from an officer, replaces the
    enterprise-years it names (as it always did). Any other records file — a department's
    extract, or an officer's file with some of the columns — is merged field by field into
    the stored records (`_merge_records`): only the columns it holds, only its non-empty
    cells. A department user (bound to one source) may send only the fields its source owns;
    `source` lets an officer record the values under a source (by default each field's own).
    Every value stored keeps its provenance."""
    path = Path(path)
    filename = filename or path.name
    digest = sha256_file(path)
    tick = progress or (lambda n: None)
    department = user is not None and user.role == "department"
    present = None
    try:
        if limits is not None:
            check_bounds(path, limits)
            pre = prevalidate_csv(path, kind, limits) if kind in ("records", "contracts") and not department else None
            if pre is not None:
                kept, total, gz = pre
                _reject(s, kind, filename, digest, user, kept, total, gz)
        data = shape.import_dictionary(s)
        if source is not None and data.source(source) is None:
            raise InputError(filename, [BadCell(0, "", source, f"未知的数据来源 {source}", f"unknown source {source!r}")])
        if department and kind != "records":
            raise InputError(filename, [BadCell(0, "", "", "数据报送单位只能导入企业年度记录中本单位的字段",
                                                "a department imports its own record fields only")])
        if kind == "records":
            table = read_table(path)
            headers = by_header(data.record_fields)
            full = not department and all(f.key in {getattr(headers.get(c), "key", None) for c in table.columns}
                                          for f in data.record_fields)
            if full:
                frame = records_from_table(table, str(path), data=data)
            else:
                owner_cells = _ownership_errors(table, data, user, source)
                try:
                    frame, present = records_from_table(table, str(path), data=data, partial=True)
                except InputError as exc:
                    raise InputError(filename, owner_cells + exc.cells + _absent_required(s, exc.frame, table, data)) \
                        from None
                if owner_cells:
                    raise InputError(filename, owner_cells)
        elif kind == "contracts":
            known = set(s.scalars(select(Enterprise.credit_code)))
            try:
                frame = load_contracts(path, data=data)
                cells = []
            except InputError as exc:       # whose contracts they are is checked all the same
                frame, cells = exc.frame, exc.cells
                if frame is None or "credit_code" not in frame:
                    raise
            cells = cells + contract_owner_errors(frame, known)
            if cells:
                raise InputError(filename, cells, frame)
        else:
            raise ValueError(f"unknown import kind {kind!r}")
        if len(frame) == 0:
            raise InputError(filename, [BadCell(2, "", "", "文件只有表头，没有数据行", "the file has a header but no rows")])
    except InputError as exc:
        _reject(s, kind, filename, digest, user, exc.cells)
    imp = Import(kind=kind, filename=filename, sha256=digest, user_id=user.id if user else None,
                 status="imported", rows=len(frame))
    s.add(imp)
    s.flush()
    conflicts = 0
    if kind == "records" and present is None:
        added, replaced = _replace_records(s, frame, imp.id, tick, data)
        _provenance_of_file(s, frame, imp.id, user, source)
    elif kind == "records":
        try:
            added, replaced, conflicts = _merge_records(s, frame, present, imp, user, data, source)
        except InputError as exc:
            _reject(s, kind, filename, digest, user, exc.cells)
    else:
        added, replaced = _replace_contracts(s, frame, imp.id, tick)
    imp.added, imp.replaced = added, replaced
    audit(s, user, f"import.{kind}", filename, import_id=imp.id, sha256=digest, rows=len(frame),
          added=added, replaced=replaced, **({"merged_fields": [k for k in present if k not in RECORD_IDENTITY],
                                              "conflicts": conflicts, "source": source or (user.source if department else "")}
                                             if present is not None else {}))
    s.commit()
    return ImportOutcome(imp.id, kind, len(frame), added, replaced, digest)


UPLOAD_SUFFIXES = (".csv", ".xlsx", ".xlsm")


class BadUpload(ValueError):
    """An uploaded file that is not CSV or XLSX (by its name)."""


@contextmanager
def saved_upload(upload):
    """An uploaded CSV or XLSX (a werkzeug FileStorage) saved to a temporary file: (its own
    name, the path), removed afterwards; BadUpload when it is neither."""
    name = Path(upload.filename or "upload").name
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        upload.close()
        raise BadUpload(f"不支持的文件类型 {suffix or '（无扩展名）'}")
    with tempfile.TemporaryDirectory(prefix="innopoints-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        try:
            upload.save(path)
        finally:
            upload.close()          # a large upload is spooled to a temporary file: free it now
        yield name, path


def import_upload(s, upload, kind, user, source=None) -> ImportOutcome:
    """Import an uploaded file (a werkzeug FileStorage) as `import_file` does, under its
    own name; raise BadUpload when it is not CSV or XLSX."""
    with saved_upload(upload) as (name, path):
        return import_file(s, path, kind, user, filename=name, limits=upload_limits(), source=source)


def upload_limits() -> UploadLimits:
    from flask import current_app
    c = current_app.config
    return UploadLimits(c["IMPORT_MAX_EXPANDED_BYTES"], c["IMPORT_MAX_RATIO"], c["IMPORT_MAX_CELLS"],
                        c["IMPORT_MAX_MEMBERS"], c["IMPORT_SLICE_ABOVE_BYTES"], c["IMPORT_SLICE_ROWS"],
                        c["IMPORT_SHOWN_BAD_CELLS"])


def _existing_keys(s, column_pairs, keys):
    """Which of the (credit code, year) `keys` are stored: by chunks of 500 for a few keys;
    for many (a zone's file), the stored keys of the file's years in one query."""
    if len(keys) > 5000:
        code_col, year_col = column_pairs
        wanted = set(keys)
        rows = s.execute(select(code_col, year_col).where(year_col.in_({y for _, y in wanted})))
        return {tuple(r) for r in rows if tuple(r) in wanted}
    found = set()
    for i in range(0, len(keys), 500):
        part = keys[i:i + 500]
        found.update(tuple(r) for r in s.execute(select(*column_pairs).where(tuple_(*column_pairs).in_(part))))
    return found


def _replace_records(s, frame, import_id, tick, data):
    # the identity columns first; each row's JSON a slice of rows at a time, inserted as made
    # (all at once, a zone's JSON is hundreds of MB of fresh memory, slow to touch)
    cols = {f.key: _python_values(f, frame[f.key].to_numpy(), data) for f in IDENTITY}
    n = len(frame)
    cols["import_id"] = [import_id] * n
    cols["updated_at"] = [utcnow()] * n
    keys = list(zip(cols["credit_code"], cols["year"]))
    existing = _existing_keys(s, (records_table.c.credit_code, records_table.c.year), keys)
    # enterprises: identity from each enterprise's latest year in the file
    latest = {}
    for i, (code, year) in enumerate(keys):
        if code not in latest or year >= latest[code]["year"]:
            latest[code] = {"year": year, **{k: cols[k][i] for k in IDENTITY_KEYS}}
    known = set()
    codes = list(latest)
    for i in range(0, len(codes), 500):
        known.update(s.scalars(select(Enterprise.credit_code).where(Enterprise.credit_code.in_(codes[i:i + 500]))))
    # text columns hold "" for a missing value; the date stays None
    ident = {code: {k: r[k] if r[k] is not None or k == "registered_on" else "" for k in IDENTITY_KEYS}
             for code, r in latest.items()}
    t = Enterprise.__table__
    if known:
        s.execute(update(t).where(t.c.credit_code == bindparam("b_code")).values(
            **{k: bindparam(f"b_{k}") for k in IDENTITY_KEYS}),
            [{"b_code": c, **{f"b_{k}": v for k, v in ident[c].items()}} for c in known])
    bulk_insert(s, t, ["credit_code", *IDENTITY_KEYS, "credit_consent"],
                [(c, *ident[c].values(), False) for c in codes if c not in known])
    for i in range(0, len(keys), 500):
        part = [k for k in keys[i:i + 500] if k in existing]
        if part:
            s.execute(delete(records_table).where(
                tuple_(records_table.c.credit_code, records_table.c.year).in_(part)))
    names = list(cols) + ["data"]
    # the next slice's JSON is made on a thread while this one is inserted (arrow and the
    # database drivers let go of the GIL)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1, thread_name_prefix="records-json") as pool:
        ahead = pool.submit(_data_json, frame.iloc[0:SLICE], data)
        for i in range(0, n, SLICE):
            part = ahead.result()
            if i + SLICE < n:
                ahead = pool.submit(_data_json, frame.iloc[i + SLICE:i + 2 * SLICE], data)
            bulk_insert(s, records_table, names, list(zip(*[c[i:i + SLICE] for c in cols.values()], part)), tick)
            del part
    return n - len(existing), len(existing)


def _ownership_errors(table, data, user, source) -> list:
    """A department user's file may hold the identity columns and the fields its source
    owns; every other field column is a bad header cell naming the field's owner."""
    if user is None or user.role != "department":
        return []
    mine = data.source(user.source)
    headers = by_header(data.record_fields)
    out = []
    for col in table.columns:
        f = headers.get(col)
        if f is None or f.key in RECORD_IDENTITY or f.source == user.source:
            continue
        owner = data.source_name(f.source) if f.source else "区科学技术局工作人员"
        out.append(BadCell(1, col, col, f"「{f.label}」由{owner}报送，{mine.name if mine else user.source}不能导入此列",
                           f"{f.key} is owned by {f.source or 'officers'}; {user.source} may not import it"))
    return out


def _absent_required(s, frame, table, data) -> list:
    """For a rejected partial file: the required columns it lacks, when some of its rows
    name an enterprise-year not stored yet (which those columns would have to make)."""
    headers = by_header(data.record_fields)
    have = {getattr(headers.get(c), "key", None) for c in table.columns}
    lacking = [f for f in data.record_fields if f.required and f.key not in have]
    if not lacking or frame is None or "credit_code" not in frame or "year" not in frame:
        return []
    keys = {(str(c), int(y)) for c, y in zip(frame["credit_code"], frame["year"]) if y == y and c}
    stored = _existing_keys(s, (records_table.c.credit_code, records_table.c.year), list(keys)) if keys else set()
    if keys <= stored:
        return []
    return [BadCell(1, f.key, "", f"缺少必填列「{f.label}」（文件中有尚未存储的企业年度，新建记录须包含此列）",
                    f"required column {f.key} is missing (the file names enterprise-years not stored yet)")
            for f in lacking]


def _row_source(f, user, source):
    """The source a value of field `f` is recorded under: the department's, the one the
    officer named, else the field's own."""
    if user is not None and user.role == "department":
        return user.source or ""
    return source or f.source


def _provenance_of_file(s, frame, import_id, user, source):
    """Provenance of a file that replaced whole enterprise-years: one row per enterprise-year
    for all its values (field `*`; under the source the officer named, else each field's own),
    in the file's order: made in the database from the records the file stored, by one
    INSERT ... SELECT (a zone's file is hundreds of thousands of them)."""
    from sqlalchemy import Boolean, DateTime, Integer, String, insert, literal
    from .models import Provenance
    from .provenance import ALL_FIELDS
    r = records_table
    rows = select(r.c.credit_code, r.c.year, literal(ALL_FIELDS, String), literal("", String),
                  literal(source or "", String), literal("import", String), r.c.import_id,
                  literal(user.id if user else None, Integer), literal(utcnow(), DateTime), literal(True, Boolean)) \
        .where(r.c.import_id == import_id).order_by(r.c.id)      # records were stored in the file's order
    s.execute(insert(Provenance.__table__).from_select(
        ["credit_code", "year", "field", "value", "source", "kind", "import_id", "user_id", "at", "applied"], rows))


def _merge_records(s, frame, present, imp, user, data, source):
    """Merge a partial file into the stored records, field by field: for each row, each
    column the file holds with a non-empty cell. A stored value given by another source
    that differs opens a conflict and the package's precedence decides which is kept. An
    enterprise-year not stored yet is made only when the row holds every required column
    (else the whole file is refused, naming the row). Returns (added, updated, conflicts)."""
    from .provenance import add_rows, current, merge_value, open_conflict
    department = user is not None and user.role == "department"
    n = len(frame)
    field_keys = [k for k in present if k not in RECORD_IDENTITY]
    ident_keys = [k for k in present if k in IDENTITY_KEYS]
    values = {k: _python_values(data.field(k), frame[k].to_numpy(), data) for k in present}
    keys = [(c, int(y)) for c, y in zip(values["credit_code"], values["year"])]
    stored = {}
    for i in range(0, n, 500):
        part = keys[i:i + 500]
        for rec in s.scalars(select(Record).where(tuple_(records_table.c.credit_code, records_table.c.year).in_(part))):
            stored[rec.credit_code, rec.year] = rec
    required = [f for f in data.record_fields if f.required and f.key not in PARTIAL_KEYS]
    bad = []
    for i, key in enumerate(keys):
        if key in stored:
            continue
        lacking = [f for f in required if f.key not in values or values[f.key][i] is None]
        if lacking:
            names = "、".join(f"「{f.label}」" for f in lacking)
            for f in lacking:
                bad.append(BadCell(i + 2 if f.key in values else 1, f.key, "",
                                   f"{key[0]} 尚无 {key[1]} 年度记录：新建记录须填写必填列{names}（缺少必填列「{f.label}」）",
                                   f"{key[0]} has no {key[1]} record yet: a new record needs {f.key}"))
    if bad:
        raise InputError(imp.filename, bad)
    prov = current(s, [k for k in keys if k in stored], field_keys, data)
    uid = user.id if user else None
    now = utcnow()
    rows, pending, added, updated = [], [], 0, 0
    known = set(s.scalars(select(Enterprise.credit_code).where(
        Enterprise.credit_code.in_(list({k[0] for k in keys if k not in stored})))))
    for i, (code, year) in enumerate(keys):
        rec = stored.get((code, year))
        ident = {k: values[k][i] for k in ident_keys if k not in PARTIAL_KEYS and values[k][i] not in (None, "")}
        if rec is None:
            if code not in known:
                s.add(Enterprise(credit_code=code, **{k: ident.get(k, "" if k != "registered_on" else None)
                                                      for k in IDENTITY_KEYS}, credit_consent=False))
                known.add(code)
            rec = Record(credit_code=code, year=year, data={}, import_id=imp.id, updated_at=now,
                         **{k: ident.get(k, "" if k != "registered_on" else None) for k in IDENTITY_KEYS})
            s.add(rec)
            stored[code, year] = rec
            added += 1
        else:
            if not department:            # a department's name column identifies; it renames nothing
                for k, v in ident.items():
                    setattr(rec, k, v)
            updated += 1
        new_data = dict(rec.values())
        for k in field_keys:
            v = values[k][i]
            if v is None:
                continue
            f = data.field(k)
            src = _row_source(f, user, source)
            held = prov.get((code, year, k))
            apply, clash = merge_value(data, new_data.get(k), held.source if held else None, v, src)
            row = {"credit_code": code, "year": year, "field": k, "value": text_of(v), "source": src,
                   "kind": "import", "import_id": imp.id, "user_id": uid, "at": now, "applied": apply}
            rows.append(row)
            if clash:
                pending.append((row, held, new_data.get(k), apply))
            if apply:
                new_data[k] = v
        rec.data = new_data
        rec.updated_at = now
        if ident and code in known and not department:
            ent = s.get(Enterprise, code)
            if ent is not None:
                for k, v in ident.items():
                    setattr(ent, k, v)
    s.flush()
    add_rows(s, rows)
    s.flush()
    conflicts = 0
    if pending:
        from .models import Provenance
        ids = {(p.credit_code, p.year, p.field): p.id for p in s.scalars(
            select(Provenance).where(Provenance.import_id == imp.id))}
        for row, held, old, apply in pending:
            mine = ids.get((row["credit_code"], row["year"], row["field"]))
            if apply:
                open_conflict(s, row["credit_code"], row["year"], row["field"], row["value"], row["source"], mine,
                              old, held.source, held.id)
            else:
                open_conflict(s, row["credit_code"], row["year"], row["field"], old, held.source, held.id,
                              row["value"], row["source"], mine)
            conflicts += 1
        audit(s, user, "conflict.open", f"import:{imp.id}", conflicts=conflicts)
    return added, updated, conflicts


def _replace_contracts(s, frame, import_id, tick):
    dates = np.asarray(frame["registered_on"].to_numpy(), dtype="datetime64[D]").astype(object).tolist()
    rows = list(zip(frame["contract_no"].tolist(), frame["credit_code"].tolist(), frame["kind"].tolist(),
                    frame["amount"].tolist(), dates, [import_id] * len(frame)))
    nos = [r[0] for r in rows]
    existing = set()
    if len(nos) > 5000:          # a zone's file: the stored numbers in one query, then delete only those
        wanted = set(nos)
        existing = {n for n in s.scalars(select(Contract.contract_no)) if n in wanted}
        stored = [n for n in nos if n in existing]
        for i in range(0, len(stored), 500):
            s.execute(delete(Contract).where(Contract.contract_no.in_(stored[i:i + 500])))
    else:
        for i in range(0, len(nos), 500):
            existing.update(s.scalars(select(Contract.contract_no).where(Contract.contract_no.in_(nos[i:i + 500]))))
            s.execute(delete(Contract).where(Contract.contract_no.in_(nos[i:i + 500])))
    bulk_insert(s, Contract.__table__, ["contract_no", "credit_code", "kind", "amount", "registered_on", "import_id"],
                rows, tick)
    return len(rows) - len(existing), len(existing)


# ---- the approved data as files: what a run reads --------------------------------------

ARROW_TYPES = {"code": pa.string(), "text": pa.string(), "date": pa.date32(), "year": pa.int64(), "count": pa.int64(),
               "amount": pa.float64(), "signed": pa.float64(), "ratio": pa.float64(), "bool": pa.bool_(),
               "stage": pa.string(), "choice": pa.string()}


def _write_table(path, table):
    # numbers, dates and yes/no print as the loader reads them back (shortest round-trip
    # text for floats); text is quoted; a missing value is an empty cell
    pacsv.write_csv(table, str(path), write_options=pacsv.WriteOptions(quoting_style="needed"))


def parse_data_json(texts, fields) -> list:
    """The values of `fields` (the dictionary's, or any objects with a key and a kind) in
    records' JSON texts (one JSON object per record, no line breaks), one typed array per
    field: parsed by arrow's JSON reader, not one json.loads per record (a run's snapshot
    reads the stored values so)."""
    import io
    import pyarrow.json as pajson
    fields = list(fields)
    # dates travel as text in the JSON: read as text, then as dates
    # integers are read as floats and cast (a stored 3.0 is 3; 3.5 is refused by the cast)
    schema = pa.schema([(f.key, pa.string() if f.kind == "date" else pa.float64() if ARROW_TYPES[f.kind] == pa.int64()
                         else ARROW_TYPES[f.kind]) for f in fields])
    if texts and fields:
        parsed = pajson.read_json(io.BytesIO("\n".join(texts).encode("utf-8")),
                                  parse_options=pajson.ParseOptions(explicit_schema=schema,
                                                                    unexpected_field_behavior="ignore"),
                                  read_options=pajson.ReadOptions(block_size=1 << 24))
        values = [parsed.column(f.key).combine_chunks() for f in fields]
    else:
        values = [pa.nulls(len(texts), ARROW_TYPES[f.kind]) for f in fields]
    return [pc.cast(v, pa.date32()) if f.kind == "date" else pc.cast(v, ARROW_TYPES[f.kind])
            for v, f in zip(values, fields)]


def fetch_slices(s, q, types, size=None):
    """The rows of a Core query, `size` rows at a time, as arrow columns of `types`, read
    through the driver's cursor (no conversion per value on the way: a zone's snapshot reads
    millions of them; by slices, its memory is reused rather than fresh). Dates are to be
    selected as text (`cast(c, Text)`): both drivers give ISO text, read as dates by arrow.
    A type None keeps that column as the driver's values (a tuple)."""
    conn = s.connection()
    sql = str(q.compile(conn, compile_kwargs={"literal_binds": True}))
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(sql)
        while True:
            rows = cur.fetchmany(size or SLICE)
            if not rows:
                break
            columns = list(zip(*rows))
            del rows
            yield [c if ty is None else pc.cast(pa.array(c, pa.string()), ty) if pa.types.is_date(ty)
                   else pa.array(c, ty) for c, ty in zip(columns, types)]
    finally:
        cur.close()


def fetch_columns(s, q, types) -> list:
    """All the rows of a Core query as arrow columns of `types` (see `fetch_slices`)."""
    parts = list(fetch_slices(s, q, [t or pa.string() for t in types]))
    if not parts:
        return [pa.array([], t or pa.string()) for t in types]
    return [pa.concat_arrays([p[j] for p in parts]) for j in range(len(types))]


def _records_table(s, data) -> pa.Table:
    """Every stored record (identity columns, then the dictionary's fields), sorted by credit
    code and year, as a typed table."""
    from sqlalchemy import Text, cast
    ident = list(RECORD_IDENTITY)
    kinds = {f.key: f.kind for f in IDENTITY}
    # in the table's own order, sorted here: SQLite's ORDER BY walks the (credit_code, year)
    # index and fetches each row from the table, 0.7 s instead of 0.3 s at 160k records
    q = select(*[cast(records_table.c[k], Text) if kinds[k] == "date" else records_table.c[k] for k in ident],
               cast(records_table.c.data, Text))
    fields = list(data.fields)
    types = [ARROW_TYPES[kinds[k]] for k in ident]
    # read at once: arrow parses a large text on several threads (by slices it is slower)
    for *arrays, texts in fetch_slices(s, q, types + [None], size=1 << 30):
        order = pc.sort_indices(pa.table(arrays, names=ident), [("credit_code", "ascending"), ("year", "ascending")])
        texts = np.asarray(texts, dtype=object)[order.to_numpy()]
        texts = [x or "{}" for x in texts]
        return pa.table([a.take(order) for a in arrays] + parse_data_json(texts, fields),
                        names=ident + [f.key for f in fields])
    return pa.table([pa.array([], ty) for ty in types] + parse_data_json([], fields),
                    names=ident + [f.key for f in fields])


def snapshot(s, folder, data=None) -> dict:
    """Write every stored record and contract as import files (English keys, sorted), the
    exact input of a run, with the fields of the package's dictionary (`data`: the run's
    policy; the policy in force by default); returns their paths and the data checksum,
    and where each value came from (`provenance`: the compact file; `provenance_table`)."""
    folder = Path(folder)
    data = data or shape.data(s)
    rec_path, con_path = folder / "records.csv", folder / "contracts.csv"
    table = _records_table(s, data)
    _write_table(rec_path, table)
    ckeys = [f.key for f in CONTRACT_FIELDS]
    ctypes = [pa.string()] * 4 + [pa.date32()]
    from sqlalchemy import Text, cast
    c = Contract.__table__.c
    cq = select(*[cast(c[k], Text) if pa.types.is_date(ty) else c[k] for k, ty in zip(ckeys, ctypes)])
    contracts = pa.table(fetch_columns(s, cq, ctypes), names=ckeys)          # sorted here, as the records
    _write_table(con_path, contracts.take(pc.sort_indices(contracts, [("contract_no", "ascending")])))
    h = hashlib.sha256()
    for p in (rec_path, con_path):
        h.update(p.read_bytes())
    from .provenance import snapshot_provenance
    prov_path = folder / "provenance_records.parquet"   # where each value read came from
    prov = snapshot_provenance(s, prov_path, table, data)
    return {"records": rec_path, "contracts": con_path, "provenance": prov_path, "provenance_table": prov,
            "sha256": h.hexdigest()}


# ---- one field: officers' corrections and enterprises' declarations ----------------------

class FieldRejected(Exception):
    def __init__(self, cells):
        self.cells = cells
        super().__init__("; ".join(str(c) for c in cells))


def checked_value(rec, key: str, value):
    """The record with `key` set to `value`, validated as an import row would be; returns
    the stored value, or raises FieldRejected with the bad cell."""
    data = shape.data()
    if data.field(key) is None or key in ("credit_code", "year"):
        raise FieldRejected([BadCell(0, key, str(key), "不能修改的字段或未知字段", "unknown or unchangeable field")])
    row = record_text(rec, data)
    row[key] = "" if value is None else str(value)
    try:
        frame = records_from_table(table_from_rows([row]), "record", data=data)
    except InputError as exc:
        raise FieldRejected(exc.cells) from None
    return _db_values(frame, data)[0].get(key)


def has_records(s, year) -> bool:
    """Whether any enterprise-year record of `year` is stored: one row looked up by the year's
    index, not all of them counted (a province's year is a million rows, and `POST /api/runs`
    asks this in a serving process)."""
    return s.scalar(select(records_table.c.year).where(records_table.c.year == year).limit(1)) is not None


def get_record(s, code, year):
    return s.scalar(select(Record).where(records_table.c.credit_code == code, records_table.c.year == year))


def correct_field(s, rec, key, value, user, reason="", declaration_id=None):
    """An officer's correction of one field of one record, with its audit entry and its
    provenance: a correction (under the field's own source), or an enterprise's approved
    declaration (under the package's declared source). Either decides the field's open
    conflicts."""
    from .provenance import add_rows, resolve_open
    new = checked_value(rec, key, value)
    old = rec.get(key)
    rec.set(key, new)
    rec.updated_at = utcnow()
    if key not in IDENTITY_KEYS:
        data = shape.data()
        f = data.field(key)
        declared = data.source_of_kind("declared")
        src = (declared.key if declared else "") if declaration_id is not None else (f.source if f else "")
        add_rows(s, [{"credit_code": rec.credit_code, "year": rec.year, "field": key, "value": text_of(new),
                      "source": src, "kind": "declaration" if declaration_id is not None else "correction",
                      "declaration_id": declaration_id, "user_id": user.id if user else None}])
        resolve_open(s, user, rec.credit_code, rec.year, key,
                     f"自主申报 #{declaration_id} 审核通过" if declaration_id is not None else f"工作人员更正为 {text_of(new)}：{reason}")
    if key in IDENTITY_KEYS:
        ent = s.get(Enterprise, rec.credit_code)
        latest = s.scalar(select(records_table.c.year).where(records_table.c.credit_code == rec.credit_code)
                          .order_by(records_table.c.year.desc()).limit(1))
        if ent is not None and latest == rec.year:
            setattr(ent, key, new if new is not None else "")
    audit(s, user, "record.correct", f"{rec.credit_code}/{rec.year}", field=key, old=text_of(old),
          new=text_of(new), reason=reason)
    return old, new


def declare(s, user, code, year, key, value, reason):
    rec = get_record(s, code, year)
    if rec is None:
        raise LookupError(f"{code} 没有 {year} 年度的记录")
    checked_value(rec, key, value)          # validated now; applied only when approved
    d = Declaration(credit_code=code, year=year, field=key, value=str(value), previous=text_of(rec.get(key)),
                    reason=reason or "", submitted_by=user.id)
    s.add(d)
    s.flush()
    audit(s, user, "declaration.submit", f"{code}/{year}", declaration=d.id, field=key, value=str(value))
    return d


class DecisionError(Exception):
    pass


def decide(s, user, decl: Declaration, approve: bool, reason: str):
    """An officer's decision; an approved declaration is applied to the record (and audited
    as a correction)."""
    if decl.status != "pending":
        raise DecisionError(f"申报已{ {'approved': '通过', 'rejected': '驳回'}.get(decl.status, decl.status) }，不能再次审核")
    if approve:
        rec = get_record(s, decl.credit_code, decl.year)
        if rec is None:
            raise DecisionError("该年度记录已不存在")
        correct_field(s, rec, decl.field, decl.value, user, reason=f"自主申报 #{decl.id} 审核通过：{reason}",
                      declaration_id=decl.id)
    decl.status = "approved" if approve else "rejected"
    decl.decided_by = user.id
    decl.decided_at = utcnow()
    decl.decision_reason = reason or ""
    audit(s, user, f"declaration.{decl.status}", f"{decl.credit_code}/{decl.year}", declaration=decl.id,
          reason=reason)


# ---- evidence files of a declaration ------------------------------------------------------------------

# evidence files (of a declaration, of an objection): what a file's name says it is, and the
# bytes such a file starts with (None: UTF-8 text)
EVIDENCE_TYPES = {".pdf": ("application/pdf", (b"%PDF-",)), ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
                  ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)), ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
                  ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
                  ".csv": ("text/csv", None)}
DECLARATION_EVIDENCE = (".pdf", ".png", ".jpg", ".jpeg")
EVIDENCE_PER_DECLARATION = 5


def evidence_kind(filename: str, head: bytes):
    """(suffix, content type, whether the first bytes are what the name says) of an evidence
    file; the content type is None for a suffix no evidence may have."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in EVIDENCE_TYPES:
        return suffix, None, False
    ctype, magic = EVIDENCE_TYPES[suffix]
    if magic is not None:
        return suffix, ctype, any(head.startswith(m) for m in magic)
    try:
        head.decode("utf-8")
        return suffix, ctype, True
    except UnicodeDecodeError as exc:
        return suffix, ctype, exc.start >= len(head) - 4       # a character cut at the end of the head is fine


class EvidenceRejected(ValueError):
    """An evidence file refused, with the reason in Chinese."""


def evidence_type(filename: str, head: bytes) -> str:
    """The file's type when its name and its first bytes agree on PDF, PNG or JPEG."""
    suffix, ctype, agrees = evidence_kind(filename, head)
    if suffix in DECLARATION_EVIDENCE and agrees:
        return ctype
    raise EvidenceRejected("证明材料只接受 PDF、PNG 或 JPEG 文件（文件名后缀与文件内容须一致）")


def attach_evidence(s, user, decl, upload, max_bytes) -> "DeclarationEvidence":
    """Keep an uploaded file as evidence of `decl`: at most `max_bytes` (read no further),
    a PDF/PNG/JPEG by its content; audited."""
    from .models import DeclarationEvidence
    from sqlalchemy import func
    n = s.scalar(select(func.count()).select_from(DeclarationEvidence)
                 .where(DeclarationEvidence.declaration_id == decl.id))
    if n >= EVIDENCE_PER_DECLARATION:
        raise EvidenceRejected(f"每项申报最多 {EVIDENCE_PER_DECLARATION} 个证明材料")
    data = upload.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise EvidenceRejected(f"证明材料不能超过 {max_bytes // 2**20} MB")
    if not data:
        raise EvidenceRejected("证明材料是空文件")
    filename = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1][:200]
    ctype = evidence_type(filename, data[:16])
    ev = DeclarationEvidence(declaration_id=decl.id, filename=filename, content_type=ctype, size=len(data),
                             sha256=sha256_bytes(data), content=data, uploaded_by=user.id)
    s.add(ev)
    s.flush()
    audit(s, user, "declaration.evidence", f"{decl.credit_code}/{decl.year}", declaration=decl.id,
          filename=filename, size=len(data), sha256=ev.sha256)
    return ev
