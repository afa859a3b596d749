"""Indicator scoring methods other than the default, chosen per indicator in the clause file."""
import numpy as np
import pytest

from rules.indicators import _minmax, _percentile, _points
from rules.policy import Clause


def clause(method, params=None, points=10):
    import datetime as dt
    return Clause("IND-x", "t", "c", "indicators", dt.date(2022, 1, 1), None,
                  {"key": "k", "points": points, "method": method, "params": params or {}}, "f", 1)


def test_percentile_counts_missing_below_every_value():
    v = np.array([5.0, np.nan, 5.0, 1.0])
    assert _percentile(v, 12).tolist() == [12 * 4 / 4, 12 * 1 / 4, 12.0, 12 * 2 / 4]


@pytest.mark.parametrize("method,params,values,expected", [
    ("minmax", {}, [0, 5, 10], [0, 5, 10]),
    ("minmax", {"winsorize": 0.25}, [0, 4, 6, 10, 100], [0, 10 * (4 - 4) / (10 - 4), 10 * 2 / 6, 10, 10]),
    ("benchmark", {"benchmark": 50, "cap": 1}, [25, 50, 100], [5, 10, 10]),
    ("thresholds", {"bands": [{"min": 1, "share": 0.5}, {"min": 5, "share": 1}]}, [0, 1, 4, 5, 9], [0, 5, 5, 10, 10]),
    ("log_minmax", {}, [0, np.e - 1, np.e ** 2 - 1], [0, 5, 10]),
    ("yes_no", {}, [1, 0, np.nan], [10, 0, 0]),
])
def test_methods(method, params, values, expected):
    got = _points(clause(method, params), np.array(values, dtype=float))
    got = np.where(np.isnan(np.array(values, dtype=float)), 0, got)
    assert got == pytest.approx(expected)


def test_minmax_of_equal_values_gives_full_points():
    assert _minmax(np.array([3.0, 3.0]), 8).tolist() == [8, 8]
