# kassa: `make run` starts the demo on SQLite, `make test` checks and tests it (SQLite, then
# PostgreSQL when KASSA_TEST_DATABASE_URL is set).  Nothing but python3 needs installing;
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

test: lint
	@[ -x /usr/bin/chromium ] || echo "browser tests: skipped (no /usr/bin/chromium)"
	env -u KASSA_TEST_DATABASE_URL $(BIN)/pytest
	@if [ -n "$$KASSA_TEST_DATABASE_URL" ]; then \
		echo "--- again on $$KASSA_TEST_DATABASE_URL"; \
		$(BIN)/pytest; \
	fi

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
