#!/usr/bin/env bash
# Entrypoint of poststack/postgres-debian (runs as postgres, UID 999).
#  1. initialises an empty data directory (init-db.sh)
#  2. renders postgresql.conf and pg_hba.conf from /etc/postgresql/*.template and POSTGRES_* variables
#  3. enables TLS with /etc/postgresql/tls/server.{crt,key} (installed for UID 999 by the postgres role and read in
#     place, so that a reload takes a renewed certificate), else with /data/certificates/$DOMAIN/{fullchain,privkey}.pem
#  4. creates the role and database, or changes the role's password when it changed (within
#     TIMEOUT_CHANGE_PASSWORD seconds), on a temporary server that listens on the local socket only
#  5. execs postgres as PID 1
# The socket directory /var/run/postgresql is mode 1777 (sticky) so that a tmpfs mounted there for a read-only
# root filesystem, which takes the mode but not the owner of the image directory, stays writable.
# The password comes from POSTGRES_PASSWORD or the file named by POSTGRES_PASSWORD_FILE; it is never printed,
# never passed in argv, and removed from the environment before postgres starts.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "${1:-postgres}" != "postgres" ] && [ "${1:0:1}" != "-" ]; then
  exec "$@"
fi
[ "${1:-}" = "postgres" ] && shift

[ "$(id -u)" != 0 ] || die "refusing to run PostgreSQL as root; run the container with its default user (postgres, UID 999)"

if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  [ -r "$POSTGRES_PASSWORD_FILE" ] || die "POSTGRES_PASSWORD_FILE=$POSTGRES_PASSWORD_FILE is not readable by UID $(id -u)"
  POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
fi
export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-}"

: "${PGDATA:=/data/postgres/pgdata}"
: "${POSTGRES_USER:=poststack}"
: "${POSTGRES_DB:=poststack}"
: "${TIMEOUT_CHANGE_PASSWORD:=5}"
: "${POSTGRES_LISTEN_ADDRESSES:=*}"
: "${POSTGRES_MAX_CONNECTIONS:=100}"
: "${POSTGRES_SHARED_BUFFERS:=128MB}"
: "${POSTGRES_EFFECTIVE_CACHE_SIZE:=512MB}"
: "${POSTGRES_WORK_MEM:=4MB}"
: "${POSTGRES_MAINTENANCE_WORK_MEM:=64MB}"
: "${POSTGRES_MAX_WAL_SIZE:=1GB}"
: "${POSTGRES_LOG_STATEMENT:=ddl}"
: "${POSTGRES_LOG_MIN_DURATION_STATEMENT:=-1}"
: "${POSTGRES_HBA_CIDRS:=0.0.0.0/0 ::/0}"
: "${POSTGRES_REPLICATION_CIDRS:=}"
: "${POSTGRES_SSL:=auto}"   # auto: on when certificates exist; require: fail without them, TLS-only TCP; off
: "${DOMAIN:=}"
export PGDATA POSTGRES_USER POSTGRES_DB POSTGRES_LISTEN_ADDRESSES POSTGRES_MAX_CONNECTIONS POSTGRES_SHARED_BUFFERS \
  POSTGRES_EFFECTIVE_CACHE_SIZE POSTGRES_WORK_MEM POSTGRES_MAINTENANCE_WORK_MEM POSTGRES_MAX_WAL_SIZE \
  POSTGRES_LOG_STATEMENT POSTGRES_LOG_MIN_DURATION_STATEMENT

case "$POSTGRES_SSL" in auto|require|off) ;; *) die "POSTGRES_SSL must be auto, require or off, not '$POSTGRES_SSL'" ;; esac
[[ "$TIMEOUT_CHANGE_PASSWORD" =~ ^[0-9]+$ ]] || die "TIMEOUT_CHANGE_PASSWORD must be a whole number of seconds"

umask 0077
data_root="$(dirname "$PGDATA")"
if [ ! -d "$PGDATA" ]; then
  mkdir -p "$PGDATA" 2>/dev/null || die "cannot create $PGDATA: make $data_root writable by UID 999 (e.g. chown 999:999 on the host path)"
fi
[ -O "$PGDATA" ] || die "$PGDATA is owned by UID $(stat -c %u "$PGDATA"), not $(id -u): chown -R 999:999 the volume or host path mounted at $data_root"
chmod 0700 "$PGDATA"

fresh=false
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "$POSTGRES_PASSWORD" ] || die "the data directory is empty and no password is set: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE"
  /usr/local/bin/init-db.sh
  fresh=true
fi

# --- configuration -------------------------------------------------------------------------------------------
ssl_on=false
tls_dir=/etc/postgresql/tls
cert_dir="/data/certificates/${DOMAIN}"
if [ "$POSTGRES_SSL" != off ] && [ -r "$tls_dir/server.crt" ] && [ -r "$tls_dir/server.key" ]; then
  ssl_cert="$tls_dir/server.crt" ssl_key="$tls_dir/server.key" ssl_source="$tls_dir"
  ssl_on=true
elif [ "$POSTGRES_SSL" != off ] && [ -n "$DOMAIN" ] && [ -r "$cert_dir/fullchain.pem" ] && [ -r "$cert_dir/privkey.pem" ]; then
  mkdir -p /data/postgres/ssl
  # Copies, not links: PostgreSQL insists that the key belongs to its user with mode 0600.
  install -m 0644 "$cert_dir/fullchain.pem" /data/postgres/ssl/server.crt
  install -m 0600 "$cert_dir/privkey.pem" /data/postgres/ssl/server.key
  ssl_cert=/data/postgres/ssl/server.crt ssl_key=/data/postgres/ssl/server.key ssl_source="$cert_dir"
  ssl_on=true
elif [ "$POSTGRES_SSL" = require ]; then
  die "POSTGRES_SSL=require but $cert_dir/fullchain.pem and privkey.pem are not both readable (DOMAIN='${DOMAIN}')"
elif [ -n "$DOMAIN" ] && [ "$POSTGRES_SSL" = auto ]; then
  log "DOMAIN=$DOMAIN is set but $cert_dir/{fullchain,privkey}.pem are missing: TLS stays off"
fi

host_type=host
rules=""
if [ "$ssl_on" = true ] && [ "$POSTGRES_SSL" = require ]; then host_type=hostssl; fi
for cidr in 127.0.0.1/32 ::1/128 $POSTGRES_HBA_CIDRS; do
  rules+=$(printf '%-10s %-12s %-11s %-18s %s' "$host_type" all all "$cidr" scram-sha-256)$'\n'
done
# Replication (streaming, pg_basebackup) only from the container itself and the networks named for it.
for cidr in 127.0.0.1/32 ::1/128 $POSTGRES_REPLICATION_CIDRS; do
  rules+=$(printf '%-10s %-12s %-11s %-18s %s' "$host_type" replication all "$cidr" scram-sha-256)$'\n'
done
if [ "$host_type" = hostssl ]; then
  rules+=$(printf '%-10s %-12s %-11s %-18s %s' hostnossl all all 0.0.0.0/0 reject)$'\n'
  rules+=$(printf '%-10s %-12s %-11s %-18s %s' hostnossl all all ::/0 reject)$'\n'
fi
export POSTGRES_HBA_RULES="$rules"

# envsubst gets the names of the variables to replace, literally.
# shellcheck disable=SC2016
conf_vars='$POSTGRES_LISTEN_ADDRESSES $POSTGRES_MAX_CONNECTIONS $POSTGRES_SHARED_BUFFERS $POSTGRES_EFFECTIVE_CACHE_SIZE $POSTGRES_WORK_MEM $POSTGRES_MAINTENANCE_WORK_MEM $POSTGRES_MAX_WAL_SIZE $POSTGRES_LOG_STATEMENT $POSTGRES_LOG_MIN_DURATION_STATEMENT'
envsubst "$conf_vars" </etc/postgresql/postgresql.conf.template >"$PGDATA/postgresql.conf"
# shellcheck disable=SC2016
envsubst '$POSTGRES_HBA_RULES' </etc/postgresql/pg_hba.conf.template >"$PGDATA/pg_hba.conf"
# The superuser over the local socket (peer): the container's postgres user, and root, who reaches the socket only
# as the host's root through the socket directory the postgres role shares (postgres_admin_socket) or through
# `podman exec --user 0`; both can already do anything to this container.
cat >"$PGDATA/pg_ident.conf" <<'IDENT'
# Rendered by /entrypoint.sh on every start.
# MAPNAME  SYSTEM-USERNAME  PG-USERNAME
admin      postgres         postgres
admin      root             postgres
IDENT
if [ "$ssl_on" = true ]; then
  cat >>"$PGDATA/postgresql.conf" <<CONF

# TLS (certificates for DOMAIN=$DOMAIN found in $ssl_source)
ssl = on
ssl_cert_file = '$ssl_cert'
ssl_key_file = '$ssl_key'
ssl_min_protocol_version = 'TLSv1.2'
CONF
  log "TLS enabled for ${DOMAIN:-this server} (certificate and key from $ssl_source)"
fi

# --- role, database, password ---------------------------------------------------------------------------------
if [ "$fresh" = true ] || [ -n "$POSTGRES_PASSWORD" ]; then
  # The temporary server logs outside the data directory: when that filesystem is full, its reason ("No space
  # left on device") must still reach the container's log.
  startup_log="${TMPDIR:-/tmp}/poststack-startup.log"
  pg_ctl -D "$PGDATA" -w -t 60 -l "$startup_log" \
    -o "-c listen_addresses='' -c log_statement=none -c unix_socket_directories=/var/run/postgresql" start >/dev/null \
    || { cat "$startup_log" >&2; die "the temporary server did not start (log above)"; }
  stop_temp() { pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null || true; }
  trap stop_temp EXIT
  if [ "$fresh" = true ]; then
    /usr/local/bin/init-db.sh --create-objects
  fi
  if [ -n "$POSTGRES_PASSWORD" ]; then
    timeout -k 2 "$TIMEOUT_CHANGE_PASSWORD" /usr/local/bin/set-password.sh "$POSTGRES_USER" \
      || die "setting the password of role $POSTGRES_USER failed or took longer than TIMEOUT_CHANGE_PASSWORD=${TIMEOUT_CHANGE_PASSWORD}s"
  fi
  stop_temp
  trap - EXIT
  rm -f "$startup_log"
fi

unset POSTGRES_PASSWORD POSTGRES_HBA_RULES
log "starting PostgreSQL $(postgres --version | awk '{print $3}') (database $POSTGRES_DB, role $POSTGRES_USER, TLS $ssl_on)"
exec postgres -D "$PGDATA" "$@"
