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

.PHONY: venv test lint typecheck pytest demo emulator serve plan bench reliability validate build deploy manifest clean

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

serve: $(STAMP)
	$(BIN)/nbkeeper serve

plan: $(STAMP)
	$(BIN)/nbkeeper plan

bench: $(STAMP)
	$(BIN)/python -m bench

# The reliability suites at full size (tests/reliability): soak, keeper chaos, abuse, secrets.
# Prints its seed and figures, writes docs/RELIABILITY.md, fails on any lost, duplicated,
# out-of-order, wrongly stopped or leaked item. RELIABILITY_SEED=N replays a run.
reliability: $(STAMP)
	RELIABILITY_SIZE=full RELIABILITY_DOC=docs/RELIABILITY.md $(BIN)/pytest -m reliability -q tests/reliability

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
