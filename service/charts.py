"""ECharts options for the pages, built from query results (no figure is computed here
that the API does not also give)."""
from __future__ import annotations

BLUE = ["#1d4e89", "#3a7dc9", "#69a3e0", "#a6c8ef", "#f0a04b", "#7fb77e", "#c55a5a"]


def _base(title):
    return {"title": {"text": title, "left": "center", "textStyle": {"fontSize": 14}},
            "tooltip": {}, "color": BLUE, "grid": {"left": 50, "right": 20, "bottom": 60, "top": 40}}


def bar(title, labels, values, unit="家", horizontal=False):
    opt = _base(title)
    cat = {"type": "category", "data": labels, "axisLabel": {"interval": 0, "rotate": 0 if horizontal else 30}}
    val = {"type": "value", "name": unit}
    opt.update(xAxis=val if horizontal else cat, yAxis=cat if horizontal else val,
               series=[{"type": "bar", "data": values, "label": {"show": True, "position": "right" if horizontal else "top"}}])
    if horizontal:          # long Chinese names (奖励事项, 行业) break over lines beside the bars, never cut
        cat["axisLabel"].update(width=140, overflow="break", lineHeight=14)
        opt["grid"].update(left=10, right=60, containLabel=True)
    return opt


def pie(title, labels, values):
    opt = _base(title)
    opt["tooltip"] = {"trigger": "item", "formatter": "{b}：{c} 家（{d}%）"}
    opt["series"] = [{"type": "pie", "radius": ["35%", "65%"], "data": [{"name": n, "value": v} for n, v in zip(labels, values)],
                      "label": {"formatter": "{b}\n{c} 家"}}]
    return opt


def histogram(title, bins):
    labels = [f"{b['from']:g}–{b['to']:g}" for b in bins]
    return bar(title, labels, [b["count"] for b in bins])


def radar(title, names, series, maximum=100):
    opt = _base(title)
    opt["legend"] = {"bottom": 0, "data": [s[0] for s in series]}
    opt["radar"] = {"indicator": [{"name": n, "max": maximum} for n in names], "radius": "60%"}
    opt["series"] = [{"type": "radar", "data": [{"name": n, "value": v} for n, v in series]}]
    return opt


def line(title, labels, values, unit="分"):
    opt = _base(title)
    opt.update(xAxis={"type": "category", "data": labels}, yAxis={"type": "value", "name": unit},
               series=[{"type": "line", "data": values, "label": {"show": True}}])
    return opt
