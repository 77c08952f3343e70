#!/usr/bin/env bash
# Called by /entrypoint.sh.
#   init-db.sh                    initdb into an empty $PGDATA
#   init-db.sh --create-objects   on the temporary local-only server: the role, the database and its extensions
set -Eeuo pipefail

if [ "${1:-}" != "--create-objects" ]; then
  echo "[init-db] initialising $PGDATA" >&2
  initdb -D "$PGDATA" --username=postgres --encoding=UTF8 --locale=C --data-checksums \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  exit 0
fi

export PS_ROLE="$POSTGRES_USER" PS_DB="$POSTGRES_DB"
PS_VERIFIER="$(/usr/local/bin/scram_verifier.py </dev/null)"
export PS_VERIFIER
psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U postgres -d postgres <<'SQL'
\getenv role PS_ROLE
\getenv db PS_DB
\getenv verifier PS_VERIFIER
SET log_statement = 'none';
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'verifier')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
\connect :"db"
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
echo "[init-db] created role $POSTGRES_USER and database $POSTGRES_DB" >&2
