"""Reading and validating enterprise records and technical contracts (SPEC §3).

A file is read whole as text, every cell is checked column by column (vectorised, so a
million-row file is checked in seconds), and either every bad cell is reported or the typed
table is returned. Nothing downstream ever sees a half-valid file.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .fields import (CONTRACT_FIELDS, CONTRACT_KINDS, FALSE_WORDS, RATINGS, RECORD_FIELDS,
                     STAGE_LEVEL, STAGES, TRUE_WORDS, by_header)

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


def read_table(path) -> pd.DataFrame:
    """Read a CSV or XLSX file into a frame of stripped strings ('' for an empty cell)."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), [BadCell(0, "", "", "文件不存在", "file not found")])
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                         engine="pyarrow")
    except UnicodeDecodeError:
        raise InputError(str(path), [BadCell(0, "", "", "文件不是 UTF-8 编码", "file is not UTF-8 text")])
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError) as exc:
        raise InputError(str(path), [BadCell(0, "", "", f"无法读取CSV：{exc}", f"cannot read CSV: {exc}")])
    return df.apply(lambda s: s.str.strip())


def _read_xlsx(path):
    import openpyxl
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise InputError(str(path), [BadCell(0, "", "", f"无法读取Excel：{exc}", f"cannot read XLSX: {exc}")])
    rows = wb.worksheets[0].iter_rows(values_only=True)
    header = next(rows, None)
    if not header:
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
    return pd.DataFrame(data, columns=[text(h) for h in header], dtype=str)


def _headers(df, fields, source):
    """Rename Chinese or English headers to keys; unknown or missing columns are bad cells."""
    known = by_header(fields)
    bad, rename, seen = [], {}, {}
    for col in df.columns:
        f = known.get(col)
        if f is None:
            bad.append(BadCell(1, col, col, "未知的列", "unknown column"))
        elif f.key in seen:
            bad.append(BadCell(1, col, col, f"与列「{seen[f.key]}」重复", f"same column as {seen[f.key]!r}"))
        else:
            rename[col] = f.key
            seen[f.key] = col
    for f in fields:
        if f.required and f.key not in seen:
            bad.append(BadCell(1, f.key, "", f"缺少必填列「{f.label}」", f"required column {f.key} is missing"))
    return df.rename(columns=rename)[list(rename.values())], bad


class _Checker:
    """Collects bad cells of one frame, column by column, with vectorised tests."""

    def __init__(self, df):
        self.df = df
        self.bad = []
        self.rows = np.arange(len(df)) + 2

    def flag(self, key, mask, zh, en):
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            vals = self.df[key].to_numpy()
            self.bad.extend(BadCell(int(r), key, str(v), zh, en)
                            for r, v in zip(self.rows[mask], vals[mask]))

    def missing(self, f, raw):
        empty = (raw == "").to_numpy()
        if f.required:
            self.flag(f.key, empty, f"必填项「{f.label}」为空", "required value is missing")
        return empty

    def number(self, f, raw, empty):
        num = pd.to_numeric(raw.where(~pd.Series(empty, index=raw.index), None), errors="coerce")
        num = num.astype("float64").to_numpy()
        notnum = ~empty & np.isnan(num)
        self.flag(f.key, notnum, "不是数字", "not a number")
        with np.errstate(invalid="ignore"):
            if f.kind in ("count", "amount", "ratio", "money", "year"):
                self.flag(f.key, num < 0, "不能为负数", "must not be negative")
            if f.kind in ("count", "year"):
                self.flag(f.key, (num >= 0) & (num != np.floor(num)), "必须是整数", "must be a whole number")
            if f.kind == "ratio":
                self.flag(f.key, num > 100, "比例不能超过100", "a ratio cannot exceed 100")
            if not np.isfinite(num[~np.isnan(num)]).all():
                self.flag(f.key, np.isinf(num), "不是有限数", "not a finite number")
        return num

    def words(self, f, raw, empty, table, zh, en):
        mapped = raw.str.lower().map(table)
        unknown = ~empty & mapped.isna().to_numpy()
        self.flag(f.key, unknown, zh, en)
        return mapped

    def date(self, f, raw, empty, today):
        d = pd.to_datetime(raw.str.replace("/", "-", regex=False), format="%Y-%m-%d", errors="coerce")
        nat = d.isna().to_numpy()
        self.flag(f.key, ~empty & nat, "不是有效日期（应为YYYY-MM-DD）", "not a valid date (YYYY-MM-DD)")
        self.flag(f.key, ~nat & (d > pd.Timestamp(today)).to_numpy(), "日期在未来", "date is in the future")
        return d.to_numpy().astype("datetime64[D]")

    def code(self, f, raw, empty):
        ok = check_credit_codes(raw.to_numpy(dtype=str))
        self.flag(f.key, ~empty & ~ok, "统一社会信用代码校验位错误或格式不符（GB 32100-2015）",
                  "credit code fails the GB 32100-2015 check character or format")
        return raw


def check_credit_codes(codes: np.ndarray) -> np.ndarray:
    """Vectorised GB 32100-2015 check: True where a code has 18 valid characters and the
    right check character."""
    codes = np.char.upper(codes.astype("U18"))
    good_len = np.char.str_len(codes) == 18
    lut = np.full(128, -1, dtype=np.int64)
    for i, ch in enumerate(CODE_CHARS):
        lut[ord(ch)] = i
    cp = codes.astype("U18").view(np.uint32).reshape(len(codes), 18)
    cp = np.where(cp < 128, cp, 0)
    vals = lut[cp]
    valid_chars = (vals >= 0).all(axis=1)
    check = (31 - (vals[:, :17] * CODE_WEIGHTS).sum(axis=1) % 31) % 31
    return good_len & valid_chars & (check == vals[:, 17])


def credit_code_with_check(first17: str) -> str:
    """Complete 17 characters with their check character (used by generators and tests)."""
    s = sum(CODE_CHARS.index(c) * w for c, w in zip(first17, CODE_WEIGHTS))
    return first17 + CODE_CHARS[(31 - s % 31) % 31]


BOOL_WORDS = {**{w: 1.0 for w in TRUE_WORDS}, **{w: 0.0 for w in FALSE_WORDS}}
STAGE_WORDS = {**{k: float(v) for k, v in STAGE_LEVEL.items()},
               **{zh: float(STAGE_LEVEL[k]) for k, zh in STAGES.items()}}
RATING_WORDS = {**{k: k for k in RATINGS}, **{zh: k for k, zh in RATINGS.items()}}
KIND_WORDS = {**{k: k for k in CONTRACT_KINDS}, **{zh: k for k, zh in CONTRACT_KINDS.items()},
              **{zh[2:]: k for k, zh in CONTRACT_KINDS.items()}}


def _typed(df, fields, source, today):
    """Validate every cell of `df` (headers already keys) and return the typed frame."""
    chk = _Checker(df)
    out = {}
    for f in fields:
        if f.key not in df.columns:
            continue
        raw = df[f.key]
        empty = chk.missing(f, raw)
        if f.kind in ("count", "amount", "signed", "ratio"):
            out[f.key] = chk.number(f, raw, empty)
        elif f.kind == "year":
            num = chk.number(f, raw, empty)
            chk.flag(f.key, num > today.year, "年度在未来", "year is in the future")
            out[f.key] = num
        elif f.kind == "money":
            chk.number(f, raw, empty)
            out[f.key] = raw.to_numpy(dtype=object)  # kept as text: parsed to Decimal, never float
        elif f.kind == "bool":
            out[f.key] = chk.words(f, raw, empty, BOOL_WORDS, "不是是/否值", "not a yes/no value").to_numpy(dtype="float64")
        elif f.kind == "stage":
            out[f.key] = chk.words(f, raw, empty, STAGE_WORDS, "未知的发展阶段", "unknown stage").to_numpy(dtype="float64")
        elif f.kind == "rating":
            out[f.key] = chk.words(f, raw, empty, RATING_WORDS, "未知的环境信用等级", "unknown rating").fillna("").to_numpy(dtype=object)
        elif f.kind == "contract_kind":
            out[f.key] = chk.words(f, raw, empty, KIND_WORDS, "未知的合同类别", "unknown contract kind").fillna("").to_numpy(dtype=object)
        elif f.kind == "date":
            out[f.key] = chk.date(f, raw, empty, today)
        elif f.kind == "code":
            out[f.key] = chk.code(f, raw, empty).str.upper().to_numpy(dtype=object)
        else:
            out[f.key] = raw.to_numpy(dtype=object)
    return pd.DataFrame(out), chk


def load_records(path, today=None) -> pd.DataFrame:
    """Read and validate an enterprise-records file; raise InputError listing every bad cell."""
    today = today or dt.date.today()
    df = read_table(path)
    df, bad = _headers(df, RECORD_FIELDS, str(path))
    typed, chk = _typed(df, RECORD_FIELDS, str(path), today)
    bad += chk.bad
    if "credit_code" in typed and "year" in typed:
        key = pd.DataFrame({"c": typed["credit_code"], "y": typed["year"]})
        dup = key.duplicated(keep="first").to_numpy()
        chk.bad.clear()
        chk.flag("year", dup, "同一企业同一年度的记录重复", "duplicate enterprise-year record")
        bad += chk.bad
    if bad:
        raise InputError(str(path), bad, typed)
    for f in RECORD_FIELDS:  # optional columns absent from the file are all-missing
        if f.key not in typed:
            typed[f.key] = _empty_column(f, len(typed))
    typed["year"] = typed["year"].astype("int64")
    return typed


def _empty_column(f, n):
    if f.kind in ("text", "code", "rating", "contract_kind"):
        return np.full(n, "", dtype=object)
    if f.kind == "date":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    return np.full(n, np.nan)


def load_contracts(path, known_codes=None, today=None) -> pd.DataFrame:
    """Read and validate a technical-contracts file (SPEC §3). `known_codes`, when given, is
    the set of credit codes in the records: a contract of any other enterprise is bad."""
    today = today or dt.date.today()
    df = read_table(path)
    df, bad = _headers(df, CONTRACT_FIELDS, str(path))
    typed, chk = _typed(df, CONTRACT_FIELDS, str(path), today)
    bad += chk.bad
    chk.bad.clear()
    if "contract_no" in typed:
        chk.flag("contract_no", typed["contract_no"].duplicated().to_numpy() & (df["contract_no"] != "").to_numpy(),
                 "合同登记编号重复", "duplicate contract number")
    if known_codes is not None and "credit_code" in typed:
        unknown = ~typed["credit_code"].isin(known_codes).to_numpy() & (df["credit_code"] != "").to_numpy()
        chk.flag("credit_code", unknown, "记录中没有该企业", "no such enterprise in the records")
    bad += chk.bad
    if bad:
        raise InputError(str(path), bad)
    return typed
