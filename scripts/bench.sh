#!/usr/bin/env bash
# `make bench`: runs every benchmarks/<name>/run (or only those named in BENCH="a b"), each printing its own
# comparison table. Not part of `make test`.
set -euo pipefail
cd "$POSTSTACK_ROOT"
mapfile -t benches < <(find benchmarks -mindepth 2 -maxdepth 2 -name run -perm -u+x -printf '%h\n' | sort)
for dir in "${benches[@]}"; do
  name=$(basename "$dir")
  if [ -n "${BENCH:-}" ] && [[ " $BENCH " != *" $name "* ]]; then continue; fi
  printf '\n===== benchmark: %s =====\n' "$name"
  "$dir/run"
done
