#!/usr/bin/env bash
# The local stack: moto (DynamoDB + Secrets Manager) with the table and a signing key per
# collection, and the receiver under `cargo lambda watch`. Runs in the foreground; Ctrl-C stops
# everything it started (by PID). Ports: MOTO_PORT (5050) and WATCH_PORT (9000), on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_PORT=${MOTO_PORT:-5050}
WATCH_PORT=${WATCH_PORT:-9000}
WATCH_FLAGS=${WATCH_FLAGS:-}
TABLE_NAME=${TABLE_NAME:-protime-webhooks-local}
SIGNING_KEY_SECRET_PREFIX=${SIGNING_KEY_SECRET_PREFIX:-protime-webhooks/signing-key/}
LOCAL_KEY=${LOCAL_KEY:-local-webhook-key}
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"  # cargo-lambda and zig from `make setup`
STATE=.local
mkdir -p "$STATE"
rm -f "$STATE/stack.env"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$MOTO_PORT" "$WATCH_PORT"; do
  port_free "$port" || { echo "port $port on 127.0.0.1 is taken; set MOTO_PORT / WATCH_PORT" >&2; exit 1; }
done

pids=()
stop() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

endpoint="http://127.0.0.1:$MOTO_PORT"
setsid "$PY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$STATE/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "$endpoint/moto-api/" && break; sleep 0.1; done
"$PY" scripts/local_aws.py bootstrap "$endpoint" "$TABLE_NAME" "$SIGNING_KEY_SECRET_PREFIX" "$LOCAL_KEY"
echo "moto on $endpoint: table $TABLE_NAME, keys $SIGNING_KEY_SECRET_PREFIX<collection> = $LOCAL_KEY"

cat >"$STATE/functions.env" <<ENV
TABLE_NAME=$TABLE_NAME
SIGNING_KEY_SECRET_PREFIX=$SIGNING_KEY_SECRET_PREFIX
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

receiver="http://127.0.0.1:$WATCH_PORT/lambda-url/receiver/webhooks"
echo "building and starting the receiver (log: $STATE/watch.log) ..."
for _ in $(seq 600); do
  kill -0 "$watch_pid" 2>/dev/null || { cat "$STATE/watch.log" >&2; echo "cargo lambda watch exited" >&2; exit 1; }
  # An unsigned request answered 401 means the receiver is built, running and verifying.
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$receiver/clockings" -d '{}' --max-time 600 || true)
  [ "$code" = 401 ] && break
  sleep 1
done
[ "$code" = 401 ] || { echo "the receiver did not come up (last status $code)" >&2; exit 1; }

cat >"$STATE/stack.env" <<ENV
RECEIVER_URL=$receiver
AWS_ENDPOINT_URL=$endpoint
TABLE_NAME=$TABLE_NAME
LOCAL_KEY=$LOCAL_KEY
ENV

cat <<MSG

Local stack ready.
  receiver: POST $receiver/<collection>
  send a signed event:
    BODY='{"id":1,"changeVersion":"1","person":{"id":7},"date":"2025-01-01"}'
    curl -i -X POST $receiver/clockings \\
      -H "Authorization: HMAC-SHA256 \$(printf %s "\$BODY" | openssl dgst -sha256 -hmac $LOCAL_KEY -binary | base64)" \\
      -d "\$BODY"
  see what is stored:
    $PY scripts/local_aws.py scan $endpoint $TABLE_NAME
Ctrl-C stops moto and the receiver.
MSG

wait "$watch_pid"
