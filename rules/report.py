"""The printable award list (awards.html), rendered with Jinja2 from an evaluation."""
from __future__ import annotations

from html import escape as esc

import numpy as np

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import assets
from .records import arrow_text, one_array

TEMPLATES = assets.path("templates")


def yuan(v) -> str:
    """An integer amount of yuan with thousands separators."""
    return f"{int(v):,}"


def environment():
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["yuan"] = yuan
    return env


def _escape(arr: pa.Array) -> pa.Array:
    """HTML-escape a text column (one scan when nothing needs escaping)."""
    if len(arr) == 0 or not pc.any(pc.match_substring_regex(arr, "[&<>\"']")).as_py():
        return arr
    for ch, ent in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;")):
        arr = pc.replace_substring(arr, ch, ent)
    return arr


def award_rows(ev):
    """The award list: the detail rows as HTML, built column-wise (a large zone has hundreds
    of thousands of lines), and the totals per clause."""
    lines = _AwardLines(ev)
    if not len(ev.awards):
        return Markup(""), lines.totals
    return Markup("\n".join(lines.rows(0, len(ev.awards)).to_pylist())), lines.totals


class _AwardLines:
    """The detail rows of the award list as arrow arrays of HTML lines, a slice of lines at a
    time (`rows(lo, hi)`: building them all at once held several times the page in memory),
    and the totals per clause."""

    def __init__(self, ev):
        self.ev = ev
        aw = ev.awards
        self.clauses = clauses = {c.id: c for c in ev.policy.clauses_for("rewards", ev.year)}
        self.totals = []
        codes, found = pd.factorize(aw.clause) if len(aw) else (np.zeros(0, np.int64), [])
        code_of = {cid: i for i, cid in enumerate(found)}          # each line's clause, as a number
        for cid, c in clauses.items():
            sel = codes == code_of.get(cid, -2)
            if sel.any():
                self.totals.append({"clause": cid, "title": c.title, "count": int(sel.sum()),
                                    "eligible": int(aw.eligible[sel].sum()), "granted": int(aw.granted[sel].sum())})
        if not len(aw):
            return
        ids = list(clauses)
        self.which = np.array([ids.index(cid) for cid in found], dtype=np.int64)[codes]
        self.heads = pa.array([f"{cid} {esc(clauses[cid].title)}" for cid in ids], pa.string())
        self.cites = pa.array([esc(clauses[cid].citation) for cid in ids], pa.string())
        self.names = arrow_text(ev.scores["name"])
        basis = _escape(aw.basis_text(";"))
        self.basis = pc.if_else(pc.equal(basis, ""), "", pc.binary_join_element_wise("；合同：", basis, ""))

    def rows(self, lo, hi) -> pa.Array:
        aw, sl = self.ev.awards, slice(lo, hi)
        which = pa.array(self.which[sl])
        names = _escape(self.names.take(pa.array(aw.row[sl])))
        cut = pc.if_else(pa.array(aw.granted[sl] != aw.eligible[sl]),
                         pc.binary_join_element_wise("；", _escape(pa.array(aw.derivation[sl], pa.string())), ""), "")
        rows = pc.binary_join_element_wise(
            "<tr><td>", names, "</td><td>", pa.array(aw.code[sl], pa.string()), "</td><td>", self.heads.take(which),
            '</td><td class="num">', grouped(aw.eligible[sl]), '</td><td class="num">', grouped(aw.granted[sl]),
            '</td><td class="basis">', self.cites.take(which), self.basis.slice(lo, hi - lo), cut, "</td></tr>", "")
        return one_array(rows)


_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)


def grouped(values) -> pa.Array:
    """Integers as text with thousands separators (what f"{x:,}" writes), column-wise."""
    v = np.asarray(values, dtype=np.int64)
    n = len(v)
    neg = v < 0
    mag = np.abs(v)
    nd = np.searchsorted(_POW10, mag, side="right") + 1          # digits of each value
    w = int(nd.max(initial=1))
    slots = []                                                  # (column kind, digit k)
    for k in range(w):
        slots.append(k)
        r = w - 1 - k
        if r and r % 3 == 0:
            slots.append(-(k + 1))                              # a comma after digit k
    chars = np.empty((n, 1 + len(slots)), dtype=np.uint8)
    keep = np.zeros((n, 1 + len(slots)), dtype=bool)
    chars[:, 0] = ord("-")
    keep[:, 0] = neg
    digit_col = {}
    for c, k in enumerate(slots, start=1):
        if k >= 0:
            digit_col[k] = c
        else:
            chars[:, c] = ord(",")
            keep[:, c] = -k - 1 >= w - nd
    m = mag.copy()
    for k in range(w - 1, -1, -1):
        c = digit_col[k]
        chars[:, c] = (m % 10).astype(np.uint8) + ord("0")
        keep[:, c] = k >= w - nd
        m //= 10
    data = chars[keep]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _render(ev, rows, totals) -> str:
    return environment().get_template("reports/awards.html").render(
        ev=ev, rows=rows, totals=totals, budget=ev.budget,
        total_eligible=sum(t["eligible"] for t in totals), total_granted=sum(t["granted"] for t in totals))


def render_awards(ev) -> str:
    rows, totals = award_rows(ev)
    return _render(ev, rows, totals)


ROWS_MARK = "<!--innopoints:award-rows-->"
LINES_PER_WRITE = 50_000


def write_awards(ev, path):
    """awards.html, the same bytes as `render_awards` encoded, without ever holding the
    detail rows as one Python string (hundreds of megabytes for a million-enterprise zone):
    the page is rendered around a mark and the rows are written in between, built and
    joined in arrow a slice of lines at a time."""
    lines = _AwardLines(ev)
    page = _render(ev, Markup(ROWS_MARK), lines.totals)
    head, tail = page.split(ROWS_MARK)
    with open(path, "wb") as f:
        f.write(head.encode("utf-8"))
        for lo in range(0, len(ev.awards), LINES_PER_WRITE):
            part = lines.rows(lo, min(lo + LINES_PER_WRITE, len(ev.awards)))
            joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(part)], pa.int32()), part), "\n")
            if lo:
                f.write(b"\n")
            f.write(joined[0].as_buffer())
        f.write(tail.encode("utf-8"))
