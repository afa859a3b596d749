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
    score: Decimal | None = None                    # reported final score, for ordering
    inputs: dict = field(default_factory=dict)
    derivation: str = ""


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


def contract_rewards(contracts, year, clause):
    """RW-5 per enterprise: {credit_code: (eligible_yuan, [contract_no…], [(no, amount 万元, yuan)…])}."""
    eff = clause.effect
    rate = decimal(eff["contract_rate"], "contract_rate")
    cap_one = eff.get("per_contract_cap")
    cap_all = eff.get("per_enterprise_cap")
    if contracts is None or not len(contracts):
        return {}
    years = pd.DatetimeIndex(contracts["registered_on"]).year.to_numpy()
    mine = contracts[years == year]
    out = {}
    for code, no, amount in sorted(zip(mine["credit_code"], mine["contract_no"], mine["amount"])):
        yuan = (Decimal(amount) * WAN * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        if cap_one is not None:
            yuan = min(yuan, Decimal(cap_one))
        total, basis, used = out.get(code, (Decimal(0), [], []))
        if yuan >= 1:
            basis.append(no)
        used.append((no, amount, int(yuan)))
        out[code] = (total + yuan, basis, used)
    return {code: (int(min(total, Decimal(cap_all)) if cap_all is not None else total), basis, used)
            for code, (total, basis, used) in out.items()}


def eligible(policy, year, frame, stage_level, excluded, streak, contracts, scores):
    """Award lines with their eligible amounts, and the per-pattern trace."""
    clauses = clause_map(policy, GROUP, year)
    rw5 = {cid: contract_rewards(contracts, year, c) for cid, c in clauses.items() if "contract_rate" in c.effect}
    codes = frame["credit_code"].to_numpy()
    facts = facts_frame(GROUP, frame, stage_level)
    facts["excluded"] = excluded
    facts["tech_sme_streak"] = np.nan_to_num(streak, nan=0.0)
    counts = pd.Series(0, index=pd.Index(codes))
    if contracts is not None and len(contracts):
        cy = pd.DatetimeIndex(contracts["registered_on"]).year.to_numpy() == year
        counts = contracts["credit_code"][cy].value_counts().reindex(codes, fill_value=0)
    facts["contracts_in_year"] = counts.to_numpy(dtype="float64")
    decision = engine.decide(policy, GROUP, year, facts)

    def fixed_amount(c, fact):
        return int(c.effect["amount"]) * int(multiplier(c, fact))

    trace = trace_entries(policy, decision, clauses, lambda c, fact: (
        {"rate": str(c.effect["contract_rate"])} if "contract_rate" in c.effect
        else {"amount": fixed_amount(c, fact), "kind": c.effect["kind"]}))
    lines = []
    for row in np.flatnonzero(np.array([bool(decision.fired[p]) for p in decision.pattern], dtype=bool)):
        fact = decision.facts[decision.pattern[row]]
        for cid in decision.fired[decision.pattern[row]]:
            c = clauses[cid]
            code = codes[row]
            if cid in rw5:
                amount, basis, used = rw5[cid].get(code, (0, [], []))
                inputs = {"contracts": [{"contract_no": no, "amount_wan": str(a), "yuan": y} for no, a, y in used]}
            else:
                amount, basis, inputs = fixed_amount(c, fact), [], {k: fact.get(k) for k in sorted(fact)}
            if amount > 0:
                lines.append(AwardLine(code, cid, c.effect["kind"], int(amount), int(amount), basis,
                                       scores[row], inputs))
    order = {cid: i for i, cid in enumerate(clauses)}
    lines.sort(key=lambda a: (a.credit_code, order[a.clause]))
    return lines, decision, trace


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
    rems.sort(key=lambda ra: (-ra[0], -(ra[1].score if ra[1].score is not None else Decimal(-1)),
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
                ranked = sorted(floating, key=lambda a: (-(a.score if a.score is not None else Decimal(-1)),
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
