"""Earlier years of each enterprise (SPEC §2.4, §2.7): stage changes, the current expansion
run and the tech-SME listing streak.

History comes from the enterprise's own earlier records when the data hold its Y−1 record;
otherwise from the override fields of its year-Y record (`stage_prev1`, `stage_prev2`,
`expansion_since`, `tech_sme_streak`). The two sources are never mixed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fields import STAGE_LEVEL

EXPANSION = STAGE_LEVEL["expansion"]


@dataclass
class History:
    source: np.ndarray           # 'records' | 'fields' | 'none' per current row
    prev1: np.ndarray            # stage level of Y−1 (NaN unknown)
    prev2: np.ndarray            # stage level of Y−2 (NaN unknown)
    expansion_since: np.ndarray  # first year of the current expansion run (NaN unknown)
    tech_sme_streak: np.ndarray  # consecutive listed years up to Y

    def level_drop(self, level):
        return self.prev1 - level

    def prev_level_drop(self):
        return self.prev2 - self.prev1


def build(records, levels, cur_mask, year) -> History:
    """History of every current row. `levels` is the stage level of every record; records
    are joined on their integer enterprise id (`ent`)."""
    ent = records["ent"].to_numpy()
    years = records["year"].to_numpy()
    listed_all = records["tech_sme_listed"].to_numpy(dtype="float64")
    n_ent = int(ent.max(initial=-1)) + 1
    cur = records[cur_mask]
    ent_cur = ent[cur_mask]
    by_year = {}
    for y in np.unique(years[years < year]):
        rows = years == y
        lv = np.full(n_ent, np.nan)
        ls = np.full(n_ent, np.nan)
        lv[ent[rows]] = levels[rows]
        ls[ent[rows]] = listed_all[rows]
        by_year[int(y)] = {"level": lv, "listed": ls}

    def lookup(y, col):
        if y not in by_year:
            return np.full(len(ent_cur), np.nan)
        return by_year[y][col][ent_cur]

    level = levels[cur_mask]
    r1, r2 = lookup(year - 1, "level"), lookup(year - 2, "level")
    has_rec = ~np.isnan(r1)
    f1 = cur["stage_prev1"].to_numpy(dtype="float64")
    f2 = cur["stage_prev2"].to_numpy(dtype="float64")
    since_f = cur["expansion_since"].to_numpy(dtype="float64")
    has_fields = ~has_rec & ~(np.isnan(f1) & np.isnan(f2) & np.isnan(since_f))
    source = np.where(has_rec, "records", np.where(has_fields, "fields", "none")).astype(object)

    # the current expansion run, counted back through the records
    start = np.where(has_rec & (level == EXPANSION), float(year), np.nan)
    alive = has_rec & (level == EXPANSION)
    back = 1
    while alive.any() and (year - back) in by_year:
        alive &= lookup(year - back, "level") == EXPANSION
        start[alive] = year - back
        back += 1
    since = np.where(has_rec, start, np.where(level == EXPANSION, since_f, np.nan))

    # tech-SME listing streak up to Y (RW-2)
    listed_now = cur["tech_sme_listed"].to_numpy(dtype="float64") == 1
    streak = listed_now.astype("float64")
    alive = listed_now & has_rec
    back = 1
    while alive.any() and (year - back) in by_year:
        alive &= lookup(year - back, "listed") == 1
        streak[alive] += 1
        back += 1
    streak_f = cur["tech_sme_streak"].to_numpy(dtype="float64")
    streak = np.where(~has_rec & ~np.isnan(streak_f), streak_f, streak)

    return History(source=source,
                   prev1=np.where(has_rec, r1, f1),
                   prev2=np.where(has_rec, r2, f2),
                   expansion_since=since,
                   tech_sme_streak=streak)
