"""The printable award list (awards.html), rendered with Jinja2 from an evaluation."""
from __future__ import annotations

from html import escape as esc
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def yuan(v) -> str:
    """An integer amount of yuan with thousands separators."""
    return f"{int(v):,}"


def environment():
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["yuan"] = yuan
    return env


def award_table(ev):
    """Lines with names and citations, and totals per clause and overall."""
    names = dict(zip(ev.scores["credit_code"], ev.scores["name"]))
    lines, totals = [], {}
    clauses = {c.id: c for c in ev.policy.clauses_for("rewards", ev.year)}
    for a in ev.awards:
        c = clauses[a.clause]
        lines.append({"code": a.credit_code, "name": names.get(a.credit_code, ""), "clause": a.clause,
                      "title": c.title, "citation": c.citation, "eligible": a.eligible_yuan,
                      "granted": a.granted_yuan, "basis": ";".join(a.basis), "derivation": a.derivation})
        t = totals.setdefault(a.clause, {"clause": a.clause, "title": c.title, "count": 0, "eligible": 0, "granted": 0})
        t["count"] += 1
        t["eligible"] += a.eligible_yuan
        t["granted"] += a.granted_yuan
    return lines, [totals[k] for k in sorted(totals, key=lambda k: int(k.split("-")[1]))]


def _rows(lines) -> Markup:
    """The detail rows, rendered here rather than in a template loop: an award list of a
    large zone has hundreds of thousands of lines, too many for per-cell template calls."""
    out = []
    for ln in lines:
        basis = esc(ln["citation"])
        if ln["basis"]:
            basis += "；合同：" + esc(ln["basis"])
        if ln["granted"] != ln["eligible"]:
            basis += "；" + esc(ln["derivation"])
        out.append(f'<tr><td>{esc(ln["name"])}</td><td>{esc(ln["code"])}</td><td>{ln["clause"]} {esc(ln["title"])}</td>'
                   f'<td class="num">{ln["eligible"]:,}</td><td class="num">{ln["granted"]:,}</td>'
                   f'<td class="basis">{basis}</td></tr>')
    return Markup("\n".join(out))


def render_awards(ev) -> str:
    lines, totals = award_table(ev)
    return environment().get_template("reports/awards.html").render(
        ev=ev, rows=_rows(lines), totals=totals, budget=ev.budget,
        total_eligible=sum(t["eligible"] for t in totals), total_granted=sum(t["granted"] for t in totals))
