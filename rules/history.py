"""Earlier years of each enterprise (SPEC §2.4, §2.7): the previous stages and the history
runs the package declares (data.yaml `history`).

Previous stages come from the enterprise's own earlier records when the data hold its Y−1
record; otherwise from the package's `previous_stages` fields of its year-Y record.

A run is the consecutive years, ending at Y, whose records meet its `while` (a stage, or a
yes/no field being yes). Counting back through the records follows the policy's
`history.runs` setting:
- `extend` (SPEC v2): where no record exists for the year before the run starts, the run's
  `extend_field` of the year-Y record extends it when it reaches further back (a year field
  gives the first year, a count field the number of years). A run that stops at a record
  showing a break is never extended.
- `records_or_fields` (SPEC v1): the records' run when a Y−1 record exists, else the field.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RUN_MODES = ("extend", "records_or_fields")


@dataclass
class RunState:
    """One history run of every current row."""
    value: np.ndarray       # what conditions read: the length (0 outside), or Y − first year (NaN outside)
    first_year: np.ndarray  # first year of the run (NaN outside)
    length: np.ndarray      # years in the run up to Y (0 outside)
    source: np.ndarray      # 'records' | the extend field's key (it extended the run) | '' (not in a run)
    open: np.ndarray        # bool: the run reaches the earliest record and no field extends it


@dataclass
class History:
    source: np.ndarray            # previous stages from 'records' | 'fields' | 'none' per current row
    prev1: np.ndarray             # stage level of Y−1 (NaN unknown)
    prev2: np.ndarray             # stage level of Y−2 (NaN unknown)
    runs: dict                    # run key -> RunState
    earlier: dict = None          # field -> {earlier year: its values, per current row}

    def level_drop(self, level):
        return self.prev1 - level

    def prev_level_drop(self):
        return self.prev2 - self.prev1


def build(records, levels, cur_mask, year, data, settings=None, earlier_fields=(), cur=None) -> History:
    """History of every current row. `levels` is the stage level of every record; records
    are joined on their integer enterprise id (`ent`). `data` is the package's dictionary,
    `settings` the policy's `history` mapping; `earlier_fields` are fields whose earlier-year
    values the trace reports; `cur`, when the caller has it, is `records[cur_mask]`."""
    settings = settings or {}
    mode = settings.get("runs", "extend")
    ent = records["ent"].to_numpy()
    years = records["year"].to_numpy()
    member_fields = sorted({r.member[0] for r in data.runs if r.member[0] != "stage"})
    cols_all = {f: records[f].to_numpy(dtype="float64") for f in member_fields}
    n_ent = int(ent.max(initial=-1)) + 1
    if cur is None:
        cur = records[cur_mask]
    ent_cur = ent[cur_mask]
    by_year = {}
    for y in np.unique(years[years < year]):
        rows = years == y
        d = {"rows": np.flatnonzero(rows)}
        for name, col in [("level", levels)] + list(cols_all.items()):
            v = np.full(n_ent, np.nan)
            v[ent[rows]] = col[rows]
            d[name] = v
        by_year[int(y)] = d

    def lookup(y, col):
        if y not in by_year:
            return np.full(len(ent_cur), np.nan)
        return by_year[y][col][ent_cur]

    def has_record(y):
        return ~np.isnan(lookup(y, "level"))

    level = levels[cur_mask]
    r1, r2 = lookup(year - 1, "level"), lookup(year - 2, "level")
    has_rec = ~np.isnan(r1)
    nan = np.full(len(cur), np.nan)
    prev_f = [cur[f].to_numpy(dtype="float64") if f in cur else nan for f in data.previous_stages[:2]]
    f1, f2 = (prev_f + [nan, nan])[:2]
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

    stage_level = data.stage_level
    runs = {}
    for r in data.runs:
        what, _ = r.member
        if what == "stage":
            lv = stage_level[r.member[1]]
            member = level == lv
            length, before_has = run_back(member, "level", lambda v, lv=lv: v == lv)
        else:
            member = cur[what].to_numpy(dtype="float64") == 1
            length, before_has = run_back(member, what, lambda v: v == 1)
        ext = cur[r.extend_field].to_numpy(dtype="float64") if r.extend_field and r.extend_field in cur else nan
        ext_kind = data.field(r.extend_field).kind if r.extend_field else None
        if ext_kind == "year":          # the field gives the run's first year
            start = np.where(member, year - length + 1, np.nan).astype("float64")
            if mode == "records_or_fields":
                use = member & ~has_rec
            else:
                use = member & ~before_has & ~np.isnan(ext) & (ext < start)
            first = np.where(use, ext, start)
            n = np.where(np.isnan(first), 0, year - np.nan_to_num(first) + 1)
            inside = member
        else:                           # the field gives the number of years (or no field)
            n = length.astype("float64")
            if mode == "records_or_fields":
                use = ~has_rec & ~np.isnan(ext)
            else:
                use = member & ~before_has & ~np.isnan(ext) & (ext > n)
            n = np.where(use, ext, n)
            inside = member | use
            first = np.where(inside, year - n + 1, np.nan)
        src = np.where(~inside, "", np.where(use, r.extend_field, "records")).astype(object)
        value = (np.where(inside, year - first, np.nan) if r.value == "years_since_start" else n).astype("float64")
        runs[r.key] = RunState(value, first.astype("float64"), n, src, member & ~before_has & ~use)

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
                   runs=runs, earlier=earlier)
