"""Earlier years of each enterprise (SPEC §2.4, §2.7): stage changes, the current expansion
run and the tech-SME listing run.

Previous stages come from the enterprise's own earlier records when the data hold its Y−1
record; otherwise from the fields `stage_prev1`, `stage_prev2` of its year-Y record.

Runs are counted back through the records (the policy's `history.runs` setting):
- `extend` (SPEC v2): the run of consecutive years (expansion stage; `tech_sme_listed` true)
  ending at Y; where no record exists for the year before the run starts, the year-Y fields
  `expansion_since` / `tech_sme_streak` extend it when they reach further back. A run that
  stops at a record showing a break is never extended.
- `records_or_fields` (SPEC v1): the records' run when a Y−1 record exists, else the fields.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fields import STAGE_LEVEL

EXPANSION = STAGE_LEVEL["expansion"]
RUN_MODES = ("extend", "records_or_fields")


@dataclass
class History:
    source: np.ndarray            # previous stages from 'records' | 'fields' | 'none' per current row
    prev1: np.ndarray             # stage level of Y−1 (NaN unknown)
    prev2: np.ndarray             # stage level of Y−2 (NaN unknown)
    expansion_since: np.ndarray   # first year of the current expansion run (NaN unknown)
    expansion_source: np.ndarray  # 'records' | 'expansion_since' | '' (not in expansion)
    expansion_open: np.ndarray    # bool: no record of the year before the run, no field extends it
    tech_sme_streak: np.ndarray   # consecutive listed years up to Y
    streak_source: np.ndarray     # 'records' | 'tech_sme_streak' | ''
    streak_open: np.ndarray       # bool: as expansion_open, for the listing run
    earlier: dict = None          # field -> {earlier year: its values, per current row}

    def level_drop(self, level):
        return self.prev1 - level

    def prev_level_drop(self):
        return self.prev2 - self.prev1


def build(records, levels, cur_mask, year, settings=None, earlier_fields=()) -> History:
    """History of every current row. `levels` is the stage level of every record; records
    are joined on their integer enterprise id (`ent`). `settings` is the policy's `history`
    mapping; `earlier_fields` are fields whose earlier-year values the trace reports."""
    settings = settings or {}
    mode = settings.get("runs", "extend")
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
        by_year[int(y)] = {"level": lv, "listed": ls, "rows": np.flatnonzero(rows)}

    def lookup(y, col):
        if y not in by_year:
            return np.full(len(ent_cur), np.nan)
        return by_year[y][col][ent_cur]

    def has_record(y):
        return ~np.isnan(lookup(y, "level"))

    level = levels[cur_mask]
    r1, r2 = lookup(year - 1, "level"), lookup(year - 2, "level")
    has_rec = ~np.isnan(r1)
    f1 = cur["stage_prev1"].to_numpy(dtype="float64")
    f2 = cur["stage_prev2"].to_numpy(dtype="float64")
    since_f = cur["expansion_since"].to_numpy(dtype="float64")
    streak_f = cur["tech_sme_streak"].to_numpy(dtype="float64")
    has_fields = ~has_rec & ~(np.isnan(f1) & np.isnan(f2))
    source = np.where(has_rec, "records", np.where(has_fields, "fields", "none")).astype(object)

    def run_back(member_now, col, test):
        """Length of the run of records ending at Y, and whether the year before it has a record."""
        length = member_now.astype(np.int64)
        alive = member_now.copy()
        back = 1
        while alive.any():
            prev = lookup(year - back, col)
            alive &= test(prev)
            length[alive] += 1
            back += 1
        before = year - length          # the year before the run's first year
        before_has = np.zeros(len(length), dtype=bool)
        for y in np.unique(before[member_now]):
            sel = member_now & (before == y)
            before_has[sel] = has_record(int(y))[sel]
        return length, before_has

    # the current expansion run
    in_exp = level == EXPANSION
    exp_len, exp_before = run_back(in_exp, "level", lambda v: v == EXPANSION)
    start = np.where(in_exp, year - exp_len + 1, np.nan).astype("float64")
    if mode == "records_or_fields":
        use_f = in_exp & ~has_rec
        since = np.where(use_f, since_f, start)
    else:
        use_f = in_exp & ~exp_before & ~np.isnan(since_f) & (since_f < start)
        since = np.where(use_f, since_f, start)
    exp_src = np.where(~in_exp, "", np.where(use_f, "expansion_since", "records")).astype(object)
    exp_open = in_exp & ~exp_before & ~use_f

    # the tech-SME listing run up to Y (RW-2)
    listed_now = cur["tech_sme_listed"].to_numpy(dtype="float64") == 1
    st_len, st_before = run_back(listed_now, "listed", lambda v: v == 1)
    streak = st_len.astype("float64")
    if mode == "records_or_fields":
        use_s = ~has_rec & ~np.isnan(streak_f)
    else:
        use_s = listed_now & ~st_before & ~np.isnan(streak_f) & (streak_f > streak)
    streak = np.where(use_s, streak_f, streak)
    st_src = np.where(~(listed_now | use_s), "", np.where(use_s, "tech_sme_streak", "records")).astype(object)
    st_open = listed_now & ~st_before & ~use_s

    earlier = {}
    for f in earlier_fields:
        if f not in records:
            continue
        col = records[f].to_numpy(dtype="float64")
        per = {}
        for y, d in by_year.items():
            v = np.full(n_ent, np.nan)
            v[ent[d["rows"]]] = col[d["rows"]]
            per[y] = v[ent_cur]
        earlier[f] = per

    return History(source=source,
                   prev1=np.where(has_rec, r1, f1),
                   prev2=np.where(has_rec, r2, np.where(has_fields, f2, np.nan)),
                   expansion_since=since, expansion_source=exp_src, expansion_open=exp_open,
                   tech_sme_streak=streak, streak_source=st_src, streak_open=st_open, earlier=earlier)
