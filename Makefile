# Everything runs from a fresh clone: `make test` and `make run` install what they need.
SHELL := /bin/bash
VENV := .venv
export MOTO_PYTHON := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test check unit integration run clean

## setup: create .venv with moto (AWS emulator), cargo-lambda and cfn-lint
setup: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## test: formatting, lints, every test (unit, integration against moto) and the local-stack smoke test
test: setup check
	cargo test --workspace --locked
	scripts/smoke-local-stack.sh

## check: formatting and clippy with warnings as errors
check:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## run: the local stack: moto with a table and key, and the receiver under cargo lambda watch
run: setup
	scripts/local-stack.sh

clean:
	rm -rf $(VENV) .local
