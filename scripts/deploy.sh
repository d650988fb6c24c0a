#!/usr/bin/env bash
# make deploy: builds the four functions for arm64 with SAM's cargo-lambda build and deploys the
# stack. The first time, `sam deploy --guided` asks for the stack's name, region and parameters
# and saves the answers in samconfig.toml (kept out of git); after that, `sam deploy` reuses
# them. What each prompt wants: docs/deploying.md#first-deployment.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "deploy: $2" >&2; exit 1; }; }
need rustup "rustup is needed to add the arm64 Rust target (https://rustup.rs)"
need aws "the AWS CLI is needed for the credentials sam uses (aws configure, or AWS_PROFILE)"
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "deploy: adding the arm64 Rust target (aarch64-unknown-linux-gnu)"
  rustup target add aarch64-unknown-linux-gnu
fi
aws sts get-caller-identity --query Account --output text >/dev/null ||
  { echo "deploy: no AWS credentials: run aws configure (or set AWS_PROFILE) first" >&2; exit 1; }

# cargo-lambda and zig from make setup's .venv; SAM from make setup-sam's .venv-sam.
export PATH="$PWD/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1
.venv-sam/bin/sam build --beta-features
# An unchanged build gives an empty change set: that is no failure.
if [ -f samconfig.toml ]; then
  .venv-sam/bin/sam deploy --no-fail-on-empty-changeset
else
  cat <<'ASK'
deploy: sam deploy --guided asks for the stack's name, its region and every parameter (each has
a default; docs/deploying.md#first-deployment says what to set). Answer "y" to
"ReceiverFunction has no authentication. Is this okay?": the receiver authenticates each event
by its HMAC signature, which Protime sends instead of API Gateway credentials. The answers are
saved in samconfig.toml; if this first deployment rolls back, delete the stack (sam delete)
before running make deploy again.
ASK
  .venv-sam/bin/sam deploy --guided --no-fail-on-empty-changeset
fi
cat <<'NEXT'
deploy: done. After the first deployment, once (docs/deploying.md#first-deployment):
  1. fill the credentials secret (the ProtimeCredentialsSecretArn output),
  2. invoke the renewer once (RenewerFunctionName),
  3. invoke the syncer once (SyncerFunctionName), or wait for its schedule,
  4. check the tenant: protime-webhooks --stack <stack> doctor (cargo install --path cli).
NEXT
