#!/usr/bin/env bash
# Runs one stage of `make test` and prints how long it took ("stage: NAME 123 s"), so a run's
# log carries its own breakdown (docs/performance.md). Usage: scripts/stage.sh NAME CMD...
set -uo pipefail
name=$1
shift
started=$(date +%s)
"$@"
status=$?
echo "stage: $name $(($(date +%s) - started)) s$([ "$status" = 0 ] || echo " (failed: $status)")" >&2
exit "$status"
