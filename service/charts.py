"""ECharts options for the pages, built from query results (no figure is computed here
that the API does not also give)."""
from __future__ import annotations

BLUE = ["#1d4e89", "#3a7dc9", "#69a3e0", "#a6c8ef", "#f0a04b", "#7fb77e", "#c55a5a"]


def _base(title):
    """A chart's common part: the title alone in a band at the top (the plot starts below
    it, so that no axis name or value label runs over it), labels kept inside the box."""
    return {"title": {"text": title, "left": "center", "top": 6, "textStyle": {"fontSize": 14}},
            "tooltip": {}, "color": BLUE,
            "grid": {"left": 12, "right": 24, "bottom": 12, "top": 56, "containLabel": True}}


def bar(title, labels, values, unit="家", horizontal=False):
    opt = _base(title)
    cat = {"type": "category", "data": labels, "axisLabel": {"interval": 0, "rotate": 0 if horizontal else 30}}
    val = {"type": "value", "name": unit, "nameTextStyle": {"align": "right" if not horizontal else "left"}}
    opt.update(xAxis=val if horizontal else cat, yAxis=cat if horizontal else val,
               series=[{"type": "bar", "data": values, "label": {"show": True, "position": "right" if horizontal else "top"}}])
    if horizontal:          # long Chinese names (奖励事项, 行业) break over lines beside the bars, never cut
        cat["axisLabel"].update(width=120, overflow="break", lineHeight=14)
        cat["inverse"] = True                      # the first item on top, as in the table beside it
        opt["grid"].update(right=56)
        val["nameLocation"] = "end"
        val["nameGap"] = 6
        val["axisLabel"] = {"hideOverlap": True}
    return opt


def pie(title, labels, values):
    opt = _base(title)
    opt["tooltip"] = {"trigger": "item", "formatter": "{b}：{c} 家（{d}%）"}
    # a donut below the title; its labels aligned to the box's edges (never cut off) and
    # broken over lines when a name is long
    opt["series"] = [{"type": "pie", "radius": ["28%", "50%"], "center": ["50%", "58%"],
                      "data": [{"name": n, "value": v} for n, v in zip(labels, values)],
                      "avoidLabelOverlap": True,
                      "label": {"formatter": "{b}\n{c} 家", "alignTo": "edge", "edgeDistance": 6, "width": 84,
                                "overflow": "break", "lineHeight": 15},
                      "labelLine": {"length": 8, "length2": 0, "maxSurfaceAngle": 80},
                      "labelLayout": {"hideOverlap": False, "moveOverlap": "shiftY"}}]
    return opt


def histogram(title, bins):
    labels = [f"{b['from']:g}–{b['to']:g}" for b in bins]
    return bar(title, labels, [b["count"] for b in bins])


def radar(title, names, series, maximum=100):
    opt = _base(title)
    opt["legend"] = {"bottom": 0, "data": [s[0] for s in series]}
    opt["radar"] = {"indicator": [{"name": n, "max": maximum} for n in names], "radius": "52%",
                    "center": ["50%", "56%"], "axisName": {"width": 90, "overflow": "break"}}
    opt["series"] = [{"type": "radar", "data": [{"name": n, "value": v} for n, v in series]}]
    return opt


def line(title, labels, values, unit="分"):
    opt = _base(title)
    opt.update(xAxis={"type": "category", "data": labels}, yAxis={"type": "value", "name": unit},
               series=[{"type": "line", "data": values, "label": {"show": True}}])
    return opt


def distribution(title, data, unit="家"):
    """Histogram of the final scores with the fitted normal curve (rules.diagnostics.chart_data)."""
    opt = _base(title)
    labels = [f"{a:g}–{b:g}" for a, b, _ in data["bins"]]
    opt["tooltip"] = {"trigger": "axis"}
    opt["legend"] = {"bottom": 0, "data": ["企业数", "正态曲线"]}
    opt.update(xAxis={"type": "category", "data": labels, "axisLabel": {"rotate": 30}},
               yAxis={"type": "value", "name": unit},
               series=[{"type": "bar", "name": "企业数", "data": [c for _, _, c in data["bins"]]},
                       {"type": "line", "name": "正态曲线", "smooth": True, "showSymbol": False, "data": data["normal"]}])
    opt["grid"]["bottom"] = 80
    return opt


def qq(title, data):
    """Q–Q plot: the scores' quantiles against the fitted normal's, and the line y = x."""
    opt = _base(title)
    pts = data["qq"]
    lo = min(min(p) for p in pts)
    hi = max(max(p) for p in pts)
    opt.update(xAxis={"type": "value", "name": "正态分位数", "scale": True, "nameLocation": "middle", "nameGap": 28},
               yAxis={"type": "value", "name": "实际积分", "scale": True},
               series=[{"type": "scatter", "name": "分位数", "symbolSize": 5, "data": pts},
                       {"type": "line", "name": "y = x", "showSymbol": False, "data": [[lo, lo], [hi, hi]]}])
    return opt


def boxes(title, indicators):
    """A box per indicator: the points' minimum, quartiles and maximum."""
    opt = _base(title)
    opt["tooltip"] = {"trigger": "item"}
    opt.update(xAxis={"type": "category", "data": [i["clause"] for i in indicators], "axisLabel": {"rotate": 60, "fontSize": 9}},
               yAxis={"type": "value", "name": "得分"},
               series=[{"type": "boxplot", "name": "得分", "data": [i["box"] for i in indicators]}])
    opt["grid"]["bottom"] = 70
    return opt
