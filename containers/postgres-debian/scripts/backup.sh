#!/usr/bin/env bash
# backup.sh: pg_dump (custom format) of $POSTGRES_DB into /data/postgres/backups/daily with a .sha256 file,
# then removes dumps older than BACKUP_RETENTION_DAYS (default 7), always keeping the newest one.
set -Eeuo pipefail
dir="${BACKUP_DIR:-/data/postgres/backups/daily}"
db="${POSTGRES_DB:-poststack}"
keep_days="${BACKUP_RETENTION_DAYS:-7}"
mkdir -p "$dir"
file="$dir/${db}_$(date -u +%Y%m%dT%H%M%SZ).dump"
pg_dump -h /var/run/postgresql -U postgres -Fc -f "$file.partial" "$db"
mv "$file.partial" "$file"
(cd "$dir" && sha256sum "$(basename "$file")" >"$(basename "$file").sha256")
newest="$(find "$dir" -maxdepth 1 -name "${db}_*.dump" -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2-)"
find "$dir" -maxdepth 1 -name "${db}_*.dump" -mtime +"$keep_days" ! -path "$newest" -print0 \
  | while IFS= read -r -d '' old; do rm -f "$old" "$old.sha256"; done
echo "$file"
