#!/usr/bin/env bash
# Point-in-time recovery, run by the poststack.core.backup role (entry point pitr) in a one-off container that has
# the volumes of the stopped PostgreSQL container: restores the data directory with pgBackRest to PITR_TARGET,
# replays WAL up to it, promotes and stops again, so that the regular container starts on a writable cluster.
set -Eeuo pipefail
: "${PITR_TARGET:?PITR_TARGET (a timestamp) is required}"
: "${PGBACKREST_CONFIG:?PGBACKREST_CONFIG is required}"
: "${PGBACKREST_STANZA:?PGBACKREST_STANZA is required}"
: "${PITR_TIMEOUT:=600}"
: "${PGDATA:=/data/postgres/pgdata}"

args=(--config="$PGBACKREST_CONFIG" --stanza="$PGBACKREST_STANZA" --delta --type=time --target="$PITR_TARGET"
      --target-action=promote --log-level-console=warn)
if [ -n "${PITR_SET:-}" ]; then
  args+=(--set="$PITR_SET")
fi
pgbackrest "${args[@]}" restore

log=/tmp/pitr-recovery.log
sock=/tmp
if ! pg_ctl -D "$PGDATA" -w -t "$PITR_TIMEOUT" -l "$log" \
    -o "-c listen_addresses='' -c unix_socket_directories=$sock" start >/dev/null; then
  cat "$log" >&2
  echo "PITR: the recovering server did not start (log above)" >&2
  exit 1
fi
deadline=$((SECONDS + PITR_TIMEOUT))
until [ "$(psql -h "$sock" -XAtc 'SELECT pg_is_in_recovery()' postgres 2>/dev/null || true)" = f ]; do
  if ! pg_ctl -D "$PGDATA" status >/dev/null 2>&1 || [ "$SECONDS" -ge "$deadline" ]; then
    cat "$log" >&2
    echo "PITR: recovery to $PITR_TARGET did not finish (log above)" >&2
    exit 1
  fi
  sleep 0.5
done
grep -E 'recovery stopping|selected new timeline|archive recovery complete' "$log" || true
pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
