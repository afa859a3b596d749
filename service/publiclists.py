"""Published lists (公开数据, §四.(一)): an officer imports a list that a government body
published — for example the province's newly recognised high-tech enterprises — and it sets
one declared field for the enterprises on it. A row is matched by credit code, else by the
exact enterprise name; a name that matches no stored enterprise, or several, is held for an
officer to review instead of guessed. Values are stored under the package's public source,
with their provenance; a value another source gave differently is a conflict."""
from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import func, select

from rules.records import InputError, read_table, records_from_table, table_from_rows, credit_code_with_check

from . import shape
from .models import Enterprise, PublicList, PublicListEntry
from .provenance import apply_value
from .store import BadUpload, audit, check_bounds, get_record, saved_upload, sha256_file, upload_limits

CODE_HEADERS = ("credit_code", "统一社会信用代码", "信用代码")
NAME_HEADERS = ("name", "企业名称", "名称", "单位名称")
DATE_HEADERS = ("date", "日期", "认定日期", "公布日期", "发布日期")
STATUS_ZH = {"applied": "已设置", "unmatched": "未匹配（待复核）", "ambiguous": "匹配到多家（待复核）",
             "no_record": "该年度无记录（待复核）", "dismissed": "已驳回"}
HELD = ("unmatched", "ambiguous", "no_record")


class ListRejected(ValueError):
    pass


def _column(table, names):
    return next((table[n].to_pylist() for n in names if n in table), None)


def parse_date(text):
    """2022-12-30, 2022/12/30, 2022.12.30 or 2022年12月30日."""
    m = re.fullmatch(r"\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*", text or "")
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def typed_value(data, field, value):
    """The list's value for `field`, checked as an import cell would be (yes for a yes/no
    field by default)."""
    f = data.field(field)
    if f is None or field in ("credit_code", "year", "name", "park", "industry", "registered_on"):
        raise ListRejected(f"未知或不能由名单设置的字段 {field}")
    if not value:
        if f.kind != "bool":
            raise ListRejected(f"字段「{f.label}」不是是/否字段：请给出名单设置的值")
        value = "是"
    code = credit_code_with_check("91410700MA9XAMPL0"[:17])
    try:
        frame, _ = records_from_table(table_from_rows([{"credit_code": code, "year": "2000", field: value}]),
                                      "list", data=data, partial=True)
    except InputError as exc:
        raise ListRejected("；".join(c.reason_zh for c in exc.cells)) from None
    from .store import _python_values
    return _python_values(f, frame[field].to_numpy(), data)[0]


def import_list(s, upload, title, field, value, year, user) -> PublicList:
    """Read a published list (CSV/XLSX; columns: credit code and/or name, and a date), set
    `field` for the rows that match one stored enterprise-year, hold the others."""
    data = shape.data(s)
    public = data.source_of_kind("public")
    if public is None:
        raise ListRejected("数据字典没有声明公开数据来源（sources 中 kind: public）")
    typed = typed_value(data, field, value)
    try:
        with saved_upload(upload) as (name, path):
            check_bounds(path, upload_limits())
            table = read_table(path)
            digest = sha256_file(path)
    except BadUpload as exc:
        raise ListRejected(f"{exc}：只接受 .csv 或 .xlsx") from None
    except InputError as exc:
        raise ListRejected("；".join(c.reason_zh for c in exc.cells)) from None
    codes, names, dates = _column(table, CODE_HEADERS), _column(table, NAME_HEADERS), _column(table, DATE_HEADERS)
    if codes is None and names is None:
        raise ListRejected("名单须有「统一社会信用代码」或「企业名称」列")
    if dates is None and year is None:
        raise ListRejected("名单须有「日期」列，或指定评价年度")
    pl = PublicList(title=title, field=field, value=str(value or "是"), year=year, filename=name, sha256=digest,
                    user_id=user.id if user else None, rows=table.n)
    s.add(pl)
    s.flush()
    applied = held = conflicts = 0
    for i in range(table.n):
        code = (codes[i] or "").strip().upper() if codes else ""
        ent_name = (names[i] or "").strip() if names else ""
        listed_on = parse_date(dates[i]) if dates else None
        e = PublicListEntry(list_id=pl.id, row=i + 2, credit_code=code, name=ent_name, listed_on=listed_on,
                            year=year or (listed_on.year if listed_on else None), candidates="[]", note="",
                            status="unmatched")
        s.add(e)
        if code:
            match = [code] if s.get(Enterprise, code) is not None else []
        elif ent_name:
            match = list(s.scalars(select(Enterprise.credit_code).where(func.trim(Enterprise.name) == ent_name)
                                   .order_by(Enterprise.credit_code)))
        else:
            match = []
        if len(match) == 1:
            e.credit_code = match[0]
            conflicts += _apply(s, e, pl, typed, public.key, user)
        else:
            e.status = "unmatched" if not match else "ambiguous"
            e.candidates = json.dumps(match)
            e.note = "没有匹配到已存储的企业" if not match else f"名称匹配到 {len(match)} 家企业，请指定"
        if e.status == "applied":
            applied += 1
        else:
            held += 1
    pl.applied, pl.held = applied, held
    audit(s, user, "public_list.import", name, list_id=pl.id, title=title, field=field, rows=table.n,
          applied=applied, held=held, conflicts=conflicts, sha256=digest)
    return pl


def _apply(s, e, pl, typed, source, user) -> int:
    if e.year is None:
        e.status, e.note = "no_record", "没有日期，无法确定年度"
        return 0
    rec = get_record(s, e.credit_code, e.year)
    if rec is None:
        e.status, e.note = "no_record", f"该企业没有 {e.year} 年度记录"
        return 0
    e.status = "applied"
    return int(apply_value(s, rec, pl.field, typed, source, "public_list", user, public_list_id=pl.id))


def decide_entry(s, e, credit_code, reason, user):
    """An officer's review of a held row: the enterprise it means (the field is set), or
    dismissed."""
    if e.status not in HELD:
        raise ListRejected("该行不在待复核状态")
    pl = s.get(PublicList, e.list_id)
    if credit_code:
        if s.get(Enterprise, credit_code) is None:
            raise ListRejected(f"没有企业 {credit_code}")
        e.credit_code = credit_code
        _apply(s, e, pl, typed_value(shape.data(s), pl.field, "" if pl.value == "是" else pl.value),
               shape.data(s).source_of_kind("public").key, user)
        if e.status == "applied":
            pl.applied += 1
            pl.held -= 1
    else:
        e.status = "dismissed"
        pl.held -= 1
    e.note = (e.note + "；" if e.note else "") + f"复核：{reason}" if reason else e.note
    audit(s, user, "public_list.review", f"list:{pl.id}", entry=e.id, row=e.row, status=e.status,
          credit_code=e.credit_code, reason=reason)


def entry_dict(e) -> dict:
    return {"id": e.id, "row": e.row, "credit_code": e.credit_code, "name": e.name,
            "listed_on": e.listed_on.isoformat() if e.listed_on else None, "year": e.year, "status": e.status,
            "status_zh": STATUS_ZH.get(e.status, e.status), "candidates": json.loads(e.candidates or "[]"),
            "note": e.note}


def list_dict(s, pl, entries=True) -> dict:
    data = shape.data(s)
    f = data.field(pl.field)
    d = {"id": pl.id, "title": pl.title, "field": pl.field, "field_zh": f.label if f else pl.field, "value": pl.value,
         "year": pl.year, "filename": pl.filename, "sha256": pl.sha256,
         "at": pl.at.isoformat(timespec="seconds") + "+00:00", "rows": pl.rows, "applied": pl.applied,
         "held": pl.held}
    if entries:
        d["entries"] = [entry_dict(e) for e in s.scalars(select(PublicListEntry).where(
            PublicListEntry.list_id == pl.id).order_by(PublicListEntry.row))]
    return d
