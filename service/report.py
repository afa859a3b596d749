"""The yearly monitoring report (监测分析报告, §六.三) as a printable page and a PDF. The PDF
is the same page printed by headless Chromium (so the charts are ECharts' own), with the
chart script inlined: it needs no server and no network."""
from __future__ import annotations

import shutil

from flask import render_template

from . import charts as charts_

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


class ReportError(RuntimeError):
    pass


def report_charts(m) -> dict:
    from .labels import item_name
    c = {"chart-stage": charts_.pie("按发展阶段", [x["label"] for x in m["by_stage"]], [x["count"] for x in m["by_stage"]]),
         "chart-hist": charts_.histogram("最终积分分布", m["histogram"]),
         "chart-industry": charts_.bar("按行业平均积分", [x["label"] for x in m["by_industry"]],
                                       [x["mean"] or 0 for x in m["by_industry"]], unit="分", horizontal=True)}
    if m["awards"]["per_clause"]:
        c["chart-awards"] = charts_.bar("各奖励事项拨付（万元）",
                                        [item_name(t["title"]) or t["clause"] for t in m["awards"]["per_clause"]],
                                        [round(t["granted_yuan"] / 10000, 2) for t in m["awards"]["per_clause"]], unit="万元",
                                        horizontal=True)
    return c


def render(m, standalone=False) -> str:
    """The report page; `standalone` inlines the stylesheet and the chart scripts."""
    inline = None
    if standalone:
        from rules import assets
        static = assets.path("static")
        inline = {"css": (static / "css" / "app.css").read_text(encoding="utf-8"),
                  "js": (static / "vendor" / "echarts-6.1.0" / "echarts.min.js").read_text(encoding="utf-8")
                  + "\n" + (static / "js" / "charts.js").read_text(encoding="utf-8")}
    return render_template("reports/monitoring.html", m=m, report_charts=report_charts(m), inline=inline)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def monitoring_pdf(m) -> bytes:
    """The report as PDF (A4), printed by headless Chromium once every chart has drawn."""
    exe = chromium()
    if exe is None:
        raise ReportError("生成 PDF 需要 Chromium（Debian 的 chromium 包）/ Chromium is needed for the PDF")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ReportError("生成 PDF 需要 playwright / playwright is needed for the PDF") from exc
    html = render(m, standalone=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.set_content(html, wait_until="load")
            page.wait_for_function(f"window.innopointsCharts && window.innopointsCharts.drawn === {len(report_charts(m))}",
                                   timeout=30_000)
            return page.pdf(format="A4", print_background=True,
                            margin={"top": "14mm", "bottom": "14mm", "left": "12mm", "right": "12mm"})
        finally:
            browser.close()
