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


def award_rows(ev):
    """The award list in one pass: the detail rows as HTML (rendered here rather than in a
    template loop: a large zone has hundreds of thousands of lines) and totals per clause."""
    names = ev.scores["name"].to_numpy(dtype=object)
    clauses = {c.id: c for c in ev.policy.clauses_for("rewards", ev.year)}
    head = {cid: f'{cid} {esc(c.title)}</td>' for cid, c in clauses.items()}
    cite = {cid: esc(c.citation) for cid, c in clauses.items()}
    totals = {cid: {"clause": cid, "title": c.title, "count": 0, "eligible": 0, "granted": 0}
              for cid, c in clauses.items()}
    out = []
    for a in ev.awards:
        t = totals[a.clause]
        t["count"] += 1
        t["eligible"] += a.eligible_yuan
        t["granted"] += a.granted_yuan
        basis = cite[a.clause]
        if a.basis:
            basis += "；合同：" + esc(";".join(a.basis))
        if a.granted_yuan != a.eligible_yuan:
            basis += "；" + esc(a.derivation)
        out.append(f'<tr><td>{esc(str(names[a.row]))}</td><td>{a.credit_code}</td><td>{head[a.clause]}'
                   f'<td class="num">{a.eligible_yuan:,}</td><td class="num">{a.granted_yuan:,}</td>'
                   f'<td class="basis">{basis}</td></tr>')
    return Markup("\n".join(out)), [t for t in totals.values() if t["count"]]


def render_awards(ev) -> str:
    rows, totals = award_rows(ev)
    return environment().get_template("reports/awards.html").render(
        ev=ev, rows=rows, totals=totals, budget=ev.budget,
        total_eligible=sum(t["eligible"] for t in totals), total_granted=sum(t["granted"] for t in totals))
