"""The synthetic demo park: a realistic high-tech zone of enterprises over several years,
with its industries and parks, in the import format of SPEC §3.

Vectorised with numpy so the same generator makes the 1,500-enterprise demo and the
million-enterprise benchmark. Names and codes are fictitious; codes carry valid GB 32100-2015
check characters.
"""
from __future__ import annotations

import datetime as dt
import numpy as np
import pandas as pd

from rules.fields import RECORD_FIELDS
from rules.output import write_csv  # noqa: F401 - the demo writes its files with it
from rules.records import CODE_CHARS, CODE_WEIGHTS

INDUSTRIES = ["生物医药", "高端装备制造", "氢能", "电子信息", "新材料", "节能环保"]
INDUSTRY_SHARE = [0.22, 0.24, 0.10, 0.18, 0.14, 0.12]
PARKS = ["主园区", "东区分园", "西区分园"]
PARK_SHARE = [0.62, 0.22, 0.16]
STAGE_NAMES = ["startup", "growth", "expansion", "mature"]


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


def _maybe_missing(rng, values, share):
    v = values.astype("float64")
    v[rng.random(len(v)) < share] = np.nan
    return v


def _yes_no(rng, p, n, missing=0.1, chinese=0.3):
    v = rng.random(n) < p
    words = np.where(rng.random(n) < chinese, np.where(v, "是", "否"), np.where(v, "true", "false"))
    return np.where(rng.random(n) < missing, "", words).astype(object)


def _flag(rng, p, n):
    return np.where(rng.random(n) < p, "true", "").astype(object)


def generate(enterprises: int, year: int, seed: int = 2022, history: int = 3,
             history_share: float = 0.77):
    """Records of `enterprises` firms for `year` and up to `history` earlier years (a firm
    founded later has fewer), and their registered technical contracts."""
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
    base_rev = np.exp(rng.normal(6.6, 1.5, size=n))                 # 万元, median ≈ 735
    industry = rng.choice(INDUSTRIES, size=n, p=INDUSTRY_SHARE)
    park = rng.choice(PARKS, size=n, p=PARK_SHARE)
    names = np.char.add("示范企业", np.char.zfill(np.arange(n).astype(str), 6))
    has_hist = rng.random(n) < history_share
    frames = []
    rev = base_rev
    for back in range(history, -1, -1):
        y = year - back
        alive = (pd.DatetimeIndex(reg_dates).year.to_numpy() <= y) & (has_hist | (back == 0))
        idx = np.flatnonzero(alive)
        m = len(idx)
        rev = rev * np.exp(rng.normal(0.08, 0.25, size=n))
        r = rev[idx]
        rd = r * rng.uniform(0.0, 0.12, size=m)
        cols = {
            "credit_code": codes[idx], "name": names[idx], "park": park[idx], "industry": industry[idx],
            "registered_on": reg_dates[idx].astype(str), "year": np.full(m, y),
            "rd_expense": _maybe_missing(rng, np.round(rd, 2), 0.05),
            "rd_expense_growth": _maybe_missing(rng, np.round(rng.normal(12, 25, m), 2), 0.1),
            "rd_intensity": np.full(m, np.nan),
            "tech_staff_ratio": _maybe_missing(rng, np.round(rng.uniform(2, 90, m), 2), 0.08),
            "revenue": np.round(r, 4),
        }
        counts = {"invention_applications": 1.2, "pct_applications": 0.2, "standards": 0.3,
                  "invention_grants": 0.8, "graduates_hired": 3, "provincial_platforms_built": 0.2,
                  "provincial_awards": 0.1, "provincial_projects": 0.3, "city_platforms_total": 0.8,
                  "city_awards": 0.2, "city_projects": 0.5, "competitions": 0.6, "talents_teams": 0.3,
                  "subsidiaries": 0.8, "foreign_returnee_staff": 0.6}
        for key, lam in counts.items():
            cols[key] = _maybe_missing(rng, rng.poisson(lam * (1 + np.log1p(r) / 8), m), 0.1)
        amounts = {"tech_contract_turnover": 0.05, "university_contract_turnover": 0.02,
                   "hitech_product_revenue": 0.5, "rd_tax_deduction": 0.02, "export_value": 0.03,
                   "venture_capital": 0.04}
        for key, share in amounts.items():
            v = np.where(rng.random(m) < 0.4, 0.0, r * rng.uniform(0, share * 2, m))
            cols[key] = _maybe_missing(rng, np.round(v, 2), 0.1)
        for key, (mu, sd) in {"revenue_growth": (10, 30), "return_on_equity": (6, 12), "staff_growth": (5, 15),
                              "profit_growth": (5, 40)}.items():
            cols[key] = _maybe_missing(rng, np.round(rng.normal(mu, sd, m), 2), 0.1)
        for key, hi in {"postgraduate_ratio": 40, "bachelor_ratio": 95}.items():
            cols[key] = _maybe_missing(rng, np.round(rng.uniform(0, hi, m), 2), 0.1)
        cols["is_hte_or_tech_sme"] = _yes_no(rng, 0.45, m)
        cols["is_champion_or_specialized"] = _yes_no(rng, 0.12, m)
        cols["is_listed"] = _yes_no(rng, 0.02 + 0.1 * (r > 10000), m)
        cols["credit_blacklisted"] = _flag(rng, 0.015, m)
        cols["env_credit_rating"] = rng.choice(["诚信", "良好", "honest", "good", "warning", "警示", "bad", ""],
                                               size=m, p=[0.2, 0.2, 0.15, 0.2, 0.05, 0.03, 0.01, 0.16]).astype(object)
        cols["major_safety_incident"] = _flag(rng, 0.005, m)
        cols["hte_requalification_failed"] = _flag(rng, 0.03, m)
        cols["tech_sme_reevaluation_failed"] = _flag(rng, 0.04, m)
        cols["tech_sme_out_of_scope"] = _flag(rng, 0.2, m)
        for key, p in {"delisted_platforms_national": 0.005, "delisted_platforms_provincial": 0.01,
                       "delisted_platforms_municipal": 0.02}.items():
            cols[key] = np.where(rng.random(m) < p, rng.integers(1, 3, m), 0).astype("float64")
        for key, p in {"major_projects_national": 0.02, "major_projects_provincial": 0.05,
                       "major_projects_municipal": 0.1}.items():
            cols[key] = np.where(rng.random(m) < p, rng.integers(1, 3, m), 0).astype("float64")
        cols["hte_recognized_in_year"] = _flag(rng, 0.08, m)
        cols["tech_sme_listed"] = np.where(rng.random(m) < 0.5, "true", "false").astype(object)
        cols["overseas_rd_institutions_new"] = np.where(rng.random(m) < 0.01, 1, 0).astype("float64")
        cols["new_provincial_institutions"] = np.where(rng.random(m) < 0.015, rng.integers(1, 3, m), 0).astype("float64")
        # firms whose earlier years are not in the data carry their history as override fields
        no_hist = ~has_hist[idx] & (back == 0)
        prev = rng.choice(STAGE_NAMES, size=m)
        cols["stage_prev1"] = np.where(no_hist & (rng.random(m) < 0.5), prev, "").astype(object)
        cols["stage_prev2"] = np.where(no_hist & (rng.random(m) < 0.3), rng.choice(STAGE_NAMES, size=m), "").astype(object)
        cols["expansion_since"] = np.where(no_hist & (rng.random(m) < 0.2), rng.integers(y - 12, y + 1, m), np.nan)
        cols["tech_sme_streak"] = np.where(no_hist & (rng.random(m) < 0.3), rng.integers(1, 6, m), np.nan)
        frames.append(pd.DataFrame(cols))
    records = pd.concat(frames, ignore_index=True)[[f.key for f in RECORD_FIELDS]]

    # technical contracts: about one a firm-year, amounts in 万元 with five decimals
    k = rng.poisson(0.9, size=len(records))
    owner = np.repeat(np.arange(len(records)), k)
    seq = np.arange(len(owner)) - np.repeat(np.cumsum(k) - k, k)
    c_year = records["year"].to_numpy()[owner]
    day = rng.integers(0, 365, size=len(owner))
    c_dates = (c_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + day.astype("timedelta64[D]")
    c_codes = records["credit_code"].to_numpy()[owner]
    amount = np.round(np.exp(rng.normal(3.5, 1.6, size=len(owner))), 5)
    contracts = pd.DataFrame({
        "contract_no": [f"{y}-{c}-{s:03d}" for y, c, s in zip(c_year, c_codes, seq)],
        "credit_code": c_codes,
        "kind": rng.choice(["transfer", "development", "consulting", "service", "技术开发", "技术许可"], size=len(owner),
                          p=[0.19, 0.19, 0.19, 0.19, 0.19, 0.05]),
        "amount": np.char.mod("%.5f", amount),
        "registered_on": c_dates.astype(str),
    })
    return records, contracts
