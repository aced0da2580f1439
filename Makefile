# nbkeeper: every target creates or refreshes .venv itself from the pinned requirements.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EMULATOR_PORT ?= 8765
FUNCTIONS := $(wildcard functions/*)

.PHONY: venv test lint typecheck pytest demo emulator bench clean

$(STAMP): requirements-dev.txt shared/requirements.txt pyproject.toml shared/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e shared -e .
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy shared/nbkeeper local/nbkeeper_local
	@# Every handler is functions/<name>/app.py: check each folder on its own.
	@for fn in $(FUNCTIONS); do echo "mypy $$fn"; (cd $$fn && ../../$(BIN)/mypy --config-file ../../pyproject.toml app.py) || exit 1; done

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/nbkeeper demo

emulator: $(STAMP)
	$(BIN)/nbkeeper emulator --port $(EMULATOR_PORT)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
