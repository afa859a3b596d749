"""The calibration pages (§四.(二)) and the officers' list of enterprises closest to the next
honour list or the seed pool (§四.(四)): the diagnostics of a run, of a draft's what-if before
and after, with the tuning of flagged indicators. Figures come from `service.diagnostics`."""
from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, render_template, request

from rules import diagnostics as D
from rules.evaluate import EvaluationError
from rules.policy import PolicyError

from . import charts as charts_
from . import db, diagnostics, policies
from .exports import export_response
from .models import PolicyDraft, Run
from .pages import page_role

bp = Blueprint("calib", __name__)
OFFICERS = ("officer", "admin")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# the targets of indicators.yaml settings.diagnostics as the page names them
TARGET_ZH = {"max_zero_points_share": ("得0分的企业占比不超过", "pct"), "max_full_points_share": ("得满分的企业占比不超过", "pct"),
             "min_distinct_values": ("不同取值至少", "n"), "max_scoring_gini": ("得分企业之间的基尼系数不超过", "x"),
             "max_abs_skewness": ("偏度绝对值不超过", "x"), "max_abs_excess_kurtosis": ("超额峰度绝对值不超过", "x"),
             "min_normality_p": ("正态性检验 p 值不低于", "x"), "shapiro_below": ("企业数少于此数时改用 Shapiro–Wilk 检验", "n"),
             "max_variance_share": ("单项指标占加权得分方差不超过", "pct"), "max_correlation": ("两项指标得分相关系数不超过", "x")}


def stage_charts(d, prefix) -> dict:
    """The three charts of each stage: histogram with the normal curve, Q–Q, a box per indicator."""
    out = {}
    for n, st in enumerate(d["stages"], start=1):
        if not st["charts"]:
            continue
        out[f"{prefix}-hist-{n}"] = charts_.distribution(f"{st['stage_zh']}最终积分分布与正态曲线", st["charts"])
        out[f"{prefix}-qq-{n}"] = charts_.qq(f"{st['stage_zh']} Q–Q 图", st["charts"])
        out[f"{prefix}-box-{n}"] = charts_.boxes(f"{st['stage_zh']}各指标得分箱线图", st["indicators"])
    return out


def _xlsx(d, name):
    return current_app.response_class(diagnostics.xlsx(d), mimetype=XLSX,
                                      headers={"Content-Disposition": f"attachment; filename={name}.xlsx"})


@bp.route("/workspace/runs/<int(max=2147483647):run_id>/diagnostics")
@page_role(*OFFICERS)
def run_diagnostics(run_id):
    """A run's calibration diagnostics per stage, and the tuning of flagged indicators."""
    s = db.session()
    run = s.get(Run, run_id)
    if run is None or run.status != "done":
        abort(404)
    d = diagnostics.run_diagnostics(s, run)
    if request.args.get("format") == "xlsx":
        return _xlsx(d, f"diagnostics-{run.year}-run{run.id}")
    return render_template("pages/diagnostics.html", d=d, before=None, run=run, draft=None, targets=TARGET_ZH,
                           charts=stage_charts(d, "d"), test_zh=diagnostics.TEST_ZH, method_zh=D.METHOD_ZH)


@bp.route("/workspace/policy/drafts/<int(max=2147483647):draft_id>/diagnostics")
@page_role(*OFFICERS)
def draft_diagnostics(draft_id):
    """A draft's what-if: the diagnostics under the current version and under the draft, and
    the tuning of what the draft still flags (each other method of SPEC §2.2)."""
    s = db.session()
    draft = s.get(PolicyDraft, draft_id)
    if draft is None:
        abort(404)
    year = request.args.get("year", type=int)
    error = None
    both = None
    if year:
        files = json.loads(draft.files)
        problems = policies.check(files)
        if problems:
            error = f"草稿有 {len(problems)} 个问题，请先在草稿页解决"
        else:
            try:
                both = diagnostics.draft_diagnostics(s, files, year, policies.files_of(policies.active(s)))
            except (PolicyError, EvaluationError) as exc:
                error = str(exc).split(" / ")[0]
    if both and request.args.get("format") == "xlsx":
        return _xlsx(both["after"], f"diagnostics-{year}-draft{draft.id}")
    from sqlalchemy import select

    from .models import records_table
    years = [y for (y,) in s.execute(select(records_table.c.year).distinct().order_by(records_table.c.year.desc()))]
    d = both["after"] if both else None
    return render_template("pages/diagnostics.html", d=d, before=both["before"] if both else None, run=None,
                           draft=draft, year=year, years=years, error=error, targets=TARGET_ZH,
                           charts=stage_charts(d, "d") if d else {}, test_zh=diagnostics.TEST_ZH,
                           method_zh=D.METHOD_ZH)


@bp.route("/workspace/runs/<int(max=2147483647):run_id>/closest")
@page_role(*OFFICERS)
def closest(run_id):
    """Enterprises just below each published honour list and the seed pool's line, the gap,
    and the indicator that would bring each the most."""
    s = db.session()
    run = s.get(Run, run_id)
    if run is None or run.status != "done":
        abort(404)
    lists = diagnostics.closest(s, run)
    fmt = request.args.get("format")
    if fmt in ("xlsx", "csv"):
        return export_response(diagnostics.closest_rows(lists), diagnostics.CLOSEST_COLUMNS, fmt,
                               f"closest-{run.year}-run{run.id}")
    return render_template("pages/closest.html", run=run, lists=lists)
