# Two commands: `make run` starts the whole system on embedded defaults,
# `make test` runs the linters and the whole test suite. Both set themselves up.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint test-unit test-pg test-e2e install bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: export DEBUG ?= 1
run: export WEB_HOST := $(HOST)
run: export WEB_PORT := $(PORT)
run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py loaddemo
	@echo
	@echo "  Switchboard is starting on http://$(HOST):$(PORT)/"
	@echo "    agents' console     http://$(HOST):$(PORT)/console/"
	@echo "    supervisors         http://$(HOST):$(PORT)/console/supervisor/"
	@echo "    customer simulator  http://$(HOST):$(PORT)/simulator/"
	@echo "    admin               http://$(HOST):$(PORT)/admin/"
	@echo "    health              http://$(HOST):$(PORT)/healthz"
	@echo "  Demo logins (password: demo): agents ana, ben; supervisor sam"
	@echo "  Ctrl-C stops everything."
	@echo
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The main suite on SQLite; concurrency tests on a throwaway PostgreSQL cluster;
# the real stack in a browser, in its own process (Playwright owns an event loop).
test-unit: install
	$(BIN)/pytest tests

test-pg: install
	$(BIN)/pytest tests/pg

test-e2e: install
	$(BIN)/pytest tests/e2e

test: lint test-unit test-pg test-e2e

# The load harness (bench/README.md): the production shape on a throwaway
# PostgreSQL cluster, customers and agents driving it, results in bench/results/.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: install
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf var
