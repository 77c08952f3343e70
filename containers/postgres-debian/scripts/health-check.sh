#!/usr/bin/env bash
# Container health: the server accepts TCP connections (not just the temporary local-only server of the
# entrypoint) and answers a query on the local socket.
set -euo pipefail
pg_isready -q -h 127.0.0.1 -p 5432 -t 3 \
  && [ "$(psql -X -A -t -h /var/run/postgresql -U postgres -d postgres -c 'SELECT 1')" = 1 ]
