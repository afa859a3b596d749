"""The staff guides of docs/ (Markdown) as pages: a small renderer for the Markdown they use
(headings, paragraphs, lists, tables, fenced code, inline code, bold and links); every piece
of text is escaped, so a guide can hold no markup of its own."""
from __future__ import annotations

import re
from pathlib import Path

from markupsafe import Markup, escape

DOCS = Path(__file__).resolve().parents[1] / "docs"
_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(str(escape(text[pos:m.start()])))
        code, bold, label, url = m.groups()
        if code is not None:
            out.append(f"<code>{escape(code)}</code>")
        elif bold is not None:
            out.append(f"<strong>{escape(bold)}</strong>")
        elif re.match(r"^(https?://|/|#|[\w.\-]+(/[\w.\-]+)*(#[\w\-]*)?$)", url):
            out.append(f'<a href="{escape(url)}">{escape(label)}</a>')
        else:
            out.append(str(escape(m.group(0))))
        pos = m.end()
    out.append(str(escape(text[pos:])))
    return "".join(out)


def _join(a, b) -> str:
    """Two wrapped lines of one paragraph: a space between Latin words, none beside Chinese."""
    if not a or not b:
        return a + b
    return a + ("" if not a[-1].isascii() or not b[0].isascii() else " ") + b


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_html(text: str) -> Markup:
    lines = text.splitlines()
    html, i, para, items = [], 0, [], []

    def flush():
        if para:
            joined = ""
            for part in para:
                joined = _join(joined, part)
            html.append(f"<p>{_inline(joined)}</p>")
            para.clear()
        if items:
            tag = items[0][0]
            html.append(f"<{tag}>" + "".join(f"<li>{_inline(t)}</li>" for _, t in items) + f"</{tag}>")
            items.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            html.append(f"<pre><code>{escape(chr(10).join(lines[i + 1:j]))}</code></pre>")
            i = j + 1
            continue
        m = re.match(r"^(#{1,4})\s+(.*)$", line)
        if m:
            flush()
            n = len(m.group(1))
            html.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1].strip()):
            flush()
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(line))
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            html.append(f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
            continue
        elif re.match(r"^\s*[-*]\s+", line) and not para:
            if items and items[0][0] != "ul":
                flush()
            items.append(("ul", re.sub(r"^\s*[-*]\s+", "", line)))
        elif re.match(r"^\s*\d+\.\s+", line) and not para:
            if items and items[0][0] != "ol":
                flush()
            items.append(("ol", re.sub(r"^\s*\d+\.\s+", "", line)))
        elif not line.strip():
            flush()
        elif items and line.startswith("   "):
            kind, t = items[-1]
            items[-1] = (kind, _join(t, line.strip()))
        else:
            if items:
                flush()
            para.append(line.strip())
        i += 1
    flush()
    return Markup("\n".join(html))


def guide(name: str):
    """(title, html) of docs/NAME.md, or None when it is not there."""
    f = DOCS / f"{name}.md"
    if not f.is_file():
        return None
    text = f.read_text(encoding="utf-8")
    m = re.search(r"^#\s+(.*)$", text, re.M)
    return (m.group(1) if m else name), markdown_html(text)
