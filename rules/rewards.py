"""Clauses RW-* (§五.四, 首期重要科技创新引导性指标奖励) and the year's budget.

The engine decides which reward clauses an enterprise meets (with the trial parks and the
exclusion rule of the rewards settings as a guard on every clause); this module turns a
fired clause into yuan — a fixed or floating amount (times a count where the clause says
`per`), or a rate of each registered technical contract with caps — and shares a budget.
All money is integer yuan; contract amounts are Decimal from their text, never floats.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import engine
from .effects import clause_map, multiplier, trace_entries
from .negative_list import facts_frame
from .policy import decimal

GROUP = "rewards"
WAN = Decimal(10000)


@dataclass
class AwardLine:
    credit_code: str
    clause: str
    kind: str                   # fixed | floating
    eligible_yuan: int
    granted_yuan: int = 0
    basis: list = field(default_factory=list)       # contract numbers (RW-5)
    score: float | None = None                      # reported final score, for ordering
    inputs: dict = field(default_factory=dict)     # the engine fact the clause read
    derivation: str = ""
    row: int = -1                                   # the enterprise's row in the evaluation
    contracts: tuple | None = None                  # (ContractTotals, start, end) for RW-5

    def explain_inputs(self) -> dict:
        """The data the amount came from: the fact, or each contract with its reward."""
        if self.contracts is None:
            return self.inputs
        ct, a, b = self.contracts
        return {"contract_no": ct.nos[a:b].tolist(), "amount_wan": ct.amounts[a:b].tolist(),
                "yuan": ct.yuan[a:b].tolist()}


@dataclass
class BudgetOutcome:
    budget: int | None
    strategy: str
    fixed_total: int
    floating_total: int
    granted_total: int
    fixed_shortfall: int
    floating_shortfall: int

    def as_dict(self):
        return dict(self.__dict__)


def rate_of_amounts(amounts, rate: Decimal) -> np.ndarray:
    """Each contract amount (万元, as text) × 10000 × rate, rounded half up to the yuan.

    Exact: amounts are read as decimal digits into integers and the rate as a fraction, so
    no float ever touches money. Vectorised for plain decimals; anything else (1e3, a
    product beyond 63 bits) goes through Decimal one by one."""
    text = pa.array(amounts, type=pa.string())
    out = np.zeros(len(text), dtype=object)
    parts = pc.extract_regex(text, r"^(?P<i>[0-9]{1,12})(?:\.(?P<f>[0-9]{0,8}))?$")
    plain = parts.is_valid().to_numpy(zero_copy_only=False)
    p, q = rate.as_integer_ratio()
    if plain.any():
        ip = pc.cast(pc.struct_field(parts, "i").fill_null("0"), pa.int64()).to_numpy()[plain]
        frac = pc.struct_field(parts, "f").fill_null("")
        digits = int(pc.max(pc.utf8_length(frac)).as_py() or 0)
        padded = pc.utf8_rpad(frac, digits, "0") if digits else frac
        fp = pc.cast(pc.if_else(pc.equal(padded, ""), "0", padded), pa.int64()).to_numpy()[plain]
        units = ip * 10 ** digits + fp                      # amount in 10^-digits 万元
        den = 10 ** digits * q
        if units.max(initial=0) * 2 * 10000 * p + den < 2 ** 62:
            out[plain] = (2 * units * 10000 * p + den) // (2 * den)
        else:
            plain[:] = False
    for i in np.flatnonzero(~plain):
        out[i] = int((Decimal(text[i].as_py()) * WAN * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return out.astype(np.int64) if len(out) else np.zeros(0, dtype=np.int64)


@dataclass
class ContractTotals:
    """One year's contracts of a rate clause (RW-5), sorted by enterprise then number, with
    each contract's reward and each enterprise's capped total."""
    ent: np.ndarray          # enterprises with contracts, ascending
    start: np.ndarray        # their first contract (index into the sorted arrays)
    end: np.ndarray
    total: np.ndarray        # capped total per enterprise, yuan
    nos: np.ndarray
    amounts: np.ndarray
    yuan: np.ndarray

    def for_rows(self, ents):
        """Index into `ent` for each enterprise id, -1 where it has no contract."""
        pos = np.searchsorted(self.ent, ents)
        pos = np.minimum(pos, max(len(self.ent) - 1, 0))
        hit = (len(self.ent) > 0) & (self.ent[pos] == ents) if len(self.ent) else np.zeros(len(ents), bool)
        return np.where(hit, pos, -1)


def year_contracts(contracts, year):
    if contracts is None or not len(contracts):
        return None
    years = pd.DatetimeIndex(contracts["registered_on"]).year.to_numpy()
    mine = contracts[years == year]
    return mine if len(mine) else None


def contract_totals(mine, clause) -> ContractTotals:
    """Each contract's rate reward (half up to the yuan, capped) and each enterprise's total."""
    eff = clause.effect
    rate = decimal(eff["contract_rate"], "contract_rate")
    nos_all = pa.array(mine["contract_no"].array) if len(mine) else pa.array([], pa.string())
    order = np.lexsort((pc.sort_indices(nos_all).to_numpy().argsort(), mine["ent"].to_numpy()))
    ent = mine["ent"].to_numpy()[order]
    nos = mine["contract_no"].to_numpy(dtype=object)[order]
    amounts = mine["amount"].to_numpy(dtype=object)[order]
    yuan = rate_of_amounts(amounts, rate)
    if eff.get("per_contract_cap") is not None:
        yuan = np.minimum(yuan, eff["per_contract_cap"])
    starts = np.flatnonzero(np.concatenate([[True], ent[1:] != ent[:-1]])) if len(ent) else np.zeros(0, np.int64)
    ends = np.concatenate([starts[1:], [len(ent)]]) if len(ent) else starts
    total = np.add.reduceat(yuan, starts) if len(ent) else np.zeros(0, np.int64)
    if eff.get("per_enterprise_cap") is not None:
        total = np.minimum(total, eff["per_enterprise_cap"])
    return ContractTotals(ent[starts], starts, ends, total, nos, amounts, yuan)


def eligible(policy, year, frame, stage_level, excluded, streak, contracts, scores):
    """Award lines with their eligible amounts, and the per-pattern trace.

    The engine decides which clauses each enterprise meets; amounts are then computed per
    clause for all its enterprises at once."""
    clauses = clause_map(policy, GROUP, year)
    ents = frame["ent"].to_numpy()
    mine = year_contracts(contracts, year)
    facts = facts_frame(GROUP, frame, stage_level)
    facts["excluded"] = excluded
    facts["tech_sme_streak"] = np.nan_to_num(streak, nan=0.0)
    n_ent = int(max(ents.max(initial=0), mine["ent"].max() if mine is not None else 0)) + 1
    counts = np.bincount(mine["ent"].to_numpy(), minlength=n_ent) if mine is not None else np.zeros(n_ent, np.int64)
    facts["contracts_in_year"] = counts[ents].astype("float64")
    decision = engine.decide(policy, GROUP, year, facts)

    def fixed_amount(c, fact):
        return int(c.effect["amount"]) * int(multiplier(c, fact))

    trace = trace_entries(policy, decision, clauses, lambda c, fact: (
        {"rate": str(c.effect["contract_rate"])} if "contract_rate" in c.effect
        else {"amount": fixed_amount(c, fact), "kind": c.effect["kind"]}))
    codes = frame["credit_code"]
    order = {cid: i for i, cid in enumerate(clauses)}
    found = []                       # (row, clause order, AwardLine)
    for cid, c in clauses.items():
        rows = np.flatnonzero(decision.fired_mask(cid))
        if not len(rows):
            continue
        kind = c.effect["kind"]
        if "contract_rate" in c.effect:
            if mine is None:
                continue
            ct = contract_totals(mine, c)
            pos = ct.for_rows(ents[rows])
            rows, pos = rows[pos >= 0], pos[pos >= 0]
            counted = ct.yuan >= 1          # the basis lists the contracts whose reward is ≥ 1 yuan
            for row, p, a, b, total in zip(rows.tolist(), pos.tolist(), ct.start[pos].tolist(),
                                           ct.end[pos].tolist(), ct.total[pos].tolist()):
                if total <= 0:
                    continue
                found.append((row, order[cid], AwardLine(None, cid, kind, total, total,
                                                         ct.nos[a:b][counted[a:b]].tolist(), None, {},
                                                         contracts=(ct, a, b))))
        else:
            for row in rows.tolist():
                fact = decision.facts[decision.pattern[row]]
                amount = fixed_amount(c, fact)
                if amount > 0:
                    found.append((row, order[cid], AwardLine(None, cid, kind, amount, amount, [], None, fact)))
    if found:
        rows = np.array([f[0] for f in found])
        code_text = codes.to_numpy(dtype=object)[rows] if len(rows) else []
        for (row, _, line), code in zip(found, code_text):
            line.credit_code = code
            line.row = row
            line.score = None if np.isnan(scores[row]) else float(scores[row])
    found.sort(key=lambda f: (f[2].credit_code, f[1]))
    return [f[2] for f in found], decision, trace


def _share(lines, amount, total):
    """Share `amount` among lines pro rata to their eligible amounts: floor to the yuan, then
    one yuan each by largest fractional remainder (ties: higher score, code, clause)."""
    if total == 0:
        return
    rems = []
    given = 0
    for a in lines:
        q, r = divmod(a.eligible_yuan * amount, total)
        a.granted_yuan = q
        given += q
        rems.append((r, a))
    left = amount - given
    rems.sort(key=lambda ra: (-ra[0], -(ra[1].score if ra[1].score is not None else -1.0),
                              ra[1].credit_code, ra[1].clause))
    for _, a in rems[:left]:
        a.granted_yuan += 1
    for a in lines:
        a.derivation = f"{a.eligible_yuan} × {amount} ÷ {total}，向下取整至元，余额按小数部分从大到小补足"


def allocate(lines, budget=None, strategy="pro_rata") -> BudgetOutcome:
    """Apply a year's budget to award lines in place (SPEC §2.7)."""
    fixed = [a for a in lines if a.kind == "fixed"]
    floating = [a for a in lines if a.kind == "floating"]
    f_total = sum(a.eligible_yuan for a in fixed)
    v_total = sum(a.eligible_yuan for a in floating)
    for a in lines:
        a.granted_yuan = a.eligible_yuan
        a.derivation = "全额拨付（未设预算或预算充足）"
    if budget is not None and f_total + v_total > budget:
        if f_total > budget:
            _share(fixed, budget, f_total)
            for a in floating:
                a.granted_yuan = 0
                a.derivation = "固定奖励已超出预算，浮动奖励为0"
        else:
            for a in fixed:
                a.derivation = "固定奖励优先全额拨付"
            remaining = budget - f_total
            if strategy == "pro_rata":
                _share(floating, remaining, v_total)
            elif strategy == "rank_priority":
                ranked = sorted(floating, key=lambda a: (-(a.score if a.score is not None else -1.0),
                                                         a.credit_code, a.clause))
                for a in ranked:
                    a.granted_yuan = min(a.eligible_yuan, remaining)
                    a.derivation = f"按排名先后拨付：拨付前剩余预算 {remaining} 元"
                    remaining -= a.granted_yuan
            else:
                raise ValueError(f"unknown strategy {strategy!r}")
    granted = sum(a.granted_yuan for a in lines)
    f_granted = sum(a.granted_yuan for a in fixed)
    v_granted = sum(a.granted_yuan for a in floating)
    return BudgetOutcome(budget, strategy, f_total, v_total, granted,
                         f_total - f_granted, v_total - v_granted)
