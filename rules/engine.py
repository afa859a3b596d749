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

from .clauses import compile_when, condition_fields, full_when

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

    def fired_mask(self, clause_id):
        hit = np.array([clause_id in f for f in self.fired], dtype=bool)
        return hit[self.pattern] if len(self.pattern) else np.zeros(0, dtype=bool)

    @property
    def patterns(self):
        return len(self.facts)


def ruleset(policy, group, clauses) -> dict:
    """The durable-rules ruleset of a clause group: one rule per clause plus `_seen`."""
    rules = {c.id: {"all": [{"m": compile_when(group, full_when(policy, c))}], "run": c.id} for c in clauses}
    rules[SEEN] = {"all": [{"m": {"$gte": {"pno": 0}}}], "run": SEEN}
    return {group: rules}


def host_for(policy, year, groups=("negative_list", "decay", "bonus", "rewards")):
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


def decide(policy, group, year, frame: pd.DataFrame) -> Decision:
    """Run a clause group over every row of `frame` (columns: the fields its clauses read)."""
    clauses = policy.clauses_for(group, year)
    fields = fields_of(policy, clauses)
    n = len(frame)
    if not fields or n == 0:
        pattern = np.zeros(n, dtype=np.int64)
        facts = [{}] if n else []
        return Decision(pattern, facts, [[] for _ in facts])
    sub = frame[fields]
    pattern = sub.groupby(fields, dropna=False, sort=False).ngroup().to_numpy()
    first = np.unique(pattern, return_index=True)[1]
    uniques = sub.iloc[first]
    facts = []
    for row in uniques.itertuples(index=False, name=None):
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
    return Decision(pattern, facts, final)


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
