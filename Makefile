# Kanal — two commands: `make run` and `make test`. Everything else is reused by them.
SHELL := /bin/bash
PYTHON311 ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)

.PHONY: install run chat test lint typecheck unit bench peers clean doctor crm-sandbox rasa-venv nlu-model

install: $(STAMP) ## set up .venv (idempotent) and the CLI at .venv/bin/kanal

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON311) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

peers: ## the real peers the tests talk to: redis-server, dovecot, opensmtpd, kannel, chromium (Debian), npm packages
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

# Rasa 3.6 needs Python 3.10: python3.10 on PATH or pyenv's (Debian bookworm packages none);
# or name one with `make PYTHON310=/path/to/python3.10 ...`.
PYTHON310 ?=

rasa-venv: install ## the Rasa venv (Python 3.10), cached under ~/.cache/kanal by requirements hash
	@KANAL_PYTHON310="$(PYTHON310)" $(PY) -m nlu.rasa venv >/dev/null

nlu-model: rasa-venv ## train the NLU model if nlu/config.yml or nlu/data changed (cached by hash)
	@KANAL_PYTHON310="$(PYTHON310)" $(PY) -m nlu.rasa train

unit: install peers nlu-model
	$(PY) -m pytest -q

test: install peers lint typecheck unit ## lint, types and the whole test suite against real peers

bench: install peers nlu-model ## throughput and latency figures, written to reports/bench.json
	$(PY) -m tests.bench

doctor: install
	$(VENV)/bin/kanal doctor

crm-sandbox: install
	$(VENV)/bin/kanal crm-sandbox

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache
