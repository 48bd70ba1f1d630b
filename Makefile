# Kanal — two commands: `make run` and `make test`. Everything else is reused by them.
SHELL := /bin/bash
PYTHON311 ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)

.PHONY: install run chat test lint typecheck unit bench peers clean doctor crm-sandbox

install: $(STAMP) ## set up .venv (idempotent) and the CLI at .venv/bin/kanal

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON311) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

peers: ## Debian packages the tests talk to (real redis-server)
	@bash scripts/install-peers.sh

run: install ## the main job on embedded defaults
	$(VENV)/bin/kanal run

chat: install
	$(VENV)/bin/kanal chat

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

unit: install peers
	$(PY) -m pytest -q

test: install peers lint typecheck unit ## lint, types and the whole test suite against real peers

bench: install peers ## throughput and latency figures, written to reports/bench.json
	$(PY) -m tests.bench

doctor: install
	$(VENV)/bin/kanal doctor

crm-sandbox: install
	$(VENV)/bin/kanal crm-sandbox

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache
