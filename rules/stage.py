"""Clause STAGE (表1): the stage of an enterprise-year, and completed years since registration.

Scoring code: the decision rows (their order, their conditions on the package's fields, the
registration age) come from the STAGE clause of the policy in force; the stages and their
levels from the package's data.yaml. Nothing here is a policy number or a stage.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .clauses import when_mask


def reference_dates(years, setting=None) -> np.ndarray:
    """The reference date of each year (policy.yaml `reference_date`, by default 31 December;
    29 February falls on 28 February in a common year)."""
    setting = setting or {"month": 12, "day": 31}
    years = np.asarray(years, dtype=np.int64)
    if (int(setting["month"]), int(setting["day"])) == (12, 31):      # fast path: 31 December
        return _days(years, 12, 31).astype("datetime64[D]")
    n = len(years)
    regs = np.full(n, np.datetime64(f"2000-{int(setting['month']):02d}-{int(setting['day']):02d}", "D"))
    return anniversaries(regs, years - 2000)


def _is_leap(y):
    return (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))


def anniversaries(registered_on, n) -> np.ndarray:
    """The n-th anniversary of each registration date; 29 February falls on 28 February in a
    year without it."""
    d = np.asarray(registered_on)
    if d.dtype.kind != "M":
        d = d.astype("datetime64[D]")
    nat = np.isnat(d)
    # integer calendar arithmetic (days since 1970 <-> year, month, day): numpy's unit
    # conversions of datetimes and pandas' parsing of columns cost seconds for a million rows
    unit = np.datetime_data(d.dtype)
    days = d.view(np.int64) // {"D": 1, "s": 86400, "ms": 86_400_000, "us": 86_400_000_000,
                                "ns": 86_400_000_000_000}[unit[0]] if unit[0] != "D" else d.view(np.int64)
    y, m, day = _civil(np.where(nat, 0, days))
    y = y + np.asarray(n, dtype=np.int64)
    day = np.where((m == 2) & (day == 29) & ~_is_leap(y), 28, day)
    out = _days(y, m, day).astype("datetime64[D]")
    out[nat] = np.datetime64("NaT")
    return out


def _civil(z):
    """Year, month, day of days since 1970-01-01 (proleptic Gregorian; H. Hinnant's method)."""
    z = z + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (m <= 2), m, day


def _days(y, m, day):
    """Days since 1970-01-01 of a year, month and day (the inverse of `_civil`)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def completed_years(registered_on, years, setting=None) -> np.ndarray:
    """Anniversaries of registration on or before each year's reference date."""
    reg_year = pd.DatetimeIndex(registered_on).year.to_numpy()
    years = np.asarray(years, dtype=np.int64)
    n = years - reg_year
    if setting is None or (int(setting["month"]), int(setting["day"])) == (12, 31):
        return n                   # 31 December falls after every anniversary of its own year
    late = anniversaries(registered_on, n) > reference_dates(years, setting)
    return n - late.astype(np.int64)


def classify(clause, records, stage_level, setting=None, rows=False):
    """Stage level (1 = the package's first stage …) of each row of `records`, by the first
    matching row of STAGE; with `rows=True` also the number (1-based) of the row that matched.
    A row's `when` is a condition on the record's fields; `registered_within_years: N` holds
    when the N-th anniversary of registration falls on or after the reference date."""
    n = len(records)
    level = np.zeros(n, dtype=np.int64)
    matched = np.zeros(n, dtype=np.int64)
    registered_on = records["registered_on"].to_numpy()
    years = records["year"].to_numpy()
    undecided = np.ones(n, dtype=bool)
    for i, row in enumerate(clause.body["rows"]):
        hit = undecided.copy()
        if "when" in row:
            hit &= when_mask(row["when"], records)
        if "registered_within_years" in row:      # only for the rows still undecided
            at = np.flatnonzero(hit)
            hit[at] = anniversaries(registered_on[at], row["registered_within_years"]) \
                >= reference_dates(years[at], setting)
        level[hit] = stage_level[row["stage"]]
        matched[hit] = i + 1
        undecided &= ~hit
    return (level, matched) if rows else level


def row_fields(clause) -> list:
    """The record fields the STAGE rows read (the stage's inputs in the trace)."""
    from .clauses import condition_fields
    out = []
    for row in clause.body["rows"]:
        for f in sorted(condition_fields(row.get("when"))):
            if f not in out:
                out.append(f)
    return out
