"""Migration 0005_policy_shape moves every stored value of the old per-field record columns
into the JSON column `records.data`, and the three category score columns of results into
`results.category_scores`; nothing is dropped, and the service reads them back."""
import datetime as dt
import json

import sqlalchemy as sa
from alembic import command

from service.db import alembic_config


def test_0005_moves_every_value_into_the_json_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0004_security")
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.text("INSERT INTO enterprises (credit_code, name, park, industry, credit_consent) "
                          "VALUES ('91410700MA9XAMPL05', '旧数据企业', '主园区', '生物医药', 0)"))
        c.execute(sa.text(
            "INSERT INTO records (credit_code, name, park, industry, registered_on, year, updated_at, revenue, rd_expense, "
            "env_credit_rating, is_listed, invention_grants, stage_prev1, expansion_since) VALUES "
            "('91410700MA9XAMPL05', '旧数据企业', '主园区', '生物医药', '2015-03-01', 2022, :now, 2500.5, 120.25, "
            "'warning', 1, 3, 'growth', 2020)"), {"now": dt.datetime(2025, 1, 1)})
        now = {"now": dt.datetime(2025, 1, 1)}
        c.execute(sa.text("INSERT INTO policy_versions (name, document, sha256, status, files, note, created_at) "
                          "VALUES ('v', '', 'x', 'published', '{}', '', :now)"), now)
        c.execute(sa.text("INSERT INTO runs (year, policy_id, policy_name, policy_sha256, status, progress, message, error, "
                          "data_sha256, created_at, enterprises, excluded, award_lines, eligible_yuan, granted_yuan, "
                          "manifest) VALUES (2022, 1, 'v', 'x', 'done', 100, '', '', '', :now, 1, 0, 0, 0, 0, '{}')"), now)
        c.execute(sa.text(
            "INSERT INTO results (run_id, credit_code, stage, excluded, exclusion_clauses, tech_score, growth_score, "
            "aux_score, final_score, trace, indicators) VALUES (1, '91410700MA9XAMPL05', 'expansion', 0, '', "
            "61.5, 40.25, 12, 50.1, '{}', '{}')"))
    command.upgrade(cfg, "head")
    insp = sa.inspect(eng)
    cols = {c["name"] for c in insp.get_columns("records")}
    assert "data" in cols and "revenue" not in cols and "rd_expense" not in cols
    assert {"name", "park", "industry", "registered_on", "year", "credit_code"} <= cols
    with eng.connect() as c:
        data = c.execute(sa.text("SELECT data FROM records")).scalar_one()
        cats = c.execute(sa.text("SELECT category_scores FROM results")).scalar_one()
    values = json.loads(data)
    assert values == {"revenue": 2500.5, "rd_expense": 120.25, "env_credit_rating": "warning", "is_listed": True,
                      "invention_grants": 3, "stage_prev1": "growth", "expansion_since": 2020}
    assert json.loads(cats) == {"tech": 61.5, "growth": 40.25, "aux": 12.0}
    assert "tech_score" not in {c["name"] for c in insp.get_columns("results")}


def test_0009_large_text_columns_are_lz4_on_postgresql(app):
    """On PostgreSQL the large text columns compress with lz4 (a no-op on SQLite, and both
    ways of the migration run there)."""
    import pytest
    url = app.config["DATABASE_URL"]
    if not url.startswith("postgresql"):
        cfg = alembic_config(url)
        command.downgrade(cfg, "0008_result_provenance")
        command.upgrade(cfg, "head")
        pytest.skip("lz4 is PostgreSQL's")
    with app.extensions["db_engine"].connect() as c:
        got = dict(c.execute(sa.text(
            "SELECT c.relname || '.' || a.attname, a.attcompression FROM pg_attribute a JOIN pg_class c "
            "ON a.attrelid = c.oid WHERE (c.relname, a.attname) IN (('records', 'data'), ('results', 'trace'), "
            "('results', 'provenance'), ('results', 'indicators'), ('run_files', 'content'))")).all())
    assert got == {k: "l" for k in ("records.data", "results.trace", "results.provenance", "results.indicators",
                                    "run_files.content")}
