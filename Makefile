# nbkeeper: every target creates or refreshes .venv itself from the pinned requirements.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EMULATOR_PORT ?= 8765
FUNCTIONS := $(wildcard functions/*)

DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
AWS_REGION ?= eu-west-1

.PHONY: venv test lint typecheck pytest demo emulator serve plan bench validate build deploy manifest clean
.PHONY: invoke venv-notice

$(STAMP): requirements-dev.txt shared/requirements.txt pyproject.toml shared/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
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

pytest: $(STAMP)
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

$(DEPLOY_STAMP): requirements-deploy.txt
	@test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet -r requirements-deploy.txt
	@touch $@

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
