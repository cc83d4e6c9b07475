# One command runs the service locally (`make dev`), one passes the tests (`make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help install dev test faults load bench lint typecheck format migrate token pay watch histories clean

help:
	@echo "make dev      create the venv, install, start the whole stack locally (Ctrl-C stops it)"
	@echo "make test     lint, type checks and the whole test suite"
	@echo "make faults   the fault suite: servers killed and restarted, Stripe failing (~5 min)"
	@echo "make load [N=500] [CONCURRENCY=16]  N checkouts through a stack of its own, then an audit"
	@echo "make bench [QUICK=1] [N=300] [CONCURRENCY=16] [OPEN=10000]  the service against a no-op twin: table, JSON and PNG in bench/results"
	@echo "make lint     ruff and mypy only"
	@echo "make format   apply ruff's formatting and safe fixes"
	@echo "make migrate  alembic upgrade head against DATABASE_URL"
	@echo "make token SUB=alice EMAIL=alice@example.com [ROLES=operator]  a dev bearer token"
	@echo "make pay PI=pi_... [CARD=pm_card_visa]  pay a PaymentIntent at localstripe, as a buyer"
	@echo "make watch ARTWORK=7 [TOKEN=...] [API=http://localhost:8000]  print an auction's live events"
	@echo "make histories  record the saga's replay fixtures again (only for a change no checkout in flight meets)"
	@echo "make clean    remove the venv, caches and local data (.data)"

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(INSTALLED)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

typecheck: install
	$(BIN)/mypy .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest

# pytest exits 5 when it collects nothing: make fails on it like on any other non-zero code.
faults: install
	$(BIN)/pytest -m faults tests/faults

N ?= 500
CONCURRENCY ?= 16
load: install
	$(BIN)/python -m loadtest --checkouts $(N) --concurrency $(CONCURRENCY)

# The full run takes about 22 minutes here (most of it opening 10,000 checkouts); QUICK=1 is CI's.
bench: install
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(if $(filter command line,$(origin N)),--checkouts $(N)) $(if $(filter command line,$(origin CONCURRENCY)),--concurrency $(CONCURRENCY)) $(if $(OPEN),--open-checkouts $(OPEN))

dev: install
	$(BIN)/python -m devstack.run

migrate: install
	$(BIN)/alembic upgrade head

token: install
	@$(BIN)/python -m devstack.token --sub "$(or $(SUB),alice)" --email "$(or $(EMAIL),alice@example.com)" $(if $(ROLES),--roles $(ROLES))

pay: install
	@$(BIN)/python -m devstack.pay "$(PI)" $(if $(CARD),--card $(CARD))

watch: install
	@test -n "$(ARTWORK)" || { echo "usage: make watch ARTWORK=7 [TOKEN=...] [API=...]" >&2; exit 2; }
	@$(BIN)/python -m devstack.watch --artwork "$(ARTWORK)" $(if $(TOKEN),--token "$(TOKEN)") $(if $(API),--api "$(API)")

histories: install
	rm -f tests/workflows/histories/*.json
	RECORD_HISTORIES=1 $(BIN)/pytest tests/workflows -q --deselect tests/workflows/test_replay.py

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
