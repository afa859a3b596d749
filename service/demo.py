"""The synthetic demo park: a realistic high-tech zone of enterprises over several years,
with its industries and parks, in the import format of SPEC §3.

What each field of the policy package holds is the package's own `sample.yaml` (how the
values of each field are drawn, by kind); the code here knows the kinds, not the fields, so
another zone's package generates its own demo data.

Vectorised with numpy so the same generator makes the 1,500-enterprise demo and the
million-enterprise benchmark. Names and codes are fictitious; codes carry valid GB 32100-2015
check characters.
"""
from __future__ import annotations

import datetime as dt
import numpy as np
import pandas as pd

import yaml

from rules.output import write_csv  # noqa: F401 - the demo writes its files with it
from rules.policy import load_policy
from rules.records import CODE_CHARS, CODE_WEIGHTS

INDUSTRIES = ["生物医药", "高端装备制造", "氢能", "电子信息", "新材料", "节能环保"]
INDUSTRY_SHARE = [0.22, 0.24, 0.10, 0.18, 0.14, 0.12]
PARKS = ["主园区", "东区分园", "西区分园"]
PARK_SHARE = [0.62, 0.22, 0.16]


def credit_codes(rng, n) -> np.ndarray:
    """n distinct credit codes of the zone (登记管理部门 9, 类别 1, 区划 410700)."""
    chars = np.frombuffer(CODE_CHARS.encode(), dtype=np.uint8)
    body = rng.integers(0, len(CODE_CHARS), size=(n, 11))
    prefix = np.array([9, 1, 4, 1, 0, 7, 0, 0])[None, :].repeat(n, axis=0)
    digits = np.concatenate([prefix[:, :8], body[:, :9]], axis=1)        # 17 characters
    check = (31 - (digits * CODE_WEIGHTS).sum(axis=1) % 31) % 31
    allc = np.concatenate([digits, check[:, None]], axis=1)
    codes = chars[allc].view("S18").ravel().astype(str)
    _, first = np.unique(codes, return_index=True)
    keep = np.zeros(n, dtype=bool)
    keep[first] = True
    if keep.all():
        return codes
    return np.concatenate([codes[keep], credit_codes(rng, n - keep.sum())])


def _yes_no(rng, p, n, missing=0.1, chinese=0.3):
    v = rng.random(n) < p
    words = np.where(rng.random(n) < chinese, np.where(v, "是", "否"), np.where(v, "true", "false"))
    return np.where(rng.random(n) < missing, "", words).astype(object)


def _missing(rng, values, share):
    v = np.asarray(values, dtype="float64").copy()
    if share:
        v[rng.random(len(v)) < share] = np.nan
    return v


def sample_settings(policy=None) -> dict:
    """A package's sample.yaml: how the demo data of each of its fields are drawn."""
    pv = policy if hasattr(policy, "path") else load_policy(policy)
    f = pv.path / "sample.yaml"
    if not f.exists():
        return {"fields": {}}
    return yaml.safe_load(f.read_text(encoding="utf-8")) or {"fields": {}}


def _draw(rng, field, spec, size, without_history, year, stages):
    """One field's values for `size` records, by the rule of its sample.yaml entry:
    share [lo, hi] of the firm's size, normal [mu, sd], uniform [lo, hi], poisson λ (grows with
    size), yes p (是/否, some in Chinese), flag p (true or empty), count [lo, hi] with flag p,
    choose {value: p}, stage p (a random stage), years_back [lo, hi] and between [lo, hi]
    (years and counts), each with `missing` share, `zero` share and `without_history`
    (only records of firms whose earlier years are not in the data)."""
    m = len(size)
    kind = field.kind
    if spec.get("empty") or not spec:
        return np.full(m, np.nan) if kind not in ("choice", "stage", "bool", "text") else np.full(m, "", dtype=object)
    p_hist = spec.get("without_history")
    if "share" in spec:
        lo, hi = spec["share"]
        v = size * rng.uniform(lo, hi, m)
    elif "normal" in spec:
        v = rng.normal(*spec["normal"], m)
    elif "uniform" in spec:
        v = rng.uniform(*spec["uniform"], m)
    elif "poisson" in spec:
        v = rng.poisson(spec["poisson"] * (1 + np.log1p(size) / 8), m).astype("float64")
    elif "p_yes" in spec:
        return _yes_no(rng, spec["p_yes"], m, spec.get("missing", 0.1))
    elif "choose" in spec:
        values, probs = list(spec["choose"]), list(spec["choose"].values())
        return rng.choice(values, size=m, p=np.array(probs) / sum(probs)).astype(object)
    elif "stage" in spec:
        v = rng.choice(list(stages), size=m).astype(object)
        return np.where(without_history & (rng.random(m) < spec["stage"]), v, "").astype(object)
    elif "years_back" in spec:
        lo, hi = spec["years_back"]
        v = rng.integers(year - hi, year - lo + 1, m).astype("float64")
    elif "between" in spec:
        lo, hi = spec["between"]
        v = rng.integers(lo, hi + 1, m).astype("float64")
    elif "flag" in spec and "count" not in spec:
        return np.where(rng.random(m) < spec["flag"], "true", "false" if spec.get("write_no") else "").astype(object)
    else:
        v = np.zeros(m)
    if "count" in spec:
        lo, hi = spec["count"]
        v = np.where(rng.random(m) < spec.get("flag", 1), rng.integers(lo, hi + 1, m), 0).astype("float64")
    if "zero" in spec:
        v = np.where(rng.random(m) < spec["zero"], 0.0, v)
    if kind in ("amount", "ratio", "signed"):
        v = np.round(v, int(spec.get("decimals", 2)))
    if p_hist is not None:
        v = np.where(without_history & (rng.random(m) < p_hist), v, np.nan)
    return _missing(rng, v, spec.get("missing", 0))


def generate(enterprises: int, year: int, seed: int = 2022, history: int = 3,
             history_share: float = 0.77, policy=None):
    """Records of `enterprises` firms for `year` and up to `history` earlier years (a firm
    founded later has fewer), and their registered technical contracts, with the fields of
    the policy package (`policy`, the bundled one by default) drawn as its sample.yaml says."""
    pv = policy if hasattr(policy, "path") else load_policy(policy)
    data = pv.data
    cfg = sample_settings(pv)
    rules = cfg.get("fields") or {}
    base = cfg.get("base") or {}
    rng = np.random.default_rng(seed)
    n = enterprises
    codes = credit_codes(rng, n)
    start = dt.date(1998, 1, 1).toordinal()
    end = dt.date(year, 12, 31).toordinal()
    reg = rng.integers(start, end - 200, size=n)
    # some registration dates fall exactly on an anniversary boundary of the reference date
    edge = rng.random(n) < 0.02
    reg[edge] = [dt.date(year - k, 12, 31).toordinal() for k in rng.choice([4, 9, 14], size=edge.sum())]
    reg_dates = np.array(reg - dt.date(1970, 1, 1).toordinal(), dtype="datetime64[D]")
    mu, sd = base.get("lognormal", [6.6, 1.5])
    base_size = np.exp(rng.normal(mu, sd, size=n))                 # the firm's size (万元)
    industry = rng.choice(INDUSTRIES, size=n, p=INDUSTRY_SHARE)
    park = rng.choice(PARKS, size=n, p=PARK_SHARE)
    names = np.char.add("示范企业", np.char.zfill(np.arange(n).astype(str), 6))
    has_hist = rng.random(n) < history_share
    frames = []
    size = base_size
    g_mu, g_sd = base.get("yearly", [0.08, 0.25])
    for back in range(history, -1, -1):
        y = year - back
        alive = (pd.DatetimeIndex(reg_dates).year.to_numpy() <= y) & (has_hist | (back == 0))
        idx = np.flatnonzero(alive)
        m = len(idx)
        size = size * np.exp(rng.normal(g_mu, g_sd, size=n))
        r = size[idx]
        cols = {"credit_code": codes[idx], "name": names[idx], "park": park[idx], "industry": industry[idx],
                "registered_on": reg_dates[idx].astype(str), "year": np.full(m, y)}
        if base.get("field"):
            cols[base["field"]] = np.round(r, 4)
        without = ~has_hist[idx] & (back == 0)
        for f in data.fields:
            if f.key not in cols:
                cols[f.key] = _draw(rng, f, rules.get(f.key) or {}, r, without, y, data.stages)
        frames.append(pd.DataFrame(cols))
    records = pd.concat(frames, ignore_index=True)[[f.key for f in data.record_fields]]

    # technical contracts: about one a firm-year, amounts in 万元 with five decimals
    k = rng.poisson(float(cfg.get("contracts_per_record", 0.9)), size=len(records))
    owner = np.repeat(np.arange(len(records)), k)
    seq = np.arange(len(owner)) - np.repeat(np.cumsum(k) - k, k)
    c_year = records["year"].to_numpy()[owner]
    day = rng.integers(0, 365, size=len(owner))
    c_dates = (c_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + day.astype("timedelta64[D]")
    c_codes = records["credit_code"].to_numpy()[owner]
    amount = np.round(np.exp(rng.normal(3.5, 1.6, size=len(owner))), 5)
    kinds = cfg.get("contract_kinds") or {k: 1 for k in data.contract_kinds}
    contracts = pd.DataFrame({
        "contract_no": [f"{y}-{c}-{s:03d}" for y, c, s in zip(c_year, c_codes, seq)],
        "credit_code": c_codes,
        "kind": rng.choice(list(kinds), size=len(owner), p=np.array(list(kinds.values())) / sum(kinds.values())),
        "amount": np.char.mod("%.5f", amount),
        "registered_on": c_dates.astype(str),
    })
    return records, contracts
