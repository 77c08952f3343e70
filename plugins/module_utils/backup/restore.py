# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore: a backup checked against its manifest, restored into a scratch database, compared, and swapped in by
rename."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ansible_collections.poststack.core.plugins.module_utils.backup.catalog import (
    BackupEntry, check_entry, newest_good, scan,
)
from ansible_collections.poststack.core.plugins.module_utils.postgres_exec import exec_argv
from ansible_collections.poststack.core.plugins.module_utils.backup.commands import (
    Executor, container_mount_source, container_path, decrypt_argv, pg_restore_argv, quote_ident,
    quote_literal, resolve_runtime,
)
from ansible_collections.poststack.core.plugins.module_utils.backup.dump import default_backup_dir
from ansible_collections.poststack.core.plugins.module_utils.backup.manifest import (
    BackupError, CONTAINER_BACKUP_ROOT, MANIFEST_SUFFIX, MAX_IDENTIFIER, NOTHING_CHANGED, PASSPHRASE_ENV,
    RESERVED_DATABASES, SEP, key_matches,
)


@dataclass
class RestoreSettings:
    container: str
    target: str
    backup_dir: str = ""
    backup: Optional[str] = None          # a name, file or manifest path; None: the newest good one of `database`
    database: Optional[str] = None        # whose newest backup to take when `backup` is None
    runtime: str = "auto"
    replace: bool = False
    jobs: int = 2
    age_identity: Optional[str] = field(default=None, repr=False)
    passphrase: Optional[str] = field(default=None, repr=False)
    compare_with: Optional[str] = None
    drop_after: bool = False


def find_backup(settings: RestoreSettings) -> BackupEntry:
    """The backup to restore, checked against its manifest; raises with a clear message when it is not good."""
    entries = scan(settings.backup_dir)
    if settings.backup:
        wanted = os.path.basename(settings.backup.rstrip("/"))
        if wanted.endswith(MANIFEST_SUFFIX):
            wanted = wanted[: -len(MANIFEST_SUFFIX)]
        matches = [entry for entry in entries
                   if wanted in (entry.name, os.path.basename(entry.path.rstrip("/")))]
        if not matches:
            raise BackupError(f"backup '{settings.backup}' not found in {settings.backup_dir}: give the name of one "
                              f"there (poststack_backup_info lists them). Nothing was changed; database "
                              f"'{settings.target}' is untouched.")
        entry = check_entry(matches[0])
        if not entry.good:
            raise BackupError(f"refusing to restore backup {entry.name}: {'; '.join(entry.problems)}. Nothing was "
                              f"changed; database '{settings.target}' is untouched. Restore another backup "
                              "(poststack_backup_info lists the good ones).")
        return entry
    if not settings.database:
        raise BackupError("give either backup (a name or path) or database (to restore its newest good backup)")
    candidates = [entry for entry in entries if entry.manifest and entry.manifest.database == settings.database]
    if not candidates:
        raise BackupError(f"no backup of database '{settings.database}' in {settings.backup_dir}: check database and "
                          f"backup_dir (poststack_backup_info lists the backups). Nothing was changed; database "
                          f"'{settings.target}' is untouched.")
    entry = newest_good(candidates)
    if entry is None:
        bad = "; ".join(f"{item.name}: {', '.join(item.problems)}" for item in candidates[:3])
        raise BackupError(f"no good backup of database '{settings.database}' in {settings.backup_dir} ({bad}). "
                          f"Nothing was changed; database '{settings.target}' is untouched.")
    return entry


def check_restore_names(settings: "RestoreSettings") -> None:
    """Names refused before anything runs: PostgreSQL would truncate a long one (and rename the wrong database),
    the maintenance databases cannot be swapped, and comparing the target with itself proves nothing."""
    target = settings.target
    if not target:
        raise BackupError("target is empty: name the database to restore into")
    if len(target.encode("utf-8")) > MAX_IDENTIFIER:
        raise BackupError(f"target '{target}' is {len(target.encode('utf-8'))} bytes long; PostgreSQL names have at most "
                          f"{MAX_IDENTIFIER} bytes (a longer one is truncated): choose a shorter name; {NOTHING_CHANGED}")
    if target in RESERVED_DATABASES:
        raise BackupError(f"target '{target}' is a maintenance database of PostgreSQL and cannot be replaced by a "
                          f"restore: restore into another database; {NOTHING_CHANGED}")
    if settings.compare_with is not None and settings.compare_with == target:
        raise BackupError(f"compare_with '{target}' is the target itself, so the comparison would always be equal: "
                          f"compare with the live database the backup was taken from; {NOTHING_CHANGED}")


def scratch_name(target: str, suffix: str) -> str:
    token = secrets.token_hex(3)
    base = target[: MAX_IDENTIFIER - len(suffix) - len(token) - 3]
    return f"{base}__{suffix}{token}"


def table_stats_sql(tables: Sequence[str]) -> str:
    """One query: per table, the row count and an order-independent checksum (sum of 64-bit row hashes)."""
    parts = [
        f"SELECT {quote_literal(table)}, count(*), "
        f"coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0) FROM {table} AS t"
        for table in tables
    ]
    return "\nUNION ALL\n".join(parts) + ";" if parts else ""


TABLES_SQL = (
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1;"
)


def parse_rows(text: str, columns: int) -> List[List[str]]:
    rows = []
    for line in text.splitlines():
        if not line:
            continue
        values = line.split(SEP)
        if len(values) != columns:
            raise BackupError(f"unexpected psql output line: {line!r}")
        rows.append(values)
    return rows


def psql(executor: Executor, runtime: str, container: str, database: str, sql: str) -> str:
    return executor.run(exec_argv(runtime, container, ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", SEP,
                                                       "-d", database, "-f", "-"], interactive=True), input_text=sql)


def table_stats(executor: Executor, runtime: str, container: str, database: str) -> Dict[str, Dict[str, str]]:
    tables = [row[0] for row in parse_rows(psql(executor, runtime, container, database, TABLES_SQL), 1)]
    if not tables:
        return {}
    rows = parse_rows(psql(executor, runtime, container, database, table_stats_sql(tables)), 3)
    return {row[0]: {"rows": row[1], "checksum": row[2]} for row in rows}


@dataclass
class TableDifference:
    table: str
    source: Optional[Dict[str, str]]
    restored: Optional[Dict[str, str]]


def compare_stats(source: Dict[str, Dict[str, str]], restored: Dict[str, Dict[str, str]]) -> List[TableDifference]:
    return [TableDifference(table, source.get(table), restored.get(table))
            for table in sorted(set(source) | set(restored)) if source.get(table) != restored.get(table)]


def target_facts(executor: Executor, runtime: str, container: str, target: str, owner: str) -> Tuple[bool, bool]:
    """Whether the target database exists and whether the backup's owner role exists: one query."""
    out = psql(executor, runtime, container, "postgres",
               f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {quote_literal(target)}), "
               f"EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(owner)});")
    rows = parse_rows(out, 2)
    return rows[0][0] == "t", rows[0][1] == "t"


def create_incoming(executor: Executor, runtime: str, container: str, target: str, incoming: str, owner: str) -> bool:
    """Create the database to restore into (owned by `owner` when that role exists, else postgres) and tell
    whether the target exists: one exec."""
    out = psql(executor, runtime, container, "postgres", "\n".join([
        f"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(owner)}) AS owner_exists \\gset",
        "\\if :owner_exists",
        f"CREATE DATABASE {quote_ident(incoming)} TEMPLATE template0 OWNER {quote_ident(owner)};",
        "\\else",
        f"CREATE DATABASE {quote_ident(incoming)} TEMPLATE template0 OWNER postgres;",
        "\\endif",
        f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {quote_literal(target)});",
    ]))
    return out.strip().splitlines()[-1] == "t"


def refuse_existing(settings: "RestoreSettings", entry: BackupEntry, exists: bool) -> None:
    if exists and not settings.replace:
        raise BackupError(f"database '{settings.target}' exists: set replace=true to replace it with backup "
                          f"{entry.name} (nothing was changed)")


def swap_sql(target: str, incoming: str, outgoing: Optional[str]) -> List[str]:
    """Statements (run one by one, in the postgres database) that put `incoming` in place of `target`."""
    if outgoing is None:
        return [f"ALTER DATABASE {quote_ident(incoming)} RENAME TO {quote_ident(target)};"]
    return [
        f"ALTER DATABASE {quote_ident(target)} ALLOW_CONNECTIONS false;",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
        f"{quote_literal(target)} AND pid <> pg_backend_pid();",
        f"BEGIN; ALTER DATABASE {quote_ident(target)} RENAME TO {quote_ident(outgoing)}; "
        f"ALTER DATABASE {quote_ident(incoming)} RENAME TO {quote_ident(target)}; COMMIT;",
        f"DROP DATABASE {quote_ident(outgoing)} WITH (FORCE);",
        f"ALTER DATABASE {quote_ident(target)} ALLOW_CONNECTIONS true;",
    ]


def run_restore(settings: RestoreSettings, check_mode: bool = False,
                executor: Optional[Executor] = None) -> Dict[str, object]:
    """Validate the backup, restore it into a new database, then swap it in place of the target.

    The target is touched only after the backup matched its manifest and pg_restore finished without error;
    until the swap, the restore lives in a separate database that is dropped when anything fails.
    """
    check_restore_names(settings)
    extra_env = {PASSPHRASE_ENV: settings.passphrase} if settings.passphrase else {}
    executor = executor or Executor(extra_env)
    runtime = resolve_runtime(settings.runtime)
    mount_source = container_mount_source(executor, runtime, settings.container, CONTAINER_BACKUP_ROOT)
    settings.backup_dir = default_backup_dir(settings.backup_dir, mount_source, settings.container)
    entry = find_backup(settings)
    manifest = entry.manifest
    if manifest is None:  # find_backup returns good entries only
        raise BackupError(f"backup {entry.name} has no manifest")
    if manifest.encryption == "openssl" and not settings.passphrase:
        raise BackupError(f"backup {entry.name} is encrypted with openssl: give passphrase to decrypt it. Nothing was "
                          f"changed; database '{settings.target}' is untouched.")
    if manifest.encryption == "openssl" and key_matches(settings.passphrase, manifest.key_check) is False:
        raise BackupError(f"the passphrase does not decrypt backup {entry.name}: it is not the one the backup was made "
                          f"with. Nothing was changed; database '{settings.target}' is untouched.")
    if manifest.encryption == "age" and not settings.age_identity:
        raise BackupError(f"backup {entry.name} is encrypted with age: give age_identity (the secret key) to decrypt "
                          f"it. Nothing was changed; database '{settings.target}' is untouched.")
    if settings.compare_with:
        out = psql(executor, runtime, settings.container, "postgres",
                   f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {quote_literal(settings.compare_with)});")
        if out.strip() != "t":
            raise BackupError(f"compare_with database '{settings.compare_with}' does not exist in container "
                              f"'{settings.container}': name the database to compare the restore with. Nothing was "
                              f"changed; database '{settings.target}' is untouched.")
    result: Dict[str, object] = {"runtime": runtime, "backup_dir": settings.backup_dir,
                                 "backup": entry.summary(), "target": settings.target,
                                 "replaced": False, "changed": True, "comparison": None}
    if check_mode:
        exists = target_facts(executor, runtime, settings.container, settings.target, manifest.owner)[0]
        refuse_existing(settings, entry, exists)
        result["replaced"] = exists
        result["commands"] = [command.record() for command in executor.commands]
        return result
    with tempfile.TemporaryDirectory(prefix="poststack-restore-") as tmp:
        identity_file = None
        if settings.age_identity:
            identity_file = os.path.join(tmp, "identity")
            with open(identity_file, "w", encoding="utf-8") as handle:
                os.chmod(identity_file, 0o600)
                handle.write(settings.age_identity.strip() + "\n")
        decrypt = decrypt_argv(manifest.encryption, identity_file)
        inside = container_path(entry.path, mount_source) if decrypt is None else None
        if manifest.format == "directory" and inside is None:
            raise BackupError(f"{entry.path} is a directory-format dump outside the container's backups mount "
                              f"({mount_source}): copy it below that directory to restore it")
        incoming = scratch_name(settings.target, "restore_")
        # Everything goes into a new database first; an unreadable archive, a wrong key or a failing statement
        # stops pg_restore there, and the target is only touched by the swap after a complete restore.
        exists = create_incoming(executor, runtime, settings.container, settings.target, incoming, manifest.owner)
        result["replaced"] = exists
        if exists and not settings.replace:
            psql(executor, runtime, settings.container, "postgres", f"DROP DATABASE {quote_ident(incoming)};")
            refuse_existing(settings, entry, exists)
        try:
            restore = exec_argv(runtime, settings.container, pg_restore_argv(incoming, settings.jobs, inside),
                                interactive=inside is None)
            clock = time.monotonic()
            if inside:
                executor.run(restore)
            else:
                try:
                    executor.pipeline_from_file(entry.path, ([decrypt] if decrypt else []) + [restore])
                except BackupError as exc:
                    if manifest.encryption == "openssl" and not manifest.key_check:
                        raise BackupError(f"{exc} (this backup's manifest has no passphrase check, and openssl does "
                                          "not always notice a wrong passphrase: check it)") from exc
                    raise
            result["restore_seconds"] = round(time.monotonic() - clock, 3)
        except BaseException:
            psql(executor, runtime, settings.container, "postgres",
                 f"DROP DATABASE IF EXISTS {quote_ident(incoming)} WITH (FORCE);")
            raise
        outgoing = scratch_name(settings.target, "replaced_") if exists else None
        try:
            psql(executor, runtime, settings.container, "postgres", "\n".join(swap_sql(settings.target, incoming, outgoing)))
        except BackupError:
            # The renames are one transaction: either both happened or none. Clean up whichever is left over.
            psql(executor, runtime, settings.container, "postgres",
                 f"DROP DATABASE IF EXISTS {quote_ident(incoming)} WITH (FORCE);\n"
                 f"ALTER DATABASE {quote_ident(settings.target)} ALLOW_CONNECTIONS true;")
            raise
    if settings.compare_with:
        source = table_stats(executor, runtime, settings.container, settings.compare_with)
        restored = table_stats(executor, runtime, settings.container, settings.target)
        differences = compare_stats(source, restored)
        result["comparison"] = {"source": settings.compare_with, "tables": len(source),
                                "rows": sum(int(item["rows"]) for item in source.values()),
                                "differences": [asdict(item) for item in differences], "equal": not differences}
    if settings.drop_after:
        psql(executor, runtime, settings.container, "postgres",
             f"DROP DATABASE IF EXISTS {quote_ident(settings.target)} WITH (FORCE);")
        result["dropped"] = True
    result["commands"] = [command.record() for command in executor.commands]
    return result
