# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""poststack's SQL migration engine (pure Python + psycopg 3, no Ansible imports).

Files: ``NNN_name.sql`` (migration), ``NNN_name.rollback.sql`` (its rollback), ``NNN_name.verify.sql``
(optional check). Versions are integers. A file whose first non-blank line is ``-- poststack:no-transaction``
runs statement by statement outside a transaction (``CREATE INDEX CONCURRENTLY``).

History lives in ``<tracking_schema>.schema_migrations``, one row per applied version and *stream* (a
namespace: the collection's core schema uses ``core``, a project's files ``project``), with the checksum,
the rollback SQL itself, who applied it, when and how long it took.

Layers: discovery and the SQL lexer (pure), the planner (pure: files + history -> steps or a clear error),
and :class:`Engine` which runs plans against PostgreSQL under a session-level advisory lock.

The package, one concern per file: ``files`` (discovery and checksums), ``checksum_cache`` (stat before read:
unchanged files are not read again), ``sqltext`` (the SQL lexer and
pre-flight checks), ``plan`` (the history model and the planners, pure), ``engine`` (sessions, the lock, history,
planning and the operations), ``execution`` (running a plan's steps, for real or as a dry run), ``cli`` (the command
line); ``errors`` is shared. The names below are the engine's API.
"""

from __future__ import annotations

from ansible_collections.poststack.core.plugins.module_utils.migrations.engine import (
    DEFAULT_SCHEMA, DEFAULT_STREAM, HAS_PSYCOPG, TRACKING_TABLE, Engine, LockHolder, OperationLog, RunResult, Settings,
    Status, lock_key,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import (
    DiscoveryError, ExecutionError, LockTimeout, MigrationError, PlanError,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.execution import LOCK_NOT_AVAILABLE
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import (
    FORMAT_ARGUMENT_SPEC, MAX_VERSION, MigrationFile, checksum, discover, has_no_transaction_marker, normalise_text,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.plan import (
    AppliedMigration, Drift, Plan, Step, current_version, find_drift, plan_baseline, plan_migrate, plan_repair,
    plan_rollback,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import (
    CheckedSql, NO_TRANSACTION_MARKER, SqlLexError, Statement, check_sql, line_of, split_sql, strip_sql_comments,
)

__all__ = [
    "AppliedMigration",
    "DEFAULT_SCHEMA",
    "DEFAULT_STREAM",
    "DiscoveryError",
    "Drift",
    "Engine",
    "ExecutionError",
    "HAS_PSYCOPG",
    "LOCK_NOT_AVAILABLE",
    "LockHolder",
    "LockTimeout",
    "FORMAT_ARGUMENT_SPEC",
    "MAX_VERSION",
    "MigrationError",
    "MigrationFile",
    "NO_TRANSACTION_MARKER",
    "OperationLog",
    "Plan",
    "PlanError",
    "RunResult",
    "Settings",
    "SqlLexError",
    "Statement",
    "CheckedSql",
    "Status",
    "Step",
    "TRACKING_TABLE",
    "check_sql",
    "checksum",
    "current_version",
    "discover",
    "find_drift",
    "has_no_transaction_marker",
    "line_of",
    "lock_key",
    "normalise_text",
    "plan_baseline",
    "plan_migrate",
    "plan_repair",
    "plan_rollback",
    "split_sql",
    "strip_sql_comments",
]
