# kassa: `make run` starts the demo on SQLite, `make test` runs the suite (SQLite, then
# PostgreSQL when KASSA_TEST_DATABASE_URL is set).  Nothing but python3 needs installing;
# the browser tests run when Debian's chromium is at /usr/bin/chromium, and say so when not.

PORT ?= 8000
KASSA_DATABASE_URL ?= sqlite:///$(CURDIR)/var/kassa.db

VENV := .venv
BIN := $(VENV)/bin
# pip runs again only when pyproject.toml is newer than this stamp.
INSTALLED := $(VENV)/.installed

.PHONY: run test install bench

run: $(INSTALLED)
	KASSA_DATABASE_URL='$(KASSA_DATABASE_URL)' $(BIN)/kassa migrate
	KASSA_DATABASE_URL='$(KASSA_DATABASE_URL)' $(BIN)/kassa demo
	KASSA_DATABASE_URL='$(KASSA_DATABASE_URL)' $(BIN)/kassa serve --port $(PORT)

test: $(INSTALLED)
	@[ -x /usr/bin/chromium ] || echo "browser tests: skipped (no /usr/bin/chromium)"
	env -u KASSA_TEST_DATABASE_URL $(BIN)/pytest
	@if [ -n "$$KASSA_TEST_DATABASE_URL" ]; then \
		echo "--- again on $$KASSA_TEST_DATABASE_URL"; \
		$(BIN)/pytest; \
	fi

# Figures go to docs/benchmarks.md.  The API benchmark needs PostgreSQL and wrk (it uses a
# scratch database, kassa_bench, that it drops and re-creates).
bench: $(INSTALLED)
	$(BIN)/python -m bench.billrun
	$(BIN)/python -m bench.collection
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.portal

install: $(INSTALLED)

$(BIN)/python:
	python3 -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[test]'
	touch $(INSTALLED)
