# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine: runs plans against PostgreSQL on one psycopg connection under a session-level advisory lock."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

try:
    import psycopg
    from psycopg import sql as pg_sql

    HAS_PSYCOPG = True
except ImportError:  # the module reports missing_required_lib('psycopg')
    psycopg = None
    pg_sql = None
    HAS_PSYCOPG = False

from ansible_collections.poststack.core.plugins.module_utils.migrations.adopt import (
    DEFAULT_TABLES, SCHEMA, TOOLS, applied_versions, read_history,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.checksum_cache import ChecksumCache, default_path
from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import (
    DiscoveryError, LockTimeout, MigrationError, PlanError, pg_message,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.execution import Execution, where
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import (
    CODE_VERSION, LAYOUTS, MigrationFile, discover, sqitch_project,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.lint import LEVELS as LINT_LEVELS, Finding, lint_file
from ansible_collections.poststack.core.plugins.module_utils.migrations.plan import (
    AppliedMigration, Plan, current_version, find_drift, plan_baseline, plan_migrate, plan_repair, plan_rollback,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.repeatables import (
    TABLE as REPEATABLES_TABLE, Repeatable, discover_repeatables, plan_repeatables, repeatable_states,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import (
    CheckedSql, check_sql, verify_body,
)

TRACKING_TABLE = "schema_migrations"
DEFAULT_SCHEMA = "poststack"
DEFAULT_STREAM = "project"
CORE_STREAM = "core"  # the collection's own schema (migrations/), applied before a project's streams
PUBLIC_FIRST = 'public, "$user"'

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_STREAM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass
class LockHolder:
    pid: int
    application_name: str
    client_addr: Optional[str]
    user: Optional[str]
    backend_start: Optional[str]
    state: Optional[str]
    query_start: Optional[str]

    def describe(self) -> str:
        return "pid %d (application_name %r, user %s, client %s, connected since %s, state %s since %s)" % (
            self.pid, self.application_name, self.user, self.client_addr or "local socket", self.backend_start,
            self.state, self.query_start)


@dataclass
class RunResult:
    action: str
    changed: bool
    dry_run: bool
    plan: Plan
    before_version: int
    after_version: int
    done: List[int] = field(default_factory=list)
    timings_ms: Dict[str, int] = field(default_factory=dict)
    skipped: List[Dict[str, Any]] = field(default_factory=list)
    total_ms: int = 0
    lint: List[Dict[str, Any]] = field(default_factory=list)
    repeated: List[str] = field(default_factory=list)  # the repeatable migrations applied, by name


@dataclass
class Status:
    current_version: int
    applied: List[Dict[str, Any]]
    pending: List[int]
    drift: List[Dict[str, Any]]
    lock_holder: Optional[Dict[str, Any]]
    tracking_table: str
    stream: str
    repeatables: List[Dict[str, Any]] = field(default_factory=list)  # repeatables.repeatable_states


@dataclass
class Settings:
    migrations_dir: Optional[str]
    tracking_schema: str = DEFAULT_SCHEMA
    stream: str = DEFAULT_STREAM
    lock_wait_timeout: float = 60.0
    lock_timeout: str = "10s"
    statement_timeout: str = "0"
    retries: int = 3
    retry_backoff: float = 0.5
    allow_out_of_order: bool = False
    log_file: Optional[str] = None
    layout: str = "auto"  # how the files are named: auto, poststack, golang-migrate, dbmate (files.LAYOUTS)
    lint: str = "warn"  # the safe-DDL lint of pending migrations: error (nothing runs), warn, off (lint.LEVELS)
    # baseline: adopt another tool's history (adopt.TOOLS) instead of a version; "schema": the stream's first
    # migration written from the live schema (schema_baseline.py), then recorded like a version
    baseline_from: Optional[str] = None
    baseline_table: Optional[str] = None  # its table, when not the tool's default (adopt.DEFAULT_TABLES)
    checksum_cache: bool = True  # stat before read: unchanged files' checksums from checksum_cache.py

    def validate(self) -> None:
        if not _IDENTIFIER.match(self.tracking_schema or ""):
            raise MigrationError("tracking_schema %r is not a plain lower-case identifier ([a-z_][a-z0-9_]*, at most 63)"
                                 % (self.tracking_schema,))
        if not _STREAM.match(self.stream or ""):
            raise MigrationError("stream %r must be 1-63 characters of a-z, 0-9, '_', '.', '-'" % (self.stream,))
        if self.lock_wait_timeout is None or self.lock_wait_timeout < 0:
            raise MigrationError("lock_wait_timeout must be >= 0 seconds, got %r" % (self.lock_wait_timeout,))
        if self.retries is None or self.retries < 0:
            raise MigrationError("retries must be >= 0, got %r" % (self.retries,))
        if self.lint not in LINT_LEVELS:
            raise MigrationError("lint %r is not one of %s" % (self.lint, ", ".join(LINT_LEVELS)))
        if self.baseline_from not in (None, SCHEMA) + TOOLS:
            raise MigrationError("baseline_from %r is not one of %s" % (self.baseline_from, ", ".join(TOOLS + (SCHEMA,))))
        if self.layout not in LAYOUTS:
            raise MigrationError("format %r is not one of %s" % (self.layout, ", ".join(LAYOUTS)))
        if self.retry_backoff is None or self.retry_backoff < 0:
            raise MigrationError("retry_backoff must be >= 0 seconds, got %r" % (self.retry_backoff,))


def lock_key(tracking_schema: str) -> int:
    """The advisory lock key: derived from the tracking schema, so each history has its own lock."""
    digest = hashlib.sha256(("poststack_migrate:" + tracking_schema).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class OperationLog:
    """Appends timestamped lines to ``log_file`` (never SQL parameters or passwords)."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self.lines: List[str] = []

    def __call__(self, message: str) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = "%s pid=%d %s" % (stamp, os.getpid(), message)
        self.lines.append(line)
        if self.path:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")


class Engine(Execution):
    """Runs plans on one psycopg connection (autocommit; transactions are explicit)."""

    def __init__(self, conn: Any, settings: Settings, log: Optional[Callable[[str], None]] = None,
                 sleep: Callable[[float], None] = time.sleep,
                 should_stop: Optional[Callable[[], Optional[str]]] = None) -> None:
        """``should_stop``: asked before each migration but the first; a reason (the controller went away)
        ends the run there, between two migrations, never inside one."""
        settings.validate()
        self.should_stop = should_stop
        self.conn = conn
        self.settings = settings
        self.log = log or OperationLog(settings.log_file)
        self.sleep = sleep
        self.schema = settings.tracking_schema
        self.schema_sql = pg_sql.Identifier(self.schema).as_string(conn)  # quoted as SQL needs it
        self.table = "%s.%s" % (self.schema_sql, TRACKING_TABLE)
        self.repeatables_table = "%s.%s" % (self.schema_sql, REPEATABLES_TABLE)
        self.key = lock_key(self.schema)
        self._lock_depth = 0  # the lock is taken once per session; a nested take (a caller's, then run's) counts
        self.checked: Dict[Tuple[str, bool], CheckedSql] = {}
        self.findings: List[Finding] = []
        self.reset_sql = ""
        self._files: Optional[List[MigrationFile]] = None  # read once per engine: plan, run and status share them
        self._repeatables: Optional[List[Repeatable]] = None

    # -- session -------------------------------------------------------------------------------------------
    def prepare_session(self) -> None:
        """Validate and apply the timeouts (bad values fail here, before any lock or change); what makes them
        again after a session reset goes into ``reset_sql``."""
        made = []
        for name in ("lock_timeout", "statement_timeout"):
            value = getattr(self.settings, name)
            try:
                self.conn.execute("SELECT set_config(%s, %s, false)", (name, str(value)))
            except psycopg.Error as exc:
                raise MigrationError("invalid %s %r: %s" % (name, value, pg_message(exc)))
            made.append((name, str(value)))
        # A client killed mid-migration is noticed by the server within a second: it rolls back and frees the lock.
        try:
            self.conn.execute("SELECT set_config('client_connection_check_interval', '1000', false)")
            made.append(("client_connection_check_interval", "1000"))
        except psycopg.Error:
            pass
        # A login named like the tracking schema (seed 003's user poststack, tracking schema poststack) would create
        # a migration's unqualified objects in the tracking schema: "$user" comes first in PostgreSQL's default
        # search_path, and that schema exists. Such a login's migrations (the core schema's qualify their names) run
        # with public first; what is already in the tracking schema is still found, as it stays on the path.
        if self.settings.stream != CORE_STREAM:
            user, path = self.conn.execute("SELECT current_user, current_setting('search_path')").fetchone()
            if user == self.schema and [part.strip() for part in path.split(",")] == ['"$user"', "public"]:
                self.conn.execute("SELECT set_config('search_path', %s, false)", (PUBLIC_FIRST,))
                made.append(("search_path", PUBLIC_FIRST))
        self.reset_sql = self._reset_session_sql(made)

    def _reset_session_sql(self, made: List[Tuple[str, str]]) -> str:
        """What puts the session back as the run found it before each migration but the first: settings made by
        an earlier migration (``SET search_path``, ``SET ROLE``...), its temporary tables and LISTENs do not
        reach the next one, whether both run in one run or in two. ``RESET ROLE`` after ``RESET SESSION
        AUTHORIZATION`` restores a role the login gets by default (``ALTER ROLE ... SET role``, ``-c role=``),
        which the latter alone drops. The engine's own settings are made again; the migration lock
        (session-level) stays."""
        literal = pg_sql.Literal
        again = ", ".join("set_config(%s, %s, false)" % (literal(name).as_string(self.conn),
                                                         literal(value).as_string(self.conn))
                          for name, value in made)
        return ("RESET ALL;\nRESET SESSION AUTHORIZATION;\nRESET ROLE;\nDISCARD TEMP;\nUNLISTEN *;\n%s"
                % ("SELECT %s;\n" % again if again else ""))

    def acquire_lock(self) -> None:
        """Take the migration lock, waiting at most lock_wait_timeout. The wait is a poll of
        pg_try_advisory_lock() in short statements, never one statement blocked in pg_advisory_lock(): a
        blocked statement holds a snapshot, and CREATE INDEX CONCURRENTLY in the holder's run waits for every
        snapshot older than its own, which is a deadlock (the one Flyway users meet). Taken again by its holder (a
        caller that holds it around run()), it counts, and the last release frees it."""
        if self._lock_depth:
            self._lock_depth += 1
            return
        start = time.monotonic()
        deadline = start + self.settings.lock_wait_timeout
        pause = 0.02
        while not self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]:
            left = deadline - time.monotonic()
            if left <= 0:
                holders = self.lock_holders()
                who = "; ".join(holder.describe() for holder in holders) or "a session that has since ended"
                raise LockTimeout(
                    "could not get the migration lock for schema %s within %ss: held by %s. Wait for it to finish, "
                    "raise lock_wait_timeout, or end a stuck holder with state=unlocked and terminate_holder=true"
                    % (self.schema, self.settings.lock_wait_timeout, who),
                    {"lock_holders": [asdict(holder) for holder in holders]},
                )
            self.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)
        self._lock_depth = 1
        self.log("lock acquired key=%d schema=%s after %d ms" % (self.key, self.schema, (time.monotonic() - start) * 1000))

    def release_lock(self) -> None:
        if self._lock_depth > 1:
            self._lock_depth -= 1
        elif self._lock_depth:
            try:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                self.log("lock released key=%d" % self.key)
            except psycopg.Error as exc:
                if not self._connection_lost():
                    raise
                # The lock was the session's: the server freed it when the session ended. Raising here would
                # hide the error that ended the run.
                self.log("lock key=%d went with the lost connection (%s)" % (self.key, pg_message(exc)))
            finally:
                self._lock_depth = 0

    def _connection_lost(self) -> bool:
        return bool(getattr(self.conn, "closed", False) or getattr(self.conn, "broken", False))

    def lock_holders(self) -> List[LockHolder]:
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        rows = self.conn.execute(
            "SELECT a.pid, coalesce(a.application_name, ''), host(a.client_addr), a.usename::text,"
            " a.backend_start::text, a.state, a.query_start::text"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid::bigint = %s AND l.objid::bigint = %s AND a.pid <> pg_backend_pid()",
            (unsigned >> 32, unsigned & 0xFFFFFFFF),
        ).fetchall()
        return [LockHolder(row[0], row[1], row[2], row[3], row[4], row[5], row[6]) for row in rows]

    # -- history -------------------------------------------------------------------------------------------
    def table_exists(self, table: str) -> bool:
        return self.conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None

    def tracking_exists(self) -> bool:
        return self.table_exists(self.table)

    def tracking_ddl(self) -> str:
        return (
            "CREATE SCHEMA IF NOT EXISTS %s;\n"
            "CREATE TABLE IF NOT EXISTS %s (\n"
            "  stream text NOT NULL,\n"
            "  version bigint NOT NULL CHECK (version > 0),\n"
            "  name text NOT NULL,\n"
            "  checksum char(64) NOT NULL,\n"
            "  rollback_checksum char(64),\n"
            "  rollback_sql text,\n"
            "  rollback_no_transaction boolean NOT NULL DEFAULT false,\n"
            "  no_transaction boolean NOT NULL DEFAULT false,\n"
            "  baselined boolean NOT NULL DEFAULT false,\n"
            "  applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
            "  applied_by text NOT NULL DEFAULT current_user,\n"
            "  execution_ms integer NOT NULL DEFAULT 0,\n"
            "  PRIMARY KEY (stream, version)\n"
            ");\n"
            "COMMENT ON TABLE %s IS 'poststack migration history: one row per applied version and stream';\n"
            % (self.schema_sql, self.table, self.table)
        )

    def repeatables_ddl(self) -> str:
        """The history of the repeatable migrations, made by the first run that applies one."""
        return (
            "CREATE SCHEMA IF NOT EXISTS %s;\n"
            "CREATE TABLE IF NOT EXISTS %s (\n"
            "  stream text NOT NULL,\n"
            "  name text NOT NULL,\n"
            "  checksum char(64) NOT NULL,\n"
            "  applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
            "  applied_by text NOT NULL DEFAULT current_user,\n"
            "  execution_ms integer NOT NULL DEFAULT 0,\n"
            "  PRIMARY KEY (stream, name)\n"
            ");\n" % (self.schema_sql, self.repeatables_table)
        )

    def history(self) -> Dict[int, AppliedMigration]:
        if not self.tracking_exists():
            return {}
        rows = self.conn.execute(
            "SELECT version, name, checksum, rollback_checksum, rollback_sql, rollback_no_transaction, no_transaction,"
            " baselined, applied_at::text, applied_by, execution_ms FROM %s WHERE stream = %%s ORDER BY version" % self.table,
            (self.settings.stream,),
        ).fetchall()
        return {row[0]: AppliedMigration(*row) for row in rows}

    def repeatable_history(self) -> Dict[str, Dict[str, Any]]:
        """The stream's applied repeatable migrations by name (checksum, applied_at)."""
        if not self.table_exists(self.repeatables_table):
            return {}
        rows = self.conn.execute("SELECT name, checksum, applied_at::text FROM %s WHERE stream = %%s"
                                 % self.repeatables_table, (self.settings.stream,)).fetchall()
        return {name: {"checksum": digest, "applied_at": applied_at} for name, digest, applied_at in rows}

    def repeatables(self) -> List[Repeatable]:
        """The directory's repeatable migrations (Flyway's R__ files; none in other layouts)."""
        if self._repeatables is None:
            self._repeatables = discover_repeatables(self.settings.migrations_dir, self.settings.layout) \
                if self.settings.migrations_dir is not None else []
        return self._repeatables

    def forget_files(self) -> None:
        """Read the directory again at the next files() (a file was written into it)."""
        self._files = None
        self._repeatables = None

    def files(self) -> List[MigrationFile]:
        if self.settings.migrations_dir is None:
            raise MigrationError("a migrations directory is required for this operation")
        if self._files is None:
            path = default_path(self.settings.migrations_dir, self.settings.layout)
            cache = ChecksumCache(path, CODE_VERSION) if self.settings.checksum_cache and path and CODE_VERSION else None
            self._files = discover(self.settings.migrations_dir, self.settings.layout, cache)
            if cache is not None:
                cache.save()
        return self._files

    def read_files(self) -> List[MigrationFile]:
        """The files read whole, without the checksum cache: what verify and repair compare with the history."""
        if self.settings.migrations_dir is None:
            raise MigrationError("a migrations directory is required for this operation")
        self._files = discover(self.settings.migrations_dir, self.settings.layout)
        return self._files

    # -- operations ----------------------------------------------------------------------------------------
    def status(self) -> Status:
        """History, lock holder and (when a directory is set) pending versions and drift; read-only."""
        files = self.files() if self.settings.migrations_dir is not None else None
        history = self.history()
        holders = self.lock_holders()
        return Status(
            current_version=current_version(history),
            applied=[
                {"version": row.version, "name": row.name, "applied_at": row.applied_at, "applied_by": row.applied_by,
                 "execution_ms": row.execution_ms, "baselined": row.baselined, "checksum": row.checksum,
                 "has_rollback": row.rollback_sql is not None}
                for row in history.values()
            ],
            pending=[item.version for item in files if item.version not in history] if files is not None else [],
            drift=[asdict(item) for item in find_drift(files, history)] if files is not None else [],
            lock_holder=asdict(holders[0]) if holders else None,
            tracking_table=self.table,
            stream=self.settings.stream,
            repeatables=repeatable_states(self.repeatables(), self.repeatable_history()) if files is not None else [],
        )

    def plan(self, action: str, target_version: Optional[int] = None) -> Tuple[Plan, List[MigrationFile], Dict[int, AppliedMigration]]:
        files = self.files()
        history = self.history()
        if action == "apply":
            plan = plan_migrate(files, history, target_version, self.settings.allow_out_of_order)
            if target_version is None and self.repeatables():  # a run to the end: the new or changed repeatables
                plan.repeatables = plan_repeatables(self.repeatables(), {
                    name: row["checksum"] for name, row in self.repeatable_history().items()})
        elif action == "rollback":
            plan = plan_rollback(files, history, target_version)
        elif action == "baseline" and self.settings.baseline_from in TOOLS:
            tool = self.settings.baseline_from
            if target_version is not None:
                raise PlanError("baseline takes target_version or baseline_from, not both")
            rows = read_history(self.conn, tool, self.settings.baseline_table, self.table)
            versions = applied_versions(tool, rows, [item.version for item in files],
                                        {item.name: item.version for item in files},
                                        sqitch_project(self.settings.migrations_dir) if tool == "sqitch" else None)
            plan = plan_baseline(files, history, None, versions,
                                 "%s's history (%s)" % (tool, self.settings.baseline_table or DEFAULT_TABLES[tool]))
        elif action == "baseline":
            plan = plan_baseline(files, history, target_version)
        elif action == "repair":
            files = self.read_files()
            plan = plan_repair(files, history)
        else:
            raise MigrationError("unknown action %r" % action)
        by_version = {item.version: item for item in files}
        for step in plan.steps:  # the texts the steps run (the cache gave only the checksums)
            if step.version in by_version:
                by_version[step.version].load()
        self._preflight(plan, files, history)
        self._lint(plan, files)
        return plan, files, history

    def _preflight(self, plan: Plan, files: Sequence[MigrationFile], history: Dict[int, AppliedMigration]) -> None:
        """The SQL of every step checked before anything runs; every offending file is named in one error. The
        text each step will run is kept (``self.checked``, by the file's text and how it runs)."""
        by_version = {item.version: item for item in files}
        problems: List[str] = []

        def check(label: str, text: str, no_transaction: bool) -> None:
            try:
                self.checked[(text, no_transaction)] = check_sql(label, text, no_transaction)
            except DiscoveryError as exc:
                problems.extend(exc.details.get("problems") or [str(exc)])

        for step in plan.steps:
            item = by_version.get(step.version)
            if step.action == "apply":
                check(item.filename, item.sql, item.no_transaction)
                if item.rollback_sql is not None:
                    check(item.rollback_filename, item.rollback_sql, item.rollback_no_transaction)
            elif step.action == "rollback":
                row = history[step.version]
                text = row.rollback_sql if row.rollback_sql is not None else item.rollback_sql
                check("rollback of version %d" % step.version, text, step.no_transaction)
        for repeatable in self._planned_repeatables(plan):
            check(repeatable.filename, repeatable.sql, repeatable.no_transaction)
        if problems:
            raise DiscoveryError("invalid SQL, nothing was run: %s" % "; ".join(problems), {"problems": problems})

    def _planned_repeatables(self, plan: Plan) -> List[Repeatable]:
        by_name = {item.name: item for item in self.repeatables()} if plan.repeatables else {}
        return [by_name[step.name] for step in plan.repeatables]

    def checked_sql(self, label: str, text: str, no_transaction: bool = False) -> CheckedSql:
        """A step's SQL as the pre-flight checked it: its statements, and the text a transaction step runs (the
        file without a BEGIN/COMMIT around it)."""
        key = (text, no_transaction)
        if key not in self.checked:
            self.checked[key] = check_sql(label, text, no_transaction)
        return self.checked[key]

    def _lint(self, plan: Plan, files: Sequence[MigrationFile]) -> None:
        """The safe-DDL lint of the migrations the plan applies (lint.py); with lint=error a finding stops the
        run before anything runs."""
        self.findings = []
        if self.settings.lint == "off" or plan.action != "apply":
            return
        by_version = {item.version: item for item in files}
        created: set = set()
        disabled = str(self.settings.lock_timeout).strip() in ("0", "0s", "0ms")
        for item in [by_version[step.version] for step in plan.steps] + self._planned_repeatables(plan):
            statements = self.checked_sql(item.filename, item.sql, item.no_transaction).statements
            self.findings += lint_file(item.filename, item.sql, statements, created, disabled)
        for finding in self.findings:
            self.log("lint %s" % finding.describe())
        if self.findings and self.settings.lint == "error":
            raise PlanError("unsafe DDL (lint=error), nothing was run: %s" % "; ".join(
                finding.describe() for finding in self.findings), {"lint": [asdict(f) for f in self.findings]})

    def run(self, action: str, target_version: Optional[int] = None, dry_run: bool = False) -> RunResult:
        """Plan under the lock and execute; ``dry_run`` executes in one transaction and rolls it back."""
        started = time.monotonic()
        self.prepare_session()
        self.acquire_lock()
        try:
            plan, files, history = self.plan(action, target_version)
            result = RunResult(action, bool(plan.steps or plan.repeatables), dry_run, plan, plan.current_version,
                               plan.current_version)
            result.lint = [asdict(finding) for finding in self.findings]
            if plan.steps or plan.repeatables:
                by_version = {item.version: item for item in files}
                if dry_run:
                    self._dry_run(plan, by_version, history, result)
                else:
                    try:
                        self._execute(plan, by_version, history, result)
                    except MigrationError as exc:
                        self._after_failure(result, exc)
                        raise
                    result.after_version = current_version(self.history())
        finally:
            self.release_lock()
        result.total_ms = int((time.monotonic() - started) * 1000)
        return result

    def _after_failure(self, result: RunResult, exc: MigrationError) -> None:
        """A step failed after others succeeded: those stay (each was its own transaction). Make them durable (only
        the last commit of a run waits for the WAL flush, and it never came), read the version that is really
        recorded now, put both in the error's details and write the failure to the log."""
        if result.done or result.repeated:
            try:
                # A commit that writes WAL flushes all WAL before it, so the earlier asynchronous commits too.
                self.conn.execute("BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT;")
            except psycopg.Error:
                self._rollback_failed()
        try:
            result.after_version = current_version(self.history())
        except psycopg.Error:  # the connection is gone (server restarted): the version cannot be read
            result.after_version = None
        failed = result.plan.steps[len(result.done)] if len(result.done) < len(result.plan.steps) else None
        failed_repeatable = result.plan.repeatables[len(result.repeated)].name \
            if failed is None and len(result.repeated) < len(result.plan.repeatables) else None
        exc.details.update(done=list(result.done), current_version=result.after_version,
                           changed=bool(result.done or result.repeated), timings_ms=dict(result.timings_ms),
                           plan=result.plan.as_dicts(), previous_version=result.before_version,
                           failed_version=failed.version if failed else None, repeated=list(result.repeated),
                           failed_repeatable=failed_repeatable)
        self.log("FAILED %s%s after %d of %d step(s) (done: %s; current version: %s): %s" % (
            result.action, " version=%d name=%s" % (failed.version, failed.name) if failed else
            (" repeatable=%s" % failed_repeatable if failed_repeatable else ""),
            len(result.done) + len(result.repeated), len(result.plan.steps) + len(result.plan.repeatables),
            ",".join([str(v) for v in result.done] + result.repeated) or "none",
            "unknown" if result.after_version is None else result.after_version, exc))

    def verify(self) -> Dict[str, Any]:
        """Checksums of applied migrations and their verify scripts (each run in a rolled-back transaction)."""
        files = self.read_files()
        history = self.history()
        drift = find_drift(files, history)
        by_version = {item.version: item for item in files}
        results = []
        for version in sorted(history):
            item = by_version.get(version)
            if item is None or item.verify_path is None:
                continue
            item.load()
            tick = time.monotonic()
            error = None
            self.conn.execute("BEGIN")
            try:
                self.conn.execute(verify_body(item.verify_sql))
            except psycopg.Error as exc:
                error = "%s failed%s: %s" % (os.path.basename(item.verify_path), where(exc, item.verify_sql, 0), pg_message(exc))
            finally:
                self._rollback_failed()
            results.append({"version": version, "file": os.path.basename(item.verify_path), "ok": error is None,
                            "error": error, "ms": int((time.monotonic() - tick) * 1000)})
        self.log("verify: %d script(s), %d drift item(s)" % (len(results), len(drift)))
        return {"drift": [asdict(item) for item in drift], "verify_scripts": results,
                "ok": not drift and all(entry["ok"] for entry in results), "current_version": current_version(history)}

    def unlock(self, terminate_holder: bool, check_mode: bool = False, wait: float = 5.0) -> Dict[str, Any]:
        holders = self.lock_holders()
        if not holders:
            return {"changed": False, "holders": [], "terminated": []}
        if not terminate_holder:
            raise MigrationError(
                "the migration lock for schema %s is held by %s; if that run is stuck, set terminate_holder=true to "
                "terminate it" % (self.schema, "; ".join(holder.describe() for holder in holders)),
                {"lock_holders": [asdict(holder) for holder in holders]},
            )
        terminated = []
        if not check_mode:
            for holder in holders:
                self.conn.execute("SELECT pg_terminate_backend(%s)", (holder.pid,))
                terminated.append(holder.pid)
                self.log("terminated lock holder %s" % holder.describe())
            deadline = time.monotonic() + wait
            while self.lock_holders() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.lock_holders():
                raise MigrationError("terminated %s but the lock is still held after %ss" % (terminated, wait))
        return {"changed": True, "holders": [asdict(holder) for holder in holders], "terminated": terminated}
