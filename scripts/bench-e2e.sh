#!/usr/bin/env bash
# End-to-end benchmark: brings up the local stack (release build, on free ports, the simulator
# quiet), runs scripts/load.py against it, and stops everything by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rm -f .local/stack.env
export MOTO_PORT=$(free_port) SIMULATOR_PORT=$(free_port) WATCH_PORT=$(free_port) EMIT_EVERY=3600
export WATCH_FLAGS="--ignore-changes --release ${WATCH_CONCURRENCY:+--concurrency $WATCH_CONCURRENCY}"
setsid scripts/local-stack.sh >.local-bench.log 2>&1 &
stack=$!
trap 'kill -- -$stack 2>/dev/null || true; wait $stack 2>/dev/null || true' EXIT
for _ in $(seq 1800); do
  [ -f .local/stack.env ] && break
  kill -0 "$stack" 2>/dev/null || { tail -n 30 .local-bench.log; echo "the local stack exited" >&2; exit 1; }
  sleep 1
done
[ -f .local/stack.env ] || { echo "the local stack did not come up" >&2; exit 1; }
"$PY" scripts/load.py "$@"
