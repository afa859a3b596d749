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

from . import engine, explain
from .clauses import condition_fields
from .effects import clause_map, facts_frame, multiplier, trace_entries
from .policy import decimal
from .records import arrow_text

GROUP = "rewards"
WAN = Decimal(10000)


@dataclass
class AwardLine:
    """One award line, as case files and tests see it."""
    credit_code: str
    clause: str
    kind: str                   # fixed | floating
    eligible_yuan: int
    granted_yuan: int = 0
    basis: list = field(default_factory=list)       # contract numbers (RW-5)
    score: float | None = None                      # reported final score, for ordering
    derivation: str = ""


@dataclass
class Awards:
    """The award lines of a year, column-wise (a large zone has hundreds of thousands),
    sorted by credit code, then clause order. Money columns are int64 yuan."""
    code: np.ndarray            # credit code per line (object)
    row: np.ndarray             # the enterprise's row in the evaluation, -1 when none
    clause: np.ndarray          # clause id per line (object)
    floating: np.ndarray        # bool
    eligible: np.ndarray        # int64
    score: np.ndarray           # reported final score (NaN when not scored)
    pattern: np.ndarray         # engine pattern of the fact the clause read (-1 for rate lines)
    contract_pos: np.ndarray    # index into the clause's ContractTotals (-1 for other lines)
    facts: list = field(default_factory=list)
    contracts: dict = field(default_factory=dict)   # rate clause id -> ContractTotals
    granted: np.ndarray = None
    derivation: np.ndarray = None
    not_paid: dict = field(default_factory=dict)    # row -> entries: a rate clause that came to 0 yuan

    def __post_init__(self):
        n = len(self.code)
        if self.granted is None:
            self.granted = self.eligible.copy()
        if self.derivation is None:
            self.derivation = np.full(n, "", dtype=object)

    def __len__(self):
        return len(self.code)

    @classmethod
    def from_lines(cls, lines):
        """A table from AwardLine objects (for tests and small callers), sorted as usual."""
        lines = sorted(lines, key=lambda a: (a.credit_code, a.clause))
        n = len(lines)
        return cls(np.array([a.credit_code for a in lines], dtype=object), np.full(n, -1, np.int64),
                   np.array([a.clause for a in lines], dtype=object),
                   np.array([a.kind == "floating" for a in lines], dtype=bool),
                   np.array([a.eligible_yuan for a in lines], dtype=np.int64),
                   np.array([np.nan if a.score is None else a.score for a in lines], dtype="float64"),
                   np.full(n, -1, np.int64), np.full(n, -1, np.int64))

    def basis(self, i) -> list:
        """The contract numbers of line i whose own reward came to at least one yuan."""
        p = self.contract_pos[i]
        if p < 0:
            return []
        ct = self.contracts[self.clause[i]]
        a, b = ct.start[p], ct.end[p]
        nos, paid = ct.nos[a:b], ct.yuan[a:b] >= 1
        return nos.filter(pa.array(paid)).to_pylist() if isinstance(nos, pa.Array) else nos[paid].tolist()

    def contract_lines(self, cid) -> np.ndarray:
        """The lines of rate clause `cid` that list contracts."""
        return np.flatnonzero((self.clause == cid) & (self.contract_pos >= 0))

    def per_contract_text(self, build, empty="") -> pa.Array:
        """A text per line made from its contracts, column-wise: `build(cid, ct)` returns one
        string per enterprise position of rate clause cid's ContractTotals, or one string for
        all its lines; other lines get `empty` (one text, or a text per line)."""
        out = pa.array(np.full(len(self), empty, dtype=object), pa.string()) if isinstance(empty, str) else empty
        for cid, ct in self.contracts.items():
            lines = self.contract_lines(cid)
            if len(lines):
                values = build(cid, ct)
                values = pa.array(np.full(len(lines), values, dtype=object), pa.string()) if isinstance(values, str) \
                    else values.take(pa.array(self.contract_pos[lines]))
                mask = np.zeros(len(self), dtype=bool)
                mask[lines] = True
                out = pc.replace_with_mask(out, pa.array(mask), values)
        return out

    def basis_text(self, sep=";") -> pa.Array:
        """Each line's basis joined by `sep` (SPEC §5: ascending contract numbers)."""
        return self.per_contract_text(lambda cid, ct: ct.joined(ct.nos_arrow(), sep, ct.yuan >= 1))

    def line(self, i) -> AwardLine:
        return AwardLine(self.code[i], self.clause[i], "floating" if self.floating[i] else "fixed",
                         int(self.eligible[i]), int(self.granted[i]), self.basis(i),
                         None if np.isnan(self.score[i]) else float(self.score[i]), self.derivation[i])

    def lines(self):
        return [self.line(i) for i in range(len(self))]


@dataclass
class RewardTrace:
    """Per engine pattern: the trace entries of the fired reward clauses, and the entries of
    the clauses the data touch that did not fire (with the reason)."""
    fired: list
    not_paid: list


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
    """One year's contracts for a rate clause (RW-5), sorted by enterprise then number: each
    contract's kind and whether the clause counts it (its `kinds` list), its reward before and
    after the per-contract cap (0 when not counted), and each enterprise's total before and
    after the per-enterprise cap."""
    ent: np.ndarray          # enterprises with contracts, ascending
    start: np.ndarray        # their first contract (index into the sorted arrays)
    end: np.ndarray
    total: np.ndarray        # capped total per enterprise, yuan
    nos: pa.Array              # contract numbers (arrow text)
    amounts: pa.Array          # amounts in 万元 as written (arrow text)
    yuan: np.ndarray         # reward per contract after the per-contract cap (0 when not counted)
    kinds: np.ndarray = None
    counted: np.ndarray = None
    raw: np.ndarray = None            # rate × amount, half up, before the cap
    total_before: np.ndarray = None   # per enterprise, before the per-enterprise cap
    n_counted: np.ndarray = None      # per enterprise, contracts of a counted kind

    def nos_arrow(self) -> pa.Array:
        return pa.array(self.nos, pa.string())

    def joined(self, values: pa.Array, sep: str, mask=None) -> pa.Array:
        """Per enterprise position, its contracts' `values` (those in `mask`) joined by `sep`."""
        if mask is not None:
            values = values.filter(pa.array(mask))
            cum = np.concatenate([[0], np.cumsum(mask)])
        else:
            cum = np.arange(len(self.nos) + 1)
        offsets = np.concatenate([cum[self.start], [cum[-1]]]).astype(np.int32)
        return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), sep)

    def for_rows(self, ents):
        """Index into `ent` for each enterprise id, -1 where it has no contract."""
        pos = np.searchsorted(self.ent, ents)
        pos = np.minimum(pos, max(len(self.ent) - 1, 0))
        hit = (len(self.ent) > 0) & (self.ent[pos] == ents) if len(self.ent) else np.zeros(len(ents), bool)
        return np.where(hit, pos, -1)


def year_contracts(contracts, year):
    if contracts is None or not len(contracts):
        return None
    d = contracts["registered_on"].to_numpy()
    if d.dtype.kind == "M":         # within the year: two comparisons, no calendar per contract
        start = np.datetime64(f"{year:04d}-01-01").astype(d.dtype)
        end = np.datetime64(f"{year + 1:04d}-01-01").astype(d.dtype)
        within = (d >= start) & (d < end)
    else:
        within = pd.DatetimeIndex(contracts["registered_on"]).year.to_numpy() == year
    if within.all():            # the year's already (`evaluate` keeps those alone)
        return contracts
    mine = contracts[within]
    return mine if len(mine) else None


def counted_kinds(clause) -> list | None:
    """The contract kinds a rate clause counts (its `kinds` list; None: every kind)."""
    kinds = clause.effect.get("kinds")
    return None if kinds is None else list(kinds)


def _by_enterprise_then_number(ent, nos: pa.Array) -> np.ndarray:
    """The order of contracts by enterprise, then number (bytewise; equal numbers in the
    file's order). Files usually list an enterprise's contracts by number already: then a
    stable sort by enterprise is the order, and the numbers (2.9 million at a million
    enterprises, a third of a second to rank) are only compared with their neighbours."""
    by_ent = np.argsort(ent, kind="stable")
    if len(by_ent) < 2:
        return by_ent
    grouped = nos.take(pa.array(by_ent))
    same = ent[by_ent][1:] == ent[by_ent][:-1]
    # a number missing (null) sends the contracts to the full sort, which puts it last
    down = pc.fill_null(pc.less(grouped.slice(1), grouped.slice(0, len(grouped) - 1)), True) \
        .to_numpy(zero_copy_only=False)
    if not (same & down).any():
        return by_ent
    return np.lexsort((pc.rank(nos, sort_keys="ascending", tiebreaker="first").to_numpy(), ent))


def contract_totals(mine, clause) -> ContractTotals:
    """Each contract's rate reward (half up to the yuan, capped; 0 for a kind the clause does
    not count) and each enterprise's total."""
    eff = clause.effect
    rate = decimal(eff["contract_rate"], "contract_rate")
    # numbers and amounts stay arrow text (a Python string per contract costs seconds and
    # hundreds of megabytes for a million contracts); kinds are a few shared strings
    nos_all = arrow_text(mine["contract_no"]).combine_chunks() if len(mine) else pa.array([], pa.string())
    order = _by_enterprise_then_number(mine["ent"].to_numpy(), nos_all)
    ent = mine["ent"].to_numpy()[order]
    take = pa.array(order)
    nos = nos_all.take(take)
    amounts = arrow_text(mine["amount"]).combine_chunks().take(take) if len(mine) else pa.array([], pa.string())
    codes, names = pd.factorize(mine["kind"])
    kinds = np.asarray(names, dtype=object)[codes][order]
    wanted = counted_kinds(clause)
    counted = np.ones(len(ent), dtype=bool) if wanted is None else np.isin(kinds, np.array(wanted, dtype=object))
    raw = np.where(counted, rate_of_amounts(amounts, rate), 0)
    yuan = raw
    if eff.get("per_contract_cap") is not None:
        yuan = np.minimum(raw, eff["per_contract_cap"])
    starts = np.flatnonzero(np.concatenate([[True], ent[1:] != ent[:-1]])) if len(ent) else np.zeros(0, np.int64)
    ends = np.concatenate([starts[1:], [len(ent)]]) if len(ent) else starts
    before = np.add.reduceat(yuan, starts) if len(ent) else np.zeros(0, np.int64)
    n_counted = np.add.reduceat(counted.astype(np.int64), starts) if len(ent) else np.zeros(0, np.int64)
    total = before
    if eff.get("per_enterprise_cap") is not None:
        total = np.minimum(before, eff["per_enterprise_cap"])
    return ContractTotals(ent[starts], starts, ends, total, nos, amounts, yuan, kinds, counted, raw, before,
                          n_counted)


def kind_names(data, kinds) -> str:
    return "、".join(data.contract_kinds.get(k, k) for k in kinds)


def rate_zero_reason(policy, clause, ct, q) -> str:
    """Why a rate clause that fired paid nothing to the enterprise at position q."""
    a, b = ct.start[q], ct.end[q]
    if ct.n_counted[q] == 0:
        wanted = counted_kinds(clause)
        return (f"当年登记的 {b - a} 项技术合同（{kind_names(policy.data, sorted(set(ct.kinds[a:b])))}）均不属于本条款计奖的合同类别"
                f"（{kind_names(policy.data, wanted or [])}），不计奖")
    return f"计奖的 {int(ct.n_counted[q])} 项合同按成交额 {float(clause.effect['contract_rate']) * 100:g}% 计算，四舍五入到元后均为0元"


# derived facts that say nothing about whether an enterprise's data touch a reward clause
_CONTEXT = {"evaluation_year", "excluded", "in_scope", "stage", "park", "industry"}


def touches(clause, fact) -> bool:
    """Whether an enterprise's data touch a reward clause: a yes/no its condition reads is
    yes, or a count it reads is above 0 (for the trace's "why not paid")."""
    for f in condition_fields(clause.when) - _CONTEXT:
        v = fact.get(f)
        if v is True or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0):
            return True
    return False


def not_paid_reason(policy, clause, fact, not_reported=()) -> tuple[str, str]:
    """Why a clause an enterprise's data touch did not fire for it: a key (scope, excluded,
    park, condition) and the reason in Chinese."""
    settings = policy.settings(GROUP)
    if fact.get("in_scope") is False:
        return "scope", "不属于评价对象（SCOPE，§三.(一)），不参加奖励"
    if fact.get("excluded") and not settings.get("excluded_may_receive", False):
        return "excluded", "当年被负面清单排除，不纳入当年度积分管理，不予奖励"
    parks = settings.get("parks", "all")
    if parks != "all" and fact.get("park") not in parks:
        return "park", f"所在园区（{fact.get('park')}）未列入奖励试行园区（{'、'.join(parks)}）"
    used = sorted(condition_fields(clause.when) - {"evaluation_year"})
    w = explain.wording(policy.data)
    return "condition", (f"不满足本条款条件：{w.describe(clause.when)}（本企业：{w.inputs_text({f: fact.get(f) for f in used}, not_reported)}；"
            f"评价年度：{fact.get('evaluation_year')}）")


def eligible(policy, year, frame, stage_level, excluded, in_scope, hist, contracts, scores, by_code=None):
    """Award lines with their eligible amounts, and the per-pattern trace: the fired clauses,
    and the clauses an enterprise's data touch that did not fire, with the reason.

    The engine decides which clauses each enterprise meets; amounts are then computed per
    clause for all its enterprises at once. `by_code`: the rows of `frame` in credit-code
    order (the lines are sorted by it; a year's codes are distinct), sorted here when None."""
    clauses = clause_map(policy, GROUP, year)
    ents = frame["ent"].to_numpy()
    mine = year_contracts(contracts, year)
    n_ent = int(max(ents.max(initial=0), mine["ent"].max() if mine is not None else 0)) + 1
    counts = np.bincount(mine["ent"].to_numpy(), minlength=n_ent) if mine is not None else np.zeros(n_ent, np.int64)
    derived = {"excluded": excluded, "in_scope": in_scope, "evaluation_year": np.full(len(frame), float(year)),
               "contracts_in_year": counts[ents].astype("float64")}
    facts, missing = facts_frame(policy, GROUP, year, frame, stage_level, hist, derived)
    decision = engine.decide(policy, GROUP, year, facts, missing)

    def fixed_amount(c, fact):
        return int(c.effect["amount"]) * int(multiplier(c, fact))

    fired = trace_entries(policy, decision, clauses, lambda c, fact: (
        {"rate": str(c.effect["contract_rate"])} if "contract_rate" in c.effect
        else {"amount": fixed_amount(c, fact), "kind": c.effect["kind"]}))
    not_paid = []
    for p, (ids, fact) in enumerate(zip(decision.fired, decision.facts)):
        nr = decision.not_reported[p] if decision.not_reported else ()
        reasons = [(c, *not_paid_reason(policy, c, fact, nr)) for cid, c in clauses.items()
                   if cid not in ids and touches(c, fact)]
        notes = [e for e in fired[p] if e.get("fired") is False]     # what was not reported
        fired[p] = [e for e in fired[p] if e.get("fired") is not False]
        not_paid.append([explain.entry(c, text, reason=key, fired=False) for c, key, text in reasons] + notes)
    trace = RewardTrace(fired, not_paid)
    order = {cid: i for i, cid in enumerate(clauses)}
    parts = []                       # per clause: rows, amounts, pattern, contract position
    contracts_by_clause = {}
    zero_lines = {}                  # row -> entries of rate clauses that fired but came to 0 yuan
    for cid, c in clauses.items():
        rows = np.flatnonzero(decision.fired_mask(cid))
        if not len(rows):
            continue
        if "contract_rate" in c.effect:
            if mine is None:
                continue
            ct = contracts_by_clause[cid] = contract_totals(mine, c)
            pos = ct.for_rows(ents[rows])
            rows, pos = rows[pos >= 0], pos[pos >= 0]
            amounts, pattern = ct.total[pos], np.full(len(rows), -1, np.int64)
            for r, q in zip(rows[amounts <= 0].tolist(), pos[amounts <= 0].tolist()):
                zero_lines.setdefault(r, []).append(explain.entry(c, rate_zero_reason(policy, c, ct, q), reason="contracts",
                                                                  fired=False))
        else:
            pattern = decision.pattern[rows]
            per_pattern = np.array([fixed_amount(c, f) for f in decision.facts], dtype=np.int64)
            amounts, pos = per_pattern[pattern], np.full(len(rows), -1, np.int64)
        keep = amounts > 0
        parts.append((rows[keep], np.full(keep.sum(), order[cid]), amounts[keep], pattern[keep], pos[keep],
                      cid, c.effect["kind"] == "floating"))
    if not parts:
        empty = np.zeros(0, np.int64)
        return Awards(np.zeros(0, object), empty, np.zeros(0, object), np.zeros(0, bool), empty,
                      np.zeros(0), empty, empty, decision.facts, contracts_by_clause,
                      not_paid=zero_lines), decision, trace
    rows = np.concatenate([p[0] for p in parts])
    corder = np.concatenate([p[1] for p in parts])
    # the lines' codes alone as Python text, not every row's
    code = arrow_text(frame["credit_code"]).take(pa.array(rows)).to_numpy(zero_copy_only=False) \
        if len(rows) else np.zeros(0, object)
    # the codes' order among the year's rows (fewer than the lines, and already arrow text;
    # `by_code`, the rows in code order, when the caller has it: a year's codes are distinct)
    if by_code is None:
        code_rank = pc.rank(arrow_text(frame["credit_code"]), sort_keys="ascending", tiebreaker="dense").to_numpy()
    else:
        code_rank = np.empty(len(by_code), dtype=np.int64)
        code_rank[by_code] = np.arange(len(by_code))
    code_rank = code_rank[rows]
    sort = np.lexsort((corder, code_rank))
    clause_ids = list(order)
    return Awards(
        code=code[sort], row=rows[sort],
        clause=np.array(clause_ids, dtype=object)[corder[sort]],
        floating=np.concatenate([np.full(len(p[0]), p[6]) for p in parts])[sort],
        eligible=np.concatenate([p[2] for p in parts]).astype(np.int64)[sort],
        score=np.asarray(scores, dtype="float64")[rows][sort],
        pattern=np.concatenate([p[3] for p in parts])[sort],
        contract_pos=np.concatenate([p[4] for p in parts])[sort],
        facts=decision.facts, contracts=contracts_by_clause, not_paid=zero_lines), decision, trace


def _tie_keys(awards, idx):
    """Sort keys for ties (SPEC §2.7): higher reported score, then credit code, then clause
    id. Lines are already in code order, so the line index stands for the code."""
    score = np.nan_to_num(awards.score[idx], nan=-1.0)
    clause_rank = pc.rank(pa.array(awards.clause[idx], pa.string()), tiebreaker="dense").to_numpy() \
        if len(idx) else np.zeros(0, np.int64)
    return score, clause_rank


def _mul_div(e, amount, total):
    """floor(e × amount ÷ total) and the remainder, exact: int64 while it cannot overflow,
    Python integers otherwise."""
    if len(e) and int(e.max()) * int(amount) >= 2 ** 62:
        prod = e.astype(object) * int(amount)
        return (prod // total).astype(np.int64), prod % total
    prod = e * np.int64(amount)
    return prod // total, prod % total


def _share(awards, idx, amount, total, what="浮动奖励"):
    """Share `amount` among lines `idx` pro rata to their eligible amounts: floor to the
    yuan, then one yuan each by largest fractional remainder (ties: higher score, code,
    clause), so the shares add up to `amount` exactly."""
    if total == 0 or not len(idx):
        return
    q, r = _mul_div(awards.eligible[idx], amount, total)
    left = int(amount - q.sum())
    score, clause_rank = _tie_keys(awards, idx)
    if r.dtype == object:       # remainders beyond int64: order them as Python integers
        order = np.array(sorted(range(len(idx)), key=lambda k: (-r[k], -score[k], idx[k], clause_rank[k])))
    else:                       # lexsort takes the last key first
        order = np.lexsort((clause_rank, idx, -score, -r))
    q[order[:left]] += 1
    awards.granted[idx] = q
    e = awards.eligible[idx]
    awards.derivation[idx] = [f"{what}按比例分配：核定 {x:,} 元 × 可分配预算 {amount:,} 元 ÷ {what}核定合计 {total:,} 元，"
                              f"向下取整至元，余下的元按小数部分从大到小逐元补足" for x in e.tolist()]


def allocate(awards, budget=None, strategy="pro_rata") -> BudgetOutcome:
    """Apply a year's budget to the award lines in place (SPEC §2.7): fixed items first;
    floating items share what is left by the strategy; if the fixed items alone exceed the
    budget they share it pro rata and the floating items get 0."""
    if isinstance(awards, list):
        raise TypeError("allocate takes an Awards table (Awards.from_lines for a list)")
    fixed = np.flatnonzero(~awards.floating)
    floating = np.flatnonzero(awards.floating)
    f_total = int(awards.eligible[fixed].sum())
    v_total = int(awards.eligible[floating].sum())
    awards.granted = awards.eligible.copy()
    awards.derivation = np.full(len(awards), "全额拨付（未设预算或预算充足）", dtype=object)
    if budget is not None and f_total + v_total > budget:
        if f_total > budget:
            _share(awards, fixed, budget, f_total, "固定奖励")
            awards.granted[floating] = 0
            awards.derivation[floating] = f"固定奖励合计 {f_total:,} 元已超出预算 {budget:,} 元，预算已无剩余，浮动奖励为0"
        else:
            awards.derivation[fixed] = f"固定奖励优先全额拨付（预算 {budget:,} 元）"
            remaining = budget - f_total
            if strategy == "pro_rata":
                _share(awards, floating, remaining, v_total)
            elif strategy == "rank_priority":
                score, clause_rank = _tie_keys(awards, floating)
                ranked = floating[np.lexsort((clause_rank, floating, -score))]
                e = awards.eligible[ranked]
                before = remaining - (np.cumsum(e) - e)          # budget left when each line's turn comes
                awards.granted[ranked] = np.clip(before, 0, e)
                awards.derivation[ranked] = [f"按排名先后拨付：轮到本项时剩余预算 {max(b, 0):,} 元" + ("，预算已用完" if b <= 0 else "")
                                             for b in before.tolist()]
            else:
                raise ValueError(f"unknown strategy {strategy!r}")
    f_granted = int(awards.granted[fixed].sum())
    v_granted = int(awards.granted[floating].sum())
    return BudgetOutcome(budget, strategy, f_total, v_total, f_granted + v_granted,
                         f_total - f_granted, v_total - v_granted)
