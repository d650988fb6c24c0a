# Everything runs from a fresh clone: `make test` and `make run` install what they need.
SHELL := /bin/bash
VENV := .venv
export MOTO_PYTHON := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test check lint-template run clean

## setup: create .venv with moto (AWS emulator), cargo-lambda and cfn-lint, and .venv-sam with the SAM CLI
setup: $(VENV)/.installed .venv-sam/.installed

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

.venv-sam/.installed: requirements-sam.txt
	python3 -m venv .venv-sam
	.venv-sam/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

## test: formatting, lints, every test (unit, integration against moto) and the local-stack smoke test
test: setup check lint-template
	cargo test --workspace --locked
	scripts/smoke-local-stack.sh

## check: formatting and clippy with warnings as errors
check:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## lint-template: cfn-lint and sam validate --lint on template.yaml (offline)
lint-template: setup
	cfn-lint template.yaml
	AWS_DEFAULT_REGION=eu-west-1 SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --lint --template template.yaml

## run: the local stack: moto with a table and key, and the receiver under cargo lambda watch
run: setup
	scripts/local-stack.sh

clean:
	rm -rf $(VENV) .venv-sam .local
