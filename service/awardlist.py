"""The award list as the finance bureau works with it: filtered (item, park, stage,
enterprise), sorted, paged, with each enterprise's total, the item names beside the clause
ids, all money in 元; and the same list as an XLSX workbook (title row, totals row, number
formats, widths, frozen header) and as a printable page. Every figure is read from the run's
stored award lines (query.award_lines); nothing is recomputed but sums."""
from __future__ import annotations

import io

from sqlalchemy import select

from . import query, shape
from .labels import budget_of, budget_sentence, strategy_zh
from .models import Enterprise, Result

SORTS = {"name": "企业名称", "credit_code": "统一社会信用代码", "clause": "奖励事项", "granted_yuan": "拨付金额",
         "eligible_yuan": "核定金额", "enterprise_total": "企业合计"}
PER_PAGE = 50


def read_filters(args) -> dict:
    """The list's filters and order from a query string (anything unknown is dropped)."""
    stage = args.get("stage")
    sort = args.get("sort") if args.get("sort") in SORTS else "name"
    return {"clause": (args.get("clause") or "")[:40] or None, "park": (args.get("park") or "")[:100] or None,
            "stage": stage if stage in shape.stages() else None, "q": (args.get("q") or "").strip()[:100] or None,
            "sort": sort, "order": "desc" if args.get("order") == "desc" else "asc"}


def award_list(s, run, clause=None, park=None, stage=None, q=None, sort="name", order="asc") -> dict:
    """The filtered, sorted lines of a run's award list, each with its enterprise's park,
    stage and total (over the lines shown), and the totals of what is shown."""
    lines = query.award_lines(s, run)
    codes = {r["credit_code"] for r in lines}
    ents = {e.credit_code: e for e in s.scalars(select(Enterprise).where(Enterprise.credit_code.in_(codes)))} if codes else {}
    stages = dict(s.execute(select(Result.credit_code, Result.stage)
                            .where(Result.run_id == run.id, Result.credit_code.in_(codes))).all()) if codes else {}
    items = {r["clause"]: r["title"] for r in lines}
    stage_names = shape.stages(s)
    for r in lines:
        e = ents.get(r["credit_code"])
        r["park"] = e.park if e else ""
        r["industry"] = e.industry if e else ""
        r["stage"] = stages.get(r["credit_code"])
        r["stage_zh"] = stage_names.get(r["stage"], "")
    parks = sorted({r["park"] for r in lines if r["park"]})
    rows = [r for r in lines
            if (clause is None or r["clause"] == clause) and (park is None or r["park"] == park)
            and (stage is None or r["stage"] == stage)
            and (q is None or q.upper() in r["credit_code"].upper() or q in r["name"])]
    per_ent = {}
    for r in rows:
        per_ent[r["credit_code"]] = per_ent.get(r["credit_code"], 0) + r["granted_yuan"]
    for r in rows:
        r["enterprise_total"] = per_ent[r["credit_code"]]
    key = {"name": lambda r: (r["name"], r["credit_code"], r["clause"]),
           "credit_code": lambda r: (r["credit_code"], r["clause"]),
           "clause": lambda r: (r["clause"], r["name"], r["credit_code"]),
           "granted_yuan": lambda r: (r["granted_yuan"], r["credit_code"], r["clause"]),
           "eligible_yuan": lambda r: (r["eligible_yuan"], r["credit_code"], r["clause"]),
           "enterprise_total": lambda r: (r["enterprise_total"], r["credit_code"], r["clause"])}[sort]
    rows.sort(key=key, reverse=order == "desc")
    totals = query.award_totals(rows, run)
    return {"rows": rows, "totals": totals, "enterprises": len(per_ent), "items": dict(sorted(items.items())),
            "parks": parks, "budget": budget_of(run)}


def filter_words(f, items) -> str:
    """The filters in force, in words ('' when the whole list is shown)."""
    words = []
    if f.get("clause"):
        words.append(f"奖励事项：{items.get(f['clause'], f['clause'])}")
    if f.get("park"):
        words.append(f"园区：{f['park']}")
    if f.get("stage"):
        words.append(f"发展阶段：{shape.stage_name(f['stage'])}")
    if f.get("q"):
        words.append(f"企业：{f['q']}")
    return "；".join(words)


def title_of(run, header) -> str:
    return f"{run.year}年度企业创新积分直接奖励名单（第 {run.id} 批次）"


def basis_line(run, header) -> str:
    """政策依据 (title and 文号), budget and strategy, as the list's second line."""
    b = budget_of(run)
    policy = f"《{header.get('title', '')}》（{header.get('document', '')}）" if header.get("title") else header.get("document", "")
    strategy = f"预算不足时{strategy_zh(b['strategy'])}" if b["budget"] is not None else "未设预算上限"
    return f"依据{policy}；{budget_sentence(b)}（{strategy}）"


COLUMNS = [("index", "序号", 6, None), ("name", "企业名称", 30, None), ("credit_code", "统一社会信用代码", 22, None),
           ("park", "所属园区", 12, None), ("stage_zh", "发展阶段", 10, None), ("clause", "条款", 8, None),
           ("title", "奖励事项", 30, None), ("eligible_yuan", "核定金额（元）", 16, "#,##0"),
           ("granted_yuan", "拨付金额（元）", 16, "#,##0"), ("enterprise_total", "企业拨付合计（元）", 18, "#,##0"),
           ("citation", "政策依据", 30, None)]


def xlsx(run, header, data, filters_text="") -> bytes:
    """The award list as a workbook a finance bureau files: a title row (year, batch, policy
    文号, budget, strategy), the header frozen under it, every line, a totals row (values, no
    formula), thousands separators on money and readable widths."""
    import openpyxl
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    from .exports import _cell, _xlsx_cell
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "奖励名单"
    last = get_column_letter(len(COLUMNS))
    ws.append([_xlsx_cell(ws, title_of(run, header))])
    ws.merge_cells(f"A1:{last}1")
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    second = basis_line(run, header) + (f" 筛选：{filters_text}" if filters_text else "")
    ws.append([_xlsx_cell(ws, second)])
    ws.merge_cells(f"A2:{last}2")
    ws["A2"].alignment = Alignment(wrap_text=True, vertical="top")
    ws.row_dimensions[2].height = 48
    ws.append([label for _, label, _, _ in COLUMNS])
    head = PatternFill("solid", fgColor="EEF2F7")
    for c in ws[3]:
        c.font = Font(bold=True)
        c.fill = head
        c.alignment = Alignment(horizontal="center", wrap_text=True)
    for i, r in enumerate(data["rows"], start=1):
        ws.append([i if k == "index" else _xlsx_cell(ws, _cell(r.get(k))) for k, _, _, _ in COLUMNS])
    t = data["totals"]
    ws.append([_xlsx_cell(ws, "合计"), _xlsx_cell(ws, f"{data['enterprises']:,} 家企业，{len(data['rows']):,} 笔"),
               None, None, None, None, None, t["eligible_yuan"], t["granted_yuan"], t["granted_yuan"], None])
    total_row = ws.max_row
    for c in ws[total_row]:
        c.font = Font(bold=True)
    for col, (_, _, width, fmt) in enumerate(COLUMNS, start=1):
        letter = get_column_letter(col)
        ws.column_dimensions[letter].width = width
        if fmt:
            for row in range(4, total_row + 1):
                ws[f"{letter}{row}"].number_format = fmt
    ws.freeze_panes = "A4"
    ws.print_title_rows = "3:3"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    items = wb.create_sheet("分项合计")
    items.append(["条款", "奖励事项", "笔数", "核定金额（元）", "拨付金额（元）"])
    for c in items[1]:
        c.font = Font(bold=True)
    for p in t["per_clause"]:
        items.append([p["clause"], _xlsx_cell(items, p["title"]), p["lines"], p["eligible_yuan"], p["granted_yuan"]])
    items.append(["合计", None, len(data["rows"]), t["eligible_yuan"], t["granted_yuan"]])
    for c in items[items.max_row]:
        c.font = Font(bold=True)
    for letter, width in zip("ABCDE", (8, 34, 8, 18, 18)):
        items.column_dimensions[letter].width = width
    for row in range(2, items.max_row + 1):
        for letter in "CDE":
            items[f"{letter}{row}"].number_format = "#,##0"
    items.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
