# Leadflow — `make run` serves the API, `make test` runs lint, types, the dependency audit,
# migrations check and tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP_QUIET ?= -q

.PHONY: run test lint typecheck audit migrations-check pytest bench fuzz screenshots demo worker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) --upgrade pip setuptools

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_QUIET) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_QUIET) -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/leadflow db upgrade
	$(BIN)/leadflow serve

demo: $(VENV)/.installed
	$(BIN)/leadflow db upgrade
	$(BIN)/leadflow demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Known vulnerabilities in the installed dependencies (pip-audit). Fails on one; dependencies
# that could not be checked (no vulnerability service reachable) are reported loudly and fail
# only with AUDIT_REQUIRED=1. AUDIT_SERVICE=osv asks OSV instead of PyPI.
audit: $(VENV)/.installed-dev
	$(BIN)/python -m tools.audit

# `alembic check` fails when the models and the migrations disagree.
migrations-check: $(VENV)/.installed-dev
	@tmp=$$(mktemp -d); \
	LEADFLOW_DATABASE_URL="sqlite+aiosqlite:///$$tmp/check.db" $(BIN)/alembic upgrade head && \
	LEADFLOW_DATABASE_URL="sqlite+aiosqlite:///$$tmp/check.db" $(BIN)/alembic check; \
	status=$$?; rm -rf $$tmp; exit $$status

# Two processes by default (a test file stays in one process: Redis databases and served
# ports are per file); PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck audit migrations-check pytest

# Schemathesis against the served schema on SQLite and PostgreSQL, FUZZ_SECONDS per engine.
FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.installed-dev
	LEADFLOW_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest -q -p no:cacheprovider tests/fuzz

# Refresh docs/screenshots/ from the browser tests.
screenshots: $(VENV)/.installed-dev
	LEADFLOW_SCREENSHOTS=1 $(BIN)/pytest -q -p no:cacheprovider tests/web/test_browser.py

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
