"""The engine module: each durable-rules pitfall it guards against, and pattern sharing."""
import numpy as np
import pandas as pd
import pytest

from rules import engine
from rules.effects import facts_frame
from rules.negative_list import apply


def frame(n, **cols):
    base = {k: np.zeros(n) for k in ("credit_blacklisted", "major_safety_incident", "hte_requalification_failed",
                                      "tech_sme_reevaluation_failed", "tech_sme_out_of_scope",
                                      "delisted_platforms_national", "delisted_platforms_provincial",
                                      "delisted_platforms_municipal")}
    base["env_credit_rating"] = np.array([""] * n, dtype=object)
    base.update(cols)
    return pd.DataFrame(base)


def test_many_patterns_span_many_sessions(policy):
    # more distinct patterns than one session holds, and more than 1024 sessions' worth of
    # facts would be if sessions were not deleted
    n = 3000
    f = frame(n, delisted_platforms_municipal=np.arange(n, dtype=float),
              env_credit_rating=np.array(["warning", "good", "bad"] * (n // 3), dtype=object))
    nl = apply(policy, 2022, f, np.ones(n, dtype=int))
    assert nl.decision.patterns == n
    expected = np.where(np.arange(n) >= 1, 1.0, 0.0) + np.where(np.arange(n) % 3 == 0, 5.0, 0.0)
    assert np.array_equal(nl.deductions, expected)
    assert nl.excluded.tolist() == [i % 3 == 2 for i in range(n)]


def test_equal_inputs_share_one_engine_evaluation(policy):
    n = 10000
    f = frame(n, credit_blacklisted=np.where(np.arange(n) % 2 == 0, 1.0, 0.0))
    nl = apply(policy, 2022, f, np.ones(n, dtype=int))
    assert nl.decision.patterns == 2
    assert nl.excluded.sum() == n // 2


def test_missing_flags_are_false_for_the_engine(policy):
    f, missing = facts_frame(policy, "negative_list", 2022, frame(1, tech_sme_reevaluation_failed=np.array([1.0]),
                                                            tech_sme_out_of_scope=np.array([np.nan])), np.array([1]))
    d = engine.decide(policy, "negative_list", 2022, f, missing)
    assert d.fired == [["NL-4b"]]
    # the trace can still tell "not reported" from 否
    assert d.not_reported == [["tech_sme_out_of_scope"]]


def test_reported_no_and_not_reported_are_separate_patterns(policy):
    f, missing = facts_frame(policy, "negative_list", 2022, frame(2, tech_sme_reevaluation_failed=np.array([1.0, 1.0]),
                                                            tech_sme_out_of_scope=np.array([0.0, np.nan])),
                             np.array([1, 1]))
    d = engine.decide(policy, "negative_list", 2022, f, missing)
    assert d.patterns == 2 and d.fired == [["NL-4b"], ["NL-4b"]]
    assert d.not_reported == [[], ["tech_sme_out_of_scope"]]


def test_continuous_amounts_are_coarsened_to_the_intervals_conditions_tell_apart(policy):
    """SCOPE reads rd_expense (> 0): a million different amounts make two engine patterns,
    and the engine decides the same as on the exact values."""
    n = 1000
    rd = np.linspace(-1, 500, n)
    others = {k: np.zeros(n) for k in ("is_hte_or_tech_sme", "is_champion_or_specialized", "rd_intensity",
                                        "invention_applications", "pct_applications", "invention_grants")}
    f, missing = facts_frame(policy, "scope", 2022, frame(n, rd_expense=rd, **others), np.ones(n, dtype=int))
    d = engine.decide(policy, "scope", 2022, f, missing)
    assert d.patterns <= 3
    fired = np.array([bool(d.fired[p]) for p in d.pattern])
    assert (fired == (rd > 0)).all()
    assert {c.get("rd_expense") for c in d.classes} <= {"< 0", "= 0", "> 0"}


@pytest.mark.parametrize("consts", [[0], [5, 10], [1, 2, 3]])
def test_coarsened_values_compare_like_the_exact_ones(consts):
    v = np.array([-7, 0, 0.5, 1, 2, 2.5, 3, 4.9, 5, 7, 10, 11, 1e9])
    rep, _ = engine.coarsen(v, consts)
    for c in consts:
        for op in (np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal):
            assert (op(v, c) == op(rep, c)).all()


def test_action_exception_is_not_swallowed():
    class Broken(engine._host_class()):
        def get_action(self, name):
            def act(c):
                if name != engine.SEEN:
                    raise RuntimeError("boom")
                self.fired[c.m.pno].append(name)
            return act
    host = Broken()
    host.set_rulesets({"g": {"R": {"all": [{"m": {"$gte": {"x": 1}}}], "run": "R"},
                             engine.SEEN: {"all": [{"m": {"$gte": {"pno": 0}}}], "run": engine.SEEN}}})
    with pytest.raises(engine.EngineError, match="boom"):
        engine.run(host, "g", [{"x": 1}, {"x": 0}])


def test_non_finite_values_are_refused():
    with pytest.raises(engine.EngineError):
        engine._fact_value(float("inf"))


def test_one_host_per_policy_version(policy, policy_copy):
    from rules.policy import load_policy
    other = policy_copy / "bonus.yaml"
    other.write_text(other.read_text(encoding="utf-8").replace("effect: {add: 3}", "effect: {add: 4}"), encoding="utf-8")
    pv2 = load_policy(policy_copy)
    assert engine.host_for(policy, 2022) is engine.host_for(policy, 2022)
    assert engine.host_for(pv2, 2022) is not engine.host_for(policy, 2022)
