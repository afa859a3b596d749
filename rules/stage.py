"""Clause STAGE (表1): the stage of an enterprise-year, and completed years since registration.

Scoring code: the decision rows (order, revenue floors, the startup age) come from the STAGE
clause of the policy in force; nothing here is a policy number.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .fields import STAGE_LEVEL


def reference_dates(years) -> np.ndarray:
    """31 December of each year (SPEC §2: the reference date of an evaluation year)."""
    years = np.asarray(years, dtype=np.int64)
    return (years - 1970).astype("datetime64[Y]").astype("datetime64[D]") + np.timedelta64(364, "D") \
        + _is_leap(years).astype("timedelta64[D]")


def _is_leap(y):
    return (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))


def anniversaries(registered_on, n) -> np.ndarray:
    """The n-th anniversary of each registration date; 29 February falls on 28 February in a
    year without it."""
    d = pd.DatetimeIndex(registered_on)
    y, m, day = d.year.to_numpy() + n, d.month.to_numpy(), d.day.to_numpy()
    day = np.where((m == 2) & (day == 29) & ~_is_leap(y), 28, day)
    out = pd.to_datetime(pd.DataFrame({"year": y, "month": m, "day": day}), errors="coerce")
    return out.to_numpy().astype("datetime64[D]")


def completed_years(registered_on, years) -> np.ndarray:
    """Anniversaries of registration on or before each year's reference date (31 December
    falls after every anniversary in its own year, so it is the difference of years)."""
    reg_year = pd.DatetimeIndex(registered_on).year.to_numpy()
    return np.asarray(years, dtype=np.int64) - reg_year


def classify(clause, revenue, registered_on, years) -> np.ndarray:
    """Stage level (1 startup … 4 mature) of each row, by the first matching row of STAGE."""
    n = len(revenue)
    level = np.zeros(n, dtype=np.int64)
    ref = reference_dates(years)
    undecided = np.ones(n, dtype=bool)
    for row in clause.body["rows"]:
        hit = undecided.copy()
        if "revenue_gte" in row:
            hit &= np.asarray(revenue) >= row["revenue_gte"]
        if "registered_within_years" in row:
            hit &= anniversaries(registered_on, row["registered_within_years"]) >= ref
        level[hit] = STAGE_LEVEL[row["stage"]]
        undecided &= ~hit
    return level
