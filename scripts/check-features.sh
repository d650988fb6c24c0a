#!/usr/bin/env bash
# Fails when building one member alone (as `cargo lambda watch`, the simulator's and the CLI's
# builds do) would compile a dependency with other features than the workspace's test build,
# and so compile it a second time. The fix is a line in workspace-hack/Cargo.toml.
# See docs/decisions/0002-one-feature-set-for-every-build.md.
set -euo pipefail
cd "$(dirname "$0")/.."
features() { cargo tree --locked "$@" --prefix none -f '{p} {f}' | sed 's/ (\*)$//; s/ (proc-macro)$//; s/ *$//' | sort -u; }
workspace=$(features --workspace -e normal,build,dev)
members=$(cargo metadata --locked --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
drift=0
for member in $members; do
  [ "$member" = workspace-hack ] && continue
  while read -r name version rest; do
    [[ "$rest" == "("* ]] && continue  # the workspace's own crates
    full=$(grep -m1 "^$name $version" <<<"$workspace" || true)
    if [ "$full" != "$name $version${rest:+ $rest}" ]; then
      echo "features: building $member alone gives $name $version [${rest}], the workspace [${full#"$name $version "}]" >&2
      drift=1
    fi
  done < <(features -p "$member" -e normal,build)
done
[ "$drift" = 0 ] || { echo "features: add the missing features to workspace-hack/Cargo.toml" >&2; exit 1; }
echo "features: every member alone builds its dependencies with the workspace's features"
