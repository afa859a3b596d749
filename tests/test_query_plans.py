"""Issue 16: every query the lookups, lists and award pages make is served by an index on
PostgreSQL. The statements a request really sends are captured, then each is EXPLAINed
with sequential scans discouraged (enable_seqscan = off): a plan that still scans a whole
large table has no index it could use."""
import pytest
from sqlalchemy import event, text

from conftest import Park, _fresh_postgres, _postgres_url, make_app

# tables that grow with the zone (enterprises × years × runs); the others hold a handful of rows
LARGE = {"results", "award_lines", "records", "provenance", "enterprises", "contracts", "credit_lookups",
         "declarations", "conflicts", "api_tokens", "audit_log"}


@pytest.fixture(scope="module")
def pg_park():
    url = _postgres_url()
    _fresh_postgres(url)
    app = make_app(url)
    park = Park(app)
    park.import_golden()
    park.run_id = park.run(budget=28000000)
    assert park.post(f"/api/runs/{park.run_id}/publish", "officer").status_code == 200
    from service import db
    from service.models import Enterprise
    with app.app_context():                         # the bank's lookup needs the enterprise's consent
        s = db.session()
        s.get(Enterprise, park.own).credit_consent = True
        s.commit()
    yield park
    app.extensions["db_engine"].dispose()


def statements(park, role, path):
    """The SELECT statements (with their parameters) one request sends."""
    engine = park.app.extensions["db_engine"]
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            seen.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", capture)
    try:
        r = park.get(path, role)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert r.status_code == 200, (path, r.get_data(as_text=True)[:300])
    return seen


def full_scans(park, seen):
    engine = park.app.extensions["db_engine"]
    bad = []
    with engine.connect() as c:
        c.execute(text("SET enable_seqscan = off"))
        raw = c.connection.dbapi_connection
        for statement, params in seen:
            cur = raw.cursor()
            cur.execute("EXPLAIN " + statement, params)
            plan = "\n".join(r[0] for r in cur.fetchall())
            cur.close()
            for table in LARGE:
                if f"Seq Scan on {table}" in plan:
                    bad.append((table, statement.split("FROM")[0][:80], plan))
        c.rollback()
    return bad


PAGES = [("officer", "/api/enterprises/{own}"),
         ("enterprise", "/api/enterprises/{own}"),
         ("officer", "/api/enterprises/{own}/eligibility"),
         ("officer", "/api/enterprises/{own}/records"),
         ("officer", "/api/enterprises?stage=growth&sort=final_score&order=desc&page=2&per_page=20"),
         ("officer", "/api/enterprises?sort=rank_overall&page=1&per_page=20"),
         ("finance", "/api/awards?per_page=20"),
         ("officer", "/api/rankings?top=10"),
         ("public", "/api/aggregates"),
         ("bank", "/api/credit/{own}"),
         ("officer", "/api/enterprises/{own}/potential")]


@pytest.mark.parametrize("role,path", PAGES)
def test_the_queries_of_a_request_use_indexes(pg_park, role, path):
    p = pg_park
    seen = statements(p, role, path.format(own=p.own))
    assert seen, "no query captured"
    bad = full_scans(p, seen)
    assert not bad, "\n\n".join(f"{t}: {s}…\n{plan}" for t, s, plan in bad)
