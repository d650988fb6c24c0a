#!/usr/bin/env bash
# Commands against a running local stack (`make run`), found by its WATCH_PORT (default 9000):
#   scripts/stack.sh scan                  every item in the table, one JSON line each
#   scripts/stack.sh send-event [BODY]     sign BODY (or $BODY) with the stored clockings key and
#                                          POST it (default: a clocking the simulator never changes)
#   scripts/stack.sh send-tampered [BODY]  the same, with a byte added after signing (401)
#   scripts/stack.sh quarantine            every quarantined body: key, metadata (reason), bytes
#   scripts/stack.sh feed [N] [ID]         the last N (20) change events on the change bus (of record ID)
#   scripts/stack.sh invoke-renewer        one renewer run through `cargo lambda invoke`
#   scripts/stack.sh invoke-syncer         one scheduled syncer run through `cargo lambda invoke`
#   scripts/stack.sh backfill COLLECTIONS [FROM]
#                                          restart those collections' initial load (comma-separated)
#   scripts/stack.sh drop-deliveries N     the simulator silently drops its next N deliveries
#   scripts/stack.sh delete COLLECTION ID  the simulator deletes a record and delivers nothing
#   scripts/stack.sh webhooks              the webhooks as the simulator holds them
#   scripts/stack.sh advance HOURS         move the simulator's clock (webhooks expire)
#   scripts/stack.sh cli ARGS...           the protime-webhooks command line, pointed at this stack
# Each prints what the stack answered. The make targets of the same names call it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"
WATCH_PORT=${WATCH_PORT:-9000}
STATE=${STACK_DIR:-.local/$WATCH_PORT}
[ -f "$STATE/stack.env" ] || { echo "no local stack is ready on WATCH_PORT=$WATCH_PORT ($STATE/stack.env is missing): start one with make run" >&2; exit 1; }
# shellcheck source=/dev/null
source "$STATE/stack.env"

DEFAULT_BODY='{"id":900001,"changeVersion":"0000090200004BD0000A","person":{"id":7},"date":"2025-01-01","timeOfDayInMinutes":480,"kind":"InOut"}'

post() { # body, authorization
  curl -sS -w '\nHTTP %{http_code}\n' -X POST "$RECEIVER_URL/clockings" \
    -H "Authorization: $2" -H 'Content-Type: application/json' --data-binary "$1"
}

case "${1:-}" in
  scan) "$PY" scripts/local_aws.py scan "$AWS_ENDPOINT_URL" "$TABLE_NAME" ;;
  quarantine) "$PY" scripts/local_aws.py quarantine "$AWS_ENDPOINT_URL" "$QUARANTINE_BUCKET" ;;
  feed) "$PY" scripts/local_aws.py feed "$AWS_ENDPOINT_URL" "$FEED_QUEUE" "$STATE/feed.jsonl" "${2:-${COUNT:-20}}" "${3:-${ID:-}}" ;;
  send-event | send-tampered)
    body=${2:-${BODY:-$DEFAULT_BODY}}
    key=$("$PY" scripts/local_aws.py key "$AWS_ENDPOINT_URL" "$SIGNING_KEYS_SECRET" clockings)
    auth=$("$PY" scripts/local_aws.py sign "$key" "$body")
    # One byte more after signing: still JSON, no longer what was signed.
    if [ "$1" = send-tampered ]; then body="$body "; fi
    post "$body" "$auth"
    ;;
  invoke-renewer)
    cargo lambda invoke renewer --data-file events/scheduled.json \
      --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT"
    echo
    ;;
  invoke-syncer)
    cargo lambda invoke syncer --data-file events/scheduled.json \
      --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT"
    echo
    ;;
  backfill)
    names=${2:?comma-separated collections}
    list=$(printf '"%s",' ${names//,/ })
    payload="{\"collections\":[${list%,}],\"reinitialize\":true${3:+,\"from\":\"$3\"}}"
    cargo lambda invoke syncer --data-ascii "$payload" --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT"
    echo
    ;;
  drop-deliveries) curl -sS -X POST "$SIMULATOR_URL/_simulator/drop-deliveries?count=${2:?count}"; echo ;;
  delete) curl -sS -X POST "$SIMULATOR_URL/_simulator/delete/${2:?collection}?id=${3:?id}"; echo ;;
  webhooks) curl -sS "$SIMULATOR_URL/_simulator/webhooks"; echo ;;
  advance) curl -sS -X POST "$SIMULATOR_URL/_simulator/advance?hours=${2:?hours}"; echo ;;
  cli)
    shift
    export TABLE_NAME QUARANTINE_BUCKET SIGNING_KEYS_SECRET AWS_ENDPOINT_URL
    # doctor and webhooks read the functions' Protime settings (credentials secret, destination,
    # collections, the simulator's URLs).
    while IFS='=' read -r name value; do
      case $name in
        PROTIME_* | DESTINATION_BASE_URL | COLLECTIONS | EXTERNAL_REFERENCES) export "$name=${value//\"/}" ;;
      esac
    done <"$STATE/functions.env"
    # `cargo lambda watch` serves Lambda's Invoke API on its port: `sync` invokes the syncer
    # there (this variable wins over AWS_ENDPOINT_URL for Lambda only).
    export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$WATCH_PORT" SYNCER_FUNCTION=syncer
    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
      cargo run --quiet --locked -p protime-webhooks-cli -- "$@"
    ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
