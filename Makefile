# nbkeeper: every target creates or refreshes .venv itself from the pinned requirements.
SHELL := /bin/bash
# Python 3.13, the functions' Lambda runtime (python3.13). A pyenv shim answers only for the
# selected version, so when `python3.13` refuses, take pyenv's own 3.13 (PYTHON=... overrides).
PY_MINOR := 3.13
IS_PY_MINOR := import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PY_MINOR)".split("."))))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach p,python$(PY_MINOR) $(wildcard $(shell pyenv root 2>/dev/null)/versions/$(PY_MINOR)*/bin/python$(PY_MINOR)),$(shell $(p) -c '$(IS_PY_MINOR)' >/dev/null 2>&1 && echo $(p))))
endif
VENV := .venv
BIN := $(VENV)/bin
# The stamp names the Python version: a venv made by an older Python is made anew.
STAMP := $(VENV)/.installed-py$(PY_MINOR)
EMULATOR_PORT ?= 8765
FUNCTIONS := $(wildcard functions/*)

DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed-py$(PY_MINOR)
AWS_REGION ?= eu-west-1

# $(call fresh_venv,DIR): keep DIR if it runs Python $(PY_MINOR), else make it anew with $(PYTHON).
fresh_venv = $(1)/bin/python -c '$(IS_PY_MINOR)' 2>/dev/null || { \
	test -n "$(PYTHON)" || { echo "Python $(PY_MINOR) not found: install it or pass PYTHON=/path/to/python$(PY_MINOR)" >&2; exit 1; }; \
	rm -rf $(1) && $(PYTHON) -m venv $(1); }

.PHONY: venv deploy-venv test lint typecheck pytest demo emulator serve plan bench validate build deploy manifest clean
.PHONY: invoke venv-notice reliability

$(STAMP): requirements-dev.txt shared/requirements.txt pyproject.toml shared/pyproject.toml
	@$(call fresh_venv,$(VENV))
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e shared -e .
	@touch $@

# The install is quiet: say what is happening, and keep setuptools' notice box about editable
# installs (harmless here) out of the output.
$(STAMP): export PYTHONWARNINGS := ignore:Editable installation
$(STAMP): | venv-notice
venv-notice:
	@if [ ! -x $(BIN)/python ]; then \
	  echo "nbkeeper: first run: creating .venv from the pinned requirements (about 1-2 minutes; later runs reuse it)"; \
	elif [ ! -f $(STAMP) ] || [ -n "$$(find requirements-dev.txt shared/requirements.txt pyproject.toml shared/pyproject.toml -newer $(STAMP))" ]; then \
	  echo "nbkeeper: the requirements changed: updating .venv"; \
	fi

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy shared/nbkeeper local/nbkeeper_local
	@# Every handler is functions/<name>/app.py: check each folder on its own.
	@for fn in $(FUNCTIONS); do echo "mypy $$fn"; (cd $$fn && ../../$(BIN)/mypy --config-file ../../pyproject.toml app.py) || exit 1; done

# tests/functional/test_built_handlers.py runs the real `sam build` (SAM CLI from the deploy venv).
pytest: $(STAMP) $(DEPLOY_STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/nbkeeper demo $(ARGS)

emulator: $(STAMP)
	$(BIN)/nbkeeper emulator --port $(EMULATOR_PORT)

serve: $(STAMP)
	$(BIN)/nbkeeper serve $(ARGS)

# make plan [ENV_FILE=local/nbkeeper.env] [ARGS="--at 2026-11-23T19:55:00+01:00 --json"]
plan: $(STAMP)
	$(BIN)/nbkeeper plan $(if $(ENV_FILE),--env-file $(ENV_FILE)) $(ARGS)

# One handler on one events/ sample, in the local world (no Docker):
# make invoke FUNCTION=slack_commands EVENT=events/slack_command_help.json
invoke: $(STAMP)
	$(BIN)/nbkeeper invoke $(FUNCTION) $(EVENT) $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

# The reliability suites at full size (tests/reliability): soak, keeper chaos, abuse, secrets.
# Prints its seed and figures, writes docs/RELIABILITY.md, fails on any lost, duplicated,
# out-of-order, wrongly stopped or leaked item. Seed 1 unless RELIABILITY_SEED=N (or =random).
# `make test` runs the same suites at the bounded size (about 40 s).
reliability: $(STAMP)
	RELIABILITY_SIZE=full RELIABILITY_DOC=docs/RELIABILITY.md $(BIN)/pytest -m reliability -q tests/reliability

$(DEPLOY_STAMP): requirements-deploy.txt
	@$(call fresh_venv,$(DEPLOY_VENV))
	$(DEPLOY_VENV)/bin/python -m pip install --quiet -r requirements-deploy.txt
	@touch $@

deploy-venv: $(DEPLOY_STAMP)

# sam validate --lint, cfn-lint, and checkov (skips are justified inside template.yaml).
validate: $(DEPLOY_STAMP)
	SAM_CLI_TELEMETRY=0 $(DEPLOY_VENV)/bin/sam validate --lint --region $(AWS_REGION)
	$(DEPLOY_VENV)/bin/cfn-lint template.yaml
	$(DEPLOY_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

build: $(DEPLOY_STAMP)
	SAM_CLI_TELEMETRY=0 PATH="$(abspath $(DEPLOY_VENV))/bin:$$PATH" $(DEPLOY_VENV)/bin/sam build

# Fill the Slack app manifest from the deployed stack: make manifest STACK=nbkeeper
manifest: $(STAMP) $(DEPLOY_STAMP)
	PATH="$(abspath $(DEPLOY_VENV))/bin:$$PATH" $(BIN)/nbkeeper manifest $(if $(STACK),--stack $(STACK))

deploy: build
	SAM_CLI_TELEMETRY=0 $(DEPLOY_VENV)/bin/sam deploy --guided

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis
