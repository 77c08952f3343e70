# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a plan's steps: the versioned migrations (apply, rollback, baseline, repair) and then the repeatable ones,
in one loop. Each step is a ``Unit``: what it runs, the history change that commits with it, and how the result
notes it. A transaction step is one round trip (``BEGIN; <reset>; <file>; <history>; COMMIT``), retried on
lock_timeout; a no-transaction step runs statement by statement and is recorded only when every statement
succeeded and no index was left invalid. Before each step but the first: the stop check (the controller went away)
and a clean session. The dry run runs the same units in one transaction that is rolled back.

``Execution`` is a part of ``Engine`` (engine.py), which it extends: it uses the engine's connection, settings, log,
tables, session reset and checked SQL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

try:
    import psycopg
    from psycopg import sql as pg_sql
except ImportError:  # the module reports missing_required_lib('psycopg')
    psycopg = None
    pg_sql = None

from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import (
    ExecutionError, pg_message, sqlstate,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import MigrationFile
from ansible_collections.poststack.core.plugins.module_utils.migrations.plan import AppliedMigration, Plan
from ansible_collections.poststack.core.plugins.module_utils.migrations.repeatables import Repeatable
from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import line_of

LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout hit: the one error a step is retried for


@dataclass
class Unit:
    """One step as it runs: a versioned migration or a repeatable one."""

    before: str  # how the stop message names it ("003_x", "the rollback of 003_x", "the repeatable migration R__v.sql")
    label: str  # the file (or recorded rollback) that errors name
    text: str
    no_transaction: bool
    tracking: Callable[[int], str]  # its history change, given its time in ms (-1: the server measures it)
    record: Callable[[int, bool], None]  # notes it in the result (ms, and whether to log it)
    skipped: Dict[str, Any]  # how a dry run lists it when it cannot run it
    repeatable: bool = False
    creates_tracking: bool = True  # a step that records into the history makes its table when it is missing


class Execution:
    """The execution part of ``Engine``."""

    def _units(self, plan: Plan, by_version: Dict[int, MigrationFile], history: Dict[int, AppliedMigration],
               result: Any) -> List[Unit]:
        units: List[Unit] = []
        for step in plan.steps:
            item = by_version.get(step.version)
            name = "%03d_%s" % (step.version, step.name)
            label, text, before = (item.filename if item else name), (item.sql if item else ""), name
            if step.action == "rollback":
                row = history[step.version]
                recorded = row.rollback_sql is not None or item is None
                label = "recorded rollback of %03d_%s" % (step.version, row.name) if recorded else item.rollback_filename
                text = row.rollback_sql if row.rollback_sql is not None else item.rollback_sql
                before = "the rollback of " + name
            elif step.action in ("baseline", "repair"):
                text = "SELECT 1"  # only the history changes

            def tracking(ms: int, step=step, item=item) -> str:
                if step.action == "apply":
                    return self._insert_sql(item, ms)
                if step.action == "rollback":
                    return self._delete_sql(step.version)
                if step.action == "baseline":
                    return self._insert_sql(item, 0, baselined=True)
                return self._repair_sql(item)

            def record(ms: int, log: bool, step=step) -> None:
                result.done.append(step.version)
                result.timings_ms[str(step.version)] = ms
                if log:
                    self.log("%s version=%d name=%s ms=%d" % (step.action, step.version, step.name, ms))

            units.append(Unit(before, label, text, step.no_transaction and step.action in ("apply", "rollback"),
                              tracking, record, {"version": step.version},
                              creates_tracking=step.action in ("apply", "baseline")))
        for step, item in zip(plan.repeatables, self._planned_repeatables(plan)):

            def record_repeatable(ms: int, log: bool, step=step, item=item) -> None:
                result.repeated.append(step.name)
                result.timings_ms[item.filename] = ms
                if log:
                    self.log("apply repeatable=%s reason=%s ms=%d" % (step.name, step.reason, ms))

            def upsert(ms: int, item=item) -> str:
                return self._upsert_repeatable_sql(item, ms)

            units.append(Unit("the repeatable migration %s" % item.filename, item.filename, item.sql,
                              step.no_transaction, upsert, record_repeatable, {"repeatable": step.name},
                              repeatable=True))
        return units

    def _execute(self, plan: Plan, by_version: Dict[int, MigrationFile], history: Dict[int, AppliedMigration],
                 result: Any) -> None:
        need_tracking = plan.action in ("apply", "baseline") and not self.tracking_exists()
        need_repeatables = bool(plan.repeatables) and not self.table_exists(self.repeatables_table)
        units = self._units(plan, by_version, history, result)
        for index, unit in enumerate(units):
            reason = self.should_stop() if index and self.should_stop is not None else None
            if reason:
                raise ExecutionError(
                    "stopped before %s: %s. The %d step(s) before it are done and recorded, nothing of this one ran; "
                    "run again to go on" % (unit.before, reason, index), {"stopped": True})
            tick = time.monotonic()
            # Each migration but the first starts from a clean session; a missing history table is made with the
            # first step that records into it (in its transaction).
            prefix = self.reset_sql if index else ""
            if need_tracking and unit.creates_tracking:
                prefix, need_tracking = prefix + self.tracking_ddl(), False
            if need_repeatables and unit.repeatable:
                prefix, need_repeatables = prefix + self.repeatables_ddl(), False
            if unit.no_transaction:
                if prefix:
                    self.conn.execute(prefix)
                self._run_no_transaction(unit.label, unit.text, unit.tracking)
            else:
                # Only the last commit waits for the WAL flush; it makes every earlier commit durable too.
                self._run_transaction(unit.label, self.checked_sql(unit.label, unit.text).body, prefix,
                                      unit.tracking(-1), index == len(units) - 1)
            unit.record(int((time.monotonic() - tick) * 1000), True)

    def _dry_run(self, plan: Plan, by_version: Dict[int, MigrationFile], history: Dict[int, AppliedMigration],
                 result: Any) -> None:
        """The steps in one transaction, rolled back; from the first no-transaction step on, listed as skipped."""
        units = self._units(plan, by_version, history, result)
        self.conn.execute("BEGIN")
        try:
            if plan.action in ("apply", "baseline") and not self.tracking_exists():
                self.conn.execute(self.tracking_ddl())
            if plan.repeatables:
                self.conn.execute(self.repeatables_ddl())
            for index, unit in enumerate(units):
                if unit.no_transaction:
                    result.skipped = [dict(later.skipped, reason="no-transaction migration cannot run in a dry run"
                                           if later is unit else "after a no-transaction migration")
                                      for later in units[index:]]
                    break
                tick = time.monotonic()
                text = self.checked_sql(unit.label, unit.text).body
                reset = self.reset_sql if index else ""
                try:
                    self.conn.execute("%s%s\n;\n%s" % (reset, text, unit.tracking(-1)))
                except psycopg.Error as exc:
                    raise ExecutionError("dry run: %s failed%s: %s; nothing was changed"
                                         % (unit.label, where(exc, text, len(reset)), pg_message(exc)),
                                         {"file": unit.label, "sqlstate": sqlstate(exc)})
                unit.record(int((time.monotonic() - tick) * 1000), False)
        finally:
            self._rollback_failed()
        self.log("dry run of %s rolled back after %d step(s)" % (plan.action, len(result.done) + len(result.repeated)))

    def _insert_sql(self, item: MigrationFile, elapsed_ms: int, baselined: bool = False) -> str:
        literal = pg_sql.Literal
        values = [self.settings.stream, item.version, item.name, item.checksum, item.rollback_checksum,
                  item.rollback_sql, item.rollback_no_transaction, item.no_transaction, baselined]
        rendered = ", ".join(literal(value).as_string(self.conn) for value in values)
        return ("INSERT INTO %s (stream, version, name, checksum, rollback_checksum, rollback_sql, rollback_no_transaction,"
                " no_transaction, baselined, execution_ms) VALUES (%s, %s)"
                % (self.table, rendered, "%d" % elapsed_ms if elapsed_ms >= 0 else
                   "(extract(epoch FROM clock_timestamp() - now()) * 1000)::int"))

    def _delete_sql(self, version: int) -> str:
        return "DELETE FROM %s WHERE stream = %s AND version = %d" % (
            self.table, pg_sql.Literal(self.settings.stream).as_string(self.conn), version)

    def _upsert_repeatable_sql(self, item: Repeatable, elapsed_ms: int) -> str:
        literal = pg_sql.Literal
        values = ", ".join(literal(value).as_string(self.conn) for value in (self.settings.stream, item.name, item.checksum))
        elapsed = "%d" % elapsed_ms if elapsed_ms >= 0 else "(extract(epoch FROM clock_timestamp() - now()) * 1000)::int"
        return ("INSERT INTO %s (stream, name, checksum, execution_ms) VALUES (%s, %s) ON CONFLICT (stream, name) DO "
                "UPDATE SET checksum = EXCLUDED.checksum, applied_at = clock_timestamp(), applied_by = current_user, "
                "execution_ms = EXCLUDED.execution_ms" % (self.repeatables_table, values, elapsed))

    def _repair_sql(self, item: MigrationFile) -> str:
        literal = pg_sql.Literal
        return ("UPDATE %s SET name = %s, checksum = %s, rollback_checksum = %s, rollback_sql = %s,"
                " rollback_no_transaction = %s, no_transaction = %s WHERE stream = %s AND version = %d" % (
                    self.table, literal(item.name).as_string(self.conn), literal(item.checksum).as_string(self.conn),
                    literal(item.rollback_checksum).as_string(self.conn), literal(item.rollback_sql).as_string(self.conn),
                    literal(item.rollback_no_transaction).as_string(self.conn), literal(item.no_transaction).as_string(self.conn),
                    literal(self.settings.stream).as_string(self.conn), item.version))

    def _run_transaction(self, label: str, text: str, prefix: str, tracking_sql: str, sync: bool) -> None:
        """Migration SQL and its tracking change in one transaction and one round trip; retried on 55P03."""
        head = "BEGIN;\n%s%s" % (prefix, "" if sync else "SET LOCAL synchronous_commit = off;\n")
        query = "%s%s\n;\n%s;\nCOMMIT;" % (head, text, tracking_sql)
        failure = self._execute_retrying(label, query)
        if failure is None:
            return
        exc, attempts = failure
        if self._connection_lost():
            raise self._lost_error(label, exc, "if the server received the COMMIT it is recorded,"
                                   " otherwise nothing of it was kept")
        raise ExecutionError(
            "%s failed%s: %s; the migration was rolled back, nothing of it was kept"
            % (label, where(exc, text, len(head)), pg_message(exc)),
            {"file": label, "sqlstate": sqlstate(exc), "attempts": attempts},
        )

    def _execute_retrying(self, label: str, query: str) -> Optional[Tuple[Exception, int]]:
        """Run ``query``; when it hits lock_timeout (55P03), roll back and run it again after an exponential
        backoff, ``retries`` times. None once it succeeded, else the last error and the number of attempts."""
        attempt = 0
        while True:
            try:
                self.conn.execute(query)
                return None
            except psycopg.Error as exc:
                self._rollback_failed()
                if sqlstate(exc) != LOCK_NOT_AVAILABLE or attempt >= self.settings.retries:
                    return exc, attempt + 1
                delay = self.settings.retry_backoff * (2 ** attempt)
                attempt += 1
                self.log("%s: lock_timeout hit (55P03), retry %d/%d in %.2fs" % (label, attempt, self.settings.retries, delay))
                self.sleep(delay)

    def _lost_error(self, label: str, exc: Exception, outcome: str) -> ExecutionError:
        """The server went away (restart, crash, terminated backend) while ``label`` ran: say so, and that its
        outcome is known only once the server is back."""
        return ExecutionError(
            "%s: the connection to the server was lost while it ran (%s): the server restarted, stopped or ended "
            "this session; %s. When the server is back, see what is recorded (state=status, or the "
            "migration-status playbook) and run again" % (label, pg_message(exc), outcome),
            {"file": label, "sqlstate": sqlstate(exc), "connection_lost": True},
        )

    def _rollback_failed(self) -> None:
        try:
            if self.conn.info.transaction_status != 0:  # not IDLE
                self.conn.execute("ROLLBACK")
        except psycopg.Error:
            pass

    def _invalid_indexes(self) -> List[str]:
        rows = self.conn.execute(
            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE NOT i.indisvalid ORDER BY 1").fetchall()
        return [row[0] for row in rows]

    def _run_no_transaction(self, label: str, text: str, tracking_sql: Callable[[int], str]) -> None:
        """Statement by statement in autocommit; tracked only when all succeeded and no index was left invalid."""
        tick = time.monotonic()
        statements = self.checked_sql(label, text, True).statements
        invalid_before = set(self._invalid_indexes())
        for number, statement in enumerate(statements, 1):
            failure = self._execute_retrying("%s statement %d" % (label, number), statement.sql)
            if failure is None:
                continue
            exc, attempts = failure
            if self._connection_lost():
                raise self._lost_error(
                    "%s statement %d (line %d)" % (label, number, statement.line), exc,
                    "the statements before it stay applied (no-transaction file), the migration is not "
                    "recorded; an index it was building may be left invalid")
            dropped = self._drop_new_invalid_indexes(invalid_before)
            raise ExecutionError(
                "%s failed at statement %d (line %d): %s; statements before it stay applied (no-transaction file),"
                " the migration is not recorded%s. Make the file idempotent (IF NOT EXISTS) and run again"
                % (label, number, statement.line, pg_message(exc),
                   "; dropped invalid index(es) it left: %s" % ", ".join(dropped) if dropped else ""),
                {"file": label, "statement": number, "sqlstate": sqlstate(exc), "attempts": attempts,
                 "dropped_invalid_indexes": dropped},
            )
        left = sorted(set(self._invalid_indexes()) - invalid_before)
        if left:
            dropped = self._drop_new_invalid_indexes(invalid_before)
            raise ExecutionError("%s left invalid index(es) %s; dropped them, the migration is not recorded"
                                 % (label, ", ".join(left)), {"file": label, "dropped_invalid_indexes": dropped})
        self.conn.execute(tracking_sql(int((time.monotonic() - tick) * 1000)))

    def _drop_new_invalid_indexes(self, before: set) -> List[str]:
        dropped = []
        for name in sorted(set(self._invalid_indexes()) - before):
            try:
                self.conn.execute("DROP INDEX CONCURRENTLY IF EXISTS %s" % name)
                dropped.append(name)
                self.log("dropped invalid index %s" % name)
            except psycopg.Error as exc:
                self._rollback_failed()
                self.log("could not drop invalid index %s: %s" % (name, pg_message(exc)))
        return dropped


def where(exc: Exception, text: str, offset: int) -> str:
    """' at line N' of the file, from the error position the server reports in the sent query."""
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None) if diag is not None else None
    if not position:
        return ""
    index = int(position) - 1 - offset
    if 0 <= index <= len(text):
        return " at line %d" % line_of(text, index)
    return ""
