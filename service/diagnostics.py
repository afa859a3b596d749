"""Calibration diagnostics (§四.(二)) of a stored run or of a draft's what-if, and each
enterprise's potential (§四.(四)), for the pages, the API, the CLI and the monitoring report.

The figures are `rules.diagnostics`'; this module reads them from the store: a run's stored
results (values, points, the parts of the final score), a draft's evaluations, and the
records an enterprise's potential re-evaluates."""
from __future__ import annotations

import copy
import math

import numpy as np
from sqlalchemy import select

from rules import diagnostics as D
from rules.indicators import cohort_extra_keys

from . import policies, shape
from .models import Enterprise, Record, Result, records_table

_SCORED: dict = {}


def run_policy(s, run):
    """The policy version a run was evaluated under."""
    return policies.of_run(s, run)


def indicator_matrices(texts, clauses):
    """The values and points (n × K) of the stored results' `indicators` JSON texts
    ({clause id: [value, points]}), in the order of `clauses`; parsed by arrow's JSON reader
    (a 100k-enterprise run in well under a second, where json.loads took six)."""
    import io

    import pyarrow as pa
    import pyarrow.json as pajson
    n, k = len(texts), len(clauses)
    values, points = np.full((n, k), np.nan), np.zeros((n, k))
    if not n:
        return values, points
    schema = pa.schema([(c.id, pa.list_(pa.float64())) for c in clauses])
    table = pajson.read_json(io.BytesIO("\n".join(texts).encode("utf-8")),
                             parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
                             read_options=pajson.ReadOptions(block_size=1 << 24))
    for j, c in enumerate(clauses):
        col = table.column(c.id).combine_chunks()
        if col.null_count:                      # an enterprise without this clause: no value, no points
            col = col.fill_null(pa.scalar([None, 0.0], pa.list_(pa.float64())))
        flat = col.flatten().to_numpy(zero_copy_only=False).reshape(n, 2)
        values[:, j] = flat[:, 0]
        points[:, j] = np.nan_to_num(flat[:, 1])
    return values, points


# a run's indicator values and points, columnar (not served); runs stored before 2026-12-05
# evening named it as the batch now names its own, differently laid out, file of indicators
MATRIX_FILE, OLD_MATRIX_FILE = "indicator_matrix.parquet", "indicators.parquet"


def matrix_bytes(ev) -> bytes:
    """An evaluation's indicator values and points as Parquet (zstd), stored with the run so
    that its diagnostics read two matrices instead of one JSON text per enterprise."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    cols = {"credit_code": pa.array(ev.scores["credit_code"].to_numpy(dtype=object), pa.string())}
    for j, c in enumerate(ev.indicator_clauses):
        cols[f"{c.id}|value"] = pa.array(ev.indicator_values[:, j], from_pandas=True)
        cols[f"{c.id}|points"] = pa.array(np.round(ev.indicator_points[:, j], 6))   # as the batch's indicators file says
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf, compression="zstd")
    return buf.getvalue()


def matrices_from_bytes(content, codes, clauses):
    """The values and points (n × K) of `codes`, in the order of `clauses`, from `matrix_bytes`."""
    import io

    import pandas as pd
    import pyarrow.parquet as pq
    table = pq.read_table(io.BytesIO(content))
    pos = pd.Index(table.column("credit_code").to_numpy(zero_copy_only=False)).get_indexer(codes)
    n, k = len(codes), len(clauses)
    values, points = np.full((n, k), np.nan), np.zeros((n, k))
    for j, c in enumerate(clauses):
        values[:, j] = table.column(f"{c.id}|value").to_numpy(zero_copy_only=False)[pos]
        points[:, j] = table.column(f"{c.id}|points").to_numpy(zero_copy_only=False)[pos]
    return values, points


def scored_from_run(s, run) -> D.Scored:
    """A run's stored results as `rules.diagnostics.Scored` (kept per run: runs are immutable)."""
    key = (run.id, run.finished_at)
    if key in _SCORED:
        return _SCORED[key]
    pv = run_policy(s, run)
    clauses = pv.clauses_for("indicators", run.year)
    extra_keys = cohort_extra_keys(pv)
    from .query import run_file
    stored = run_file(s, run.id, MATRIX_FILE)
    if stored is None:
        stored = run_file(s, run.id, OLD_MATRIX_FILE)
    q = select(Result.credit_code, Result.stage, Result.excluded, Result.deductions, Result.decay_factor,
               Result.bonus, Result.final_score, Result.indicators if stored is None else Result.id, Enterprise.name,
               *[getattr(Enterprise, k) for k in extra_keys]) \
        .join(Enterprise, Enterprise.credit_code == Result.credit_code, isouter=True) \
        .where(Result.run_id == run.id).order_by(Result.credit_code)
    rows = s.execute(q).all()
    cols = list(zip(*rows)) if rows else [[] for _ in range(9 + len(extra_keys))]
    if stored is not None:
        values, points = matrices_from_bytes(stored, list(cols[0]), clauses)
    else:                              # a run stored before the matrices were kept
        values, points = indicator_matrices(cols[7], clauses)

    def num(col):
        return np.array(col, dtype="float64")
    sc = D.Scored(pv, run.year, clauses, np.array(cols[0], dtype=object), np.array(cols[1], dtype=object),
                  ~np.array(cols[2], dtype=bool), values, points, num(cols[3]), num(cols[4]), num(cols[5]),
                  num(cols[6]), {k_: np.array(cols[9 + i], dtype=object) for i, k_ in enumerate(extra_keys)},
                  None, np.array(cols[8], dtype=object))
    if len(_SCORED) > 8:
        _SCORED.clear()
    _SCORED[key] = sc
    return sc


def run_diagnostics(s, run, tuning=True) -> dict:
    """The diagnostics of a run, per stage, and (by default) the tuning of flagged indicators."""
    sc = scored_from_run(s, run)
    d = D.diagnose(sc)
    d.update(run_id=run.id, source=f"第 {run.id} 批次")
    if tuning:
        d["tuning"] = D.tune(sc, d)
    return d


def report_section(s, run) -> dict:
    """The monitoring report's section on the model's calibration (§四.(二)): per stage the
    final scores' figures, the verdict and the flagged indicators (no charts, no tuning)."""
    d = D.diagnose(scored_from_run(s, run))
    keep = ("stage", "stage_zh", "n", "mean", "median", "std", "skewness", "excess_kurtosis", "normality_test",
            "normality_p", "verdict")
    return {"citation": d["citation"],
            "stages": [{**{k: st[k] for k in keep}, "normality_test_zh": TEST_ZH.get(st["normality_test"], "无法检验"),
                        "flagged": [f"{i['clause']} {i['title']}" for i in st["indicators"] if i["flags"]]}
                       for st in d["stages"]]}


def draft_diagnostics(s, files, year, against_files) -> dict:
    """A draft's what-if: the diagnostics under the version it is compared with (before) and
    under the draft (after), and the tuning of what the draft still flags."""
    evs, recs = policies.evaluations(s, files, year, against_files)
    before, after = (D.from_evaluation(ev) for ev in evs)
    d_before, d_after = D.diagnose(before), D.diagnose(after)
    d_after["tuning"] = D.tune(after, d_after)
    return {"year": year, "before": d_before, "after": d_after}


def records_of(s, codes, policy=None):
    """The stored records (every year) of `codes`, validated as an import would be."""
    from rules.records import records_from_table, table_from_rows

    from .store import record_text
    data = shape.data(s) if policy is None else policy.data
    rows = [record_text(r, data) for r in s.scalars(select(Record).where(records_table.c.credit_code.in_(list(codes)))
                                                       .order_by(records_table.c.credit_code, records_table.c.year))]
    return records_from_table(table_from_rows(rows), "store", data=data) if rows else None


def potential(s, run, codes, top=5) -> dict:
    """提升空间 of `codes` in a run (see `rules.diagnostics.potential`): the stored records of
    each enterprise with one value changed are evaluated, and its cohort scored again."""
    from rules.evaluate import EvaluationError
    from rules.records import InputError
    none = {c: {"levers": [], "by_target": {k: [] for k in D.TARGETS_ZH}} for c in codes}
    base = scored_from_run(s, run)
    try:
        recs = records_of(s, codes, getattr(base, "policy", None))
        if recs is None:
            return none
        sc = copy.copy(base)
        sc.records = recs
        return D.potential(sc, list(codes), top)
    except (InputError, EvaluationError):      # records changed since the run so that they no longer evaluate
        return none


def _seed_rule():
    from .uses import rule
    return rule("seed_pool")


def closest(s, run, per_list=5) -> list:
    """For officers: per honour list of the run (published lists; else the top 10 of each
    stage) and per stage of the seed pool, the enterprises just below the line, the gap, and
    the one indicator that would bring each the most (a what-if, as on the profile)."""
    from .models import HonourList
    sc = scored_from_run(s, run)
    finals = sc.final
    out = []
    lines = []
    honours = s.scalars(select(HonourList).where(HonourList.run_id == run.id).order_by(HonourList.id)).all()
    latest = {h.scope: h for h in honours}
    for scope, h in latest.items():
        lines.append(("honour", scope, h.top_n, h.title))
    r = _seed_rule()
    for st in r["stages"]:
        n = int(np.sum(sc.included & (sc.stage == st)))
        if n:
            k = max(1, math.ceil(r["top_share"] * n - 1e-9))
            lines.append(("seed", st, k, f"创新种子企业后备库（{D.stage_title(st)}前 {r['top_share']:.0%}）"))
    wanted = []
    for kind, scope, k, title in lines:
        rows = sc.included & ~np.isnan(finals) & ((sc.stage == scope) if scope in set(sc.stage.tolist()) else True)
        idx = np.flatnonzero(rows)
        order = idx[np.lexsort((sc.codes[idx].astype(str), -finals[idx]))]
        if len(order) <= k:
            continue
        cutoff = float(finals[order[k - 1]])
        below = [i for i in order[k:] if finals[i] < cutoff][:per_list]
        entries = [{"credit_code": sc.codes[i], "name": sc.names[i] if sc.names is not None else "",
                    "stage": sc.stage[i], "stage_zh": D.stage_title(sc.stage[i]), "final_score": float(finals[i]),
                    "gap": round(cutoff - float(finals[i]), 4)} for i in below]
        wanted += [e["credit_code"] for e in entries]
        out.append({"kind": kind, "scope": scope, "title": title, "top_n": k, "cutoff": cutoff, "entries": entries})
    pot = potential(s, run, sorted(set(wanted)), top=1) if wanted else {}
    for block in out:
        for e in block["entries"]:
            levers = [x for x in pot.get(e["credit_code"], {}).get("levers", []) if x.get("gain")]
            best = levers[0] if levers else None
            e["best"] = best
            e["reaches"] = bool(best and best["final_after"] is not None and best["final_after"] >= block["cutoff"])
    return out


# ---- flat tables for the exports --------------------------------------------------------------

STAGE_COLUMNS = [("stage_zh", "发展阶段"), ("n", "企业数"), ("mean", "平均分"), ("median", "中位数"), ("std", "标准差"),
                 ("skewness", "偏度"), ("excess_kurtosis", "超额峰度"), ("normality_test_zh", "正态性检验"),
                 ("normality_p", "p值"), ("differentiated", "差异化"), ("normal", "正态化"), ("healthy", "健康化")]
INDICATOR_COLUMNS = [("stage_zh", "发展阶段"), ("clause", "指标"), ("title", "指标名称"), ("method_zh", "计分方法"),
                     ("reporting_rate", "填报率"), ("nonpositive_share", "取值≤0占比"), ("distinct_values", "不同取值数"),
                     ("points_mean", "平均得分"), ("points_std", "得分标准差"), ("full_points_share", "满分占比"),
                     ("zero_points_share", "0分占比"), ("gini", "基尼系数"), ("scoring_gini", "得分企业基尼系数"),
                     ("corr_final", "与最终积分相关"), ("variance_share", "方差贡献"), ("flags_text", "问题")]
LEVER_COLUMNS = [("target_zh", "目标"), ("clause", "指标"), ("title", "指标名称"), ("value", "现值"),
                 ("target_value", "目标值"), ("points_before", "现得分"), ("points_after", "达到后得分"),
                 ("final_before", "现最终积分"), ("final_after", "达到后最终积分"), ("gain", "增加"),
                 ("rank_in_stage_before", "现同阶段排名"), ("rank_in_stage_after", "达到后同阶段排名"),
                 ("rank_overall_after", "达到后全区排名")]
CLOSEST_COLUMNS = [("list", "榜单或后备库"), ("cutoff", "入选线"), ("credit_code", "统一社会信用代码"), ("name", "企业名称"),
                   ("stage_zh", "发展阶段"), ("final_score", "最终积分"), ("gap", "差距"), ("best_clause", "最能提升的指标"),
                   ("best_title", "指标名称"), ("best_target", "目标"), ("best_final", "达到后最终积分"), ("reaches", "能否入选")]


def closest_rows(lists) -> list:
    return [{"list": b["title"], "cutoff": b["cutoff"], **e,
             "best_clause": (e["best"] or {}).get("clause"), "best_title": (e["best"] or {}).get("title"),
             "best_target": (e["best"] or {}).get("target_zh"), "best_final": (e["best"] or {}).get("final_after")}
            for b in lists for e in b["entries"]]


TEST_ZH = {"normaltest": "D'Agostino–Pearson", "shapiro": "Shapiro–Wilk"}


def stage_rows(d) -> list:
    return [{**{k: st.get(k) for k, _ in STAGE_COLUMNS}, "normality_test_zh": TEST_ZH.get(st["normality_test"], "无法检验"),
             **{k: ("达到" if v["met"] else "未达到") for k, v in st["verdict"].items()}} for st in d["stages"]]


def indicator_table(d) -> list:
    return [{**i, "stage_zh": st["stage_zh"], "method_zh": D.METHOD_ZH.get(i["method"], i["method"]),
             "flags_text": "；".join(i["flags"])} for st in d["stages"] for i in st["indicators"]]


def xlsx(d) -> bytes:
    """The diagnostics as a workbook: 阶段 (final scores and verdicts), 指标, and 调参 when present
    (plain values, no formulas; text cells as text)."""
    import io

    import openpyxl

    from .exports import _cell, _xlsx_cell
    wb = openpyxl.Workbook()
    sheets = [("阶段", STAGE_COLUMNS, stage_rows(d)), ("指标", INDICATOR_COLUMNS, indicator_table(d))]
    if d.get("tuning"):
        rows = [{"stage_zh": t["stage_zh"], "clause": t["clause"], "title": t["title"], "from": t["method_zh"],
                 "to": o["method_zh"], "flags_before": "；".join(t["before"]["flags"]),
                 "flags_after": "；".join(o["indicator"]["flags"]) or "无", "improves": "改善" if o["improves"] else "未改善",
                 "skewness": o["final"]["skewness"], "normality_p": o["final"]["normality_p"]}
                for t in d["tuning"] for o in t["options"]]
        sheets.append(("调参", [("stage_zh", "发展阶段"), ("clause", "指标"), ("title", "指标名称"), ("from", "现方法"),
                                ("to", "改用方法"), ("flags_before", "现有问题"), ("flags_after", "改用后问题"),
                                ("improves", "是否改善"), ("skewness", "改用后偏度"), ("normality_p", "改用后p值")], rows))
    for n, (title, cols, rows) in enumerate(sheets):
        ws = wb.active if n == 0 else wb.create_sheet()
        ws.title = title
        ws.append([label for _, label in cols])
        for r in rows:
            ws.append([_xlsx_cell(ws, _cell(r.get(k))) for k, _ in cols])
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def text(d) -> str:
    """The diagnostics as plain Chinese text (the CLI's --format text)."""
    lines = [f"{d['year']}年度 校准诊断（{d.get('source', d['policy'])}，依据 {d.get('citation', '')}）"]
    for st in d["stages"]:
        p = st["normality_p"]
        lines.append(f"\n{st['stage_zh']}：{st['n']:,} 家  平均 {st['mean']}  中位数 {st['median']}  标准差 {st['std']}  "
                     f"偏度 {st['skewness']}  超额峰度 {st['excess_kurtosis']}  "
                     f"{TEST_ZH.get(st['normality_test'], '无法检验')} p={p if p is not None else '—'}")
        for v in st["verdict"].values():
            lines.append("  " + v["text"])
    for t in d.get("tuning") or []:
        better = [o["method_zh"] for o in t["options"] if o["improves"]]
        lines.append(f"\n调参 {t['stage_zh']} {t['clause']} {t['title']}（{t['method_zh']}）：{'；'.join(t['before']['flags'])}"
                     f"\n  改用后问题消除或减少：{'、'.join(better) if better else '无'}")
    return "\n".join(lines)


def json_form(d) -> dict:
    """The JSON answer fixed by issue 15: per stage its key, n, mean, median, std, skewness,
    excess_kurtosis, normality_p (and the test), the verdict, and per indicator the figures;
    charts and tuning as they are."""
    return d
