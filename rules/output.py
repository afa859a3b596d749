"""Writing an evaluation as files (SPEC §5): scores.csv, awards.csv, trace.jsonl,
indicators.csv, manifest.json and the printable award list awards.html.

Files are written to a fresh folder beside the target and moved in only when all are
complete, so a failed run leaves the target as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

SCORE_COLUMNS = ["credit_code", "year", "stage", "excluded", "exclusion_clauses", "tech_score",
                 "growth_score", "aux_score", "weighted", "deductions", "decay_factor", "bonus",
                 "final_score", "rank_in_stage", "rank_overall"]
AWARD_COLUMNS = ["credit_code", "year", "clause", "eligible_yuan", "granted_yuan", "basis"]
PROGRAM_VERSION = "0.2.0"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def scores_frame(ev) -> pd.DataFrame:
    """scores.csv as text columns, sorted by credit code."""
    s = ev.scores
    d = ev.policy.groups["policy"]["scoring"]["decimals"]
    out = pd.DataFrame({"credit_code": s["credit_code"], "year": s["year"].astype(str), "stage": s["stage"],
                        "excluded": np.where(s["excluded"], "true", "false"),
                        "exclusion_clauses": s["exclusion_clauses"]})
    for col in SCORE_COLUMNS[5:13]:
        v = s[col].to_numpy(dtype="float64")
        out[col] = np.where(np.isnan(v), "", np.char.mod(f"%.{d}f", np.nan_to_num(v)))
    for col in ("rank_in_stage", "rank_overall"):
        v = s[col].to_numpy(dtype="float64")
        out[col] = np.where(np.isnan(v), "", np.char.mod("%d", np.nan_to_num(v).astype(np.int64)))
    return out.sort_values("credit_code", kind="stable")


def awards_frame(ev) -> pd.DataFrame:
    rows = [(a.credit_code, ev.year, a.clause, a.eligible_yuan, a.granted_yuan, ";".join(sorted(a.basis)))
            for a in ev.awards]
    return pd.DataFrame(rows, columns=AWARD_COLUMNS)


def _dump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def trace_lines(ev):
    """One JSON object per enterprise: every clause that fired, its citation and inputs, and
    every number of its scores.csv row with how it was made."""
    s = ev.scores
    policy = ev.policy
    stage_clause = policy.clause("STAGE", ev.year)
    weights = policy.groups["indicators"]["weights"]
    frags = {g: (pat, [_dump(e) for e in entries]) for g, (pat, entries) in ev.traces.items()}
    awards_by_code = {}
    for a in ev.awards:
        awards_by_code.setdefault(a.credit_code, []).append({
            "clause": a.clause, "citation": policy.clause(a.clause, ev.year).citation, "kind": a.kind,
            "eligible_yuan": a.eligible_yuan, "granted_yuan": a.granted_yuan, "basis": sorted(a.basis),
            "inputs": a.inputs, "derivation": a.derivation})
    cols = {c: s[c].to_numpy() for c in s.columns}
    for i in range(len(s)):
        code = cols["credit_code"][i]
        st = cols["stage"][i]
        head = {"credit_code": code, "year": ev.year,
                "stage": {"clause": "STAGE", "citation": stage_clause.citation, "stage": st,
                          "completed_years": int(cols["completed_years"][i])},
                "history": ev.history_source[i], "excluded": bool(cols["excluded"][i])}
        parts = [_dump(head)[:-1]]
        # an excluded enterprise is out of points management: no decay or bonus applies
        for g in ("negative_list",) if cols["excluded"][i] else ("negative_list", "decay", "bonus"):
            pat, fr = frags[g]
            parts.append(f'"{g}":{fr[pat[i]]}')
        if not cols["excluded"][i]:
            parts.append('"scores":' + _dump({
                "indicators": "indicators.csv", "cohort_size": int(ev.cohort_sizes[i]),
                "weights": {"citation": weights["citation"], **dict(weights[st])},
                **{k: round(float(cols[k][i]), 6) for k in ("tech_score", "growth_score", "aux_score", "weighted",
                                                             "deductions", "decay_factor", "bonus")},
                "order": policy.groups["policy"]["scoring"]["order"],
                "final_score": float(cols["final_score"][i]),
                "rank_in_stage": int(cols["rank_in_stage"][i]), "rank_overall": int(cols["rank_overall"][i]),
                "stage_percentile": round(float(cols["stage_percentile"][i]), 4)}))
        parts.append('"rewards":' + _dump(awards_by_code.get(code, [])))
        yield ",".join(parts) + "}\n"


def indicators_frame(ev) -> pd.DataFrame:
    out = {"credit_code": ev.scores["credit_code"].to_numpy()}
    for j, c in enumerate(ev.indicator_clauses):
        out[f"{c.id} {c.body['key']}"] = ev.indicator_values[:, j]
        out[f"{c.id} points"] = np.round(ev.indicator_points[:, j], 6)
    return pd.DataFrame(out)


def manifest(ev, inputs: dict, extra=None) -> dict:
    """What makes a run reproducible: policy version and hash, input checksums, options."""
    m = {"program": "innopoints", "program_version": PROGRAM_VERSION,
         "policy": {"name": ev.policy.name, "document": ev.policy.document, "sha256": ev.policy.digest},
         "year": ev.year, "inputs": {k: {"file": Path(p).name, "sha256": sha256_file(p)} for k, p in inputs.items() if p},
         "budget": ev.budget.as_dict(),
         "enterprises": int(len(ev.scores)), "excluded": int(ev.scores["excluded"].sum()),
         "award_lines": len(ev.awards)}
    if extra:
        m.update(extra)
    return m


def write(ev, out_dir, inputs: dict, trace=True):
    """Write every output file of an evaluation into `out_dir` (created if needed)."""
    from .report import render_awards
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".innopoints-", dir=out_dir.parent))
    try:
        scores_frame(ev).to_csv(tmp / "scores.csv", index=False, lineterminator="\n")
        aw = awards_frame(ev)
        aw.to_csv(tmp / "awards.csv", index=False, lineterminator="\n")
        if trace:
            with open(tmp / "trace.jsonl", "w", encoding="utf-8") as f:
                f.writelines(trace_lines(ev))
            indicators_frame(ev).to_csv(tmp / "indicators.csv", index=False, lineterminator="\n")
        (tmp / "awards.html").write_text(render_awards(ev), encoding="utf-8")
        m = manifest(ev, inputs)
        m["outputs"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        (tmp / "manifest.json").write_text(json.dumps(m, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")
        out_dir.mkdir(exist_ok=True)
        for p in sorted(tmp.iterdir()):
            os.replace(p, out_dir / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
