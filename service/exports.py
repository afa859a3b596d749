"""Every list as CSV or XLSX, with Chinese headers (导出)."""
from __future__ import annotations

import csv
import io
import re

from flask import Response


# a cell that a spreadsheet would take as a formula (OWASP, CSV injection): = + - @, tab, CR
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise(text: str) -> str:
    """Text that a spreadsheet shows as typed: a leading single quote before a cell that
    starts like a formula (a plain number such as -3.2 is left as it is)."""
    if text.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, (list, tuple)):
        v = ";".join(str(x) for x in v)
    elif isinstance(v, dict):
        v = "；".join(f"{k}: {x}" for k, x in v.items())
    return neutralise(v) if isinstance(v, str) else v


def csv_bytes(rows, columns) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([label for _, label in columns])
    for r in rows:
        w.writerow([_cell(r.get(k)) for k, _ in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")     # BOM: Excel opens it as UTF-8


def xlsx_bytes(rows, columns, sheet="数据") -> bytes:
    import openpyxl
    from openpyxl.styles import Font
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([label for _, label in columns])
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append([_xlsx_cell(ws, _cell(r.get(k))) for k, _ in columns])
    ws.freeze_panes = "A2"
    for i, (key, label) in enumerate(columns, start=1):
        letter = openpyxl.utils.get_column_letter(i)
        ws.column_dimensions[letter].width = max(10, min(40, 2 * len(label) + 2))
        if key.endswith("_yuan") or key in ("budget", "granted_a", "granted_b", "eligible_a", "eligible_b"):
            for row in range(2, ws.max_row + 1):      # money as a finance clerk reads it: 1,234,567
                ws[f"{letter}{row}"].number_format = "#,##0"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _xlsx_cell(ws, v):
    """Text as a text cell (never a formula), without the characters XML cannot carry."""
    if not isinstance(v, str):
        return v
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
    c = Cell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", v))
    c.data_type = "s"
    return c


MIME = {"csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def export_response(rows, columns, fmt, name) -> Response:
    data = csv_bytes(rows, columns) if fmt == "csv" else xlsx_bytes(rows, columns)
    return Response(data, content_type=MIME[fmt],
                    headers={"Content-Disposition": f"attachment; filename={name}.{fmt}"})


KIND_ZH = {"code": "18位统一社会信用代码（含校验位）", "text": "文本", "date": "日期 YYYY-MM-DD", "year": "年度（整数）",
           "count": "非负整数", "amount": "非负数", "signed": "数（可为负）", "ratio": "0–100 的百分数",
           "bool": "是/否（true/false、1/0、yes/no）", "money": "非负数（万元，精确小数）"}
EXAMPLE = {"code": None, "text": "示例", "date": "2018-06-01", "year": 2025, "count": 2, "amount": 1200.5,
           "signed": -3.2, "ratio": 35.5, "bool": "否", "money": "150.25"}
EXAMPLE_BY_KEY = {"name": "新乡示例科技有限公司", "park": "主园区", "industry": "电子信息", "contract_no": "2025410700000123",
                  "registered_on": "2018-06-01"}


def _words(names: dict) -> str:
    """诚信/良好/…（或 honest/good/…）: the Chinese names first, then the keys."""
    return f"{'/'.join(names.values())}（或 {'/'.join(names)}）"


def kind_text(f, data) -> str:
    """A column's format in words, with the package's stages, choices and contract kinds."""
    if f.kind == "stage":
        return _words(data.stages)
    if f.kind == "choice":
        return _words(f.value_names)
    if f.kind == "contract_kind":
        return _words(data.contract_kinds)
    return KIND_ZH[f.kind]


def example_value(f, data):
    if f.key in EXAMPLE_BY_KEY:
        return EXAMPLE_BY_KEY[f.key]
    if f.kind == "stage":
        return list(data.stages.values())[min(1, len(data.stages) - 1)]
    if f.kind == "choice":
        return list(f.value_names.values())[min(1, len(f.values) - 1)]
    if f.kind == "contract_kind":
        return list(data.contract_kinds.values())[min(1, len(data.contract_kinds) - 1)]
    if f.kind == "year" and f.key != "year":
        return EXAMPLE["year"] - 2
    return EXAMPLE[f.kind]


def template_xlsx(kind, data, source=None) -> bytes:
    """The import template of a policy package's data dictionary (`data`): 数据 (headers only:
    Chinese label and unit), 示例 (the same headers and an example row), 说明 (each column's
    key, label, unit, format, required). With `source`, a department's partial template:
    the enterprise-year (credit code, year, name) and the fields that source owns."""
    import openpyxl
    from openpyxl.styles import Font, PatternFill

    from rules.fields import CONTRACT_FIELDS, header_with_unit
    from rules.records import credit_code_with_check
    fields = data.record_fields if kind == "records" else CONTRACT_FIELDS
    if source is not None and kind == "records":
        import dataclasses
        from rules.records import PARTIAL_KEYS
        fields = [f for f in data.record_fields if f.key in PARTIAL_KEYS or f.key == "name"] + \
            [dataclasses.replace(f, required=False) for f in data.fields_of(source)]
    headers = [header_with_unit(f) for f in fields]
    example_code = credit_code_with_check("91410700MA9XAMPL0"[:17])
    example = [example_code if f.kind == "code" else example_value(f, data) for f in fields]
    wb = openpyxl.Workbook()
    bold, req = Font(bold=True), PatternFill("solid", fgColor="FFF2CC")
    for title, rows in (("数据", []), ("示例", [example])):
        ws = wb.active if title == "数据" else wb.create_sheet(title)
        ws.title = title
        ws.append(headers)
        for r in rows:
            ws.append(r)
        for f, c in zip(fields, ws[1]):
            c.font = bold
            if f.required:
                c.fill = req
        ws.freeze_panes = "A2"
        for i, h in enumerate(headers, start=1):
            ws.column_dimensions[openpyxl.utils.get_column_letter(i)].width = max(12, min(36, len(h) * 2))
    doc = wb.create_sheet("说明")
    doc.append(["列名（中文）", "英文键", "单位", "格式", "必填", "填写口径"])
    for c in doc[1]:
        c.font = bold
    for f in fields:
        doc.append([f.label, f.key, f.unit, kind_text(f, data), "是" if f.required else "否", f.help])
    doc.append([])
    doc.append(["说明：在「数据」表填写，每行一家企业一个年度；表头可用中文列名（可带单位）或英文键；"
                "文件中任何一个单元格有误则整个文件不导入，并列出所有错误单元格。"])
    if source is not None and kind == "records":
        doc.append([f"本模板只含{data.source_name(source)}报送的字段：导入时按字段合并到已存储的企业年度记录，"
                    "空单元格表示未报送、不改变原值；其他字段不受影响。"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def diff_columns(a, b) -> list:
    """The columns of a comparison of two runs (企业变化), in Chinese."""
    return [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("changed", "变化"),
            ("stage_a", f"批次{a}阶段"), ("stage_b", f"批次{b}阶段"), ("excluded_a", f"批次{a}排除"),
            ("excluded_b", f"批次{b}排除"), ("score_a", f"批次{a}积分"), ("score_b", f"批次{b}积分"),
            ("score_change", "积分变化"), ("rank_a", f"批次{a}全区排名"), ("rank_b", f"批次{b}全区排名"),
            ("rank_change", "名次上升")]


def diff_award_columns(a, b) -> list:
    return [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("clause", "条款"), ("change", "变化"),
            ("eligible_a", f"批次{a}核定（元）"), ("eligible_b", f"批次{b}核定（元）"),
            ("granted_a", f"批次{a}拨付（元）"), ("granted_b", f"批次{b}拨付（元）")]


def diff_rows_zh(rows) -> list:
    """Comparison rows with what changed and the stages in words (not the engine's keys)."""
    from . import shape
    from .labels import changes
    stages = shape.stages()
    return [{**r, "changed": changes(r.get("changed")), "stage_a": stages.get(r.get("stage_a"), r.get("stage_a")),
             "stage_b": stages.get(r.get("stage_b"), r.get("stage_b"))} for r in rows]


def diff_awards_zh(rows) -> list:
    return [{**r, "change": {"added": "新增", "removed": "取消", "changed": "变化"}.get(r.get("change"), r.get("change"))}
            for r in rows]
