#!/usr/bin/env bash
# The local stack, all on 127.0.0.1, in the foreground; Ctrl-C stops everything it started (by PID):
#   moto (DynamoDB + Secrets Manager) with the table and the Protime credentials secret,
#   the Protime simulator (SEED records per collection, emitting a change every EMIT_EVERY seconds),
#   the receiver, renewer and syncer under `cargo lambda watch`,
#   one renewer invocation that creates the subscriptions and stores their keys,
#   one syncer invocation that loads the simulator's records (the initial load), and then the
#   syncer every SYNC_EVERY seconds (0: only on demand, `make invoke-syncer`).
# Ports: MOTO_PORT (5050), SIMULATOR_PORT (5060), WATCH_PORT (9000). Each stack keeps its logs
# and state in STACK_DIR (default .local/<WATCH_PORT>), so stacks on other ports never meet.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_PORT=${MOTO_PORT:-5050}
SIMULATOR_PORT=${SIMULATOR_PORT:-5060}
WATCH_PORT=${WATCH_PORT:-9000}
WATCH_FLAGS=${WATCH_FLAGS:-}
EMIT_EVERY=${EMIT_EVERY:-5}
SEED=${SEED:-30}
PAGE_SIZE=${PAGE_SIZE:-10}
SYNC_EVERY=${SYNC_EVERY:-60}
TABLE_NAME=${TABLE_NAME:-protime-webhooks-local}
SIGNING_KEYS_SECRET=${SIGNING_KEYS_SECRET:-protime-webhooks/signing-keys}
PROTIME_CREDENTIALS_SECRET=${PROTIME_CREDENTIALS_SECRET:-protime-webhooks/protime-credentials}
QUARANTINE_BUCKET=${QUARANTINE_BUCKET:-protime-webhooks-quarantine}
CHANGE_BUS=${CHANGE_BUS:-protime-webhooks-local-changes}
FEED_QUEUE=${FEED_QUEUE:-protime-webhooks-local-feed}
COLLECTIONS=${COLLECTIONS:-clockings,paid-presences,breaks,people}
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"  # cargo-lambda (and the ziglang it finds) from `make setup`

# Ctrl-C is meant for the stack, not for `make` around it (which would report the interrupt as
# a failure): from a terminal, this script's own process group takes the terminal's foreground,
# so the interrupt reaches only the stack, which stops and exits 0.
if [ -t 0 ] && [ -z "${LOCAL_STACK_FOREGROUND:-}" ]; then
  export LOCAL_STACK_FOREGROUND=1
  exec "$PY" -c 'import os, signal, sys
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
os.setpgid(0, 0)
os.tcsetpgrp(sys.stdin.fileno(), os.getpgrp())
os.execvp(sys.argv[1], sys.argv[1:])' "$0" "$@"
fi

# Nothing is touched before the ports are known to be free: a stack already running keeps its state.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$MOTO_PORT" "$SIMULATOR_PORT" "$WATCH_PORT"; do
  port_free "$port" || { echo "port $port on 127.0.0.1 is taken (another stack?); set MOTO_PORT, SIMULATOR_PORT and WATCH_PORT to free ports" >&2; exit 1; }
done
STATE=${STACK_DIR:-.local/$WATCH_PORT}
mkdir -p "$STATE"
rm -f "$STATE/stack.env" "$STATE/renewer-report.json" "$STATE/syncer-report.json"

pids=()
stop() {
  for pid in ${pids[@]+"${pids[@]}"}; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap stop EXIT
# Ctrl-C (or a TERM) is how a stack is meant to end: stop everything, say so, exit 0.
trap 'stop; echo; echo "local stack stopped"; exit 0' INT TERM
wait_for() { # url, what
  for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "$2 did not come up at $1" >&2; exit 1
}

endpoint="http://127.0.0.1:$MOTO_PORT"
# moto's request log is coloured for a terminal; the file gets plain text.
# scripts/moto_server.py serializes requests, so conditional writes are atomic as on DynamoDB.
# MOTO_SERVER_FLAGS: extra launcher options (`--concurrent` only to measure what the lock costs).
# shellcheck disable=SC2016
setsid bash -c 'exec "$0" scripts/moto_server.py "$1" --serve-forever $2 2>&1 | sed -u "s/\x1b\[[0-9;]*m//g"' \
  "$PY" "$MOTO_PORT" "${MOTO_SERVER_FLAGS:-}" >"$STATE/moto.log" 2>&1 &
pids+=($!)
wait_for "$endpoint/moto-api/" moto

echo "building the Protime simulator ..."
cargo build --quiet -p integration-tests --bin protime-simulator
setsid target/debug/protime-simulator --port "$SIMULATOR_PORT" --emit-every "$EMIT_EVERY" \
  --seed "$SEED" --page-size "$PAGE_SIZE" >"$STATE/simulator.log" 2>&1 &
pids+=($!)
simulator="http://127.0.0.1:$SIMULATOR_PORT"
wait_for "$simulator/" simulator

credentials='{"tenant":"sim","environment":"simulator.local","clientId":"sim-client","clientSecret":"sim-client-secret"}'
"$PY" scripts/local_aws.py bootstrap "$endpoint" "$TABLE_NAME" "$PROTIME_CREDENTIALS_SECRET" "$credentials" "$QUARANTINE_BUCKET" "$SIGNING_KEYS_SECRET"
"$PY" scripts/local_aws.py feed-setup "$endpoint" "$CHANGE_BUS" "$FEED_QUEUE"
echo "moto on $endpoint (table $TABLE_NAME, quarantine bucket $QUARANTINE_BUCKET); simulator on $simulator"

receiver_base="http://127.0.0.1:$WATCH_PORT/lambda-url/receiver"
cat >"$STATE/functions.env" <<ENV
TABLE_NAME=$TABLE_NAME
SIGNING_KEYS_SECRET=$SIGNING_KEYS_SECRET
QUARANTINE_BUCKET=$QUARANTINE_BUCKET
EVENT_BUS_NAME=$CHANGE_BUS
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

# The change feed: the table's stream to the publisher, as Lambda's event source mapping would.
setsid "$PY" -u scripts/local_aws.py pump "$endpoint" "$TABLE_NAME" \
  "http://127.0.0.1:$WATCH_PORT/2015-03-31/functions/publisher/invocations" >"$STATE/feed.log" 2>&1 &
pids+=($!)

echo "invoking the renewer once (creates the subscriptions in the simulator, stores their keys) ..."
cargo lambda invoke renewer --data-file events/scheduled.json \
  --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" | tee "$STATE/renewer-report.json"
echo

echo "invoking the syncer once (the initial load of the simulator's records through delta; people through its list) ..."
cargo lambda invoke syncer --data-file events/scheduled.json \
  --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" | tee "$STATE/syncer-report.json"
echo

# The syncer's schedule, short: each run follows every deltaLink (and re-lists people when due).
if [ "$SYNC_EVERY" -gt 0 ]; then
  setsid bash -c 'while sleep "$0"; do
      date -u +"%FT%TZ scheduled syncer run"
      cargo lambda invoke syncer --data-file events/scheduled.json --invoke-address 127.0.0.1 --invoke-port "$1"
      echo
    done' "$SYNC_EVERY" "$WATCH_PORT" >"$STATE/syncer.log" 2>&1 &
  pids+=($!)
fi

cat >"$STATE/stack.env" <<ENV
RECEIVER_URL=$receiver_base/webhooks
SIMULATOR_URL=$simulator
AWS_ENDPOINT_URL=$endpoint
TABLE_NAME=$TABLE_NAME
SIGNING_KEYS_SECRET=$SIGNING_KEYS_SECRET
QUARANTINE_BUCKET=$QUARANTINE_BUCKET
FEED_QUEUE=$FEED_QUEUE
WATCH_PORT=$WATCH_PORT
ENV

ports=""  # the stack commands find a stack by its WATCH_PORT
[ "$WATCH_PORT" = 9000 ] || ports=" WATCH_PORT=$WATCH_PORT"
cat <<MSG

Local stack ready (state and logs in $STATE). The simulator emits a change every ${EMIT_EVERY}s to: $COLLECTIONS
The syncer loaded the simulator's $SEED records per collection and runs every ${SYNC_EVERY}s (0: on demand).
From another terminal, in this folder:
  what is stored:         make scan$ports
  what is quarantined:    make quarantine$ports
  the change feed:        make feed$ports   (the latest events on the change bus)
  send a signed event:    make send-event$ports
  run the renewer again:  make invoke-renewer$ports
  run the syncer now:     make invoke-syncer$ports
  reload one collection:  make backfill COLLECTIONS=clockings FROM=2025-01-01$ports
  lose webhook events:    make drop-deliveries COUNT=3$ports   (the next syncer run brings them in)
  expire every webhook:   make advance HOURS=721$ports   (then make invoke-renewer: every action recover)
  logs:                   $STATE/watch.log (the functions' JSON logs), $STATE/syncer.log (the scheduled
                          syncer runs' reports), $STATE/feed.log (the stream to the publisher),
                          $STATE/simulator.log, $STATE/moto.log
Ctrl-C stops everything.
MSG

wait "$watch_pid"
