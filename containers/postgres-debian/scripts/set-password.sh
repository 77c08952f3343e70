#!/usr/bin/env bash
# set-password.sh ROLE: make ROLE's password $POSTGRES_PASSWORD, or the content of $POSTGRES_PASSWORD_FILE
# (on the local socket, as postgres).
# The SCRAM verifier is computed here, so the server never sees the password in a statement; nothing changes
# when the password is already the same.
set -Eeuo pipefail
export PS_ROLE="$1"
# In a running container (password rotation) the password comes from the mounted file.
if [ -z "${POSTGRES_PASSWORD:-}" ] && [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
  export POSTGRES_PASSWORD
fi
query() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h /var/run/postgresql -U postgres -d postgres; }
current="$(query <<'SQL'
\getenv role PS_ROLE
SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = :'role';
SQL
)"
PS_VERIFIER="$(printf '%s' "$current" | /usr/local/bin/scram_verifier.py)"
export PS_VERIFIER
if [ "$PS_VERIFIER" = "$current" ]; then
  echo "[set-password] password of $PS_ROLE unchanged" >&2
  exit 0
fi
query <<'SQL' >/dev/null
\getenv role PS_ROLE
\getenv verifier PS_VERIFIER
SET log_statement = 'none';
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'verifier') \gexec
SQL
echo "[set-password] password of $PS_ROLE changed" >&2
