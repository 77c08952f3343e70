#!/usr/bin/env bash
# Test layers behind `make test`. Run through the Makefile (which sources scripts/env.sh and bootstraps first).
#   scripts/test.sh all | lint | sanity | units | integration | molecule [scenario...] | ha | newcomer
set -euo pipefail
cd "$POSTSTACK_ROOT"

declare -a SUMMARY=()
FAILED=0
# Each layer runs even when an earlier one failed, so that one failure never hides another; the summary lists
# every layer with its time and result, and the exit status is non-zero when any failed.
layer() {
  local name=$1; shift
  local start=$SECONDS rc=0
  printf '\n===== %s =====\n' "$name"
  # A background subshell keeps `set -e` in force inside the layer (`( ... ) || rc=$?` would switch it off).
  ( "$@" ) &
  wait $! || rc=$?
  local result=passed
  if [ "$rc" -ne 0 ]; then result="FAILED (rc=$rc)"; FAILED=$((FAILED + 1)); fi
  SUMMARY+=("$(printf '%-14s %6ss  %s' "$name" $((SECONDS - start)) "$result")")
}

run_yamllint() { yamllint --strict .; }

run_ansible_lint() { ansible-lint --offline -q; }

# antsibull-docs: the documentation lints clean and docs/reference/ is what the code documents.
run_docs() { scripts/reference.sh --check; }

run_sanity() {
  # ansible-test needs the collection at .../ansible_collections/poststack/core; test a copy of the tracked files
  # (plus new ones not yet committed), outside this checkout so that no parent git repository confuses it.
  # bin/poststack is a shell wrapper without an extension, which ansible-test would compile as Python.
  local tree
  tree="$POSTSTACK_CACHE/ansible-test/$(printf '%s' "$POSTSTACK_ROOT" | sha256sum | cut -c1-12)"
  local dest="$tree/ansible_collections/poststack/core"
  mkdir -p "$tree"
  exec 8>"$tree.lock" && flock 8   # one sanity run at a time per checkout
  rm -rf "$dest" && mkdir -p "$dest"
  git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$dest/"
  (cd "$dest" && ansible-test sanity --venv --python "$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" \
    --exclude scripts/get_pip_standin.py --exclude bin/poststack --color no)
}

# PYTEST_ARGS is split into words on purpose (e.g. PYTEST_ARGS="-k name -x").
# shellcheck disable=SC2086
run_units() { python -m pytest -q -n 2 tests/unit ${PYTEST_ARGS:-}; }

# shellcheck disable=SC2086
# Two workers, each test file on one of them (--dist loadfile: a file's module fixtures are made once).
# shellcheck disable=SC2086
# The Docker tests use a private engine (scripts/docker-engine.sh), started here for the layer and stopped after
# it, unless DOCKER_HOST already names one that answers (then it is left alone).
run_integration() {
  local engine
  if ! { [ -n "${DOCKER_HOST:-}" ] && docker version >/dev/null 2>&1; }; then
    engine=$(scripts/docker-engine.sh start)   # a failure stops the layer here (set -e)
    export "${engine?}"
    trap 'scripts/docker-engine.sh stop' EXIT   # the layer runs in a subshell of its own
  fi
  # Each test's time, for ordering the files (tests/conftest.py): the last run's, in the cache.
  python -m pytest -q -n 2 --dist loadfile --durations=20 --junitxml "$POSTSTACK_CACHE/integration-times.xml" \
    tests/integration ${PYTEST_ARGS:-}
}

# Two-node Pacemaker clusters in containers (pgtwin): failover, switchover, rejoin. Two chains of pytest runs at
# once, each with clusters of its own, balanced by their measured times (about 37 minutes each in session 15):
#   1. container mode's main module, then the runbook from host mode to container mode, then container mode with
#      Docker inside the nodes;
#   2. host mode's main and partition modules, then container mode's partition module and PostgreSQL 17.
# Each run's lines are prefixed with its name ([container], [host-runbook], ...) as they come.
# shellcheck disable=SC2086
ha_run() {
  local name=$1 modes=$2; shift 2
  PGTWIN_HA_MODES=$modes python -m pytest -q -p no:cacheprovider --basetemp "$HA_TMP/$name" --durations=15 \
    "$@" ${PYTEST_ARGS:-} 2>&1 | tee "$HA_TMP/$name.log" | sed -u "s/^/[$name] /"
}

run_ha() {
  [ -d tests/ha ] || return 0
  local rc=0 chain1 chain2 name
  HA_TMP="$POSTSTACK_CACHE/ha-layer/$$"
  mkdir -p "$HA_TMP"
  # The nodes' logs (agent, PostgreSQL, Pacemaker, the node's own) of each module's cluster, kept outside the
  # checkout, which CI removes: the last five runs.
  PGTWIN_HA_LOG_DIR="$POSTSTACK_CACHE/ha-logs/$(date -u +%Y%m%dT%H%M%S)"
  export PGTWIN_HA_LOG_DIR
  mkdir -p "$PGTWIN_HA_LOG_DIR"
  find "$POSTSTACK_CACHE/ha-logs" -mindepth 1 -maxdepth 1 -type d | sort | head -n -5 | xargs -r rm -rf
  # A failed run does not stop its chain: the next one runs too, and the chain's status says a run failed.
  ( local failed=0
    ha_run container container tests/ha/test_pgtwin_cluster.py || failed=1
    ha_run host-runbook host tests/ha/test_pgtwin_migration.py || failed=1
    ha_run container-docker container tests/ha/test_pgtwin_docker.py || failed=1
    exit "$failed" ) &
  chain1=$!
  ( local failed=0
    ha_run host host tests/ha/test_pgtwin_cluster.py tests/ha/test_pgtwin_partition.py || failed=1
    ha_run container-more container tests/ha/test_pgtwin_partition.py tests/ha/test_pgtwin_pg17.py || failed=1
    exit "$failed" ) &
  chain2=$!
  wait "$chain1" || rc=$?
  wait "$chain2" || rc=$?
  # The outputs interleave; repeat each run's outcome at the end, where a cut log still shows it.
  for name in container host-runbook container-docker host container-more; do
    printf '\n----- ha %s: outcome -----\n' "$name"
    grep -E '^(FAILED|ERROR) |^=* ?[0-9]+ (passed|failed|errors?|skipped)' "$HA_TMP/$name.log" 2>/dev/null \
      || echo "(no pytest summary: the run did not finish)"
    mv "$HA_TMP/$name.log" "$PGTWIN_HA_LOG_DIR/" 2>/dev/null || true
  done
  printf '\nthe whole output and the nodes'"'"' logs: %s\n' "$PGTWIN_HA_LOG_DIR"
  rm -rf "$HA_TMP"
  return "$rc"
}

# A new Debian 12 and 13 system each (containers made with mmdebstrap): a clean clone of HEAD, `make run` twice,
# then a user's project. One pytest process per release, side by side (each system has its own network namespace,
# names and ports); their lines are prefixed [bookworm] and [trixie] as they come.
# shellcheck disable=SC2086
run_newcomer() {
  local rc=0 suite pids=()
  for suite in ${POSTSTACK_NEWCOMER_SUITES:-bookworm trixie}; do
    ( POSTSTACK_NEWCOMER_SUITES=$suite python -m pytest -q -s -p no:cacheprovider tests/newcomer ${PYTEST_ARGS:-} 2>&1 \
        | sed -u "s/^/[$suite] /" ) &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  return "$rc"
}

run_molecule() {
  local scenarios=("$@")
  if [ ${#scenarios[@]} -eq 0 ]; then
    mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -rn1 basename | sort)
  fi
  local failed=()
  for s in "${scenarios[@]}"; do
    scripts/molecule.sh test -s "$s" || failed+=("$s")
  done
  [ ${#failed[@]} -eq 0 ] || { echo "molecule scenarios that failed: ${failed[*]}" >&2; return 1; }
}

case "${1:-all}" in
  all)
    layer yamllint run_yamllint
    layer ansible-lint run_ansible_lint
    layer docs run_docs
    layer sanity run_sanity
    layer units run_units
    layer integration run_integration
    layer molecule run_molecule
    layer ha run_ha
    layer newcomer run_newcomer
    ;;
  lint) layer yamllint run_yamllint; layer ansible-lint run_ansible_lint; layer docs run_docs ;;
  sanity) layer sanity run_sanity ;;
  units) layer units run_units ;;
  integration) layer integration run_integration ;;
  ha) layer ha run_ha ;;
  newcomer) layer newcomer run_newcomer ;;
  molecule) shift; layer molecule run_molecule "$@" ;;
  *) echo "usage: $0 all|lint|sanity|units|integration|ha|newcomer|molecule [scenario...]" >&2; exit 2 ;;
esac

if [ "$FAILED" -eq 0 ]; then
  printf '\n===== summary: all %d layers passed =====\n' "${#SUMMARY[@]}"
else
  printf '\n===== summary: %d of %d layers FAILED =====\n' "$FAILED" "${#SUMMARY[@]}"
fi
printf '%s\n' "${SUMMARY[@]}"
[ "$FAILED" -eq 0 ]
