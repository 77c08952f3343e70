#!/usr/bin/env bash
# Entrypoint of poststack/pgbouncer: checks the mounted configuration, then execs pgbouncer as PID 1.
set -Eeuo pipefail
die() { printf '%s [entrypoint] ERROR: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; exit 1; }
[ "$(id -u)" != 0 ] || die "refusing to run PgBouncer as root; run the container with its default user (postgres, UID 999)"
if [ "${1:0:1}" != "/" ]; then
  exec "$@"
fi
ini=$1
shift
[ -r "$ini" ] || die "$ini is missing or not readable by UID $(id -u): mount the directory the pgbouncer role renders at /etc/pgbouncer"
exec /usr/local/bin/pgbouncer "$@" "$ini"
