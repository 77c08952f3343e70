# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logical backups of a containerised PostgreSQL: manifest, catalog, checksum validation, retention planner,
pg_dump/pg_restore through ``<runtime> exec``, restore by swap, and table comparison.

Standard library only (and the collection's runtime.py), no Ansible imports: the modules poststack_backup,
poststack_backup_info and poststack_backup_restore use it, and the backup role installs the same code on the host
as one file (the poststack.core.backup_bundle lookup) that its cron job or systemd timer runs, so that scheduled
and on-demand backups are the same code.

One concern per file: ``manifest`` (what a backup is, checksums, the passphrase verifier), ``catalog`` (the
backups of a directory, which are good, retention), ``commands`` (the commands and the executor that records
them), ``dump`` (the logical backup), ``restore``, ``cli`` (the scheduled command).

Layout of a backup directory (host side)::

    <name>.dump | <name>.dump.age | <name>.dump.enc | <name>.dir/     the backup (custom or directory format)
    <name>.manifest.json                                            what it is, its size and sha256

A backup without a manifest, or whose size or sha256 differs from it, is not "good": it is never restored, never
counts as the newest good backup, and retention only removes it by age.
"""

from __future__ import annotations

from ansible_collections.poststack.core.plugins.module_utils.backup.manifest import (
    BackupError,
    CHUNK,
    CONTAINER_BACKUP_ROOT,
    CONTAINER_CONF_DIR,
    ENCRYPTIONS,
    FORMATS,
    KEY_CHECK_CONTEXT,
    MANIFEST_SUFFIX,
    MANIFEST_VERSION,
    MAX_IDENTIFIER,
    Manifest,
    NAME_RE,
    NOTHING_CHANGED,
    OPENSSL_ITERATIONS,
    PASSPHRASE_ENV,
    POSTGRES_UID,
    PREFIX_RE,
    RESERVED_DATABASES,
    SEP,
    backup_filename,
    backup_name,
    iso,
    key_check,
    key_matches,
    parse_time,
    sha256_file,
    tree_digest,
    tree_files,
    utc_now,
    write_atomic,
)
from ansible_collections.poststack.core.plugins.module_utils.backup.catalog import (
    BackupEntry,
    RetentionDecision,
    RetentionPlan,
    apply_retention,
    check_entry,
    newest_good,
    plan_retention,
    retention_paths,
    scan,
)
from ansible_collections.poststack.core.plugins.module_utils.backup.commands import (
    Executor,
    container_mount_source,
    container_path,
    decrypt_argv,
    encrypt_argv,
    pg_dump_argv,
    pg_restore_argv,
    quote_ident,
    quote_literal,
    resolve_runtime,
)
from ansible_collections.poststack.core.plugins.module_utils.postgres_exec import exec_argv
from ansible_collections.poststack.core.plugins.module_utils.backup.dump import (
    DumpSettings,
    backup_inventory,
    check_source,
    create_backup,
    default_backup_dir,
    ensure_backup_dir,
    run_backup,
    source_facts,
    target_argument_spec,
)
from ansible_collections.poststack.core.plugins.module_utils.backup.restore import (
    RestoreSettings,
    TABLES_SQL,
    TableDifference,
    check_restore_names,
    compare_stats,
    create_incoming,
    find_backup,
    parse_rows,
    psql,
    refuse_existing,
    run_restore,
    scratch_name,
    swap_sql,
    table_stats,
    table_stats_sql,
    target_facts,
)
from ansible_collections.poststack.core.plugins.module_utils.backup.cli import (
    cli,
    settings_from_config,
)

__all__ = [
    "BackupEntry",
    "BackupError",
    "CHUNK",
    "CONTAINER_BACKUP_ROOT",
    "CONTAINER_CONF_DIR",
    "DumpSettings",
    "ENCRYPTIONS",
    "Executor",
    "FORMATS",
    "KEY_CHECK_CONTEXT",
    "MANIFEST_SUFFIX",
    "MANIFEST_VERSION",
    "MAX_IDENTIFIER",
    "Manifest",
    "NAME_RE",
    "NOTHING_CHANGED",
    "OPENSSL_ITERATIONS",
    "PASSPHRASE_ENV",
    "POSTGRES_UID",
    "PREFIX_RE",
    "RESERVED_DATABASES",
    "RestoreSettings",
    "RetentionDecision",
    "RetentionPlan",
    "SEP",
    "TABLES_SQL",
    "TableDifference",
    "apply_retention",
    "backup_filename",
    "backup_inventory",
    "backup_name",
    "check_entry",
    "check_restore_names",
    "check_source",
    "cli",
    "compare_stats",
    "container_mount_source",
    "container_path",
    "create_backup",
    "create_incoming",
    "decrypt_argv",
    "default_backup_dir",
    "encrypt_argv",
    "ensure_backup_dir",
    "exec_argv",
    "find_backup",
    "iso",
    "key_check",
    "key_matches",
    "newest_good",
    "parse_rows",
    "parse_time",
    "pg_dump_argv",
    "pg_restore_argv",
    "plan_retention",
    "psql",
    "quote_ident",
    "quote_literal",
    "refuse_existing",
    "resolve_runtime",
    "retention_paths",
    "run_backup",
    "run_restore",
    "scan",
    "scratch_name",
    "settings_from_config",
    "sha256_file",
    "source_facts",
    "swap_sql",
    "table_stats",
    "table_stats_sql",
    "target_argument_spec",
    "target_facts",
    "tree_digest",
    "tree_files",
    "utc_now",
    "write_atomic",
]
