"""Answers written by orjson (service/jsonout.py) say byte for byte what Flask's own encoder
said, but for numbers below 1e-4 (written in full) and NaN or infinities (null, where Flask
wrote tokens that are not JSON); what orjson does not write itself goes through Flask's
conversion or encoder."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from flask.json.provider import DefaultJSONProvider


def _flask_encoder(app):
    std = DefaultJSONProvider(app)
    std.ensure_ascii = False
    std.sort_keys = False
    return std


def test_the_answers_are_the_bytes_flasks_encoder_wrote(golden_park):
    p = golden_park
    paths = [f"/api/enterprises/{p.own}", f"/api/enterprises/{p.own}/eligibility", "/api/enterprises?per_page=20",
             "/api/runs", "/api/aggregates", "/api/awards", "/api/rankings?top=3"]
    fast = {path: p.get(path, "officer") for path in paths}
    mine = p.app.json
    p.app.json = _flask_encoder(p.app)
    try:
        for path in paths:
            old = p.get(path, "officer")
            assert fast[path].status_code == old.status_code == 200, path
            assert fast[path].mimetype == old.mimetype == "application/json"
            assert fast[path].get_data() == old.get_data(), path
    finally:
        p.app.json = mine


def test_dates_decimals_and_big_integers_as_flask_wrote_them(lite_app):
    obj = {"日期": dt.date(2025, 1, 2), "时间": dt.datetime(2025, 1, 2, 3, 4, 5), "金额": Decimal("1.50"),
           "大数": 2 ** 70, "名称": "新乡高新区", 3: "整数键"}
    with lite_app.test_request_context():
        fast = lite_app.json.response(obj).get_data()
        old = _flask_encoder(lite_app).response(obj).get_data()
    assert fast == old
    back = json.loads(fast)
    assert back["日期"] == "Thu, 02 Jan 2025 00:00:00 GMT" and back["金额"] == "1.50" and back["大数"] == 2 ** 70
    assert "新乡高新区".encode() in fast            # Chinese as such, not \\u escapes


def test_small_numbers_in_full_and_nan_as_null(lite_app):
    """The two differences from Flask's encoder: the same numbers, and valid JSON for NaN."""
    obj = {"p": 3e-08, "q": 1e-05, "r": 0.0001, "nan": float("nan"), "inf": float("inf"), "big": 1e16}
    with lite_app.test_request_context():
        fast = lite_app.json.response(obj).get_data()
        old = _flask_encoder(lite_app).response(obj).get_data()
    assert b"NaN" in old and b"Infinity" in old
    assert fast == b'{"p":3e-8,"q":0.00001,"r":0.0001,"nan":null,"inf":null,"big":1e+16}\n'
    back, before = json.loads(fast), json.loads(old)
    assert [back[k] for k in "pqr"] == [before[k] for k in "pqr"] and back["big"] == before["big"]
    assert back["nan"] is None and back["inf"] is None
