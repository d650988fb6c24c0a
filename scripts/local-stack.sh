#!/usr/bin/env bash
# The local stack, all on 127.0.0.1, in the foreground; Ctrl-C stops everything it started (by PID):
#   moto (DynamoDB + Secrets Manager) with the table and the Protime credentials secret,
#   the Protime simulator (emitting a change every EMIT_EVERY seconds),
#   the receiver and renewer under `cargo lambda watch`,
#   and one renewer invocation that creates the subscriptions and stores their keys.
# Ports: MOTO_PORT (5050), SIMULATOR_PORT (5060), WATCH_PORT (9000).
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_PORT=${MOTO_PORT:-5050}
SIMULATOR_PORT=${SIMULATOR_PORT:-5060}
WATCH_PORT=${WATCH_PORT:-9000}
WATCH_FLAGS=${WATCH_FLAGS:-}
EMIT_EVERY=${EMIT_EVERY:-5}
TABLE_NAME=${TABLE_NAME:-protime-webhooks-local}
SIGNING_KEY_SECRET_PREFIX=${SIGNING_KEY_SECRET_PREFIX:-protime-webhooks/signing-key/}
PROTIME_CREDENTIALS_SECRET=${PROTIME_CREDENTIALS_SECRET:-protime-webhooks/protime-credentials}
COLLECTIONS=${COLLECTIONS:-clockings,paid-presences,breaks,people}
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"  # cargo-lambda and zig from `make setup`
STATE=.local
mkdir -p "$STATE"
rm -f "$STATE/stack.env"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$MOTO_PORT" "$SIMULATOR_PORT" "$WATCH_PORT"; do
  port_free "$port" || { echo "port $port on 127.0.0.1 is taken; set MOTO_PORT / SIMULATOR_PORT / WATCH_PORT" >&2; exit 1; }
done

pids=()
stop() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM
wait_for() { # url, what
  for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "$2 did not come up at $1" >&2; exit 1
}

endpoint="http://127.0.0.1:$MOTO_PORT"
setsid "$PY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$STATE/moto.log" 2>&1 &
pids+=($!)
wait_for "$endpoint/moto-api/" moto

echo "building the Protime simulator ..."
cargo build --quiet -p integration-tests --bin protime-simulator
setsid target/debug/protime-simulator --port "$SIMULATOR_PORT" --emit-every "$EMIT_EVERY" >"$STATE/simulator.log" 2>&1 &
pids+=($!)
simulator="http://127.0.0.1:$SIMULATOR_PORT"
wait_for "$simulator/" simulator

credentials='{"tenant":"sim","environment":"simulator.local","clientId":"sim-client","clientSecret":"sim-client-secret"}'
"$PY" scripts/local_aws.py bootstrap "$endpoint" "$TABLE_NAME" "$PROTIME_CREDENTIALS_SECRET" "$credentials"
echo "moto on $endpoint (table $TABLE_NAME); simulator on $simulator"

receiver_base="http://127.0.0.1:$WATCH_PORT/lambda-url/receiver"
cat >"$STATE/functions.env" <<ENV
TABLE_NAME=$TABLE_NAME
SIGNING_KEY_SECRET_PREFIX=$SIGNING_KEY_SECRET_PREFIX
PROTIME_CREDENTIALS_SECRET=$PROTIME_CREDENTIALS_SECRET
DESTINATION_BASE_URL=$receiver_base
COLLECTIONS=$COLLECTIONS
PROTIME_API_BASE_URL=$simulator/connector/protimeapi/api/v1
PROTIME_TOKEN_URL=$simulator/tenants/sim/connect/token
PROTIME_USER_AGENT_COMPANY="Local development"
AWS_ENDPOINT_URL=$endpoint
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_LAMBDA_LOG_FORMAT=JSON
RUST_LOG=info
ENV

# shellcheck disable=SC2086
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" \
  --env-file "$STATE/functions.env" $WATCH_FLAGS >"$STATE/watch.log" 2>&1 &
watch_pid=$!
pids+=("$watch_pid")

echo "building and starting the receiver (log: $STATE/watch.log) ..."
code=000
for _ in $(seq 600); do
  kill -0 "$watch_pid" 2>/dev/null || { cat "$STATE/watch.log" >&2; echo "cargo lambda watch exited" >&2; exit 1; }
  # An unsigned request answered 401 means the receiver is built, running and verifying.
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$receiver_base/webhooks/clockings" -d '{}' --max-time 600 || true)
  [ "$code" = 401 ] && break
  sleep 1
done
[ "$code" = 401 ] || { echo "the receiver did not come up (last status $code)" >&2; exit 1; }

echo "invoking the renewer once (creates the subscriptions in the simulator, stores their keys) ..."
cargo lambda invoke renewer --data-file events/scheduled.json \
  --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" | tee "$STATE/renewer-report.json"
echo

cat >"$STATE/stack.env" <<ENV
RECEIVER_URL=$receiver_base/webhooks
SIMULATOR_URL=$simulator
AWS_ENDPOINT_URL=$endpoint
TABLE_NAME=$TABLE_NAME
SIGNING_KEY_SECRET_PREFIX=$SIGNING_KEY_SECRET_PREFIX
ENV

cat <<MSG

Local stack ready. The simulator emits a change every ${EMIT_EVERY}s to: $COLLECTIONS
  see what is stored:     $PY scripts/local_aws.py scan $endpoint $TABLE_NAME
  simulator log:          $STATE/simulator.log      functions' JSON logs: $STATE/watch.log
  send your own event (signed with the key the renewer stored):
    KEY=\$($PY scripts/local_aws.py key $endpoint ${SIGNING_KEY_SECRET_PREFIX}clockings)
    BODY='{"id":1,"changeVersion":"1","person":{"id":7},"date":"2025-01-01"}'
    curl -i -X POST $receiver_base/webhooks/clockings \\
      -H "Authorization: HMAC-SHA256 \$(printf %s "\$BODY" | openssl dgst -sha256 -hmac "\$KEY" -binary | base64)" \\
      -d "\$BODY"
  run the renewer again:  cargo lambda invoke renewer --data-file events/scheduled.json --invoke-port $WATCH_PORT
  expire the webhooks:    curl -X POST '$simulator/_simulator/advance?hours=721'  (then run the renewer: recover)
Ctrl-C stops everything.
MSG

wait "$watch_pid"
