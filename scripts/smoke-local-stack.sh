#!/usr/bin/env bash
# Starts the local stack exactly as `make run` does, on free ports, sends a signed event and
# an unsigned one through `cargo lambda watch`, checks the table, and stops the stack by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

export MOTO_PORT=$(free_port) WATCH_PORT=$(free_port) WATCH_FLAGS=--ignore-changes
setsid scripts/local-stack.sh >.local-smoke.log 2>&1 &
stack=$!
trap 'kill -- -$stack 2>/dev/null || true; wait $stack 2>/dev/null || true' EXIT

for _ in $(seq 900); do
  [ -f .local/stack.env ] && break
  kill -0 "$stack" 2>/dev/null || { cat .local-smoke.log; echo "smoke: the local stack exited" >&2; exit 1; }
  sleep 1
done
[ -f .local/stack.env ] || { cat .local-smoke.log; echo "smoke: the local stack did not come up" >&2; exit 1; }
source .local/stack.env

body='{"id":4242,"changeVersion":"3","person":{"id":7},"date":"2025-01-01"}'
auth=$("$PY" scripts/local_aws.py sign "$LOCAL_KEY" "$body")
answer=$(curl -s -w ' %{http_code}' -X POST "$RECEIVER_URL/clockings" -H "Authorization: $auth" -d "$body")
echo "signed:   $answer"
[[ "$answer" == *'"outcome":"stored"'*' 200' ]] || { echo "smoke: signed event not stored" >&2; exit 1; }

answer=$(curl -s -w ' %{http_code}' -X POST "$RECEIVER_URL/clockings" -H "Authorization: HMAC-SHA256 AAAA" -d '{"id":1,"changeVersion":"9"}')
echo "unsigned: $answer"
[[ "$answer" == *' 401' ]] || { echo "smoke: bad signature not rejected" >&2; exit 1; }

items=$("$PY" scripts/local_aws.py scan "$AWS_ENDPOINT_URL" "$TABLE_NAME")
echo "table:    $items"
[[ "$items" == *'"pk": "clockings#4242"'* && $(wc -l <<<"$items") == 1 ]] || { echo "smoke: table does not hold exactly the signed event" >&2; exit 1; }
echo "smoke: 2 passed, 0 failed"
