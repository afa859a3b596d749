"""Calibration diagnostics (§四.(二)) and potential (§四.(四)), issue 15: generated cohorts whose
answers are known, the figures against scipy on the same numbers, the targets read from the
policy package, the tuning view, and 提升空间 against full re-evaluations of the golden data."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import stats

from rules import diagnostics as D
from rules import indicators
from rules.evaluate import evaluate
from rules.policy import PolicyError, load_policy
from rules.records import load_inputs
from tests.conftest import GOLDEN

YEAR = 2022


def a_stage(policy):
    """A stage key of the policy (from its weights, never written here)."""
    return next(k for k in policy.groups["indicators"]["weights"] if k != "citation")


def synthetic(policy, n, seed=1, column=None, method=None):
    """A scored cohort of `n` enterprises of one stage: random positive values for every
    indicator, scored by the scoring code; `column(rng, n)` replaces the values of the first
    percentile indicator, `method` its scoring method."""
    rng = np.random.default_rng(seed)
    clauses = [c for c in policy.clauses_for("indicators", YEAR)]
    values = rng.lognormal(3, 1, size=(n, len(clauses)))
    for j, c in enumerate(clauses):
        if c.body.get("method") == "yes_no":
            values[:, j] = rng.random(n) < 0.5
    j0 = next(j for j, c in enumerate(clauses) if c.body.get("method", "percentile") == "percentile")
    if column is not None:
        values[:, j0] = column(rng, n)
    if method is not None:
        clauses[j0] = type(clauses[j0])(**{**clauses[j0].__dict__, "body": {**clauses[j0].body, **method}})
    points = np.column_stack([indicators.cohort_points(c, values[:, j]) for j, c in enumerate(clauses)])
    stage = np.array([a_stage(policy)] * n, dtype=object)
    zeros = np.zeros(n)
    sc = D.Scored(policy, YEAR, clauses, np.array([f"E{i}" for i in range(n)], dtype=object), stage,
                  np.ones(n, bool), values, points, zeros, np.ones(n), zeros, np.full(n, np.nan))
    sc.final = sc.compose(points, np.arange(n))
    return sc, j0


@pytest.mark.parametrize("n", [15, 60, 800])
def test_moments_and_p_values_equal_scipy(policy, n):
    x = np.round(np.random.default_rng(n).normal(50, 10, n), 4)
    got = D.score_stats(x, D.targets(policy))
    assert got["n"] == n
    assert got["mean"] == pytest.approx(np.mean(x), abs=1e-6)
    assert got["median"] == pytest.approx(np.median(x), abs=1e-6)
    assert got["std"] == pytest.approx(np.std(x, ddof=1), abs=1e-6)
    assert got["skewness"] == pytest.approx(stats.skew(x), abs=1e-6)
    assert got["excess_kurtosis"] == pytest.approx(stats.kurtosis(x), abs=1e-6)
    small = n < D.targets(policy)["normal"]["shapiro_below"]
    p = stats.shapiro(x).pvalue if small else stats.normaltest(x).pvalue
    assert got["normality_test"] == ("shapiro" if small else "normaltest")
    assert got["normality_p"] == pytest.approx(p, abs=1e-8)


def test_normal_scores_pass_and_skewed_scores_fail(policy):
    t = D.targets(policy)
    rng = np.random.default_rng(7)
    normal = D.score_stats(rng.normal(50, 10, 600), t)
    skewed = D.score_stats(rng.exponential(10, 600), t)
    fake = {"indicators": []}
    v_normal = D.verdict({**normal, **fake}, t)["normal"]
    v_skewed = D.verdict({**skewed, **fake}, t)["normal"]
    assert v_normal["met"] and "达到" in v_normal["text"]
    assert not v_skewed["met"] and "偏度" in v_skewed["text"] and "右偏" in v_skewed["text"]


def test_the_targets_are_the_policy_packages(policy_copy):
    """Loosen the skewness, kurtosis and p targets in indicators.yaml: the skewed set passes."""
    f = policy_copy / "indicators.yaml"
    doc = yaml.safe_load(f.read_text(encoding="utf-8"))
    doc["settings"]["diagnostics"]["normal"].update(max_abs_skewness=50, max_abs_excess_kurtosis=50, min_normality_p=0)
    f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    loose = load_policy(policy_copy)
    t = D.targets(loose)
    skewed = D.score_stats(np.random.default_rng(7).exponential(10, 600), t)
    assert D.verdict({**skewed, "indicators": []}, t)["normal"]["met"]


@pytest.mark.parametrize("change, message", [
    ({"normal": {"max_abs_skewness": -1}}, "max_abs_skewness"),
    ({"healthy": {"max_correlation": 0.9, "max_variance_share": 0.25, "extra": 1}}, "未知的目标"),
    ({"citation": ""}, "citation"),
    ({"tuning": {"magic": {}}}, "tuning.magic"),
])
def test_rules_check_refuses_bad_targets(policy_copy, change, message):
    f = policy_copy / "indicators.yaml"
    doc = yaml.safe_load(f.read_text(encoding="utf-8"))
    for k, v in change.items():
        if isinstance(v, dict) and k != "tuning":
            doc["settings"]["diagnostics"][k].update(v)
        else:
            doc["settings"]["diagnostics"][k] = v
    f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(PolicyError) as exc:
        load_policy(policy_copy)
    assert message in str(exc.value)


def test_an_indicator_with_90_percent_zeros_is_flagged(policy):
    sc, j = synthetic(policy, 400, column=lambda rng, n: np.where(rng.random(n) < 0.9, 0.0, rng.lognormal(2, 1, n)))
    d = D.diagnose(sc)["stages"][0]
    ind = d["indicators"][j]
    zero = np.mean(sc.points[:, j] <= 0)
    assert zero > 0.85 and ind["zero_points_share"] == pytest.approx(zero, abs=1e-6)
    assert any("得0分" in f for f in ind["flags"])
    assert not d["verdict"]["differentiated"]["met"] and sc.clauses[j].id in d["verdict"]["differentiated"]["text"]
    # the other (lognormal, percentile-scored) indicators are not flagged for zeros
    assert not any("得0分" in f for i, x in enumerate(d["indicators"]) if i != j for f in x["flags"])


def test_indicator_figures(policy):
    sc, j = synthetic(policy, 300)
    d = D.diagnose(sc)["stages"][0]
    ind = d["indicators"][j]
    p = sc.points[:, j]
    assert ind["points_mean"] == pytest.approx(p.mean(), abs=1e-6)
    assert ind["corr_final"] == pytest.approx(stats.pearsonr(p, sc.final).statistic, abs=1e-6)
    assert ind["reporting_rate"] == 1.0 and ind["distinct_values"] == len(np.unique(sc.values[:, j]))
    # the variance shares of all indicators add up to the whole weighted score's variance
    assert sum(x["variance_share"] for x in d["indicators"]) == pytest.approx(1, abs=1e-4)
    # Gini: the mean absolute difference over twice the mean
    g = np.abs(p[:, None] - p[None, :]).mean() / (2 * p.mean())
    assert ind["gini"] == pytest.approx(g, abs=1e-6)


def test_redundant_pairs_are_named(policy):
    sc, j = synthetic(policy, 300)
    k = next(m for m, c in enumerate(sc.clauses) if m != j and c.body.get("method", "percentile") == "percentile")
    sc.values[:, k] = sc.values[:, j] * 2
    sc.points[:, k] = indicators.cohort_points(sc.clauses[k], sc.values[:, k])
    d = D.diagnose(sc)["stages"][0]
    assert {(p["a"], p["b"]) for p in d["redundant_pairs"]} == {tuple(sorted([sc.clauses[j].id, sc.clauses[k].id],
                                                                          key=[c.id for c in sc.clauses].index))}
    assert not d["verdict"]["healthy"]["met"]


def test_tuning_names_a_method_that_fixes_a_squeezed_indicator(policy):
    """A heavy-tailed amount scored by plain min–max: most enterprises squeezed near zero,
    flagged; the percentile method (the scoring code's own) removes the flag."""
    sc, j = synthetic(policy, 500, column=lambda rng, n: rng.pareto(1.2, n) * 100 + 1,
                      method={"method": "minmax", "params": {}})
    d = D.diagnose(sc)
    assert any("基尼" in f for f in d["stages"][0]["indicators"][j]["flags"])
    tuned = [x for x in D.tune(sc, d) if x["clause"] == sc.clauses[j].id]
    assert len(tuned) == 1
    by_method = {o["method"]: o for o in tuned[0]["options"]}
    assert "minmax" not in by_method and by_method["percentile"]["improves"]
    # the option's points are the scoring code's for that method
    alt = type(sc.clauses[j])(**{**sc.clauses[j].__dict__, "body": {**sc.clauses[j].body, "method": "percentile"}})
    p = indicators.cohort_points(alt, sc.values[:, j])
    assert by_method["percentile"]["indicator"]["points_mean"] == pytest.approx(p.mean(), abs=1e-6)


@pytest.fixture(scope="module")
def golden_eval():
    recs, cons = load_inputs(GOLDEN / "records.csv", GOLDEN / "contracts.csv")
    pv = load_policy()
    ev = evaluate(recs, YEAR, pv, cons)
    return recs, cons, pv, ev


def test_diagnose_golden_shape(golden_eval):
    recs, cons, pv, ev = golden_eval
    d = D.diagnose(D.from_evaluation(ev, recs))
    sc = ev.scores
    for st in d["stages"]:
        x = sc.loc[(sc["stage"] == st["stage"]) & ~sc["excluded"], "final_score"].to_numpy()
        assert st["n"] == len(x)
        assert st["skewness"] == pytest.approx(stats.skew(x), abs=1e-6)
        assert st["excess_kurtosis"] == pytest.approx(stats.kurtosis(x), abs=1e-6)
        assert {"stage", "n", "mean", "median", "std", "skewness", "excess_kurtosis", "normality_p",
                "indicators", "verdict"} <= set(st)
        assert len(st["indicators"]) == len(ev.indicator_clauses)


def test_potential_equals_full_re_evaluation(golden_eval):
    """For 20 enterprises of the golden example: each enterprise's best lever towards the
    stage median and towards the top decile, against a full evaluation of the whole
    year with that one value of that one record changed."""
    recs, cons, pv, ev = golden_eval
    sc = D.from_evaluation(ev, recs)
    scored = ev.scores[~ev.scores["excluded"]]
    codes = scored.sort_values("final_score")["credit_code"].iloc[::max(1, len(scored) // 20)].iloc[:20].tolist()
    assert len(codes) == 20
    pot = D.potential(sc, codes)
    checked = 0
    for code in codes:
        levers = [pot[code]["by_target"][k][0] for k in D.TARGETS_ZH if pot[code]["by_target"][k]]
        assert levers, code
        for lever in levers:
            clause = next(c for c in ev.indicator_clauses if c.id == lever["clause"])
            changed = recs.copy()
            row = (changed["credit_code"] == code) & (changed["year"] == YEAR)
            key = clause.body["key"]
            changed.loc[row, key] = bool(lever["target_value"]) if changed[key].dtype == bool else lever["target_value"]
            full = evaluate(changed, YEAR, pv, cons).scores.set_index("credit_code").loc[code]
            assert lever["final_after"] == pytest.approx(float(full["final_score"]), abs=1e-9), (code, lever)
            assert lever["rank_in_stage_after"] == int(full["rank_in_stage"]), (code, lever)
            assert lever["rank_overall_after"] == int(full["rank_overall"]), (code, lever)
            assert lever["stage_after"] == full["stage"]
            assert lever["gain"] > 0
            checked += 1
    assert checked >= 20
