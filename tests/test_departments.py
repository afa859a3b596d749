"""Data as the plan gathers it (§四.(一), issue 17): department extracts merged field by field
with their source, provenance of every value (to the run that read it), conflicts between
sources, published lists, and 公示 with objections."""
from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import GOLDEN, PASSWORD, Park, make_app


def rows_of(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path, rows, header=None):
    header = header or list(rows[0])
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def add_department_users(p, **sources):
    """A department user per source (username -> source key), with an API token."""
    from service import db
    from service.auth import create_user, issue_token
    with p.app.app_context():
        s = db.session()
        for name, source in sources.items():
            u = create_user(s, name, PASSWORD, "department", display_name=f"{name} 报送员", source=source)
            p.tokens[name] = issue_token(s, u)
        s.commit()


@pytest.fixture
def dept(lite_park):
    p = lite_park
    p.import_golden()
    add_department_users(p, tax="tax", env="environment")
    return p


def records(p, code):
    return {r["year"]: r for r in p.get(f"/api/enterprises/{code}/records", "officer").get_json()["records"]}


def tax_file(tmp_path, rows, name="tax.csv"):
    return write_rows(tmp_path / name, rows, ["credit_code", "year", "revenue", "rd_tax_deduction"])


def test_tax_file_changes_its_two_fields_and_nothing_else(dept, tmp_path):
    p = dept
    golden = [r for r in rows_of(GOLDEN / "records.csv") if r["year"] == "2022"][:3]
    before = {r["credit_code"]: records(p, r["credit_code"]) for r in golden}
    rows = [{"credit_code": r["credit_code"], "year": "2022", "revenue": "4321.5", "rd_tax_deduction": "12"}
            for r in golden]
    r = p.upload(tax_file(tmp_path, rows), "records", role="tax")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["rows"], body["added"], body["replaced"]) == (3, 0, 3)
    for g in golden:
        after = records(p, g["credit_code"])
        old = before[g["credit_code"]]
        assert after["2022"]["revenue"] == "4321.5" and after["2022"]["rd_tax_deduction"] == "12.0"
        changed = {k for k in after["2022"] if after["2022"][k] != old["2022"][k]}
        assert changed == {"revenue", "rd_tax_deduction"}
        assert {y: v for y, v in after.items() if y != "2022"} == {y: v for y, v in old.items() if y != "2022"}
