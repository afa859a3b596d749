"""The golden example of SPEC §5: all four expected folders, byte for byte where it matters."""
import subprocess
import sys

import pytest

from service.cli import cli

CASES = {
    "expected-no-budget": [],
    "expected-budget-28000000-pro_rata": ["--budget", "28000000"],
    "expected-budget-28000000-rank_priority": ["--budget", "28000000", "--strategy", "rank_priority"],
    "expected-budget-15000000-pro_rata": ["--budget", "15000000"],
}


def evaluate(runner, golden, out, extra):
    return runner.invoke(cli, ["evaluate", "--records", str(golden / "records.csv"), "--contracts",
                               str(golden / "contracts.csv"), "--year", "2022", "--out", str(out), *extra])


@pytest.mark.parametrize("folder", CASES)
def test_golden_folder(runner, golden, tmp_path, folder):
    out = tmp_path / "out"
    res = evaluate(runner, golden, out, CASES[folder])
    assert res.exit_code == 0, res.output
    cmp = subprocess.run([sys.executable, str(golden / "compare_outputs.py"), str(out), str(golden / folder)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout
    n_awards = len((golden / folder / "awards.csv").read_text(encoding="utf-8").splitlines()) - 1
    assert f"scores 300/300 agree, awards {n_awards}/{n_awards} agree" in cmp.stdout
    # the score file is exactly the expected one (same columns, formatting and order)
    assert (out / "scores.csv").read_text(encoding="utf-8") == (golden / folder / "scores.csv").read_text(encoding="utf-8")
    assert (out / "awards.csv").read_text(encoding="utf-8") == (golden / folder / "awards.csv").read_text(encoding="utf-8")


def fixed_shortfall(golden, budget=15000000):
    """The fixed items' eligible total above the budget, from the expected award list."""
    import csv
    with open(golden / "expected-budget-15000000-pro_rata" / "awards.csv", encoding="utf-8") as f:
        fixed = sum(int(r["eligible_yuan"]) for r in csv.DictReader(f) if r["clause"] in ("RW-2", "RW-5"))
    assert fixed > budget
    return fixed - budget


def test_fixed_shortfall_is_reported(runner, golden, tmp_path):
    res = evaluate(runner, golden, tmp_path / "out", ["--budget", "15000000"])
    short = fixed_shortfall(golden)
    assert f"缺口 {short:,} 元" in res.output
    import json
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert m["budget"]["fixed_shortfall"] == short
    assert m["budget"]["granted_total"] == 15000000


def test_two_runs_are_byte_identical(runner, golden, tmp_path):
    for name in ("a", "b"):
        assert evaluate(runner, golden, tmp_path / name, ["--budget", "28000000"]).exit_code == 0
    for f in ("scores.csv", "awards.csv", "trace.parquet", "trace_header.json", "indicators.parquet", "awards.html",
              "manifest.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_every_score_is_explained_by_its_trace(runner, golden, tmp_path):
    """Recompute each scores.csv figure from the trace and indicators.parquet alone."""
    import csv

    from rules.tracefile import read_header, read_indicators, read_trace
    out = tmp_path / "out"
    assert evaluate(runner, golden, out, ["--budget", "28000000"]).exit_code == 0
    header = read_header(out)
    traces = {t["credit_code"]: t for t in read_trace(out)}
    with open(out / "scores.csv", encoding="utf-8") as f:
        scores = {r["credit_code"]: r for r in csv.DictReader(f)}
    points = read_indicators(out)
    with open(out / "awards.csv", encoding="utf-8") as f:
        awards = {(r["credit_code"], r["clause"]): r for r in csv.DictReader(f)}
    assert len(traces) == len(scores) == 300
    for code, row in scores.items():
        t = traces[code]
        assert t["stage"]["stage"] == row["stage"]
        if row["excluded"] == "true":
            fired = [e["clause"] for e in t["scope"] if e["in_scope"] is False] + \
                [e["clause"] for e in t["negative_list"] if e["effect"].get("exclude")]
            assert ";".join(fired) == row["exclusion_clauses"] == ";".join(t["exclusion_clauses"])
            continue
        t = {**t, **{g: [e for e in t[g] if e.get("fired", True)] for g in ("negative_list", "decay", "bonus")}}
        for e in t["negative_list"] + t["decay"] + t["bonus"]:
            assert e["clause"] in header["clauses"] and header["clauses"][e["clause"]]["citation"]
        ded = sum(e["effect"].get("deduct", 0) for e in t["negative_list"])
        factor = 1.0
        for e in t["decay"]:
            factor *= e["effect"]["factor"]
        bonus = sum(e["effect"]["add"] for e in t["bonus"])
        s = t["scores"]
        cats = {cat: sum(p for k, (_, p) in points[code].items() if k.startswith(f"IND-{n}."))
                for cat, n in (("tech_score", 1), ("growth_score", 2), ("aux_score", 3))}
        w = s["weights"]
        weighted = w["tech"] * cats["tech_score"] + w["growth"] * cats["growth_score"] + w["aux"] * cats["aux_score"]
        final = max(0.0, weighted - ded) * factor + bonus
        for key, value in (("deductions", ded), ("decay_factor", factor), ("bonus", bonus), ("weighted", weighted),
                           ("final_score", final), *cats.items()):
            assert abs(float(row[key]) - value) < 2e-4, (code, key, row[key], value)
    for (code, clause), a in awards.items():
        line = next(x for x in traces[code]["rewards"] if x["clause"] == clause)
        assert (line["eligible_yuan"], line["granted_yuan"]) == (int(a["eligible_yuan"]), int(a["granted_yuan"]))
        if clause == "RW-5":
            assert ";".join(line["basis"]) == a["basis"]
            assert sum(line["inputs"]["yuan"]) >= int(a["eligible_yuan"])


# sha256 of trace.jsonl for each golden folder: version 0.4.0's lines (before trace.parquet),
# since 2026-12-05 sorted by credit code as SPEC §5 asks (the same header and lines; they
# were in the records file's order). `--trace-format jsonl` writes exactly these bytes, and
# trace.parquet read back gives every line of it. When the trace's wording changes on
# purpose, write the four files with --trace-format jsonl, check them and put their new
# sha256 here.
TRACE_JSONL_SHA256 = {
    "expected-no-budget": "626f2dcf9e8738e071c4209f32e800dfb4719276dbf439b1a92c6d7353c10e1a",
    "expected-budget-28000000-pro_rata": "582fed720b449e361c6aa094a4efd82f91fa6bdc51bb1da6f7303cba79fe08a6",
    "expected-budget-28000000-rank_priority": "b9cb65a3e0b418bbbc766327245b9a37664ce3b491d6558aae0d7f2a0fef0e74",
    "expected-budget-15000000-pro_rata": "7b01d9b30bb870a023a9aa33f827f8e82c06b8eed6e4046f7196d0a172341485",
}


@pytest.mark.parametrize("folder", CASES)
def test_trace_parquet_holds_every_line_of_trace_jsonl(runner, golden, tmp_path, folder):
    """trace.parquet + trace_header.json read back (titles and citations put back from the
    header) are trace.jsonl's objects, key order included, for every enterprise."""
    import hashlib
    import json

    from rules.tracefile import read_header, read_trace
    assert evaluate(runner, golden, tmp_path / "j", CASES[folder] + ["--trace-format", "jsonl"]).exit_code == 0
    ref = (tmp_path / "j" / "trace.jsonl").read_bytes()
    assert hashlib.sha256(ref).hexdigest() == TRACE_JSONL_SHA256[folder]
    lines = ref.decode("utf-8").splitlines()
    assert evaluate(runner, golden, tmp_path / "p", CASES[folder]).exit_code == 0
    out = tmp_path / "p"
    assert not (out / "trace.jsonl").exists()
    # trace.jsonl's header, and what words the typed stage and score columns; the one
    # difference is the file that holds each indicator's value and points
    def beside_jsonl(text):
        return text.replace('"indicators.parquet', '"indicators.csv')
    header_text = (out / "trace_header.json").read_text(encoding="utf-8")
    assert '"indicators":"indicators.parquet: ' in header_text and '"indicators":"indicators.parquet"' in header_text
    assert beside_jsonl(header_text).startswith(lines[0][:-1] + ',"render":{')
    header = read_header(out)
    assert {k: v for k, v in json.loads(beside_jsonl(header_text)).items() if k != "render"} == json.loads(lines[0])
    assert set(header["render"]) == {"stage", "scores", "rewards"}
    got = read_trace(out)
    assert len(got) == len(lines) - 1 == 300
    # sorted by credit code (SPEC §5), though the records file is not
    codes = [g["credit_code"] for g in got]
    assert codes == sorted(codes) and codes != [r.split(",")[0] for r in
                                                (golden / "records.csv").read_text(encoding="utf-8").splitlines()
                                                if ",2022," in r]
    for g, raw in zip(got, lines[1:]):
        if "scores" in g:           # not for an excluded enterprise
            assert g["scores"]["indicators"] == "indicators.parquet"
        assert beside_jsonl(json.dumps(g, ensure_ascii=False, separators=(",", ":"))) == raw   # same keys, same order
    # the file is a fraction of the lines it replaces
    assert (out / "trace.parquet").stat().st_size < len(ref) / 5


def test_trace_parquet_holds_stage_and_scores_as_typed_columns(runner, golden, tmp_path):
    """trace.parquet's STAGE and score columns are typed (README, "The trace file"): what a
    Parquet reader sees equals scores.csv's figures, null for an excluded enterprise; read
    without the header's `render`, the file is refused with the reason."""
    import csv
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from rules.tracefile import compact_lines
    out = tmp_path / "out"
    assert evaluate(runner, golden, out, []).exit_code == 0
    t = pq.read_table(out / "trace.parquet")
    types = dict(zip(t.column_names, t.schema.types))
    assert types["stage_key"] == pa.string() and types["stage_row"] == pa.int32()
    assert types["stage_registered_on"] == pa.date32() and types["stage_input_revenue"] == pa.float64()
    assert types["scores_final_score"] == pa.float64() and types["scores_rank_overall"] == pa.float64()
    with open(out / "scores.csv", encoding="utf-8") as f:
        rows = {r["credit_code"]: r for r in csv.DictReader(f)}
    got = t.to_pylist()
    assert len(got) == len(rows) == 300
    excluded = 0
    for r in got:
        want = rows[r["credit_code"]]
        assert r["stage_key"] == want["stage"]
        if want["excluded"] == "true":
            excluded += 1
            assert r["scores_final_score"] is None and r["scores_weighted"] is None
        else:
            assert f"{r['scores_final_score']:.4f}" == want["final_score"]
            assert int(r["scores_rank_in_stage"]) == int(want["rank_in_stage"])
    assert excluded > 0
    header = json.loads((out / "trace_header.json").read_text(encoding="utf-8"))
    del header["render"]
    with pytest.raises(ValueError, match="render"):
        compact_lines(t, header)


def test_trace_parquet_lists_each_rate_line_contracts_as_columns_worded_when_read(runner, golden, tmp_path):
    """RW-5's contracts are typed list columns of trace.parquet (README, "The trace file"): a
    Parquet reader sees each RW-5 line's contracts of the year, in order of number, with their
    kind, amount as written, 1% before and after the cap and whether the kind counts, and
    the line's totals; the rewards part holds slots in their place, which the reader fills.
    A rewards part whose columns are gone is refused, not read half-worded."""
    import csv
    import json
    from decimal import ROUND_HALF_UP, Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    from rules.output import contract_slot
    from rules.policy import load_policy
    from rules.tracefile import compact_lines, read_header
    out = tmp_path / "out"
    assert evaluate(runner, golden, out, []).exit_code == 0
    t = pq.read_table(out / "trace.parquet")
    types = dict(zip(t.column_names, t.schema.types))
    assert types["contracts_RW-5_contract_no"] == pa.list_(pa.string())
    assert types["contracts_RW-5_rate_yuan"] == pa.list_(pa.int64()) and types["contracts_RW-5_total"] == pa.int64()
    with open(golden / "contracts.csv", encoding="utf-8") as f:
        mine = {}
        for r in csv.DictReader(f):
            if r["registered_on"].startswith("2022"):
                mine.setdefault(r["credit_code"], []).append(r)
    with open(out / "awards.csv", encoding="utf-8") as f:
        rw5 = {r["credit_code"]: r for r in csv.DictReader(f) if r["clause"] == "RW-5"}
    assert rw5
    counted = {"transfer", "development", "consulting", "service"}
    key = {name: k for k, name in load_policy().data.contract_kinds.items()}
    for r in t.to_pylist():
        code = r["credit_code"]
        if code not in rw5:
            assert r["contracts_RW-5_contract_no"] is None and r["contracts_RW-5_total"] is None
            assert "\x01" not in r["rewards"]
            continue
        want = sorted(mine[code], key=lambda c: c["contract_no"].encode())
        assert r["contracts_RW-5_contract_no"] == [c["contract_no"] for c in want]
        # kinds as keys (the file may name one in Chinese: 技术服务 is service)
        assert r["contracts_RW-5_kind"] == [key.get(c["kind"], c["kind"]) for c in want]
        assert r["contracts_RW-5_amount_wan"] == [c["amount"] for c in want]
        assert r["contracts_RW-5_counted"] == [key.get(c["kind"], c["kind"]) in counted for c in want]
        # 1% half up to the yuan, 0 for a kind not counted; then at most 100,000 a contract
        one = [int((Decimal(c["amount"]) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) if k else 0
               for c, k in zip(want, r["contracts_RW-5_counted"])]
        assert r["contracts_RW-5_rate_yuan"] == one
        paid = [min(x, 100000) for x in one]
        assert r["contracts_RW-5_yuan"] == paid
        assert r["contracts_RW-5_total_before_cap"] == sum(paid)
        assert r["contracts_RW-5_total"] == min(sum(paid), 500000) == int(rw5[code]["eligible_yuan"])
        # the part says none of it: the slots are filled when read
        assert all(contract_slot(0, p) in r["rewards"] for p in ("inputs", "basis", "text"))
        assert not any(c["contract_no"] in r["rewards"] for c in want)
    header = read_header(out)
    assert header["render"]["rewards"]["contracts"][0][0] == "RW-5"
    with pytest.raises(ValueError, match="contract slot"):
        compact_lines(t.drop_columns([n for n in t.column_names if n.startswith("contracts_")]), header)
    line = json.loads(compact_lines(t.filter(pa.array([r in rw5 for r in t.column("credit_code").to_pylist()])),
                                    header)[0].as_py())
    entry = next(e for e in line["rewards"] if e["clause"] == "RW-5")
    assert entry["inputs"]["contract_no"] == sorted(c["contract_no"] for c in mine[line["credit_code"]])
    assert "计奖合同" in entry["text"]


def test_two_rate_clauses_each_fill_their_own_slots_with_their_own_words(runner, golden, tmp_path, policy_copy):
    """A package with a second rate clause (another rate, caps and kinds): each clause's
    lines get their own contract columns and slots, worded with that clause's rate and caps,
    and trace.parquet read back is trace.jsonl line for line."""
    import json

    from rules.tracefile import read_trace
    rewards = policy_copy / "rewards.yaml"
    rewards.write_text(rewards.read_text(encoding="utf-8") + """
  - id: RW-9
    title: 技术许可合同，按交易额2%奖励（测试用）
    citation: 测试
    effective: {from: 2022-12-30}
    when: {contracts_in_year: {gte: 1}}
    effect:
      kind: fixed
      contract_rate: 0.02
      per_contract_cap: 30000
      per_enterprise_cap: 40000
      kinds: [license]
""", encoding="utf-8")
    extra = ["--policy", str(policy_copy)]
    assert evaluate(runner, golden, tmp_path / "j", extra + ["--trace-format", "jsonl"]).exit_code == 0
    assert evaluate(runner, golden, tmp_path / "p", extra).exit_code == 0
    lines = (tmp_path / "j" / "trace.jsonl").read_text(encoding="utf-8").splitlines()[1:]
    got = read_trace(tmp_path / "p")
    assert len(got) == len(lines) == 300
    both = 0
    for g, raw in zip(got, lines):
        g.get("scores", {}).pop("indicators", None)
        want = json.loads(raw)
        want.get("scores", {}).pop("indicators", None)
        assert g == want
        texts = {e["clause"]: e["text"] for e in want["rewards"]}
        if "RW-5" in texts and "RW-9" in texts:
            both += 1
            assert "× 1% =" in texts["RW-5"] and "× 1% =" not in texts["RW-9"]
    assert both > 0
    assert any("× 2% =" in e["text"] and "按每项上限 30,000 元计" in e["text"]
               for g in got for e in g["rewards"] if e["clause"] == "RW-9")


def test_a_year_without_award_lines_writes_every_trace(runner, golden, tmp_path, policy_copy):
    """A year in which no reward clause is in force: no award line, and each enterprise's
    rewards part is empty in trace.jsonl and in trace.parquet read back alike."""
    import json

    from rules.tracefile import read_trace
    rewards = policy_copy / "rewards.yaml"
    text = rewards.read_text(encoding="utf-8")
    assert text.count("effective: {from: 2022-12-30}") == 5
    rewards.write_text(text.replace("effective: {from: 2022-12-30}", "effective: {from: 2023-12-30}"), encoding="utf-8")
    extra = ["--policy", str(policy_copy)]
    for out, fmt in (("j", ["--trace-format", "jsonl"]), ("p", [])):
        result = evaluate(runner, golden, tmp_path / out, extra + fmt)
        assert result.exit_code == 0, result.output
        assert (tmp_path / out / "awards.csv").read_text(encoding="utf-8").splitlines()[1:] == []
    lines = [json.loads(x) for x in (tmp_path / "j" / "trace.jsonl").read_text(encoding="utf-8").splitlines()[1:]]
    got = read_trace(tmp_path / "p")
    assert len(lines) == len(got) == 300
    assert all(x["rewards"] == [] for x in lines + got)


def test_numbers_are_written_with_exactly_their_decimals():
    """scores.csv's numbers and the trace's sentences: exactly the policy's decimals, half up
    already applied, a sign only below zero, an empty cell for a missing number."""
    import numpy as np

    from rules.output import fixed
    values = [1.5, -0.25, 0.0, -0.0, float("nan"), 12345.6789, -1e-9, 0.0001, 7.0]
    assert fixed(values, 4).to_pylist() == ["1.5000", "-0.2500", "0.0000", "0.0000", "", "12345.6789", "0.0000",
                                            "0.0001", "7.0000"]
    assert fixed([1, 250, float("nan"), 1234567], 0).to_pylist() == ["1", "250", "", "1234567"]
    assert fixed(np.array([-3.5, 2.25]), 2).to_pylist() == ["-3.50", "2.25"]
    assert fixed([], 4).to_pylist() == []


def test_indicator_columns_of_whole_numbers_are_written_as_integers_with_the_same_text():
    """indicators.csv writes a column of whole numbers as integers (faster), only when that
    gives each cell the text the float gives: not for fractions, −0, or 1e10 and above
    (arrow writes those floats with an exponent)."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from rules.output import _whole

    def text(arr):
        b = io.BytesIO()
        pacsv.write_csv(pa.table({"v": arr}), b, write_options=pacsv.WriteOptions(include_header=False))
        return b.getvalue()
    cases = {"counts": ([0.0, 3.0, float("nan"), 2147483647.0], True),
             "negative whole": ([-3.0, 2.0], True), "all missing": ([float("nan")] * 3, True),
             "a fraction after the sample": ([1.0] * 2000 + [0.5], False), "a fraction": ([1.5, 2.0], False),
             "minus zero": ([1.0, -0.0], False), "too large": ([1.0, 1e10], False),
             "much too large": ([12345678901.0], False), "just below the bound": ([9999999999.0, 0.0], True),
             "infinite": ([1.0, float("inf")], False)}
    for name, (values, whole) in cases.items():
        col = np.array(values)
        assert _whole(col) is whole, name
        floats = pa.array(col, from_pandas=True)
        same = text(floats) == text(floats.cast(pa.int64(), safe=False))
        assert same or not whole, name          # written as integers only where the text is the same
    assert text(pa.array([1e10])) != text(pa.array([10**10]))     # why the bound is there


def test_printable_award_list_totals_match_awards_csv(runner, golden, tmp_path):
    import csv
    import re
    out = tmp_path / "out"
    assert evaluate(runner, golden, out, ["--budget", "15000000"]).exit_code == 0
    html = (out / "awards.html").read_text(encoding="utf-8")
    for heading in ("企业", "奖励事项", "核定金额", "拨付金额", "依据", "合计"):
        assert f"<th>{heading}</th>" in html or f'<th colspan="3">{heading}</th>' in html
    with open(out / "awards.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total_eligible = sum(int(r["eligible_yuan"]) for r in rows)
    total_granted = sum(int(r["granted_yuan"]) for r in rows)
    assert total_granted == 15000000
    m = re.search(r'<th colspan="3">合计</th><th class="num">([\d,]+)</th><th class="num">([\d,]+)</th>', html)
    assert m and (m.group(1), m.group(2)) == (f"{total_eligible:,}", f"{total_granted:,}")
    for clause in ("RW-1", "RW-2", "RW-3", "RW-4", "RW-5"):
        granted = sum(int(r["granted_yuan"]) for r in rows if r["clause"] == clause)
        assert re.search(rf"<td>{clause}</td><td class=\"num\">\d+</td>\s*<td class=\"num\">[\d,]+</td><td class=\"num\">{granted:,}</td>", html)
    assert f"固定奖励缺口 {fixed_shortfall(golden):,} 元" in html


def test_trace_written_in_chunks_is_the_same_file(runner, golden, tmp_path, monkeypatch):
    """Row groups of 7 rows (trace.parquet) or chunks of 7 lines (trace.jsonl) give the same
    trace as one chunk, and so do award texts built 7 enterprises at a time and scores.csv
    written 7 rows at a time; one enterprise is read from its row group alone."""
    import pyarrow.parquet as pq

    from rules import output
    from rules.tracefile import read_indicators, read_table, read_trace
    for fmt in ([], ["--trace-format", "jsonl"]):
        assert evaluate(runner, golden, tmp_path / f"a{len(fmt)}", fmt).exit_code == 0
    monkeypatch.setattr(output, "TRACE_CHUNK", 7)
    monkeypatch.setattr(output, "REWARD_CHUNK", 7)
    monkeypatch.setattr(output, "SCORES_CHUNK", 7)
    for fmt in ([], ["--trace-format", "jsonl"]):
        assert evaluate(runner, golden, tmp_path / f"b{len(fmt)}", fmt).exit_code == 0
    a, b = tmp_path / "a0", tmp_path / "b0"
    assert pq.ParquetFile(b / "trace.parquet").num_row_groups == 300 // 7 + 1
    whole = read_trace(a)
    assert read_trace(b) == whole and len(whole) == 300
    assert (tmp_path / "a2" / "trace.jsonl").read_bytes() == (tmp_path / "b2" / "trace.jsonl").read_bytes()
    for name in ("scores.csv", "awards.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    code = whole[150]["credit_code"]
    assert read_trace(b, [code]) == [whole[150]] and read_table(b, [code]).num_rows == 1
    # row groups span ranges of codes that do not overlap: one enterprise's is read alone
    groups = pq.ParquetFile(b / "trace.parquet").metadata
    ranges = [(groups.row_group(k).column(0).statistics.min, groups.row_group(k).column(0).statistics.max)
              for k in range(groups.num_row_groups)]
    assert all(lo <= hi < nxt for (lo, hi), (nxt, _) in zip(ranges, ranges[1:]))
    # indicators.parquet in row groups of 7 too, still sorted, one enterprise read alone
    f = pq.ParquetFile(b / "indicators.parquet")
    assert f.num_row_groups == 300 // 7 + 1
    assert read_indicators(b) == read_indicators(a)
    in_order = sorted(read_indicators(a))
    assert f.read(columns=["credit_code"]).column(0).to_pylist() == in_order
    stats = f.metadata.row_group(150 // 7).column(0).statistics
    assert stats.min <= in_order[150] <= stats.max
    assert read_indicators(b, [in_order[150]]) == {in_order[150]: read_indicators(a)[in_order[150]]}


def test_a_failure_while_writing_leaves_no_file_behind(runner, golden, tmp_path, monkeypatch):
    """The trace's dictionaries are built on a thread of their own beside scores.csv: when
    they fail, the error is the command's, the output folder is not made and no temporary
    folder is left."""
    from rules import output

    def broken(ev):
        raise RuntimeError("dictionaries failed")
    monkeypatch.setattr(output, "_trace_parts_shared", broken)
    res = evaluate(runner, golden, tmp_path / "out", [])
    assert res.exit_code != 0 and isinstance(res.exception, RuntimeError), res.output
    assert "dictionaries failed" in str(res.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_input_checksums_are_hashed_during_the_evaluation_and_stopped_when_it_fails(runner, golden, tmp_path,
                                                                                    monkeypatch):
    """The inputs' sha256 start once they are read (`Checksums`, a thread of its own) and
    are the files'; a failed evaluation stops them (`cancel`), and a stopped hashing raises
    CancelledError instead of giving a checksum."""
    import hashlib
    import threading
    from concurrent.futures import CancelledError

    from rules import output
    from rules.evaluate import EvaluationError
    from service import cli as cli_module
    sums = output.Checksums({"records": golden / "records.csv", "contracts": None})
    assert set(sums) == {"records"}
    assert sums["records"].result() == hashlib.sha256((golden / "records.csv").read_bytes()).hexdigest()
    stop = threading.Event()
    stop.set()
    with pytest.raises(CancelledError):
        output.sha256_file(golden / "records.csv", stop)
    started = []

    def checksums(inputs):
        started.append(output.Checksums(inputs))
        return started[-1]

    def failing(*args, **kwargs):
        raise EvaluationError("评价失败 / failed")
    monkeypatch.setattr(cli_module, "Checksums", checksums)
    monkeypatch.setattr(cli_module, "evaluate", failing)
    res = evaluate(runner, golden, tmp_path / "out", [])
    assert res.exit_code != 0 and "评价失败" in res.output
    assert len(started) == 1 and started[0]._stop.is_set()
    assert not (tmp_path / "out").exists()


def test_contracts_listed_out_of_order_give_the_same_awards(runner, golden, tmp_path):
    """The contracts file in reverse order (each enterprise's numbers descending): RW-5's
    basis and trace list them in ascending order all the same, and every figure agrees."""
    from rules.tracefile import read_trace
    lines = (golden / "contracts.csv").read_text(encoding="utf-8").splitlines()
    shuffled = tmp_path / "contracts.csv"
    shuffled.write_text("\n".join([lines[0]] + lines[:0:-1]) + "\n", encoding="utf-8")
    res = runner.invoke(cli, ["evaluate", "--records", str(golden / "records.csv"), "--contracts", str(shuffled),
                              "--year", "2022", "--out", str(tmp_path / "r"), "--budget", "28000000"])
    assert res.exit_code == 0, res.output
    assert evaluate(runner, golden, tmp_path / "a", ["--budget", "28000000"]).exit_code == 0
    for f in ("scores.csv", "awards.csv"):
        assert (tmp_path / "r" / f).read_bytes() == (tmp_path / "a" / f).read_bytes(), f
    assert read_trace(tmp_path / "r") == read_trace(tmp_path / "a")


def test_manifest_names_policy_inputs_and_outputs(runner, golden, tmp_path):
    import hashlib
    import json
    from rules.policy import load_policy
    out = tmp_path / "out"
    assert evaluate(runner, golden, out, ["--budget", "28000000", "--strategy", "rank_priority"]).exit_code == 0
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["policy"]["sha256"] == load_policy().digest and m["policy"]["document"] == "新开〔2022〕110号"
    assert m["inputs"]["records"]["sha256"] == hashlib.sha256((golden / "records.csv").read_bytes()).hexdigest()
    assert m["inputs"]["contracts"]["sha256"] == hashlib.sha256((golden / "contracts.csv").read_bytes()).hexdigest()
    assert (m["year"], m["budget"]["budget"], m["budget"]["strategy"]) == (2022, 28000000, "rank_priority")
    assert m["program_version"]
    for name, digest in m["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_year_outside_the_policy_or_the_data_is_a_clear_error(runner, golden, tmp_path):
    res = evaluate(runner, golden, tmp_path / "a", []).exit_code
    assert res == 0
    from service.cli import cli as command
    for year, message in (("2021", "不适用于 2021 年度"), ("2023", "没有 2023 年度的记录")):
        r = runner.invoke(command, ["evaluate", "--records", str(golden / "records.csv"), "--year", year,
                                    "--out", str(tmp_path / year)])
        assert r.exit_code != 0 and message in r.output and not (tmp_path / year).exists()


def _golden_run(runner, golden, out, extra):
    import csv

    from rules.tracefile import read_header, read_trace
    assert evaluate(runner, golden, out, extra).exit_code == 0
    traces = {t["credit_code"]: t for t in read_trace(out)}
    with open(golden / "records.csv", encoding="utf-8") as f:
        records = {r["credit_code"]: r for r in csv.DictReader(f) if r["year"] == "2022"}
    with open(golden / "contracts.csv", encoding="utf-8") as f:
        contracts = [r for r in csv.DictReader(f) if r["registered_on"].startswith("2022")]
    with open(out / "awards.csv", encoding="utf-8") as f:
        awards = {(r["credit_code"], r["clause"]) for r in csv.DictReader(f)}
    return read_header(out), traces, records, contracts, awards


YES = {"true", "1", "yes", "是", "y", "t"}


def test_every_reward_clause_touched_but_not_paid_has_a_reason(runner, golden, tmp_path):
    """SPEC §2.7 / issue: an enterprise whose data touch a reward clause but that has no award
    line for it is told why in its trace (sub-park, excluded, out of scope, contract kind, run
    not at 3 …), and an award line paid below its eligible amount says how the budget cut it."""
    header, traces, records, contracts, awards = _golden_run(runner, golden, tmp_path / "out", ["--budget", "15000000"])
    touched = {}
    for code, r in records.items():
        if r["hte_recognized_in_year"].strip().lower() in YES:
            touched.setdefault(code, set()).add("RW-1")
        if r["tech_sme_listed"].strip().lower() in YES:
            touched.setdefault(code, set()).add("RW-2")
        if r["overseas_rd_institutions_new"] not in ("", "0"):
            touched.setdefault(code, set()).add("RW-3")
        if r["new_provincial_institutions"] not in ("", "0"):
            touched.setdefault(code, set()).add("RW-4")
    for c in contracts:
        touched.setdefault(c["credit_code"], set()).add("RW-5")
    checked = {"scope": 0, "excluded": 0, "park": 0, "condition": 0, "contracts": 0}
    for code, clauses in touched.items():
        t = traces[code]
        reasons = {e["clause"]: e for e in t["rewards_not_paid"] if "reason" in e}
        for clause in clauses - {c for (k, c) in awards if k == code}:
            assert clause in reasons, (code, clause, t["rewards_not_paid"])
            e = reasons[clause]
            assert e["text"] and e["title"] and e["citation"].startswith("§五")
            checked[e["reason"]] += 1
    # these kinds of reason occur in the golden example (out of scope: tests/cases/rewards.yaml)
    assert all(checked[k] for k in ("excluded", "park", "condition", "contracts")), checked
    # a license-only enterprise is told that its contracts' kind does not count
    kinds = [e["text"] for t in traces.values() for e in t["rewards_not_paid"] if e.get("reason") == "contracts"]
    assert any("技术许可" in k and "不属于本条款计奖的合同类别" in k for k in kinds)
    for t in traces.values():
        for line in t["rewards"]:
            if line["granted_yuan"] < line["eligible_yuan"]:
                assert "预算" in line["text"] and f"{line['granted_yuan']:,}" in line["text"]


def test_every_clause_that_changed_a_score_is_in_the_chinese_explanation(runner, golden, tmp_path):
    from rules.explain import explain_line
    header, traces, records, contracts, awards = _golden_run(runner, golden, tmp_path / "out", [])
    for code, t in traces.items():
        entries = explain_line(t, header)
        by_clause = {}
        for e in entries:
            by_clause.setdefault(e["clause"], []).append(e)
            assert e["citation"] and e["title"], e
            assert not any(k in e["text"] for k in ("True", "False", "None", "nan")), e
        assert "STAGE" in by_clause and by_clause["STAGE"][0]["text"].startswith("营业收入")
        changed = [e["clause"] for g in ("negative_list", "decay", "bonus") for e in t.get(g) or []
                   if e.get("fired", True)] + [e["clause"] for e in t["scope"] if not e["in_scope"]]
        for clause in changed:
            assert clause in by_clause, (code, clause)
            assert by_clause[clause][0]["citation"] == header["clauses"][clause]["citation"]
        if not t["excluded"]:
            text = by_clause["IND"][0]["text"]
            for cat in header["categories"].values():       # category titles from indicators.yaml
                assert cat["title"] in text
            assert f"{t['scores']['final_score']:.4f}".rstrip("0").rstrip(".") in text
        for line in t["rewards"]:
            assert line["clause"] in by_clause


def test_not_reported_is_told_apart_from_no(runner, golden, tmp_path):
    header, traces, records, contracts, awards = _golden_run(runner, golden, tmp_path / "out", [])
    seen_blank = seen_no = 0
    for code, t in traces.items():
        r = records[code]
        for e in t["negative_list"]:
            for f in e.get("inputs", {}):
                if r[f].strip() == "":
                    assert f in e.get("not_reported", []) and "未填报" in e["text"], (code, f, e)
                    seen_blank += 1
                else:
                    assert f not in e.get("not_reported", [])
                    seen_no += 1
    assert seen_blank and seen_no


def test_history_sources_and_incomplete_runs_are_explained(runner, golden, tmp_path):
    header, traces, records, contracts, awards = _golden_run(runner, golden, tmp_path / "out", [])
    topics = {}
    for t in traces.values():
        for e in t["history"]["entries"]:
            topics.setdefault((e.get("run", e["topic"]), e.get("source")), []).append(e)
    # the golden example holds runs extended by the fields and runs that reach the earliest record
    assert ("expansion_years", "expansion_since") in topics and ("tech_sme_streak", "tech_sme_streak") in topics
    assert any(e["may_be_incomplete"] and "历史可能不完整" in e["text"] for es in topics.values() for e in es
               if "may_be_incomplete" in e)
    for e in topics[("expansion_years", "expansion_since")]:
        assert "进入扩张期的首个年度" in e["text"] and e["clause"] == "DEC-2a"
    for e in topics.get(("previous_stages", "records"), []):
        assert "阶段：" in e["text"] and any(name in e["text"] for name in ("初创期", "成长期", "扩张期", "成熟期"))


def test_nl_statuses_reported_before_are_shown_next_to_the_deduction(runner, golden, tmp_path):
    """SPEC §2.3 (v2): beside each NL-4/NL-5 deduction, the earlier years of the records in
    which the same status was reported."""
    header, traces, records, contracts, awards = _golden_run(runner, golden, tmp_path / "out", [])
    import csv
    with open(golden / "records.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    status_field = {"NL-4a": "hte_requalification_failed", "NL-4b": "tech_sme_reevaluation_failed",
                    "NL-5a": "delisted_platforms_national", "NL-5b": "delisted_platforms_provincial",
                    "NL-5c": "delisted_platforms_municipal"}

    def reported(v):
        v = v.strip().lower()
        return v in YES or (v.replace(".", "").isdigit() and float(v) > 0)
    seen = 0
    for code, t in traces.items():
        for e in t["negative_list"]:
            if e.get("fired", True) and e["clause"] in status_field:
                before = sorted(r["year"] for r in rows if r["credit_code"] == code and r["year"] < "2022"
                                and reported(r[status_field[e["clause"]]]))
                status = [h for h in t["history"]["entries"] if h.get("topic") == "status_reported_before"
                          and h["clause"] == e["clause"]]
                assert status, code
                if before:
                    assert "、".join(before) in status[0]["text"]
                    seen += 1
                else:
                    assert "未报告" in status[0]["text"]
    assert seen


@pytest.mark.parametrize("zone", ["golden", "generated"])
def test_reading_for_one_year_gives_the_same_files(golden, tmp_path, zone):
    """`innopoints evaluate` reads other years' rows with only the fields stage and history
    read of them (`load_inputs(only=…)`), and lets its inputs go as it is done with them
    (`evaluate(consume=True)`): every output file is byte for byte what the whole table gives,
    on the golden example and on a generated zone with three earlier years (every optional
    column present, the earlier years' statuses reported)."""
    from rules.evaluate import evaluate as run, year_fields
    from rules.output import write
    from rules.policy import load_policy
    from rules.records import YearRecords, load_inputs
    from service.demo import generate, write_csv
    if zone == "golden":
        files, year = {"records": golden / "records.csv", "contracts": golden / "contracts.csv"}, 2022
    else:
        year = 2025
        records, contracts = generate(400, year, seed=5, history=3)
        files = {"records": tmp_path / "records.csv", "contracts": tmp_path / "contracts.csv"}
        write_csv(records, files["records"])
        write_csv(contracts, files["contracts"])
    pv = load_policy()
    outs = {}
    for how, only in (("whole", None), ("year", (year, year_fields(pv, year))), ("consumed", (year, year_fields(pv, year))),
                      ("sorted when written", None)):
        recs, cons = load_inputs(files["records"], files["contracts"], only=only)
        assert isinstance(recs, YearRecords) == (only is not None)
        if only is not None:        # the other years' rows really are narrower
            assert len(recs.every.columns) < len(recs.current.columns)
            assert len(recs.current) < len(recs.every)
        ev = run(recs, year, pv, cons, budget=15000000, consume=how == "consumed")
        # the evaluation's rows in code order, sorted beside its engine; the files sort them
        # themselves without it, to the same bytes
        codes = ev.scores["credit_code"].to_numpy(dtype=object)
        assert codes[ev.by_code].tolist() == sorted(codes.tolist())
        if how == "sorted when written":
            ev.by_code = None
        outs[how] = write(ev, tmp_path / how, files)
        if how == "consumed":       # the inputs were let go as the evaluation was done with them
            assert recs.every is None and recs.current is None and len(cons.columns) == 0
        elif only is not None:
            assert len(recs.current) and len(cons.columns)
    names = sorted(p.name for p in outs["whole"].iterdir())
    for how in ("year", "consumed", "sorted when written"):
        assert names == sorted(p.name for p in outs[how].iterdir())
        for name in names:
            assert (outs["whole"] / name).read_bytes() == (outs[how] / name).read_bytes(), (how, name)


def test_records_read_for_another_year_are_refused(golden):
    from rules.evaluate import EvaluationError, evaluate as run, year_fields
    from rules.policy import load_policy
    from rules.records import load_inputs
    pv = load_policy()
    recs, cons = load_inputs(golden / "records.csv", golden / "contracts.csv", only=(2021, year_fields(pv, 2022)))
    with pytest.raises(EvaluationError, match="另一年度"):
        run(recs, 2022, pv, cons)


def test_indicators_file_holds_each_value_and_points_and_explain_prints_them(runner, golden, tmp_path):
    """indicators.parquet (beside trace.parquet) and indicators.csv (beside trace.jsonl) hold
    the same figures; the Parquet file is sorted by credit code and read one enterprise at a
    time; `innopoints explain` prints every indicator's value and points of a scored
    enterprise, none of an excluded one."""
    import csv

    import pyarrow.parquet as pq

    from rules.tracefile import read_header, read_indicators
    p, jl = tmp_path / "p", tmp_path / "j"
    assert evaluate(runner, golden, p, []).exit_code == 0
    assert evaluate(runner, golden, jl, ["--trace-format", "jsonl"]).exit_code == 0
    assert (p / "indicators.parquet").exists() and not (p / "indicators.csv").exists()
    assert (jl / "indicators.csv").exists() and not (jl / "indicators.parquet").exists()
    every = read_indicators(p)
    assert every == read_indicators(jl)
    assert len(every) == 300 and all(len(v) == 35 for v in every.values())
    codes = pq.read_table(p / "indicators.parquet", columns=["credit_code"]).column("credit_code").to_pylist()
    assert codes == sorted(codes)
    assert list(read_indicators(jl)) == codes           # indicators.csv in the same order
    with open(p / "scores.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    scored = next(r["credit_code"] for r in rows if r["excluded"] == "false")
    excluded = next(r["credit_code"] for r in rows if r["excluded"] == "true")
    assert read_indicators(p, [scored]) == {scored: every[scored]}
    assert read_indicators(p, []) == {}
    res = runner.invoke(cli, ["explain", str(p), scored])
    assert res.exit_code == 0, res.output
    assert "各项指标的数值与得分" in res.output
    shown = [ln for ln in res.output.splitlines() if ln.startswith("[IND-")]
    assert [ln.split("]")[0][1:] for ln in shown] == list(every[scored])
    yes_no = set(read_header(p)["render"]["scores"]["yes_no"])
    assert "IND-3.9" in yes_no and "IND-1.1" not in yes_no         # a yes/no field, an amount
    seen = set()
    for ln, (cid, (value, points)) in zip(shown, every[scored].items()):
        shown_value = ln.split("：数值 ")[1].split("，")[0]
        if value is None:
            want = "未填报"
        elif cid in yes_no:
            want = "是" if value else "否"
        else:
            want = f"{value:,.6f}".rstrip("0").rstrip(".")
        assert shown_value == want, ln
        assert ln.endswith(f"得分 {round(points, 4):,.6f}".rstrip("0").rstrip(".")), ln
        seen.add("none" if value is None else "yes_no" if cid in yes_no else "number")
    assert {"yes_no", "number"} <= seen
    res = runner.invoke(cli, ["explain", str(p), excluded])
    assert res.exit_code == 0 and excluded in res.output and "各项指标" not in res.output
    # beside trace.jsonl, the indicators of indicators.csv
    res = runner.invoke(cli, ["explain", str(jl / "trace.jsonl"), scored])
    assert res.exit_code == 0 and [ln.split("：数值 ")[0] for ln in res.output.splitlines() if ln.startswith("[IND-")] \
        == [ln.split("：数值 ")[0] for ln in shown]
