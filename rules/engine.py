"""The one module that talks to durable-rules.

Clause groups (negative list, decay, bonus, rewards) compile to durable-rules rulesets, one
host per policy version and year (a host cannot hold two rulesets of one name, so each
version gets its own). The engine decides which clauses fire for a fact; the group modules
turn fired clause ids into effects.

What bites (../shared/notes/durable-rules.md) and what this module does about it:
- background dispatcher threads give wrong results: `_SyncHost._run` does nothing and every
  call is synchronous, under one lock (the C extension holds the GIL anyway);
- a fact no rule matches raises: every ruleset has a catch-all rule `_seen`, which also
  proves each fact was evaluated;
- content-hash identities collide: each fact carries an explicit unique `id`;
- >1024 live sessions crash: facts go in sessions of at most `BATCH` and each session's
  state is deleted when done;
- exceptions in actions are swallowed into the state: the state is checked after each call;
- `set_rulesets` mutates its argument: a deep copy is passed;
- loosely typed comparisons: facts carry only normalised bools, ints, floats and strings.

Scale: many enterprises share the same clause-relevant inputs, so the engine evaluates each
distinct input pattern once and the outcome is mapped back to every enterprise with it.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .clauses import AMOUNT, atoms, compile_when, condition_fields, full_when, group_fields

BATCH = 500
SEEN = "_seen"
_LOCK = threading.RLock()
_HOSTS: dict = {}


class EngineError(RuntimeError):
    pass


def _durable():
    import durable.engine as de
    return de


def _host_class():
    de = _durable()

    class _SyncHost(de.Host):
        """A host whose actions run synchronously inside `assert_facts`."""

        def __init__(self):
            self.fired = None
            super().__init__()

        def _run(self):  # no dispatcher threads
            pass

        def get_action(self, name):
            def action(c):
                self.fired[c.m.pno].append(name)
            return action

    return _SyncHost


@dataclass
class Decision:
    """What the engine decided for every row of a frame."""
    pattern: np.ndarray        # row -> pattern number
    facts: list                # pattern number -> the fact asserted
    fired: list                # pattern number -> clause ids fired, clause-file order
    not_reported: list = None  # pattern number -> fields that were empty in the data (read as the default)
    classes: list = None       # pattern number -> {coarsened field: the interval it fell in, e.g. "> 0"}

    def fired_mask(self, clause_id):
        hit = np.array([clause_id in f for f in self.fired], dtype=bool)
        return hit[self.pattern] if len(self.pattern) else np.zeros(0, dtype=bool)

    @property
    def patterns(self):
        return len(self.facts)


def effect_fields(clauses) -> set:
    """The fact fields the clauses' effects read (`per` multipliers): they must be exact in
    the pattern key, so they are never coarsened (checks.py refuses an effect reading a
    coarsened or unknown field)."""
    return {c.effect["per"] for c in clauses if c.effect.get("per")}


def thresholds(when, field) -> list:
    """Every constant a condition compares `field` with."""
    return [x for f, op, v in atoms(when) if f == field for x in (v if op == "in" else [v])]


def coarsen(values, consts):
    """Replace each value by a representative of its class among the constants `consts`
    (below the first, equal to one, between two, above the last) and describe the class.
    Every comparison with a constant gives the same answer for a value and its
    representative, so the engine decides the same; NaN stays NaN."""
    c = np.array(sorted(set(float(x) for x in consts)), dtype="float64")
    v = np.asarray(values, dtype="float64")
    if not len(c):
        return np.where(np.isnan(v), np.nan, 0.0), np.where(np.isnan(v), None, "任意值").astype(object)
    idx = np.searchsorted(c, v, side="left")          # first constant >= v
    safe = np.minimum(idx, len(c) - 1)
    equal = (idx < len(c)) & (c[safe] == v)
    lower = np.concatenate([[c[0] - 1.0], c])          # representatives of the open intervals
    upper = np.concatenate([c, [c[-1] + 1.0]])
    rep = np.where(equal, v, (lower[idx] + upper[idx]) / 2)
    rep = np.where(idx == 0, np.where(equal, v, c[0] - 1.0), rep)
    rep = np.where(idx == len(c), c[-1] + 1.0, rep)
    labels = [f"< {_n(c[0])}"] + [f"{_n(a)} 至 {_n(b)} 之间" for a, b in zip(c[:-1], c[1:])] + [f"> {_n(c[-1])}"]
    desc = np.array(labels, dtype=object)[idx]
    desc = np.where(equal, np.array([f"= {_n(x)}" for x in c], dtype=object)[safe], desc)
    nan = np.isnan(v)
    return np.where(nan, np.nan, rep), np.where(nan, None, desc)


def _n(x):
    return str(int(x)) if float(x).is_integer() else str(x)


def ruleset(policy, group, clauses) -> dict:
    """The durable-rules ruleset of a clause group: one rule per clause plus `_seen`."""
    known = group_fields(policy, group)
    rules = {c.id: {"all": [{"m": compile_when(known, full_when(policy, c))}], "run": c.id} for c in clauses}
    rules[SEEN] = {"all": [{"m": {"$gte": {"pno": 0}}}], "run": SEEN}
    return {group: rules}


def host_for(policy, year, groups=("scope", "negative_list", "decay", "bonus", "rewards")):
    """The engine host of a policy version for a year, built once and cached."""
    key = (policy.digest, year)
    with _LOCK:
        host = _HOSTS.get(key)
        if host is None:
            host = _host_class()()
            definitions = {}
            for g in groups:
                definitions.update(ruleset(policy, g, policy.clauses_for(g, year)))
            host.set_rulesets(copy.deepcopy(definitions))
            _HOSTS[key] = host
        return host


def _fact_value(v):
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return None
        if not np.isfinite(v):
            raise EngineError(f"non-finite value {v!r} cannot be asserted")
        return int(v) if float(v).is_integer() else float(v)
    if isinstance(v, str):
        return v or None
    raise EngineError(f"value {v!r} of type {type(v).__name__} cannot be asserted")


def fields_of(policy, clauses):
    """Every fact field a group's clauses read (conditions and `per` multipliers)."""
    out = set()
    for c in clauses:
        out |= condition_fields(full_when(policy, c))
        per = c.effect.get("per")
        if per:
            out.add(per)
    return sorted(out)


def decide(policy, group, year, frame: pd.DataFrame, missing: pd.DataFrame | None = None) -> Decision:
    """Run a clause group over every row of `frame` (columns: the fields its clauses read).

    `missing` (optional, bool columns by field) marks the cells that were empty in the data
    and were read as the group's default: they make patterns of their own, so that the
    trace can tell "not reported" from 否/0. Continuous fields (money, ratios) are coarsened
    to the intervals their conditions tell apart."""
    clauses = policy.clauses_for(group, year)
    fields = fields_of(policy, clauses)
    n = len(frame)
    if not fields or n == 0:
        pattern = np.zeros(n, dtype=np.int64)
        facts = [{}] if n else []
        return Decision(pattern, facts, [[] for _ in facts], [[] for _ in facts], [{} for _ in facts])
    exact = effect_fields(clauses)
    known = group_fields(policy, group)
    cols, coarse = {}, {}
    for f in fields:
        if known.get(f, (None,))[0] == AMOUNT and f not in exact:
            consts = [x for c in clauses for x in thresholds(full_when(policy, c), f)]
            cols[f], coarse[f] = coarsen(frame[f].to_numpy(dtype="float64"), consts)
        else:
            cols[f] = frame[f]
    miss_fields = [f for f in fields if missing is not None and f in missing]
    miss = {f: missing[f].to_numpy(dtype=bool) for f in miss_fields}
    pattern = patterns([cols[f] for f in fields] + [miss[f] for f in miss_fields])
    first = np.unique(pattern, return_index=True)[1]
    not_reported = [[f for f in miss_fields if miss[f][i]] for i in first]
    classes = [{f: coarse[f][i] for f in coarse if coarse[f][i] is not None} for i in first]
    facts = []
    for row in zip(*[_values_at(cols[f], first) for f in fields]):
        fact = {}
        for k, v in zip(fields, row):
            v = _fact_value(v)
            if v is not None:
                fact[k] = v
        facts.append(fact)
    fired = run(host_for(policy, year), group, facts)
    order = {c.id: i for i, c in enumerate(clauses)}
    supersedes = {c.id: c.body.get("supersedes") or [] for c in clauses}
    final = []
    for ids in fired:
        ids = set(ids)
        for cid in list(ids):
            ids -= set(supersedes.get(cid, ()))
        final.append(sorted(ids, key=order.__getitem__))
    return Decision(pattern, facts, final, not_reported, classes)


def _values_at(col, rows):
    """The values of a column (numpy array or pandas Series) at `rows`, as Python-ready items."""
    if isinstance(col, pd.Series):
        col = col.array
    return list(col[rows]) if isinstance(col, np.ndarray) else col.take(rows).tolist()


def patterns(columns) -> np.ndarray:
    """A pattern number per row: rows with equal values in every column share one, numbered
    in order of first appearance (as a sort-free group-by would). NaN (and None) is a value
    of its own. Each column is factorised once and the codes are folded into one integer."""
    n = len(columns[0]) if columns else 0
    key, size = np.zeros(n, dtype=np.int64), 1
    for col in columns:
        codes, uniques = pd.factorize(col.array if isinstance(col, pd.Series) else col, use_na_sentinel=True)
        width = len(uniques) + 1
        if size * width >= 2 ** 62:          # make the key dense again before it could overflow
            key, kept = pd.factorize(key)
            key, size = key.astype(np.int64), len(kept)
        key = key * width + (codes.astype(np.int64) + 1)
        size *= width
    return pd.factorize(key)[0].astype(np.int64)      # numbered by first appearance


def run(host, group, facts) -> list:
    """Assert facts in small sessions; return the ids fired for each fact (no `_seen`)."""
    out = []
    with _LOCK:
        for start in range(0, len(facts), BATCH):
            chunk = facts[start:start + BATCH]
            sid = f"s{start}"
            host.fired = [[] for _ in chunk]
            batch = [dict(f, pno=i, id=f"f{i}", sid=sid) for i, f in enumerate(chunk)]
            try:
                state = host.assert_facts(group, batch)
            finally:
                try:
                    host.delete_state(group, sid)
                except Exception:  # noqa: BLE001 - a session that never started has no state
                    pass
            if isinstance(state, dict) and "exception" in state:
                raise EngineError(f"rule action failed in {group}: {state['exception']}")
            for i, ids in enumerate(host.fired):
                if SEEN not in ids:
                    raise EngineError(f"fact {chunk[i]!r} was not evaluated by {group}")
                out.append([x for x in ids if x != SEEN])
            host.fired = None
    return out


def check_compiles(policy, year):
    """Build the engine host for a policy version (raises on a ruleset durable rejects)."""
    return host_for(policy, year)
