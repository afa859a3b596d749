# The README's two commands: `make run` and `make test`. Both set up everything they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
STAMP := $(VENV)/.installed

.PHONY: run test install demo reset-demo bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 12), "durable-rules needs CPython 3.11 or 3.12"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# the demo park goes into an empty database only: stored data is never deleted implicitly
demo: $(STAMP)
	$(BIN)/innopoints demo --out instance/demo

# deletes instance/innopoints.db (every import, run, user and the audit log), then the demo park
reset-demo: $(STAMP)
	$(BIN)/innopoints demo --fresh --out instance/demo

run: demo
	$(BIN)/flask --app service run --port $(PORT)

# the database tests run on SQLite and on a throw-away PostgreSQL server that
# scripts/with-postgres installs (Debian's postgresql) and starts; the page tests in
# Debian's chromium, which scripts/ensure-browser installs; screenshots: test-output/
test: $(STAMP)
	scripts/ensure-browser
	$(BIN)/innopoints rules check
	$(BIN)/innopoints rules test
	INNOPOINTS_REQUIRE_PG=1 INNOPOINTS_REQUIRE_BROWSER=1 scripts/with-postgres $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_evaluate.py

clean:
	rm -rf $(VENV) instance *.egg-info .pytest_cache .hypothesis test-output
