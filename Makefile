# kassa: `make run` starts the demo on SQLite, `make test` checks and tests it (on SQLite, and
# on PostgreSQL too when KASSA_TEST_DATABASE_URL is set).  Nothing but python3 needs installing;
# the browser tests run when Debian's chromium is at /usr/bin/chromium, and say so when not.

PORT ?= 8000
KASSA_DATABASE_URL ?= sqlite:///$(CURDIR)/var/kassa.db
# Bitcoin payments are watched on the in-process fake chain, fed by `kassa bitcoin fake-pay`
# (docs/bitcoin.md): works offline.  Set KASSA_BITCOIN_WATCHER (even empty) to choose another.
KASSA_BITCOIN_WATCHER ?= fake

VENV := .venv
BIN := $(VENV)/bin
# pip runs again only when pyproject.toml is newer than the stamp: `make run` installs what
# kassa needs to run, `make test` adds the test extra (pytest, Playwright, ruff, mypy …).
INSTALLED := $(VENV)/.installed
INSTALLED_TEST := $(VENV)/.installed-test
# The payment systems' fakes are served under /fakes (docs/payments.md): works offline too.
KASSA_FAKE_PROCESSORS ?= 1
KASSA := KASSA_DATABASE_URL='$(KASSA_DATABASE_URL)' PORT='$(PORT)' \
	KASSA_BITCOIN_WATCHER='$(KASSA_BITCOIN_WATCHER)' \
	KASSA_FAKE_PROCESSORS='$(KASSA_FAKE_PROCESSORS)' $(BIN)/kassa

.PHONY: run test lint install bench

run: $(INSTALLED)
	$(KASSA) migrate
	$(KASSA) demo
	$(KASSA) serve --port $(PORT)

# With KASSA_TEST_DATABASE_URL set the suite runs on SQLite and on PostgreSQL side by side (a
# core each, half the wall time); each run's output is kept in var/ and shown when both end.
test: lint
	@[ -x /usr/bin/chromium ] || echo "browser tests: skipped (no /usr/bin/chromium)"
	@if [ -z "$$KASSA_TEST_DATABASE_URL" ]; then exec $(BIN)/pytest; fi; \
	mkdir -p var; \
	echo "pytest on SQLite and on $$KASSA_TEST_DATABASE_URL, side by side …"; \
	env -u KASSA_TEST_DATABASE_URL $(BIN)/pytest >var/test-sqlite.log 2>&1 & sqlite=$$!; \
	$(BIN)/pytest >var/test-postgresql.log 2>&1; postgresql=$$?; \
	wait $$sqlite; sqlite=$$?; \
	echo "--- SQLite"; cat var/test-sqlite.log; \
	echo "--- $$KASSA_TEST_DATABASE_URL"; cat var/test-postgresql.log; \
	[ $$sqlite -eq 0 ] && [ $$postgresql -eq 0 ]

# The same checks the house rules ask of every commit (configured in pyproject.toml).
lint: $(INSTALLED_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Figures go to docs/benchmarks.md.  The API benchmark needs PostgreSQL and wrk (it uses a
# scratch database, kassa_bench, that it drops and re-creates).
bench: $(INSTALLED_TEST)
	$(BIN)/python -m bench.billrun
	$(BIN)/python -m bench.collection
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.portal

install: $(INSTALLED)

$(BIN)/python:
	python3 -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $(INSTALLED)

# The test extra includes everything `make run` needs, so it counts as that install too.
$(INSTALLED_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[test]'
	touch $(INSTALLED) $(INSTALLED_TEST)
