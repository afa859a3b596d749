"""Budget allocation (SPEC §2.7) as properties over random award sets and budgets."""
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.rewards import AwardLine, Awards, allocate

line = st.builds(
    lambda code, clause, kind, amount, score: AwardLine(f"C{code:04d}", clause, kind, amount,
                                                        score=None if score is None else score / 100),
    st.integers(0, 60), st.sampled_from(["RW-1", "RW-2", "RW-3", "RW-4", "RW-5"]),
    st.sampled_from(["fixed", "floating"]), st.integers(1, 1_000_000),
    st.one_of(st.none(), st.integers(0, 10000)))
lines = st.lists(line, max_size=40).map(lambda ls: list({(a.credit_code, a.clause): a for a in ls}.values()))


def run(award_lines, budget, strategy):
    """Allocate over a table made from the lines; return the lines with their grants and
    the budget outcome."""
    table = Awards.from_lines(award_lines)
    outcome = allocate(table, budget, strategy)
    return table.lines(), outcome


@settings(max_examples=300, deadline=None)
@given(lines, st.one_of(st.none(), st.integers(0, 20_000_000)), st.sampled_from(["pro_rata", "rank_priority"]))
def test_budget_properties(award_lines, budget, strategy):
    award_lines, out = run(award_lines, budget, strategy)
    eligible = sum(a.eligible_yuan for a in award_lines)
    granted = sum(a.granted_yuan for a in award_lines)
    assert granted == out.granted_total == (eligible if budget is None else min(budget, eligible))
    assert all(0 <= a.granted_yuan <= a.eligible_yuan for a in award_lines)
    assert all(isinstance(a.granted_yuan, int) for a in award_lines)
    fixed_total = sum(a.eligible_yuan for a in award_lines if a.kind == "fixed")
    if budget is not None and fixed_total <= budget:
        # fixed items are paid in full before any floating item
        assert all(a.granted_yuan == a.eligible_yuan for a in award_lines if a.kind == "fixed")
    if budget is not None and fixed_total > budget:
        assert all(a.granted_yuan == 0 for a in award_lines if a.kind == "floating")
        assert out.fixed_shortfall == fixed_total - budget


def _key(a):
    return (-(a.score if a.score is not None else -1.0), a.credit_code, a.clause)


@settings(max_examples=300, deadline=None)
@given(lines, st.integers(0, 20_000_000))
def test_rank_priority_never_skips_a_higher_ranked_line(award_lines, budget):
    award_lines, _ = run(award_lines, budget, "rank_priority")
    floating = sorted((a for a in award_lines if a.kind == "floating"), key=_key)
    for higher, lower in zip(floating, floating[1:]):
        if lower.granted_yuan > 0:
            assert higher.granted_yuan == higher.eligible_yuan


@settings(max_examples=200, deadline=None)
@given(lines, st.integers(0, 20_000_000))
def test_pro_rata_is_within_a_yuan_of_the_exact_share(award_lines, budget):
    award_lines, out = run(award_lines, budget, "pro_rata")
    floating = [a for a in award_lines if a.kind == "floating"]
    total = sum(a.eligible_yuan for a in floating)
    remaining = budget - out.fixed_total
    if total and 0 <= remaining < total:
        for a in floating:
            exact = Decimal(a.eligible_yuan) * remaining / total
            assert abs(a.granted_yuan - exact) < 1


def test_largest_remainder_tie_breaks_by_score_then_code():
    a = AwardLine("B", "RW-1", "floating", 1, score=50.0)
    b = AwardLine("A", "RW-1", "floating", 1, score=50.0)
    c = AwardLine("C", "RW-1", "floating", 1, score=60.0)
    got = {x.credit_code: x.granted_yuan for x in run([a, b, c], 2, "pro_rata")[0]}  # each 2/3: two get a yuan
    assert got == {"C": 1, "A": 1, "B": 0}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=10**9, places=5,
                            allow_nan=False, allow_infinity=False), min_size=1, max_size=30),
       st.sampled_from(["0.01", "0.015", "0.0125", "1"]))
def test_contract_rate_is_exact_decimal_half_up(amounts, rate):
    from decimal import ROUND_HALF_UP
    from rules.rewards import rate_of_amounts
    text = [format(a, "f") for a in amounts] + ["1e3"]
    got = rate_of_amounts(text, Decimal(rate)).tolist()
    want = [int((Decimal(t) * 10000 * Decimal(rate)).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for t in text]
    assert got == want


def test_contract_numbers_that_need_escaping_stay_valid_json():
    import json
    import pyarrow as pa
    from rules.output import _json_list
    from rules.rewards import ContractTotals
    nos = np.array(['A"1', "B\\2", "C3"], dtype=object)
    ct = ContractTotals(np.array([0, 1]), np.array([0, 2]), np.array([2, 3]), np.array([2, 1]), nos,
                        np.array(["1", "2", "3"], dtype=object), np.array([1, 1, 1]))
    got = _json_list(ct, pa.array(nos, pa.string())).to_pylist()
    assert [json.loads(x) for x in got] == [['A"1', "B\\2"], ["C3"]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["A-1", "A-2", "A-10", "B-1", "", "A-1 ", "甲-1", None])),
                max_size=30), st.booleans())
def test_contracts_in_order_of_enterprise_then_number(pairs, presorted):
    """Contracts ordered by enterprise, then number (bytewise, equal numbers in the file's
    order), whether the file lists each enterprise's numbers in order (the quick path) or not:
    the same order as sorting by both."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from rules.rewards import _by_enterprise_then_number
    if presorted:
        pairs = sorted(pairs, key=lambda p: (p[0], p[1] is None, (p[1] or "").encode()))
    ent = np.array([p[0] for p in pairs], dtype=np.int64)
    nos = pa.array([p[1] for p in pairs], pa.string())
    want = np.lexsort((pc.rank(nos, sort_keys="ascending", tiebreaker="first").to_numpy(), ent)) if pairs \
        else np.zeros(0, np.int64)
    assert _by_enterprise_then_number(ent, nos).tolist() == want.tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1.0, 2.0, 3.0]), st.sampled_from([0.0, -0.0, 1.5, 2.25, 80.1234, 99.0])),
                max_size=40), st.booleans())
def test_stage_ranks_and_percentiles_are_pandas_ranks(pairs, int_levels):
    """`group_ranks` (one sort) answers as pandas' groupby ranks did: the best shared rank
    by score descending, and the share of the stage at or below the score × 100, exactly."""
    import pandas as pd

    from rules.evaluate import group_ranks, min_rank
    g = np.array([p[0] for p in pairs], dtype=np.int64 if int_levels else np.float64)   # stage levels
    v = np.array([p[1] for p in pairs])
    rank, pct = group_ranks(v, g)
    assert rank.tolist() == min_rank(v, g).tolist()
    want = pd.Series(v).groupby(pd.Series(g)).rank(method="max", pct=True).to_numpy() * 100
    assert pct.tolist() == want.tolist()
    if len(v):
        with_missing = v.copy()
        with_missing[0] = np.nan           # pandas' answer, NaN where the value is missing
        r2, p2 = group_ranks(with_missing, g)
        assert np.isnan(r2[0]) and np.isnan(p2[0])
