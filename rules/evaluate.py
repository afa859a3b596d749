"""One evaluation year (SPEC §2): stage, negative list, indicators, decay, bonus, the final
score, ranks and rewards, with the trace that explains every figure.

Data flow: validated records (and contracts) → this module → an `Evaluation`, which
`rules.output` writes as files and the service stores. Nothing here reads files.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from . import bonus, decay, history, indicators, negative_list, rewards, scope, stage
from .effects import read_fields
from .records import YearRecords, arrow_text, contract_enterprises, enterprise_codes, release_memory


class EvaluationError(ValueError):
    pass


@dataclass
class Evaluation:
    year: int
    policy: object
    scores: pd.DataFrame                 # one row per enterprise record of the year
    indicator_clauses: list
    indicator_values: np.ndarray
    indicator_points: np.ndarray
    cohort_sizes: np.ndarray
    awards: list
    budget: rewards.BudgetOutcome
    traces: dict                         # group -> (pattern array, per-pattern entries)
    history: object = None               # history.History of the year's rows
    stage_rows: np.ndarray = None        # the STAGE row (1-based) that decided each row's stage
    timings: dict = field(default_factory=dict)
    engine_patterns: dict = field(default_factory=dict)
    by_code: np.ndarray = None           # the rows' positions in credit-code order (every file's)


def round_half_up(x, decimals):
    """Half-up rounding of floats; the first rounding strips binary noise so that a value
    that is exactly half in decimal (0.12345) rounds up as a person would."""
    scale = 10.0 ** decimals
    return np.floor(np.round(np.asarray(x, dtype="float64") * scale, 6) + 0.5) / scale


def min_rank(values, groups=None):
    """Rank by value descending, equal values sharing the best rank (1, 1, 3), per group."""
    s = pd.Series(values)
    if groups is None:
        return s.rank(method="min", ascending=False).to_numpy()
    return s.groupby(pd.Series(groups)).rank(method="min", ascending=False).to_numpy()


def group_ranks(values, groups):
    """Per group, each value's rank by value descending with equal values sharing the best
    rank (`min_rank`), and its percentile: the share of the group at or below it × 100
    (pandas' `rank(method="max", pct=True)` × 100). One sort for both, where pandas sorted
    twice (a third of a second at a million enterprises); with a value or group
    missing (NaN), pandas' answers."""
    v = np.asarray(values, dtype="float64")
    g = np.asarray(groups)
    n = len(v)
    if not n or np.isnan(v).any() or (g.dtype.kind == "f" and np.isnan(g).any()):
        s = pd.Series(v)
        return (min_rank(v, g),
                s.groupby(pd.Series(g)).rank(method="max", pct=True).to_numpy() * 100)
    o = np.lexsort((-v, g))
    vs, gs, idx = v[o], g[o], np.arange(n)
    new_group = np.ones(n, bool)
    new_group[1:] = gs[1:] != gs[:-1]
    new_value = new_group.copy()
    new_value[1:] |= vs[1:] != vs[:-1]

    def start(new):         # the first position of each position's run
        return np.maximum.accumulate(np.where(new, idx, 0))
    first = start(new_group)
    last = np.ones(n, bool)             # the last position of each group
    last[:-1] = new_group[1:]
    size = (n - 1) - np.maximum.accumulate(np.where(last[::-1], idx, 0))[::-1] - first + 1
    best = start(new_value) - first + 1
    rank, pct = np.empty(n), np.empty(n)
    rank[o] = best
    # at or below: the group but those above, whose count is the best rank less one
    pct[o] = (size - best + 1).astype("float64") / size.astype("float64") * 100
    return rank, pct


def final_score(policy, weighted, deductions, decay_factor, bonus) -> np.ndarray:
    """The reported final score (SPEC §2.6): the weighted score, then deductions (not below
    the floor), the decay factor and the bonus in the policy's order, rounded half up to its
    decimals. The what-ifs of diagnostics and potential compose scores with this too."""
    scoring = policy.groups["policy"]["scoring"]
    final = np.asarray(weighted, dtype="float64").copy()
    for step in scoring["order"]:
        if step == "deductions":
            final = np.maximum(scoring.get("floor_after_deductions", 0), final - deductions)
        elif step == "decay":
            final = final * decay_factor
        else:
            final = final + bonus
    return round_half_up(final, scoring["decimals"])


def current_rows(records, mask) -> pd.DataFrame:
    """The rows of `mask`, renumbered from 0. When they are one block (a file sorted by
    year), a slice that shares the records' memory instead of a copy of every column."""
    rows = np.flatnonzero(mask)
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return records.iloc[rows[0]:rows[-1] + 1].reset_index(drop=True)
    return records[mask].reset_index(drop=True)


def year_fields(policy, year) -> set:
    """The fields an evaluation of `year` reads of the records of other years: who and when
    (credit code, year, registration date), what STAGE classifies them by, the fields whose
    runs history counts, and the statuses whose earlier years the trace reports. Every other
    field is read of the year's own rows only (`load_inputs(only=…)`)."""
    from .negative_list import status_fields
    data = policy.data
    return ({"credit_code", "year", "registered_on", "ent"}
            | set(stage.row_fields(policy.clause("STAGE", year)))
            | {r.member[0] for r in data.runs if r.member[0] != "stage"}
            | set(status_fields(policy, year)))


def reading_for(policy, year):
    """`load_inputs(only=…)` for an evaluation of `year`: the year and `year_fields`, or None
    (the whole table) when the policy is not in force then, so that `evaluate` says so."""
    return (year, year_fields(policy, year)) if policy.in_force(year) else None


def evaluate(records: pd.DataFrame | YearRecords, year: int, policy, contracts: pd.DataFrame | None = None,
             budget: int | None = None, strategy: str | None = None, consume: bool = False) -> Evaluation:
    """Evaluate `year` over validated records (earlier years in `records` are history): the
    whole table, or a `YearRecords` read for this year.

    With `consume` (the caller will not use them again), a `YearRecords` and the contracts are
    emptied as the evaluation is done with them: the contracts at once (the year's are kept
    apart), every year's rows once stage and history are known, the year's fields but those
    the rewards read once the scores are made, and the rest of the year's rows once the
    rewards are; a million-enterprise zone's inputs are over a gigabyte, which the outputs need
    not share memory with."""
    given = holder = None
    if isinstance(records, YearRecords):
        if records.year != year or not year_fields(policy, year) <= set(records.every.columns):
            raise EvaluationError("记录按另一年度或另一政策读入 / records were read for another year or policy")
        holder = records if consume else None
        given, records = records.current, records.every
    given_contracts = contracts if consume else None
    t = {}
    t0 = time.perf_counter()
    if not policy.in_force(year):
        raise EvaluationError(f"政策版本 {policy.name} 不适用于 {year} 年度 / policy not in force for {year}")
    stage_clause = policy.clause("STAGE", year)
    strategy = strategy or policy.settings("rewards").get("strategy", "pro_rata")
    if contracts is not None and len(contracts):
        ent = contract_enterprises(contracts, enterprise_codes(records))
        if (ent < 0).any():
            raise EvaluationError("技术合同中有记录以外的企业 / contracts of enterprises not in the records")
        # the year's contracts alone: nothing reads the other years' (at a million enterprises
        # with four years, about 0.2 GB at the rewards' peak of memory)
        contracts = rewards.year_contracts(contracts.assign(ent=ent), year)
        if given_contracts is not None:
            for column in list(given_contracts.columns):
                del given_contracts[column]
    if (records["year"].to_numpy() > year).any():     # later years are not history of Y
        records = records[records["year"] <= year].reset_index(drop=True)
    ref = policy.groups["policy"].get("reference_date")
    data = policy.data
    levels, matched = stage.classify(stage_clause, records, data.stage_level, ref, rows=True)
    cur_mask = (records["year"] == year).to_numpy()
    if not cur_mask.any():
        raise EvaluationError(f"数据中没有 {year} 年度的记录 / no records of year {year}")
    cur = current_rows(records, cur_mask) if given is None else given
    level = levels[cur_mask]
    stage_names = pd.Series(level).map(data.level_stage).to_numpy(dtype=object)
    completed = stage.completed_years(cur["registered_on"].to_numpy(), cur["year"].to_numpy(), ref)
    t["stage_history"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        # the history (numpy over every year's rows) on the second core while the engine
        # decides SCOPE, the negative list and the bonus, which do not read it
        pending = pool.submit(history.build, records, levels, cur_mask, year, data, policy.history_settings(),
                              earlier_fields=negative_list.status_fields(policy, year), cur=cur)
        # the rows' order by credit code (the rewards' order and every file's): arrow sorts the
        # codes without the GIL, beside the engine
        by_code = pool.submit(lambda: pc.sort_indices(arrow_text(cur["credit_code"])).to_numpy())
        sc = scope.apply(policy, year, cur, level)
        nl = negative_list.apply(policy, year, cur, level)
        if sc.clause_ids and not sc.in_scope.all():      # SCOPE first, before any NL id (SPEC §5)
            out = ~sc.in_scope
            ids = np.asarray(nl.exclusion_clauses, dtype=object).copy()
            ids[out] = [sc.clause_ids + (";" + e if e else "") for e in ids[out]]
            nl.exclusion_clauses = ids
            nl.excluded = nl.excluded | out
        bon, bon_decision, bon_trace = bonus.apply(policy, year, cur, level)
        hist = pending.result()
        by_code = by_code.result()
    dec_factor, dec_decision, dec_trace = decay.apply(policy, year, cur, level, completed, hist)
    t["engine"] = time.perf_counter() - t0          # the history's time included
    if holder is not None:          # every year's rows: read by stage and history alone
        holder.every = records = None
        release_memory()            # (the indicator matrices next are fresh pages, not its holes)

    t0 = time.perf_counter()
    included = ~nl.excluded
    ind_clauses, values, pts, sizes = indicators.score(policy, year, cur, level, included)
    cats = indicators.category_scores(policy, ind_clauses, pts)
    weighted = indicators.weighted(policy, stage_names, cats)
    reported = final_score(policy, weighted, nl.deductions, dec_factor, bon)
    reported[~included] = np.nan
    rank_stage = np.full(len(cur), np.nan)
    rank_all = np.full(len(cur), np.nan)
    pct = np.full(len(cur), np.nan)
    if included.any():
        rank_all[included] = min_rank(reported[included])
        # stage percentile: share of the stage's scored enterprises at or below this score
        rank_stage[included], pct[included] = group_ranks(reported[included], level[included])
    def scored(x):      # a figure of a row that is not scored is empty
        return np.where(included, x, np.nan)
    cat_cols = {f"{k}_score": scored(cats[k]) for k in policy.categories()}
    scores = pd.DataFrame({
        "credit_code": cur["credit_code"].array,
        "year": year,
        "stage": stage_names,
        "excluded": nl.excluded,
        "exclusion_clauses": nl.exclusion_clauses,
        **cat_cols,
        "weighted": scored(weighted), "deductions": scored(nl.deductions), "decay_factor": scored(dec_factor),
        "bonus": scored(bon), "final_score": reported,
        "rank_in_stage": rank_stage, "rank_overall": rank_all, "stage_percentile": pct,
        "name": cur["name"].array, "park": cur["park"].array, "industry": cur["industry"].array,
        "completed_years": completed, "registered_on": cur["registered_on"].to_numpy(),
    }, copy=False)      # the columns are the arrays above (nothing changes them after): not stacked into one block
    for f in stage.row_fields(stage_clause):       # the STAGE inputs, for the trace
        scores[f"stage_input:{f}"] = cur[f].to_numpy(dtype="float64") if data.field(f).kind != "choice" else cur[f].array
    t["scoring"] = time.perf_counter() - t0
    if holder is not None:      # of the year's fields, the scores keep what they show: the rewards read theirs alone
        keep = {"ent", "credit_code", *read_fields(policy, rewards.GROUP, year)}
        for column in [c for c in given.columns if c not in keep]:
            del given[column]
        # the scoring's temporaries and the columns let go, before the rewards allocate: at a
        # million enterprises the rewards' end was the run's peak of memory in two runs of four
        release_memory()

    t0 = time.perf_counter()
    lines, rw_decision, rw_trace = rewards.eligible(policy, year, cur, level, nl.excluded, sc.in_scope,
                                                    hist, contracts, reported, by_code)
    outcome = rewards.allocate(lines, budget, strategy)
    t["rewards"] = time.perf_counter() - t0
    if holder is not None:          # the year's rows: the scores keep what they show
        holder.current = cur = given = None
    contracts = None                # the award lines keep the contracts they list
    release_memory()        # the temporaries of the phases above, before the outputs are built

    traces = {"scope": (sc.decision.pattern, sc.trace), "negative_list": (nl.decision.pattern, nl.trace), "decay": (dec_decision.pattern, dec_trace),
              "bonus": (bon_decision.pattern, bon_trace), "rewards": (rw_decision.pattern, rw_trace.fired),
              "rewards_not_paid": (rw_decision.pattern, rw_trace.not_paid)}
    patterns = {g: len(tr[1]) for g, tr in traces.items()}
    return Evaluation(year, policy, scores, ind_clauses, values, pts, sizes, lines, outcome, traces,
                      hist, matched[cur_mask], t, patterns, by_code)
