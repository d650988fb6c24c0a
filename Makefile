# Everything runs from a fresh clone: `make test` and `make run` install what they need.
SHELL := /bin/bash
VENV := .venv
export MOTO_PYTHON := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The local stack's ports (see README, "make run"); the stack commands find a stack by WATCH_PORT.
export MOTO_PORT ?= 5050
export SIMULATOR_PORT ?= 5060
export WATCH_PORT ?= 9000
# send-event's body, read from the environment by scripts/stack.sh (quotes and $ stay as typed).
export BODY
# Each stage of `make test` prints its duration ("stage: NAME N s").
STAGE := scripts/stage.sh

.DEFAULT_GOAL := help
.PHONY: help setup setup-sam setup-scan deploy test check lint-template run scan quarantine feed send-event send-tampered invoke-renewer invoke-syncer backfill drop-deliveries delete webhooks cli advance bench-cpu bench-sync bench-cost bench-memory clean

## help: list the targets (the default)
help:
	@echo "protime-webhooks: make TARGET"
	@sed -n 's/^## \([a-z-]*\): \(.*\)/  \1\t\2/p' $(MAKEFILE_LIST) | expand -t 20

## setup: create .venv with moto (AWS emulator), cargo-lambda and cfn-lint
setup: $(VENV)/.installed

## setup-sam: create .venv-sam with the SAM CLI (template lint, deploys)
setup-sam: .venv-sam/.installed

## setup-scan: create .venv-scan with the template scanners (checkov, cfn-lint-serverless)
setup-scan: .venv-scan/.installed

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(STAGE) venv $(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

.venv-sam/.installed: requirements-sam.txt
	python3 -m venv .venv-sam
	$(STAGE) venv-sam .venv-sam/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

.venv-scan/.installed: requirements-scan.txt
	python3 -m venv .venv-scan
	$(STAGE) venv-scan .venv-scan/bin/pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	touch $@

## test: formatting, lints, every test (unit, integration against moto) and the local-stack smoke test
# --tests: the targets with tests only (there are no doc tests); clippy has already
# checked that the examples and benchmarks compile, so they are not linked here as well.
test: setup check lint-template
	$(STAGE) test-build cargo test --workspace --locked --tests --no-run
	$(STAGE) test-run cargo test --workspace --locked --tests
	$(STAGE) smoke scripts/smoke-local-stack.sh

## check: formatting, one feature set for every build, the docs' links, clippy and rustdoc with warnings as errors
check:
	cargo fmt --all --check
	$(STAGE) features scripts/check-features.sh
	$(STAGE) docs python3 scripts/check_docs.py
	$(STAGE) shape python3 scripts/check_shape.py
	$(STAGE) clippy cargo clippy --workspace --all-targets --locked -- -D warnings
	$(STAGE) rustdoc env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

## lint-template: cfn-lint, sam validate --lint and the scanners against their answers (docs/deploying.md) on template.yaml (offline)
# scanners: checkov and cfn-lint's serverless rules; a finding not answered in the deploying
# guide's Security review, or an answer whose check no longer fires, fails it.
lint-template: setup setup-sam setup-scan
	$(STAGE) cfn-lint cfn-lint template.yaml
	AWS_DEFAULT_REGION=eu-west-1 SAM_CLI_TELEMETRY=0 $(STAGE) sam-validate .venv-sam/bin/sam validate --lint --template template.yaml
	$(STAGE) scanners .venv-scan/bin/python scripts/scan_template.py

## deploy: build for arm64 and deploy to your AWS account (sam deploy --guided the first time; docs/deploying.md)
deploy: setup setup-sam
	scripts/deploy.sh

## run: the local stack (moto, the Protime simulator, cargo lambda watch); Ctrl-C stops it
run: setup
	@scripts/local-stack.sh

## scan: print every item of a running stack's table
scan:
	@scripts/stack.sh scan

## quarantine: print every body a running stack quarantined (signed, but never storable)
quarantine:
	@scripts/stack.sh quarantine

## feed: print the latest change events of a running stack (COUNT=20, ID= for one record's)
feed:
	@scripts/stack.sh feed

## send-event: sign a clocking with the stored key and POST it to a running stack (BODY='...' to choose)
send-event:
	@scripts/stack.sh send-event

## send-tampered: POST a clocking with a byte added after signing (answered 401)
send-tampered:
	@scripts/stack.sh send-tampered

## invoke-renewer: run the renewer of a running stack once and print its report
invoke-renewer:
	@scripts/stack.sh invoke-renewer

## invoke-syncer: run the syncer of a running stack once (a scheduled run) and print its report
invoke-syncer:
	@scripts/stack.sh invoke-syncer

## backfill: restart the initial load of COLLECTIONS (comma-separated), from FROM (YYYY-MM-DD) if given
backfill:
	@scripts/stack.sh backfill "$(COLLECTIONS)" $(FROM)

## drop-deliveries: the stack's simulator silently drops its next COUNT webhook deliveries
drop-deliveries:
	@scripts/stack.sh drop-deliveries $(COUNT)

## delete: the stack's simulator deletes record ID of COLLECTION and delivers nothing
delete:
	@scripts/stack.sh delete $(COLLECTION) $(ID)

## webhooks: the webhooks the stack's simulator holds, with their status
webhooks:
	@scripts/stack.sh webhooks

## cli: the protime-webhooks command line against a running stack (ARGS="status", ARGS="--help")
cli:
	@scripts/stack.sh cli $(ARGS)

## advance: move a running stack's simulator clock by HOURS (webhooks expire after 720)
advance:
	@scripts/stack.sh advance $(HOURS)

## bench-cpu: CPU per event of the release receiver beside a Python + boto3 peer (docs/performance.md)
bench-cpu: setup .venv-bench/.installed
	cargo build --release --locked -p receiver
	.venv-bench/bin/python scripts/bench_cpu.py --rust target/release/receiver --python

## bench-sync: the syncer's initial load of 100,000 records into moto beside moto's raw PutItem rate (docs/performance.md)
bench-sync: setup
	cargo run --release --locked -p integration-tests --example sync_load -- $(RECORDS)

## bench-cost: what a deployment costs idle and per million events, counted from the real functions and priced with scripts/prices.json (docs/cost.md)
bench-cost: setup
	cargo run --release --locked -p integration-tests --example cost -- $(or $(EVENTS),500) >/dev/null

## bench-memory: the syncer's peak RSS for deltaLink answers of 50,000 to 200,000 changes (docs/performance.md)
bench-memory:
	cargo build --release --locked -p integration-tests --bin protime-simulator --example sync_memory
	target/release/examples/sync_memory $(CHANGES)

.venv-bench/.installed: requirements-bench.txt
	python3 -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

## clean: remove the venvs, every stack's state and logs (not target/)
clean:
	rm -rf $(VENV) .venv-sam .venv-scan .venv-bench .local .local-smoke.log .local-bench.log
