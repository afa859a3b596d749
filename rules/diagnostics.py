"""Calibrating the model (§四.(二)) and each enterprise's potential (§四.(四)).

§四.(二): "根据各指标得分情况及时优化指标计算模型，从而实现指标得分、企业得分呈现差异化分布、正态化分布
及健康化分布". `diagnose` describes, per stage cohort, how each indicator's points and the final
scores are distributed, and judges them against the targets of the policy package
(indicators.yaml `settings.diagnostics`); `tune` shows a flagged indicator under each other
scoring method of SPEC §2.2. §四.(四): `potential` says which indicators would add the most if
an enterprise reached its stage's median or top decile, by re-evaluating changed records.

Every score here is computed by the scoring code itself (`indicators.cohort_points`,
`indicators.weighted`, `evaluate.final_score`, `evaluate.evaluate`); statistics are scipy's.
No stage, field or category key is written here: they come from the data and the policy.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from . import indicators
from .evaluate import final_score

VERDICTS = {"differentiated": "差异化", "normal": "正态化", "healthy": "健康化"}
METHOD_ZH = {"percentile": "百分位", "minmax": "最小—最大线性", "log_minmax": "取对数后最小—最大线性",
             "benchmark": "参考值比例", "thresholds": "分档", "yes_no": "是/否"}
QQ_POINTS = 200          # points of the Q–Q chart (quantiles, so a 100k cohort draws fast)


def stage_names(policy=None) -> dict:
    """Stage key -> Chinese name, in the order of the policy package's data dictionary (the
    bundled package's when no policy is given)."""
    if policy is None:
        from .records import default_data
        return dict(default_data().stages)
    return dict(policy.data.stages)


def stage_title(key, policy=None) -> str:
    """The Chinese name of a stage key."""
    return stage_names(policy).get(key, str(key))


def stage_order(keys, policy=None) -> list:
    """Stage keys in the order the stages are listed, unknown ones after."""
    names = stage_names(policy)
    known = [k for k in names if k in set(keys)]
    return known + sorted(set(keys) - set(known))


def targets(policy) -> dict:
    """The calibration targets of the policy package (indicators.yaml settings.diagnostics)."""
    d = policy.settings("indicators").get("diagnostics")
    if not d:
        raise ValueError("政策版本没有校准诊断目标（indicators.yaml settings.diagnostics） / no diagnostics settings")
    return d


@dataclass
class Scored:
    """What diagnostics and potential read of an evaluated year: one row per enterprise
    record of the year, the indicator clauses, their values and points, and the parts of the
    final score (from an `Evaluation`, or from a stored run)."""
    policy: object
    year: int
    clauses: list
    codes: np.ndarray
    stage: np.ndarray            # stage keys, as in scores.csv
    included: np.ndarray
    values: np.ndarray           # n × K
    points: np.ndarray           # n × K
    deductions: np.ndarray
    decay_factor: np.ndarray
    bonus: np.ndarray
    final: np.ndarray            # the reported final score (NaN when excluded)
    extra: dict = field(default_factory=dict)      # cohort keys besides stage: key -> values
    records: pd.DataFrame | None = None            # the validated records (for potential)
    names: np.ndarray | None = None

    def __post_init__(self):
        self.cohort = indicators.cohort_ids(self.stage, self.extra, self.included)
        self.group = (indicators.cohort_ids(np.zeros(len(self.stage)), self.extra, np.ones(len(self.stage), bool))
                      if self.extra else np.zeros(len(self.stage), dtype=np.int64))
        self.index = {c: i for i, c in enumerate(self.codes)}

    def weights(self):
        """Per row and indicator: the weight of the indicator's category in the row's stage."""
        if getattr(self, "_weights", None) is not None and self._weights.shape == self.points.shape:
            return self._weights
        w = self.policy.groups["indicators"]["weights"]
        out = np.zeros(self.points.shape)
        for st in set(self.stage.tolist()):
            rows = self.stage == st
            if st in w:
                out[rows] = [w[st][c.body["category"]] for c in self.clauses]
        self._weights = out
        return out

    def compose(self, points, rows):
        """The reported final score of `rows` with these points (the scoring code's own)."""
        cats = indicators.category_scores(self.policy, self.clauses, points)
        weighted = indicators.weighted(self.policy, self.stage[rows], cats)
        return final_score(self.policy, weighted, self.deductions[rows], self.decay_factor[rows], self.bonus[rows])


def from_evaluation(ev, records=None) -> Scored:
    """The Scored view of an `Evaluation` (batch, what-if)."""
    sc = ev.scores
    extra = {k: sc[k].to_numpy(dtype=object) for k in indicators.cohort_extra_keys(ev.policy)}
    return Scored(ev.policy, ev.year, ev.indicator_clauses, sc["credit_code"].to_numpy(dtype=object),
                  sc["stage"].to_numpy(dtype=object), ~sc["excluded"].to_numpy(dtype=bool),
                  ev.indicator_values, ev.indicator_points,
                  sc["deductions"].to_numpy(dtype="float64"), sc["decay_factor"].to_numpy(dtype="float64"),
                  sc["bonus"].to_numpy(dtype="float64"), sc["final_score"].to_numpy(dtype="float64"),
                  extra, records, sc["name"].to_numpy(dtype=object))


# ---- statistics ----------------------------------------------------------------------------------

def _f(x, digits=6):
    """A plain float for JSON (None for NaN)."""
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) or np.isinf(x) else round(x, digits)


def gini(x) -> float | None:
    """The Gini coefficient of non-negative points (0: all equal; near 1: a few take all)."""
    x = np.sort(np.asarray(x, dtype="float64"))
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return None
    return float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * total))


def _corr(a, b) -> float | None:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def score_stats(x, t) -> dict:
    """The final scores' distribution: n, mean, median, std (ddof 1), skewness and excess
    kurtosis as scipy.stats.skew / kurtosis give them with their defaults, the normality
    test (D'Agostino–Pearson, Shapiro–Wilk below `shapiro_below`) and its p-value."""
    x = np.asarray(x, dtype="float64")
    x = x[~np.isnan(x)]
    n = len(x)
    out = {"n": n, "mean": None, "median": None, "std": None, "skewness": None, "excess_kurtosis": None,
           "normality_test": None, "normality_p": None}
    if n == 0:
        return out
    out.update(mean=_f(np.mean(x)), median=_f(np.median(x)), std=_f(np.std(x, ddof=1)) if n > 1 else None)
    if n < 3 or np.ptp(x) == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # scipy warns on near-constant data
        out.update(skewness=_f(stats.skew(x)), excess_kurtosis=_f(stats.kurtosis(x)))
        if n < t["normal"]["shapiro_below"]:
            out.update(normality_test="shapiro", normality_p=_f(stats.shapiro(x).pvalue, 8))
        else:
            out.update(normality_test="normaltest", normality_p=_f(stats.normaltest(x).pvalue, 8))
    return out


def chart_data(x) -> dict:
    """Histogram with the fitted normal curve and a Q–Q plot, for the pages."""
    x = np.asarray(x, dtype="float64")
    x = x[~np.isnan(x)]
    if len(x) < 3 or np.ptp(x) == 0:
        return {}
    edges = np.histogram_bin_edges(x, bins="sturges")
    counts, edges = np.histogram(x, bins=edges)
    mu, sd = float(np.mean(x)), float(np.std(x, ddof=1))
    width = edges[1] - edges[0]
    centers = (edges[:-1] + edges[1:]) / 2
    curve = stats.norm.pdf(centers, mu, sd) * len(x) * width
    probs = (np.arange(1, QQ_POINTS + 1) - 0.5) / QQ_POINTS if len(x) > QQ_POINTS else \
        (np.arange(1, len(x) + 1) - 0.5) / len(x)
    theo = stats.norm.ppf(probs, mu, sd)
    sample = np.quantile(x, probs)
    return {"bins": [[_f(a, 4), _f(b, 4), int(c)] for a, b, c in zip(edges[:-1], edges[1:], counts)],
            "normal": [_f(v, 3) for v in curve],
            "qq": [[_f(a, 4), _f(b, 4)] for a, b in zip(theo, sample)]}


def indicator_stats(clause, values, points, t) -> dict:
    """One indicator over one cohort: reporting, values at or below zero, distinct values,
    the points' distribution, how well it separates (Gini), and its flags (差异化)."""
    n = len(values)
    reported = ~np.isnan(values)
    mx = float(clause.body["points"])
    d = t["differentiated"]
    full = float(np.mean(points >= mx - 1e-9)) if n else 0.0
    zero = float(np.mean(points <= 0)) if n else 0.0
    distinct = int(len(np.unique(values[reported])))
    scoring_gini = gini(points[points > 0])
    q = np.quantile(points, [0, 0.25, 0.5, 0.75, 1]) if n else [0] * 5
    out = {"clause": clause.id, "title": clause.title, "category": clause.body["category"],
           "method": clause.body.get("method", "percentile"), "max_points": mx,
           "reporting_rate": _f(reported.mean() if n else None),
           "nonpositive_share": _f(np.mean(values[reported] <= 0) if reported.any() else None),
           "distinct_values": distinct, "points_mean": _f(np.mean(points) if n else None),
           "points_std": _f(np.std(points, ddof=1) if n > 1 else None),
           "full_points_share": _f(full), "zero_points_share": _f(zero),
           "gini": _f(gini(points)), "scoring_gini": _f(scoring_gini), "box": [_f(v, 4) for v in q]}
    flags = []
    if zero > d["max_zero_points_share"]:
        flags.append(f"{pct(zero)}的企业得0分，超过目标{pct(d['max_zero_points_share'])}")
    if scoring_gini is not None and scoring_gini > d["max_scoring_gini"]:
        flags.append(f"得分企业之间的基尼系数{scoring_gini:.3f}，超过目标{d['max_scoring_gini']:g}"
                     "（分数集中在少数企业，多数企业挤在低分端）")
    if full > d["max_full_points_share"]:
        flags.append(f"{pct(full)}的企业得满分，超过目标{pct(d['max_full_points_share'])}")
    if distinct < d["min_distinct_values"] and out["method"] != "yes_no":      # a yes/no has two by nature
        flags.append(f"只有{distinct}个不同取值，少于目标{d['min_distinct_values']}个")
    out["flags"] = flags
    return out


def pct(x) -> str:
    return f"{x * 100:.1f}%"


def _relations(sc, points, final, w, t, inds, base_pairs=None, changed=None):
    """What ties the indicators to each other and to the final score, vectorised over the
    cohort: correlation with the final score, share of the weighted score's variance (they add
    up to 1), pairs correlated above the target; their flags go onto `inds`."""
    contrib = points * w
    weighted = contrib.sum(axis=1)
    n = len(final)
    dev = weighted - weighted.mean()
    var = float(np.mean(dev ** 2)) if n > 1 else 0.0
    shares = ((contrib - contrib.mean(axis=0)) * dev[:, None]).mean(axis=0) / var if var > 0 else [None] * len(inds)
    sd = points.std(axis=0)
    fd = final - final.mean() if n else final
    fsd = float(np.std(final)) if n else 0.0
    corr = ((points - points.mean(axis=0)) * fd[:, None]).mean(axis=0) / np.where(sd > 0, sd, 1) / (fsd or 1)
    h = t["healthy"]
    for j, s_ in enumerate(inds):
        s_["corr_final"] = _f(corr[j]) if sd[j] > 0 and fsd > 0 and n > 1 else None
        share = None if shares[j] is None else float(shares[j])
        s_["variance_share"] = _f(share)
        s_["flags"] = [f for f in s_["flags"] if "方差" not in f and "相关系数" not in f]
        if share is not None and share > h["max_variance_share"]:
            s_["flags"].append(f"占加权得分方差的{pct(share)}，超过目标{pct(h['max_variance_share'])}")
    live = np.flatnonzero(sd > 0)
    found = []                      # (a, b, r) with a < b, indices of the clauses
    if base_pairs is not None:      # one indicator changed: keep the other pairs, test its own
        pos = {c.id: k for k, c in enumerate(sc.clauses)}
        found = [(pos[p["a"]], pos[p["b"]], p["r"]) for p in base_pairs if changed not in (pos[p["a"]], pos[p["b"]])]
        if n > 2 and sd[changed] > 0:
            z = (points[:, live] - points[:, live].mean(axis=0)) / sd[live]
            zj = (points[:, changed] - points[:, changed].mean()) / sd[changed]
            rs = (z * zj[:, None]).mean(axis=0)
            found += [(min(changed, k), max(changed, k), float(r)) for k, r in zip(live, rs)
                      if k != changed and abs(r) > h["max_correlation"]]
        found.sort()
    elif n > 2 and len(live) > 1:
        # Pearson correlations of the live columns; einsum rather than np.corrcoef's BLAS call,
        # whose threads spin for seconds on a busy machine
        z = points[:, live] - points[:, live].mean(axis=0)
        z /= np.sqrt(np.einsum("ij,ij->j", z, z))
        cm = np.einsum("ij,ik->jk", z, z)
        found = [(live[a], live[b], float(cm[a, b]))
                 for a, b in np.argwhere(np.triu(np.abs(cm) > h["max_correlation"], k=1))]
    pairs = []
    for a, b, r in found:
        ca, cb = sc.clauses[a], sc.clauses[b]
        pairs.append({"a": ca.id, "b": cb.id, "a_title": ca.title, "b_title": cb.title, "r": _f(r)})
        inds[a]["flags"].append(f"与{cb.id}（{cb.title}）得分相关系数{r:.2f}，可能重复计分")
        inds[b]["flags"].append(f"与{ca.id}（{ca.title}）得分相关系数{r:.2f}，可能重复计分")
    return pairs


def cohort_diagnostics(sc: Scored, rows, t, points=None, final=None, base=None, changed=None,
                       values=None, w=None) -> dict:
    """Diagnostics of one stage cohort (`rows`: the included rows of the stage), optionally
    with other points and final scores (a tuning alternative: `base` the cohort's own
    diagnostics, `changed` the one indicator whose points differ; `values` and `w` the
    cohort's slices when the caller has them)."""
    points = sc.points[rows] if points is None else points
    final = sc.final[rows] if final is None else final
    values = sc.values[rows] if values is None else values
    w = sc.weights()[rows] if w is None else w
    if base is None:
        inds = [indicator_stats(c, values[:, j], points[:, j], t) for j, c in enumerate(sc.clauses)]
    else:
        inds = [dict(x, flags=list(x["flags"])) for x in base["indicators"]]
        inds[changed] = indicator_stats(sc.clauses[changed], values[:, changed], points[:, changed], t)
    pairs = _relations(sc, points, final, w, t, inds, base["redundant_pairs"] if base else None, changed)
    out = score_stats(final, t)
    out.update(indicators=inds, redundant_pairs=pairs, charts=chart_data(final) if base is None else {})
    out["verdict"] = verdict(out, t)
    return out


def verdict(d, t) -> dict:
    """差异化 / 正态化 / 健康化: met or not, and why, in plain Chinese, against the targets."""
    nt = t["normal"]
    diff_bad = [f"{i['clause']}（{i['title']}）：{f}" for i in d["indicators"] for f in i["flags"]
                if "得0分" in f or "基尼" in f or "得满分" in f or "不同取值" in f]
    normal_why = []
    if d["n"] < 3 or d["skewness"] is None:
        normal_why.append(f"企业数{d['n']}家，无法检验")
    else:
        if abs(d["skewness"]) > nt["max_abs_skewness"]:
            normal_why.append(f"偏度{d['skewness']:.2f}，绝对值超过目标{nt['max_abs_skewness']:g}"
                              + ("（右偏：低分企业多）" if d["skewness"] > 0 else "（左偏：高分企业多）"))
        if abs(d["excess_kurtosis"]) > nt["max_abs_excess_kurtosis"]:
            normal_why.append(f"超额峰度{d['excess_kurtosis']:.2f}，绝对值超过目标{nt['max_abs_excess_kurtosis']:g}")
        if d["normality_p"] is not None and d["normality_p"] < nt["min_normality_p"]:
            test = "Shapiro–Wilk" if d["normality_test"] == "shapiro" else "D'Agostino–Pearson"
            normal_why.append(f"{test}正态性检验 p={d['normality_p']:.4f}，低于{nt['min_normality_p']:g}")
    healthy_bad = [f"{i['clause']}（{i['title']}）：{f}" for i in d["indicators"] for f in i["flags"]
                   if "方差" in f or "相关系数" in f]

    def one(key, bad, ok_text):
        return {"key": key, "title": VERDICTS[key], "met": not bad,
                "text": f"{VERDICTS[key]}：{'达到' if not bad else '未达到'}。" + (ok_text if not bad else "；".join(bad[:8])
                                                                              + (f" 等{len(bad)}项" if len(bad) > 8 else ""))}
    return {"differentiated": one("differentiated", diff_bad, "每项指标得0分、得满分的企业占比和不同取值数都在目标内"),
            "normal": one("normal", normal_why,
                          f"偏度、超额峰度和正态性检验都在目标内（|偏度| ≤ {nt['max_abs_skewness']:g}，"
                          f"|超额峰度| ≤ {nt['max_abs_excess_kurtosis']:g}，p ≥ {nt['min_normality_p']:g}）"),
            "healthy": one("healthy", healthy_bad, "没有一项指标主导加权得分，也没有高度相关的指标对")}


def diagnose(sc: Scored) -> dict:
    """Diagnostics of every stage cohort (the included enterprises of each stage key)."""
    t = targets(sc.policy)
    out = []
    for st in stage_order(sc.stage[sc.included].tolist(), sc.policy):
        rows = np.flatnonzero(sc.included & (sc.stage == st))
        d = cohort_diagnostics(sc, rows, t)
        out.append({"stage": st, "stage_zh": stage_title(st, sc.policy), **d})
    return {"year": sc.year, "policy": sc.policy.name, "citation": t.get("citation", ""),
            "targets": {k: dict(v) for k, v in t.items() if k in VERDICTS}, "stages": out}


def compare(before: dict, after: dict) -> list:
    """Per stage, the final scores' figures and the verdict before and after (a what-if)."""
    old = {st["stage"]: st for st in before["stages"]}
    out = []
    for st in after["stages"]:
        b = old.get(st["stage"], {})
        out.append({"stage": st["stage"], "stage_zh": st["stage_zh"],
                    **{f"{k}_{side}": src.get(k) for k in ("n", "mean", "skewness", "excess_kurtosis", "normality_p")
                       for side, src in (("before", b), ("after", st))},
                    "verdict": {k: {"title": v["title"], "before": b["verdict"][k]["met"] if b else None, "after": v["met"]}
                                for k, v in st["verdict"].items()},
                    "flagged_before": sum(bool(i["flags"]) for i in b.get("indicators", [])),
                    "flagged_after": sum(bool(i["flags"]) for i in st["indicators"])})
    return out


# ---- tuning: a flagged indicator under the other methods of SPEC §2.2 --------------------------------

def _alternative(clause, method, params, values):
    """A copy of `clause` scored by `method`; benchmark and thresholds take their reference
    values from the cohort's quantiles as the tuning settings say."""
    c = copy.copy(clause)
    body = dict(clause.body)
    body["method"] = method
    present = values[~np.isnan(values) & (values > 0)]
    if method == "minmax":
        body["params"] = {"winsorize": params.get("winsorize", 0.0)}
    elif method == "benchmark":
        if not len(present):
            return None
        bench = float(np.quantile(present, params["quantile"]))
        if bench <= 0:
            return None
        body["params"] = {"benchmark": bench, "cap": params.get("cap", 1)}
    elif method == "thresholds":
        if not len(present):
            return None
        qs = np.quantile(present, params["quantiles"])
        body["params"] = {"bands": [{"min": float(q), "share": float(s)} for q, s in zip(qs, params["shares"])]}
    else:
        body["params"] = {}
    c.body = body
    return c


def tune(sc: Scored, diagnosis=None, clause_ids=None) -> list:
    """For each stage and each flagged indicator (or `clause_ids`), the diagnostics under
    each other tuning method of the policy settings: the indicator's own figures and flags,
    and the stage's final-score figures and verdict with that one indicator re-scored."""
    t = targets(sc.policy)
    zero_np = sc.policy.settings("indicators").get("nonpositive_scores_zero", True)
    diagnosis = diagnosis or diagnose(sc)
    out = []
    for d in diagnosis["stages"]:
        rows = np.flatnonzero(sc.included & (sc.stage == d["stage"]))
        wanted = [j for j, c in enumerate(sc.clauses)
                  if (c.id in clause_ids if clause_ids else d["indicators"][j]["flags"])
                  and c.body.get("method", "percentile") != "yes_no"]
        if not wanted:
            continue
        pts0, vals, w = sc.points[rows], sc.values[rows], sc.weights()[rows]
        cohorts = [np.flatnonzero(sc.cohort[rows] == cid) for cid in np.unique(sc.cohort[rows])]
        for j in wanted:
            c = sc.clauses[j]
            before = d["indicators"][j]
            options = []
            for method, params in (t.get("tuning") or {}).items():
                if method == c.body.get("method", "percentile"):
                    continue
                col = pts0[:, j].copy()
                alt_ok = True
                for sub in cohorts:
                    alt = _alternative(c, method, params or {}, vals[sub, j])
                    if alt is None:
                        alt_ok = False
                        break
                    col[sub] = indicators.cohort_points(alt, vals[sub, j], zero_np)
                if not alt_ok:
                    continue
                pts = pts0.copy()
                pts[:, j] = col
                # only indicator j changed: the final score moves by its weighted difference,
                # composed again by the scoring code (deductions, decay, bonus, rounding)
                weighted = (pts0 * w).sum(axis=1) + w[:, j] * (col - pts0[:, j])
                final = final_score(sc.policy, weighted, sc.deductions[rows], sc.decay_factor[rows], sc.bonus[rows])
                alt_d = cohort_diagnostics(sc, rows, t, points=pts, final=final, base=d, changed=j, values=vals, w=w)
                ind = alt_d["indicators"][j]
                options.append({"method": method, "method_zh": METHOD_ZH.get(method, method),
                                "params": alt.body["params"], "indicator": ind,
                                "final": {k: alt_d[k] for k in ("n", "mean", "median", "std", "skewness",
                                                                "excess_kurtosis", "normality_test", "normality_p")},
                                "verdict": alt_d["verdict"],
                                "improves": len(ind["flags"]) < len(before["flags"])})
            out.append({"stage": d["stage"], "stage_zh": d["stage_zh"], "clause": c.id, "title": c.title,
                        "method": c.body.get("method", "percentile"),
                        "method_zh": METHOD_ZH.get(c.body.get("method", "percentile"), ""),
                        "before": before, "before_verdict": d["verdict"], "options": options})
    return out


# ---- potential (§四.(四)) ----------------------------------------------------------------------------

TARGETS_ZH = {"median": "同阶段中位数", "top_decile": "同阶段前10%"}


def _rank(final_others, f):
    """The rank `f` takes among the other scores (equal scores share the best rank)."""
    return int(1 + np.sum(final_others > f))


def potential(sc: Scored, codes, top=5) -> dict:
    """For each enterprise of `codes`: for every indicator where reaching its cohort's median
    or top decile (90th percentile) of values would raise it, the final score and ranks it
    would then have. Each figure is a what-if of the scoring code on one changed record: the
    enterprise's records with that one value changed are evaluated (stage, scope, negative
    list, decay, bonus, indicator values), then its cohort — everyone else as they are — is
    scored again with it. Returns code -> {levers: [...], by_target: {median: [...], ...}}."""
    from .evaluate import evaluate
    if sc.records is None:
        raise ValueError("potential needs the records")
    recs = sc.records
    variants, meta = [], []
    rec_codes = recs["credit_code"].to_numpy(dtype=object)
    for code in codes:
        i = sc.index.get(code)
        if i is None or not sc.included[i]:
            continue
        own = recs[rec_codes == code]
        cur = np.flatnonzero(own["year"].to_numpy() == sc.year)
        if not len(cur):
            continue
        cohort = np.flatnonzero(sc.cohort == sc.cohort[i])
        for j, c in enumerate(sc.clauses):
            v = sc.values[cohort, j]
            v = v[~np.isnan(v)]
            if not len(v):
                continue
            mine = sc.values[i, j]
            for kind, q in (("median", 0.5), ("top_decile", 0.9)):
                target = float(np.quantile(v, q))
                if not np.isnan(mine) and target <= mine:
                    continue
                if target <= 0 and indicators.cohort_points(c, np.array([target, target]), True).max() == 0:
                    continue
                k = len(meta)
                changed = own.copy()
                col = changed.columns.get_loc(c.body["key"])
                kind_bool = pd.api.types.is_bool_dtype(changed[c.body["key"]].dtype)
                changed.iloc[cur[0], col] = bool(target) if kind_bool else target
                changed["credit_code"] = f"{code}#{k}"
                if "ent" in changed:           # history joins on this id: one per variant
                    changed["ent"] = k
                variants.append(changed)
                meta.append((code, i, j, kind, target))
    if not meta:
        return {c: {"levers": [], "by_target": {k: [] for k in TARGETS_ZH}} for c in codes}
    frame = pd.concat(variants, ignore_index=True)
    for col, dtype in recs.dtypes.items():          # concat of one-row edits keeps the typed columns
        if frame[col].dtype != dtype:
            try:
                frame[col] = frame[col].astype(dtype)
            except (TypeError, ValueError):
                pass
    ev = evaluate(frame, sc.year, sc.policy)
    vs = ev.scores
    vpos = {c: n for n, c in enumerate(vs["credit_code"].to_numpy(dtype=object))}
    zero_np = sc.policy.settings("indicators").get("nonpositive_scores_zero", True)
    result = {c: {"levers": []} for c in codes}
    for k, (code, i, j, kind, target) in enumerate(meta):
        n = vpos[f"{code}#{k}"]
        lever = {"clause": sc.clauses[j].id, "title": sc.clauses[j].title, "target": kind,
                 "target_zh": TARGETS_ZH[kind], "value": _f(sc.values[i, j]), "target_value": _f(target),
                 "points_before": _f(sc.points[i, j]), "final_before": _f(sc.final[i]),
                 "rank_in_stage_before": _rank(sc.final[sc.included & (sc.stage == sc.stage[i])], sc.final[i]),
                 "stage": sc.stage[i], "stage_after": vs["stage"].iat[n]}
        if bool(vs["excluded"].iat[n]):
            lever.update(excluded_after=True, final_after=None, gain=None)
            result[code]["levers"].append(lever)
            continue
        st = vs["stage"].iat[n]
        # the cohort the changed record would join: its stage and extra keys, without itself
        members = np.flatnonzero(sc.included & (sc.stage == st) & (sc.group == sc.group[i]))
        members = members[members != i]
        vals = np.vstack([sc.values[members], ev.indicator_values[n][None, :]])
        pts = np.vstack([sc.points[members], np.zeros((1, len(sc.clauses)))])
        same = st == sc.stage[i]
        for m, c in enumerate(sc.clauses):
            if same and not np.any(vals[-1, m] != sc.values[i, m]) and not (np.isnan(vals[-1, m]) != np.isnan(sc.values[i, m])):
                pts[-1, m] = sc.points[i, m]
                continue
            pts[:, m] = indicators.cohort_points(c, vals[:, m], zero_np)
        rows = np.append(members, i)
        cats = indicators.category_scores(sc.policy, sc.clauses, pts)
        weighted = indicators.weighted(sc.policy, np.array([st] * len(rows), dtype=object), cats)
        ded, dec, bon = sc.deductions[rows].copy(), sc.decay_factor[rows].copy(), sc.bonus[rows].copy()
        ded[-1], dec[-1], bon[-1] = (vs[k].iat[n] for k in ("deductions", "decay_factor", "bonus"))
        finals = final_score(sc.policy, weighted, ded, dec, bon)
        f = float(finals[-1])
        everyone = sc.final.copy()
        everyone[members] = finals[:-1]
        everyone[i] = np.nan
        stage_others = everyone[sc.included & (sc.stage == st)]
        lever.update(points_after=_f(pts[-1, j]), final_after=_f(f, 4),
                     gain=_f(f - sc.final[i], 4), excluded_after=False,
                     rank_in_stage_after=_rank(stage_others[~np.isnan(stage_others)], f),
                     rank_overall_after=_rank(everyone[sc.included & ~np.isnan(everyone)], f))
        result[code]["levers"].append(lever)
    for code, r in result.items():
        levers = sorted(r["levers"], key=lambda x: -(x["gain"] if x["gain"] is not None else -1e9))
        r["levers"] = levers
        r["by_target"] = {kind: [x for x in levers if x["target"] == kind][:top] for kind in TARGETS_ZH}
    return result
