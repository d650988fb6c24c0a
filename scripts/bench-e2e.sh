#!/usr/bin/env bash
# End-to-end benchmark: brings up the local stack (release build, on free ports, the simulator
# quiet), runs scripts/load.py against it, and stops everything by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export MOTO_PORT=$(free_port) SIMULATOR_PORT=$(free_port) WATCH_PORT=$(free_port) EMIT_EVERY=3600
export STACK_DIR=.local/bench-$WATCH_PORT
mkdir -p "$STACK_DIR"
export WATCH_FLAGS="--ignore-changes --release ${WATCH_CONCURRENCY:+--concurrency $WATCH_CONCURRENCY}"
setsid scripts/local-stack.sh >"$STACK_DIR/stack.log" 2>&1 &
stack=$!
trap 'kill -- -$stack 2>/dev/null || true; wait $stack 2>/dev/null || true' EXIT
for _ in $(seq 1800); do
  [ -f "$STACK_DIR/stack.env" ] && break
  kill -0 "$stack" 2>/dev/null || { tail -n 30 "$STACK_DIR/stack.log"; echo "the local stack exited" >&2; exit 1; }
  sleep 1
done
[ -f "$STACK_DIR/stack.env" ] || { echo "the local stack did not come up" >&2; exit 1; }
"$PY" scripts/load.py "$@"
