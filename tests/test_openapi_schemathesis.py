"""The OpenAPI document tells the truth (issue 13, item 11): schemathesis generates requests
from /api/openapi.json, schema-valid and schema-invalid (positive and negative), for every
operation, as officer and as admin, and runs all its checks on each answer (no server error,
status codes, content types, headers, response schemas, valid data accepted, invalid data
rejected, ...). Bounded: SCHEMATHESIS_EXAMPLES examples per operation and mode (default 6)."""
import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from tests.conftest import Park, make_app

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))
# Operations whose schema-valid requests may still be refused with 422 for what a schema
# cannot say: a year without records or outside the version's dates in force, a file that is
# not a valid CSV/XLSX, a base that is not a published version, a clause or path the draft
# does not have, a draft that fails its check, a stage or sort key the run's policy
# version does not declare (the schema bounds only the form of a key), a user name taken or an enterprise user without
# its code, a published list naming a field the dictionary does not have (each answer says why).
CONFIG = """
[[operations]]
include-name = ["POST /api/runs", "POST /api/imports", "POST /api/policies/drafts", "POST /api/users",
                "PATCH /api/policies/drafts/{draft_id}/clauses/{clause_id}",
                "POST /api/policies/drafts/{draft_id}/whatif",
                "POST /api/policies/drafts/{draft_id}/diagnostics", "POST /api/public-lists",
                "GET /api/enterprises", "GET /api/rankings", "GET /api/services"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"""
FIGURES = {}


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    from service import db
    from service.auth import create_user
    d = tmp_path_factory.mktemp("schemathesis")
    app = make_app(f"sqlite:///{d / 'st.db'}")
    p = Park(app)
    p.import_golden()
    p.run_id = p.run()
    with app.app_context():          # the user that admin's generated disable/revoke requests hit
        s = db.session()
        p.victim = create_user(s, "victim", "victim-password-1", "officer", None, "").id
        s.commit()
    yield p
    app.extensions["db_engine"].dispose()


def run_all(p, role):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", p.app, config=SchemathesisConfig.from_str(CONFIG))
    operations = cases = 0
    failures = {}
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        fixed = {"user_id": p.victim} if "{user_id}" in op.path else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode, path_parameters=fixed))
            def check(case):
                nonlocal cases
                cases += 1
                case.call_and_validate(headers=p.h(role))
            try:
                check()
            except Unsatisfiable:          # nothing to make invalid (no parameters, no body)
                pass
            except (Exception, BaseExceptionGroup) as exc:      # collected, reported below
                titles = [" ".join(t) for t in re.findall(r"^- (.+)\n\n\s*(.+)$", str(exc), re.M)] or [str(exc)[:300]]
                failures[f"{op.label} ({mode.value})"] = titles
    return operations, cases, failures


@pytest.mark.parametrize("role", ["officer", "admin"])
def test_schemathesis_finds_no_failure(park, role):
    operations, cases, failures = run_all(park, role)
    FIGURES[role] = (operations, cases, len(failures))
    print(f"\nschemathesis as {role}: {operations} operations, {cases} cases, {len(failures)} failures")
    assert operations >= 45 and cases >= operations * EXAMPLES
    assert not failures, failures
