#!/usr/bin/env bash
# Starts the local stack exactly as `make run` does, on free ports and in a folder of its own,
# runs the README's walkthrough (the lines between its walkthrough markers, in order) and checks
# each promised answer, checks that simulator events still flow and that no webhook is left
# Disabled at the end, then stops the stack by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

MOTO_PORT=$(free_port)
SIMULATOR_PORT=$(free_port)
WATCH_PORT=$(free_port)
# No scheduled syncer runs: the walkthrough's own invocations are then the only ones.
export MOTO_PORT SIMULATOR_PORT WATCH_PORT WATCH_FLAGS=--ignore-changes EMIT_EVERY=1 SYNC_EVERY=0
export STACK_DIR=.local/smoke-$WATCH_PORT
mkdir -p "$STACK_DIR"
log=$STACK_DIR/stack.log
fail() { echo "smoke: $*" >&2; tail -n 40 "$log" >&2 || true; exit 1; }

setsid scripts/local-stack.sh >"$log" 2>&1 &
stack=$!
trap 'kill -- -$stack 2>/dev/null || true; wait $stack 2>/dev/null || true; rm -rf "$STACK_DIR"' EXIT

for _ in $(seq 1200); do
  [ -f "$STACK_DIR/stack.env" ] && break
  kill -0 "$stack" 2>/dev/null || fail "the local stack exited"
  sleep 1
done
[ -f "$STACK_DIR/stack.env" ] || fail "the local stack did not come up"
grep -q '"healthy":true' "$STACK_DIR/renewer-report.json" || fail "the renewer's first run was not healthy"
grep -q '"healthy":true' "$STACK_DIR/syncer-report.json" || fail "the syncer's initial load was not healthy"
grep -q '"phase":"incremental"' "$STACK_DIR/syncer-report.json" || fail "the syncer's initial load did not complete"
collections=$(grep -o '"collection":"[a-z-]*"' "$STACK_DIR/renewer-report.json" | sort -u | wc -l)
passed=1

# The walkthrough's command lines, exactly as the README shows them.
mapfile -t lines < <(sed -n '/^<!-- walkthrough:/,/^<!-- walkthrough end -->/p' README.md | grep '^make ' | sed 's/ *#.*//')
# What each line promises, in the same order.
expect=(
  '"pk": "subscription#clockings"|"pk": "sync#clockings"|"source": "delta"'
  '"healthy":true|"outcome":"complete"'
  'HTTP 200|"outcome":"stored"'
  'HTTP 200|"outcome":"duplicate"'
  '"detail-type": "Protime Record Changed"|"id": 900001|1 event for record 900001'
  'HTTP 401|"invalid_signature"'
  'HTTP 202|"quarantined"|"empty_attribute_name"'
  '"reason": "empty_attribute_name"|a field without a name'
  '"healthy":true|keep*'
  '"now"'
  '"healthy":true|recover*'
  'Enabled*'
  '"healthy":true|"deltaExpired":true'
  '"healthy":true|"collection":"clockings"|"phase":"incremental"'
  'clockings|breaks|complete|incremental'
  '"deleted"|"id":3'
  'people|complete|drift missing 0 behind 0 swept 0'
  'delta/incremental|complete|0/0/0'
  'warn    destination|ok      scopes|ok      list:people|ok      webhook:clockings|ok      key:clockings|1 warn'
  'changeVersion|5 records'
  'people.pinCode=drop|rewritten           0'
)
[ "${#lines[@]}" = "${#expect[@]}" ] || fail "the README walkthrough has ${#lines[@]} commands; this test knows ${#expect[@]}"

# `keep*`: every subscription's action is keep; `Enabled*`: every webhook is Enabled.
check() { # output, expectation
  local part
  IFS='|' read -ra parts <<<"$2"
  for part in "${parts[@]}"; do
    case "$part" in
      *'*')
        local word=${part%\*}
        local key=action; [ "$word" = Enabled ] && key=status
        local values n others
        values=$(grep -o "\"$key\":\"[A-Za-z]*\"" <<<"$1" || true)
        n=$(grep -c "\"$word\"" <<<"$values" || true)
        others=$(grep -vc "\"$word\"" <<<"$values" || true)
        [ "$n" -ge "$collections" ] && [ "$others" = 0 ] || return 1
        ;;
      *) grep -qF -- "$part" <<<"$1" || return 1 ;;
    esac
  done
}

for i in "${!lines[@]}"; do
  out=$(bash -c "${lines[$i]}" 2>&1) || fail "'${lines[$i]}' failed: $out"
  check "$out" "${expect[$i]}" || fail "'${lines[$i]}' did not answer ${expect[$i]}: $out"
  echo "walkthrough: ${lines[$i]}: ok"
  passed=$((passed + 1))
done

# Events signed with the recovered webhooks' new keys land, and no webhook is Disabled again.
# shellcheck source=/dev/null
source "$STACK_DIR/stack.env"
# The whole scan is read before counting (a pipe closed early would fail under pipefail).
from_webhooks() { local table; table=$("$PY" scripts/local_aws.py scan "$AWS_ENDPOINT_URL" "$TABLE_NAME"); grep -cF '"source": "webhook"' <<<"$table" || true; }
before=$(from_webhooks)
for _ in $(seq 30); do
  now=$(from_webhooks)
  [ "$now" -gt "$before" ] && break
  sleep 1
done
[ "$now" -gt "$before" ] || fail "no simulator event reached the table after the recovery"
sleep 3
webhooks=$(make -s webhooks)
check "$webhooks" 'Enabled*' || fail "a webhook is not Enabled at the end: $webhooks"
echo "events:   $now simulator events stored; every webhook Enabled at the end"
passed=$((passed + 1))
echo "smoke: $passed passed, 0 failed"
