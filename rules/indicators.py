"""Clauses IND-1.1 … IND-3.15 (表2, 表6, §三.四): indicator points and category scores.

Scoring code whose every number comes from the indicators clause file: points, weights,
the method of each indicator and its parameters, the cohort keys.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd


def indicator_values(clause, frame) -> np.ndarray:
    """An indicator's values, derived where the clause says so (`derive`: numerator ÷
    denominator × scale where the value itself was not reported)."""
    b = clause.body
    v = frame[b["key"]].to_numpy(dtype="float64").copy()
    d = b.get("derive")
    if d:
        num = frame[d["numerator"]].to_numpy(dtype="float64")
        den = frame[d["denominator"]].to_numpy(dtype="float64")
        fill = np.isnan(v) & ~np.isnan(num) & (den > 0)
        v[fill] = num[fill] / den[fill] * d["scale"]
    return v


def _percentile(v, maximum):
    """max × (#members with value ≤ v) ÷ cohort size; missing counts as below every value."""
    filled = np.nan_to_num(v, nan=-np.inf)      # missing ranks below every value
    return maximum * _at_or_below(filled) / len(v)


def _at_or_below(v) -> np.ndarray:
    """For each value, how many values are ≤ it: one sort, then the position after the last
    of each run of equal values (no binary search per value)."""
    if not len(v):
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(v)                       # ties get one count, so any order will do
    ranked = v[order]
    last = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))     # last of each run
    k = np.empty(len(v), dtype=np.int64)
    k[order] = np.repeat(last + 1, np.diff(np.append(-1, last)))
    return k


def _minmax(v, maximum, winsorize=0.0):
    present = v[~np.isnan(v)]
    if not len(present):
        return np.zeros_like(v)
    lo, hi = np.quantile(present, [winsorize, 1 - winsorize]) if winsorize else (present.min(), present.max())
    c = np.clip(v, lo, hi)
    if hi == lo:
        return np.where(np.isnan(v), 0.0, maximum)
    return maximum * (c - lo) / (hi - lo)


def _points(clause, v):
    b = clause.body
    maximum = b["points"]
    method = b.get("method", "percentile")
    p = b.get("params") or {}
    if method == "yes_no":
        return np.where(v == 1, float(maximum), 0.0)
    if method == "percentile":
        out = _percentile(v, maximum)
    elif method == "minmax":
        out = _minmax(v, maximum, p.get("winsorize", 0.0))
    elif method == "log_minmax":
        out = _minmax(np.log1p(np.clip(v, 0, None)), maximum)
    elif method == "benchmark":
        out = maximum * np.minimum(v / p["benchmark"], p.get("cap", 1))
    elif method == "thresholds":
        out = np.zeros_like(v)
        for band in p["bands"]:
            out = np.where(v >= band["min"], maximum * band["share"], out)
    else:  # rejected by the policy check; kept for safety
        raise ValueError(f"unknown method {method}")
    return out


def cohort_points(clause, v, zero_nonpositive=True) -> np.ndarray:
    """Points of one indicator over one cohort's values: the clause's method, 0 for a missing
    value and (when the policy says so) for a value ≤ 0. The what-ifs of diagnostics and
    potential call this, so that they score exactly as an evaluation does."""
    if zero_nonpositive and clause.body.get("method", "percentile") == "percentile":
        # only values above 0 keep their points: sort those alone, and count the rest
        # (missing and ≤ 0) as below each of them — the same k as sorting the whole cohort
        pos = v > 0
        vp = v[pos]
        k = _at_or_below(vp) + (len(v) - len(vp))
        p = np.zeros(len(v))
        p[pos] = clause.body["points"] * k / len(v)
        return p                                  # finite: nothing for nan_to_num to do
    p = _points(clause, v)
    p = np.where(np.isnan(v), 0.0, p)
    if zero_nonpositive:
        p = np.where(v > 0, p, 0.0)
    return np.nan_to_num(p)


def cohort_extra_keys(policy) -> list:
    """The cohort keys besides year and stage (park, industry) of the policy's settings."""
    keys = policy.settings("indicators").get("cohort_keys", ["year", "stage"])
    return [k for k in keys if k not in ("year", "stage")]


def cohort_ids(stage, extra: dict, included) -> np.ndarray:
    """A cohort number per row (the included rows sharing stage and the extra keys), -1 for
    rows not included."""
    cohort = pd.DataFrame({"stage": stage, **extra})
    cid = cohort.groupby(list(cohort.columns), sort=False, dropna=False).ngroup().to_numpy()
    return np.where(included, cid, -1)


def score(policy, year, frame, stage_level, included) -> tuple[list, np.ndarray]:
    """Points of every indicator for every row (0 for rows not `included`).

    Returns the indicator clauses in force and an (n × K) matrix of points. The cohort of a
    row is the included rows sharing its cohort keys (year and stage by default)."""
    clauses = policy.clauses_for("indicators", year)
    settings = policy.settings("indicators")
    keys = cohort_extra_keys(policy)
    zero_nonpositive = settings.get("nonpositive_scores_zero", True)
    n = len(frame)
    # column-major: each indicator's values and points are contiguous (the loops below and
    # the indicators file reads them a column at a time)
    pts = np.zeros((n, len(clauses)), order="F")
    values = np.empty((n, len(clauses)), order="F")
    for j, c in enumerate(clauses):
        values[:, j] = indicator_values(c, frame)
    cohort_id = cohort_ids(stage_level, {k: frame[k].to_numpy() for k in keys}, included)
    sizes = np.zeros(n, dtype=np.int64)
    members = np.flatnonzero(cohort_id >= 0)
    members = members[np.argsort(cohort_id[members], kind="stable")]      # by cohort, rows ascending
    cohorts = np.split(members, np.flatnonzero(np.diff(cohort_id[members])) + 1) if len(members) else []
    for rows in cohorts:
        sizes[rows] = len(rows)
    def one(j):
        col, out = values[:, j], pts[:, j]
        for rows in cohorts:
            out[rows] = cohort_points(clauses[j], col[rows], zero_nonpositive)
    # each indicator fills its own column; numpy sorts without the GIL: two at a time
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, range(len(clauses))))
    return clauses, values, pts, sizes


def category_scores(policy, clauses, pts) -> dict:
    """Sum of each category's indicator points (0 to the category's points), by the
    package's categories (indicators.yaml)."""
    out = {}
    for cat in policy.categories():
        cols = [j for j, c in enumerate(clauses) if c.body["category"] == cat]
        if not cols:
            out[cat] = np.zeros(len(pts))
            continue
        # left to right, column by column: the order numpy's row sum of the selected columns
        # takes (checked bit for bit), without copying them out first
        total = pts[:, cols[0]].copy()
        for j in cols[1:]:
            total += pts[:, j]
        out[cat] = total
    return out


def weighted(policy, stage_names, cats) -> np.ndarray:
    """Σ category weight of the stage × category score (§三.四)."""
    weights = policy.groups["indicators"]["weights"]
    out = np.zeros(len(stage_names))
    for stage in set(stage_names):
        rows = stage_names == stage
        out[rows] = sum(weights[stage][cat] * cats[cat][rows] for cat in cats)
    return out
