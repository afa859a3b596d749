"""Bad input (SPEC §3): every bad cell reported with row, column, value and reason in both
languages; nothing written. Good input in CSV or XLSX, English keys or Chinese labels."""
import csv
import datetime as dt

import openpyxl
import pytest

from rules.cases import code_for
from rules.policy import load_policy

RECORD_FIELDS = load_policy().data.record_fields
from rules.records import InputError, check_credit_codes, credit_code_with_check, duplicated, load_contracts, load_records
from service.cli import cli

import numpy as np
import pandas as pd

GOOD = {"credit_code": code_for("A"), "name": "甲", "park": "主园区", "industry": "氢能",
        "registered_on": "2015-03-01", "year": "2022", "revenue": "1200.5", "rd_expense": "30"}


def write(path, rows, header=None):
    header = header or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def bad_cells(path, **kw):
    with pytest.raises(InputError) as exc:
        load_records(path, **kw)
    cells = {}
    for c in exc.value.cells:      # one cell may have several reasons; keep the first of each
        cells.setdefault((c.row, c.column), c)
    return cells


BAD_VALUES = [
    ("credit_code", code_for("A")[:-1] + ("0" if code_for("A")[-1] != "0" else "1"), "校验位"),
    ("env_credit_rating", "一般", "未知的环境信用等级"),
    ("stage_prev1", "衰退期", "未知的发展阶段"),
    ("rd_expense", "三十", "不是数字"),
    ("invention_grants", "-1", "不能为负数"),
    ("invention_grants", "1.5", "必须是整数"),
    ("tech_staff_ratio", "100.01", "比例不能超过100"),
    ("registered_on", "2999-01-01", "日期在未来"),
    ("registered_on", "2022-02-30", "不是有效日期"),
    ("year", "2999", "年度在未来"),
    ("revenue", "", "必填项"),
    ("registered_on", "", "必填项"),
    ("is_listed", "maybe", "不是是/否值"),
]


@pytest.mark.parametrize("column,value,reason", BAD_VALUES)
def test_each_bad_value_is_reported(tmp_path, column, value, reason):
    row = dict(GOOD, **{column: value})
    cells = bad_cells(write(tmp_path / "r.csv", [GOOD | {"credit_code": code_for("B")}, row],
                            header=list(GOOD) + [k for k in (column,) if k not in GOOD]))
    assert (3, column) in cells, cells
    c = cells[(3, column)]
    assert reason in c.reason_zh and c.value == value and c.reason_en
    assert "第3行" in str(c) and "row 3" in str(c)


def test_signed_growth_may_be_negative(tmp_path):
    df = load_records(write(tmp_path / "r.csv", [GOOD | {"revenue_growth": "-12.5", "return_on_equity": "-3"}]))
    assert df["revenue_growth"].iloc[0] == -12.5


def test_duplicate_enterprise_year_and_unknown_column(tmp_path):
    rows = [GOOD | {"colour": "red"}, GOOD | {"colour": "blue"}]
    cells = bad_cells(write(tmp_path / "r.csv", rows))
    assert (1, "colour") in cells and "未知的列" in cells[(1, "colour")].reason_zh
    assert (3, "year") in cells and "重复" in cells[(3, "year")].reason_zh


def test_every_bad_cell_is_listed_not_just_the_first(tmp_path):
    rows = [GOOD | {"credit_code": code_for(str(i)), "rd_expense": "x"} for i in range(50)]
    cells = bad_cells(write(tmp_path / "r.csv", rows))
    assert len(cells) == 50


def test_missing_required_column(tmp_path):
    row = {k: v for k, v in GOOD.items() if k != "revenue"}
    cells = bad_cells(write(tmp_path / "r.csv", [row]))
    assert (1, "revenue") in cells


def test_chinese_labels_and_values(tmp_path):
    labels = {f.key: f.label for f in RECORD_FIELDS}
    row = {labels[k]: v for k, v in (GOOD | {"is_listed": "是", "env_credit_rating": "警示", "stage_prev1": "成熟期"}).items()}
    df = load_records(write(tmp_path / "r.csv", [row]))
    assert df["is_listed"].iloc[0] == 1 and df["env_credit_rating"].iloc[0] == "warning"
    assert df["stage_prev1"].iloc[0] == 4


def test_xlsx_records(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["统一社会信用代码", "注册成立日期", "评价年度", "营业收入"])
    ws.append([code_for("A"), dt.datetime(2015, 3, 1), 2022, 1200.5])
    wb.save(tmp_path / "r.xlsx")
    df = load_records(tmp_path / "r.xlsx")
    assert df["revenue"].iloc[0] == 1200.5 and df["registered_on"].iloc[0] == pd.Timestamp("2015-03-01")


def test_not_utf8_is_a_clear_error(tmp_path):
    p = tmp_path / "r.csv"
    p.write_bytes("统一社会信用代码,评价年度\n".encode("gbk"))
    with pytest.raises(InputError) as exc:
        load_records(p)
    assert "UTF-8" in exc.value.report()


def test_check_character():
    assert check_credit_codes(np.array(["91350100M000100Y43", "91350100M000100Y44", "short", ""])).tolist() == \
        [True, False, False, False]
    assert credit_code_with_check("91350100M000100Y4") == "91350100M000100Y43"


def test_contract_errors(tmp_path):
    rows = [{"contract_no": "C1", "credit_code": code_for("A"), "kind": "lease", "amount": "-1", "registered_on": "2022-01-01"},
            {"contract_no": "C1", "credit_code": code_for("Z"), "kind": "技术开发", "amount": "abc", "registered_on": "2022-01-01"}]
    with pytest.raises(InputError) as exc:
        load_contracts(write(tmp_path / "c.csv", rows), known_codes={code_for("A")})
    got = {(c.row, c.column, c.reason_zh) for c in exc.value.cells}
    assert (2, "kind", "未知的合同类别") in got
    assert (2, "amount", "不能为负数") in got
    assert (3, "contract_no", "合同登记编号重复") in got
    assert (3, "credit_code", "记录中没有该企业") in got
    assert (3, "amount", "不是数字") in got


def test_evaluate_with_bad_cells_writes_nothing(runner, tmp_path):
    rec = write(tmp_path / "r.csv", [GOOD, GOOD | {"credit_code": code_for("B"), "rd_expense": "abc"}])
    con = write(tmp_path / "c.csv", [{"contract_no": "C1", "credit_code": code_for("Q"), "kind": "service",
                                      "amount": "1", "registered_on": "2022-01-01"}])
    out = tmp_path / "out"
    res = runner.invoke(cli, ["evaluate", "--records", str(rec), "--contracts", str(con), "--year", "2022",
                              "--out", str(out)])
    assert res.exit_code != 0
    assert not out.exists()
    assert "第3行" in res.output and "rd_expense" in res.output and "'abc'" in res.output and "not a number" in res.output
    assert "记录中没有该企业" in res.output  # the contracts file is checked too, in the same run


def test_evaluate_leaves_existing_output_when_input_is_bad(runner, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.csv").write_text("old", encoding="utf-8")
    rec = write(tmp_path / "r.csv", [GOOD | {"revenue": ""}])
    res = runner.invoke(cli, ["evaluate", "--records", str(rec), "--year", "2022", "--out", str(out)])
    assert res.exit_code != 0
    assert (out / "scores.csv").read_text(encoding="utf-8") == "old"


def test_numbers_with_blanks_and_blank_cells(tmp_path):
    df = load_records(write(tmp_path / "r.csv", [GOOD | {"rd_expense": " 30 ", "invention_grants": "  "},
                                                 GOOD | {"credit_code": code_for("B"), "rd_expense": "nan"}][:1]))
    assert df["rd_expense"].iloc[0] == 30 and np.isnan(df["invention_grants"].iloc[0])
    cells = bad_cells(write(tmp_path / "s.csv", [GOOD | {"rd_expense": "nan"}, GOOD | {"credit_code": code_for("B"),
                                                                                      "rd_expense": "inf"}]))
    assert cells[(2, "rd_expense")].reason_zh == "不是数字"
    assert cells[(3, "rd_expense")].reason_zh == "不是有限数"


def test_xlsx_contracts_with_chinese_headers(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["合同登记编号", "统一社会信用代码", "合同类别", "合同成交额", "登记日期"])
    ws.append(["T-1", code_for("A"), "技术开发", "12.34565", dt.datetime(2022, 5, 1)])
    ws.append(["T-2", code_for("A"), "服务", "0.5", dt.datetime(2022, 6, 1)])
    wb.save(tmp_path / "c.xlsx")
    df = load_contracts(tmp_path / "c.xlsx", known_codes=[code_for("A")])
    assert df["kind"].tolist() == ["development", "service"]
    assert df["amount"].tolist() == ["12.34565", "0.5"]       # kept as text, never a float


def test_duplicated_flags_repeats_as_pandas_does():
    """The arrow-hashed repeat test (duplicate contract numbers, enterprise-years) answers as
    pandas' duplicated(keep="first"), nulls included (the first null is not a repeat)."""
    import pyarrow as pa
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 7, 5000):
        ints = rng.integers(0, n // 3 + 1, n)
        assert (duplicated(pa.array(ints)) == pd.Series(ints).duplicated().to_numpy()).all()
        words = [None if v == 0 else f"合同{v}" for v in ints]
        assert (duplicated(pa.array(words, pa.string())) == pd.Series(words).duplicated().to_numpy()).all()


def test_repeated_contract_numbers_are_found_as_pandas_finds_them():
    """The contract-number repeat test (`duplicated_text`: 64-bit hashes of equal-width
    numbers, the rows whose hash repeats compared as text) answers as pandas'
    duplicated(keep="first"): numbers of one width, of several widths, with nulls, one and
    none; and when hashes collide, only equal text is a repeat."""
    import pyarrow as pa
    from rules import records
    from rules.records import duplicated_text
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 9, 5000):
        nos = [f"2022-{v:08d}-{w:03d}" for v, w in zip(rng.integers(0, n // 4 + 1, n), rng.integers(0, 3, n))]
        for values in (nos, [x.rstrip("0") for x in nos], [None if i % 7 == 0 else x for i, x in enumerate(nos)]):
            want = pd.Series(values, dtype=object).duplicated().to_numpy()
            assert (duplicated_text(pa.array(values, pa.string())) == want).all()
    # every hash the same: the text alone decides
    nos = ["A-0001", "B-0002", "A-0001", "C-0003", "B-0002"]
    mix = records._MIX
    try:
        records._MIX = np.zeros(4, dtype=np.uint64)
        assert duplicated_text(pa.array(nos, pa.string())).tolist() == [False, False, True, False, True]
    finally:
        records._MIX = mix


def test_repeated_enterprise_years_are_found_as_pandas_finds_them():
    """The enterprise-year repeat test (`duplicated_pairs`: a table of the pairs when they are
    few, hashing otherwise) answers as pandas' duplicated(keep="first") on the pairs, with
    missing years (-1), far-apart ids and years, and no rows."""
    from rules.records import duplicated_pairs
    rng = np.random.default_rng(5)
    for n, ids_high, years in ((0, 1, (2020, 2021)), (1, 1, (2020, 2021)), (5000, 2000, (2019, 2026)),
                               (5000, 10**9, (2019, 2026)), (3000, 50, (-1, 2024)), (3000, 40, (0, 10**6))):
        a = rng.integers(0, ids_high, n)
        b = rng.integers(*years, n)
        want = pd.DataFrame({"a": a, "b": b}).duplicated().to_numpy()
        assert (duplicated_pairs(a, b) == want).all()
    assert not duplicated_pairs(np.array([0, 1, 0]), np.array([2022, 2022, 2021])).any()
    assert duplicated_pairs(np.array([0, 1, 0]), np.array([2022, 2022, 2022])).tolist() == [False, False, True]
    # pairs too far apart for one integer each: sorted and compared
    far = duplicated_pairs(np.array([0, 2**31, 0, 5, 2**31]), np.array([0, 2**40, 0, 2**40, 2**40]))
    assert far.tolist() == [False, False, True, False, True]


@pytest.mark.parametrize("env, hinted", [(None, False), ("1", True)])
def test_reading_turns_numpys_huge_page_hint_off_unless_asked(golden, env, hinted):
    """Loading inputs turns numpy's 2 MB page hint off (first touch was 4.5 times slower with
    it on the target VM), unless NUMPY_MADVISE_HUGEPAGE asks for it."""
    import os
    import subprocess
    import sys
    code = ("from rules.records import load_inputs; from numpy._core.multiarray import _set_madvise_hugepage as f; "
            f"load_inputs({str(golden / 'records.csv')!r}, {str(golden / 'contracts.csv')!r}); print(f(False))")
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    environ["PYTHONPATH"] = str(__import__("pathlib").Path(__file__).parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ)
    assert out.stdout.split()[-1] == str(hinted)


@pytest.mark.parametrize("env, pool", [(None, "jemalloc"), ("mimalloc", "mimalloc"), ("system", "system")])
def test_reading_puts_arrow_on_jemalloc_unless_told(golden, env, pool):
    """Loading inputs moves arrow's allocations to jemalloc (mimalloc handed freed pages back
    at once and faulted them in again: seconds of kernel time at a million enterprises),
    unless ARROW_DEFAULT_MEMORY_POOL names a pool."""
    import os
    import subprocess
    import sys
    code = ("import pyarrow as pa; from rules.records import load_inputs; "
            f"load_inputs({str(golden / 'records.csv')!r}, {str(golden / 'contracts.csv')!r}); "
            "print(pa.default_memory_pool().backend_name)")
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env:
        environ["ARROW_DEFAULT_MEMORY_POOL"] = env
    environ["PYTHONPATH"] = str(__import__("pathlib").Path(__file__).parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ)
    assert out.stdout.split()[-1] == pool


def test_a_file_is_checked_in_groups_of_rows_with_the_same_answer(tmp_path, monkeypatch):
    """The rows are checked a group at a time (`rules.records.GROUP_ROWS`), two groups at once,
    as the CSV reader's blocks arrive (`READ_BLOCK`: groups of whole blocks, of uneven sizes;
    names that hold line breaks fall across the blocks' edges):
    the records, read whole or for one year, are those of a single group, and a bad cell of a
    later group is reported with its row in the whole file, whether it is a text cell (found
    in its group) or a number the CSV reader parsed (the file read again as text)."""
    from rules import records
    from rules.evaluate import year_fields
    long = ("企业" * 20 + "\n") * 4
    rows = [GOOD | {"credit_code": code_for(f"E{i}"), "name": f"{long}第{i}号,\"有限\"公司" if i % 3 else f"企业{i}",
                    "year": str(2020 + i % 3), "rd_expense": str(i), "invention_grants": str(i % 4)} for i in range(60)]
    good = write(tmp_path / "good.csv", rows)
    only = (2022, year_fields(load_policy(), 2022))
    whole, year = load_records(good), load_records(good, only=only)
    monkeypatch.setattr(records, "GROUP_ROWS", 7)
    monkeypatch.setattr(records, "READ_BLOCK", 4096)
    seen = []
    groups = records.Stream.groups
    monkeypatch.setattr(records.Stream, "groups", lambda self, size: (seen.append(g[0].n) or g for g in groups(self, size)))
    pd.testing.assert_frame_equal(load_records(good), whole)
    assert len(seen) > 3 and sum(seen) == 60 and len(set(seen)) > 1     # several groups, of uneven sizes
    seen.clear()
    grouped = load_records(good, only=only)
    pd.testing.assert_frame_equal(grouped.every, year.every)
    pd.testing.assert_frame_equal(grouped.current, year.current)
    assert grouped.rows.tolist() == year.rows.tolist() and len(year.rows) == 20 and len(seen) > 3
    assert whole["name"].iloc[1] == f"{long}第1号,\"有限\"公司"
    for column, value in (("registered_on", "2022-02-30"), ("invention_grants", "-1")):
        bad = write(tmp_path / "bad.csv", rows[:50] + [rows[50] | {column: value}] + rows[51:])
        cells = bad_cells(bad)
        assert list(cells) == [(52, column)] and cells[(52, column)].value == value


def test_contracts_carry_the_enterprise_ids_found_when_read(golden):
    """load_inputs finds each contract's enterprise once and keeps it (`ent`); the evaluation
    takes it only when it names the same codes as the records it is given, and otherwise
    finds them again."""
    from rules.evaluate import reading_for
    from rules.records import contract_enterprises, enterprise_codes, load_inputs, positions_of
    pv = load_policy()
    recs, cons = load_inputs(golden / "records.csv", golden / "contracts.csv", only=reading_for(pv, 2022))
    known = enterprise_codes(recs)
    found = positions_of(cons["credit_code"], known)
    assert (found >= 0).all() and cons["ent"].to_numpy().tolist() == found.tolist()
    assert contract_enterprises(cons, known).tolist() == found.tolist()
    stale = cons.assign(ent=np.roll(found, 1))          # ids of other records: not taken
    assert contract_enterprises(stale, known).tolist() == found.tolist()
    outside = cons.assign(ent=np.full(len(found), len(known)))
    assert contract_enterprises(outside, known).tolist() == found.tolist()
    assert contract_enterprises(cons.drop(columns="ent"), known).tolist() == found.tolist()
