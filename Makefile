# The README's two commands: `make run` and `make test`. Both set up everything they need.
# The venv is made with the newest CPython 3.11-3.14 on PATH (scripts/find-python), or with
# the one given: `make PYTHON=python3.12 test`. An existing .venv is kept (`make clean` first).
PYTHON ?= $(shell scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
STAMP := $(VENV)/.installed
# durable-rules 2.0.28 is built here, patched for CPython 3.13+ and gcc 14 (issue 18)
DURABLE_PATCH := scripts/durable-rules/durable_rules-2.0.28-py313.patch
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 14))
PYVERSION := import sys; print(sys.version.split()[0])

.PHONY: run test install demo reset-demo bench clean durable-wheel

$(STAMP): setup.cfg pyproject.toml $(DURABLE_PATCH) scripts/build-durable-wheel
	@if [ -x $(BIN)/python ]; then \
	    echo "Using the existing $(VENV): Python $$($(BIN)/python -c '$(PYVERSION)') (make clean to recreate it with $(or $(PYTHON),another Python))"; \
	elif [ -z "$(PYTHON)" ]; then \
	    echo "No supported Python found on PATH: InnoPoints needs CPython 3.11, 3.12, 3.13 or 3.14"; \
	    echo "(python3.14, python3.13, python3.12, python3.11 or python3), with venv, its headers and gcc. Install one:"; \
	    echo "  Debian/Ubuntu: sudo apt-get install python3 python3-venv python3-dev gcc"; \
	    echo "  Fedora:        sudo dnf install python3 python3-devel gcc"; \
	    echo "  macOS:         brew install python@3.13"; \
	    echo "or name one: make PYTHON=/path/to/python3.13 $(MAKECMDGOALS)"; \
	    exit 1; \
	elif ! $(PYTHON) -c '$(SUPPORTED)' 2>/dev/null; then \
	    echo "PYTHON=$(PYTHON) is not CPython 3.11-3.14; unset PYTHON to pick one from PATH"; exit 1; \
	else \
	    echo "Using Python $$($(PYTHON) -c '$(PYVERSION)') ($(PYTHON)) for $(VENV)"; \
	    $(PYTHON) -m venv $(VENV) || exit 1; \
	fi
	@$(BIN)/python -c '$(SUPPORTED)' || { echo "$(VENV) is not CPython 3.11-3.14: make clean, then make again"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	whl=$$(scripts/build-durable-wheel $(BIN)/python) && $(BIN)/pip install --quiet --no-deps --force-reinstall "$$whl"
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

# the patched durable-rules wheel for the venv's Python, into .wheels/ (kept by clean)
durable-wheel: $(STAMP)
	scripts/build-durable-wheel $(BIN)/python

clean:
	rm -rf $(VENV) instance *.egg-info .pytest_cache .hypothesis test-output
