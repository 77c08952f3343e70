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
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg import sql as pg_sql

    HAS_PSYCOPG = True
except ImportError:  # the module reports missing_required_lib('psycopg')
    psycopg = None
    pg_errors = None
    pg_sql = None
    HAS_PSYCOPG = False

NO_TRANSACTION_MARKER = "-- poststack:no-transaction"
TRACKING_TABLE = "schema_migrations"
DEFAULT_SCHEMA = "poststack"
DEFAULT_STREAM = "project"
MAX_VERSION = 2 ** 63 - 1
LOCK_NOT_AVAILABLE = "55P03"

_FILE_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)(?P<kind>\.rollback|\.verify)?\.sql$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_STREAM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_TRANSACTION_CONTROL = re.compile(
    r"^(begin|commit|rollback|abort|end|start\s+transaction|savepoint|release|prepare\s+transaction)\b", re.IGNORECASE
)
_NEEDS_NO_TRANSACTION = re.compile(
    r"^(create\s+(unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|reindex\b.*\bconcurrently\b|vacuum\b"
    r"|create\s+database|drop\s+database|alter\s+system|create\s+tablespace|drop\s+tablespace"
    r"|alter\s+table\b.*\bdetach\s+partition\b.*\bconcurrently\b)",
    re.IGNORECASE | re.DOTALL,
)
_PSQL_META = re.compile(r"^\\[a-zA-Z!?]")


class MigrationError(Exception):
    """Base class: the message says what is wrong and what to do."""

    def __init__(self, message: str, details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.details = details or {}


class DiscoveryError(MigrationError):
    """Migration files that cannot be used (names, duplicates, orphans, encoding, SQL lexing)."""


class PlanError(MigrationError):
    """The request cannot be planned (drift, out of order, unknown target, missing rollback...)."""


class LockTimeout(MigrationError):
    """Another run holds the migration lock for longer than the wait timeout."""


class ExecutionError(MigrationError):
    """SQL failed while running a step; the step was rolled back (or cleaned up for no-transaction files)."""


# --------------------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Line endings normalised to LF, so a checkout with CRLF has the same checksum."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def has_no_transaction_marker(text: str) -> bool:
    for line in normalise_text(text).split("\n"):
        stripped = line.strip()
        if stripped:
            return stripped == NO_TRANSACTION_MARKER
    return False


@dataclass
class MigrationFile:
    """One migration as found on disk (rollback and verify scripts attached)."""

    version: int
    name: str
    path: str
    sql: str
    checksum: str
    no_transaction: bool = False
    rollback_path: Optional[str] = None
    rollback_sql: Optional[str] = None
    rollback_checksum: Optional[str] = None
    rollback_no_transaction: bool = False
    verify_path: Optional[str] = None
    verify_sql: Optional[str] = None

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)


def _read_sql(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise DiscoveryError("cannot read migration file %s: %s" % (path, exc.strerror))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiscoveryError("%s is not valid UTF-8 (byte %d): save it as UTF-8" % (path, exc.start))
    if text.startswith("\ufeff"):
        text = text[1:]
    return normalise_text(text)


def _is_blank_sql(text: str) -> bool:
    """Only whitespace and comments? (cheap line test first: the lexer only for files that look blank)."""
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(("--", "/*")):
            return False
    return not strip_sql_comments(text).strip()


def discover(directory: str) -> List[MigrationFile]:
    """All migrations in ``directory`` ordered by integer version.

    Errors (all of them in one exception, each naming its file): unparsable ``*.sql`` names, an upper-case
    extension, directories, broken links and other non-files named ``*.sql``, two files for one version, a rollback
    or verify script without its migration, version 0 or above bigint, empty files, non-UTF-8 text.
    """
    if not os.path.isdir(directory):
        raise DiscoveryError("migrations directory %s does not exist or is not a directory" % directory)
    migrations: Dict[int, Dict[str, str]] = {}
    rollbacks: Dict[int, Tuple[str, str]] = {}
    verifies: Dict[int, Tuple[str, str]] = {}
    problems: List[str] = []
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if entry.startswith(".") or not entry.lower().endswith(".sql"):
            continue
        if not entry.endswith(".sql"):
            problems.append("%s: the extension must be .sql in lower case; rename it" % entry)
            continue
        if os.path.isdir(path):
            problems.append("%s: is a directory, not a migration file; rename or move it" % entry)
            continue
        if os.path.islink(path) and not os.path.exists(path):
            problems.append("%s: is a symbolic link to %s, which does not exist; fix or remove the link"
                            % (entry, os.readlink(path)))
            continue
        if not os.path.isfile(path):
            problems.append("%s: is not a regular file; replace it with one" % entry)
            continue
        match = _FILE_NAME.match(entry)
        if not match:
            problems.append(
                "%s: cannot parse the name; use NNN_name.sql, NNN_name.rollback.sql or NNN_name.verify.sql "
                "(NNN digits, name of letters, digits, _ and -)" % entry
            )
            continue
        version = int(match.group("version"))
        if version < 1 or version > MAX_VERSION:
            problems.append("%s: version %d is out of range 1..%d" % (entry, version, MAX_VERSION))
            continue
        name = match.group("name")
        kind = match.group("kind")
        target = migrations if kind is None else (rollbacks if kind == ".rollback" else verifies)
        if version in target:
            existing = target[version]
            other = existing["file"] if kind is None else existing[1]
            problems.append("duplicate version %d: %s and %s; give one of them another number" % (version, other, entry))
            continue
        if kind is None:
            migrations[version] = {"file": entry, "name": name}
        else:
            target[version] = (name, entry)
    for label, attached in (("rollback", rollbacks), ("verify", verifies)):
        for version, (name, entry) in sorted(attached.items()):
            owner = migrations.get(version)
            if owner is None:
                problems.append("%s: %s script without its migration %03d_%s.sql" % (entry, label, version, name))
            elif owner["name"] != name:
                problems.append("%s: %s script name does not match its migration %s" % (entry, label, owner["file"]))
    # The contents of every file that has a usable name are read even when other files have problems, so that one
    # run names every bad file.
    result = []
    for version in sorted(migrations):
        try:
            result.append(_load(directory, version, migrations[version], rollbacks.get(version), verifies.get(version)))
        except DiscoveryError as exc:
            problems.append(str(exc))
    if problems:
        raise DiscoveryError("invalid migration files in %s: %s" % (directory, "; ".join(problems)), {"problems": problems})
    return result


def _load(directory: str, version: int, migration: Dict[str, str], rollback: Optional[Tuple[str, str]],
          verify: Optional[Tuple[str, str]]) -> MigrationFile:
    path = os.path.join(directory, migration["file"])
    text = _read_sql(path)
    if _is_blank_sql(text):
        raise DiscoveryError("%s is empty (only comments or whitespace): write its SQL or remove the file" % path)
    item = MigrationFile(
        version=version, name=migration["name"], path=path, sql=text, checksum=checksum(text),
        no_transaction=has_no_transaction_marker(text),
    )
    if rollback:
        item.rollback_path = os.path.join(directory, rollback[1])
        item.rollback_sql = _read_sql(item.rollback_path)
        item.rollback_checksum = checksum(item.rollback_sql)
        item.rollback_no_transaction = has_no_transaction_marker(item.rollback_sql)
    if verify:
        item.verify_path = os.path.join(directory, verify[1])
        item.verify_sql = _read_sql(item.verify_path)
    return item


# --------------------------------------------------------------------------------------------------------------
# SQL lexer: statement splitting for no-transaction files and pre-flight checks
# --------------------------------------------------------------------------------------------------------------


class SqlLexError(ValueError):
    pass


def _scan(text: str) -> Iterable[Tuple[str, int, int]]:
    """Yield ``(kind, start, end)`` spans: 'code', 'string', 'comment', 'semicolon'. Raises on unterminated."""
    i = 0
    n = len(text)
    code_start = 0

    def flush(upto: int) -> Iterable[Tuple[str, int, int]]:
        if upto > code_start:
            yield ("code", code_start, upto)

    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            yield from flush(i)
            end = text.find("\n", i)
            end = n if end == -1 else end
            yield ("comment", i, end)
            i = code_start = end
        elif ch == "/" and nxt == "*":
            yield from flush(i)
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise SqlLexError("unterminated /* comment starting at line %d" % line_of(text, i))
            yield ("comment", i, j)
            i = code_start = j
        elif ch == "'" or ch == '"':
            escapes = ch == "'" and i > 0 and text[i - 1] in "eE" and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] == "_"))
            yield from flush(i)
            j = i + 1
            while True:
                if j >= n:
                    kind = "string" if ch == "'" else "quoted identifier"
                    raise SqlLexError("unterminated %s starting at line %d" % (kind, line_of(text, i)))
                if escapes and text[j] == "\\":
                    j += 2
                    continue
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:
                        j += 2
                        continue
                    j += 1
                    break
                j += 1
            yield ("string", i, j)
            i = code_start = j
        elif ch == "$" and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
            match = _DOLLAR_TAG.match(text, i)
            if not match:
                i += 1
                continue
            tag = match.group(0)
            yield from flush(i)
            end = text.find(tag, match.end())
            if end == -1:
                raise SqlLexError("unterminated dollar-quoted string %s starting at line %d" % (tag, line_of(text, i)))
            yield ("string", i, end + len(tag))
            i = code_start = end + len(tag)
        elif ch == ";":
            yield from flush(i)
            yield ("semicolon", i, i + 1)
            i = code_start = i + 1
        else:
            i += 1
    yield from flush(n)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


@dataclass
class Statement:
    sql: str
    line: int

    @property
    def head(self) -> str:
        """The statement without comments, whitespace collapsed (for keyword checks and messages)."""
        return " ".join(strip_sql_comments(self.sql).split())


def split_sql(text: str) -> List[Statement]:
    """Split SQL into statements on top-level semicolons (strings, dollar quotes, comments respected).

    A statement's line is the line of its first token that is not a comment.
    """
    statements: List[Statement] = []
    start = 0
    first_token: Optional[int] = None
    for kind, begin, end in list(_scan(text)) + [("semicolon", len(text), len(text))]:
        if kind == "semicolon":
            if first_token is not None:
                statements.append(Statement(sql=text[start:begin].strip(), line=line_of(text, first_token)))
            start, first_token = end, None
        elif kind != "comment" and first_token is None and text[begin:end].strip():
            first_token = begin + len(text[begin:end]) - len(text[begin:end].lstrip())
    return statements


def strip_sql_comments(text: str) -> str:
    try:
        spans = list(_scan(text))
    except SqlLexError:
        return text
    return "".join(text[b:e] if kind != "comment" else " " for kind, b, e in spans)


def check_sql(filename: str, text: str, no_transaction: bool) -> List[Statement]:
    """Pre-flight checks of one file before anything runs; returns its statements."""
    try:
        statements = split_sql(text)
    except SqlLexError as exc:
        raise DiscoveryError("%s: %s" % (filename, exc))
    for statement in statements:
        head = statement.head
        if _PSQL_META.match(head):
            raise DiscoveryError(
                "%s line %d: psql meta-command %r is not SQL; migrations run through the server, not psql"
                % (filename, statement.line, head.split()[0])
            )
        if _TRANSACTION_CONTROL.match(head):
            raise DiscoveryError(
                "%s line %d: %r controls the transaction; remove it (each migration already runs in its own "
                "transaction, or statement by statement with %s)" % (filename, statement.line, head[:40], NO_TRANSACTION_MARKER)
            )
        if not no_transaction and _NEEDS_NO_TRANSACTION.match(head):
            raise DiscoveryError(
                "%s line %d: %r cannot run inside a transaction; put it in its own file whose first line is %s"
                % (filename, statement.line, head[:60], NO_TRANSACTION_MARKER)
            )
    return statements


# --------------------------------------------------------------------------------------------------------------
# History and planning (pure)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class AppliedMigration:
    """One row of the tracking table."""

    version: int
    name: str
    checksum: str
    rollback_checksum: Optional[str]
    rollback_sql: Optional[str]
    rollback_no_transaction: bool
    no_transaction: bool
    baselined: bool
    applied_at: str
    applied_by: str
    execution_ms: int


@dataclass
class Step:
    """One planned action."""

    action: str  # apply | rollback | baseline | repair
    version: int
    name: str
    no_transaction: bool = False
    file: Optional[str] = None
    reason: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class Plan:
    action: str
    current_version: int
    target_version: Optional[int]
    steps: List[Step] = field(default_factory=list)
    pending: List[int] = field(default_factory=list)

    @property
    def versions(self) -> List[int]:
        return [step.version for step in self.steps]

    def as_dicts(self) -> List[Dict[str, Any]]:
        return [step.as_dict() for step in self.steps]


@dataclass
class Drift:
    version: int
    file: str
    kind: str  # changed | rollback_changed | missing
    recorded: Optional[str]
    found: Optional[str]

    def describe(self) -> str:
        if self.kind == "missing":
            return "version %d (%s) is applied but its file is missing" % (self.version, self.file)
        what = "migration" if self.kind == "changed" else "rollback"
        return "%s %s changed after it was applied: recorded sha256 %s, file sha256 %s" % (
            what, self.file, self.recorded, self.found)


def current_version(history: Dict[int, AppliedMigration]) -> int:
    return max(history) if history else 0


def find_drift(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration]) -> List[Drift]:
    by_version = {item.version: item for item in files}
    drift: List[Drift] = []
    for version in sorted(history):
        row = history[version]
        item = by_version.get(version)
        if item is None:
            drift.append(Drift(version, "%03d_%s.sql" % (version, row.name), "missing", row.checksum, None))
            continue
        if item.checksum != row.checksum:
            drift.append(Drift(version, item.filename, "changed", row.checksum, item.checksum))
        elif item.rollback_checksum is not None and row.rollback_checksum is not None \
                and item.rollback_checksum != row.rollback_checksum:
            drift.append(Drift(version, os.path.basename(item.rollback_path or ""), "rollback_changed",
                               row.rollback_checksum, item.rollback_checksum))
    return drift


def _refuse_drift(drift: List[Drift], allow_missing: bool = False) -> None:
    blocking = [item for item in drift if not (allow_missing and item.kind == "missing")]
    if blocking:
        raise PlanError(
            "drift: %s; restore the files, or accept the new checksums with state=repaired"
            % "; ".join(item.describe() for item in blocking),
            {"drift": [asdict(item) for item in blocking]},
        )


def plan_migrate(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration],
                 target_version: Optional[int] = None, allow_out_of_order: bool = False) -> Plan:
    """Pending migrations to apply (up to ``target_version``), or a PlanError explaining why not."""
    _refuse_drift(find_drift(files, history))
    current = current_version(history)
    known = {item.version for item in files}
    if target_version is not None:
        if target_version < 0:
            raise PlanError("target_version %d is negative" % target_version)
        if target_version not in known and target_version != 0:
            raise PlanError("target_version %d matches no migration file (known: %s)"
                            % (target_version, _short_list(sorted(known))))
        if target_version < current:
            raise PlanError("target_version %d is below the current version %d: use state=rolled_back to go down"
                            % (target_version, current))
    pending = [item for item in files if item.version not in history]
    out_of_order = [item for item in pending if item.version < current]
    if out_of_order and not allow_out_of_order:
        raise PlanError(
            "%s %s lower than the highest applied version %d; renumber them above %d or set allow_out_of_order"
            % (", ".join(item.filename for item in out_of_order), "is" if len(out_of_order) == 1 else "are", current, current),
            {"out_of_order": [item.version for item in out_of_order]},
        )
    limit = MAX_VERSION if target_version is None else target_version
    steps = [Step("apply", item.version, item.name, item.no_transaction, item.filename)
             for item in pending if item.version <= limit]
    return Plan("apply", current, target_version, steps, [item.version for item in pending])


def plan_rollback(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration], target_version: int) -> Plan:
    """Rollbacks newest first down to ``target_version`` (exclusive); nothing when any rollback is missing."""
    if target_version is None:
        raise PlanError("target_version is required to roll back: the version to end at (0 removes everything)")
    if target_version < 0:
        raise PlanError("target_version %d is negative" % target_version)
    current = current_version(history)
    if target_version != 0 and target_version not in history:
        raise PlanError("target_version %d is not an applied version (applied: %s)"
                        % (target_version, _short_list(sorted(history)) or "none"))
    drift = [item for item in find_drift(files, history) if item.version > target_version]
    _refuse_drift(drift, allow_missing=True)
    by_version = {item.version: item for item in files}
    to_undo = sorted((version for version in history if version > target_version), reverse=True)
    missing = [version for version in to_undo if history[version].rollback_sql is None
               and (by_version.get(version) is None or by_version[version].rollback_sql is None)]
    if missing:
        raise PlanError(
            "no rollback for version%s %s (neither recorded nor a NNN_name.rollback.sql file); nothing was rolled back"
            % ("s" if len(missing) > 1 else "", ", ".join(str(v) for v in missing)),
            {"missing_rollbacks": missing},
        )
    steps = []
    for version in to_undo:
        row = history[version]
        item = by_version.get(version)
        no_tx = row.rollback_no_transaction if row.rollback_sql is not None else bool(item and item.rollback_no_transaction)
        steps.append(Step("rollback", version, row.name, no_tx, item.filename if item else None))
    pending = [item.version for item in files if item.version not in history]
    return Plan("rollback", current, target_version, steps, pending)


def plan_baseline(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration], baseline_version: int) -> Plan:
    if baseline_version is None or baseline_version < 1:
        raise PlanError("baseline needs target_version >= 1: the highest version the database already contains")
    known = {item.version for item in files}
    if baseline_version not in known:
        raise PlanError("baseline version %d matches no migration file (known: %s)"
                        % (baseline_version, _short_list(sorted(known))))
    _refuse_drift([item for item in find_drift(files, history) if item.version <= baseline_version])
    steps = [Step("baseline", item.version, item.name, item.no_transaction, item.filename)
             for item in files if item.version <= baseline_version and item.version not in history]
    above = [version for version in history if version > baseline_version]
    if steps and above:
        raise PlanError("cannot baseline to %d: versions %s are already applied above it" % (baseline_version, _short_list(above)))
    return Plan("baseline", current_version(history), baseline_version, steps,
                [item.version for item in files if item.version not in history])


def plan_repair(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration]) -> Plan:
    steps = []
    for item in find_drift(files, history):
        if item.kind != "missing":
            steps.append(Step("repair", item.version, history[item.version].name, file=item.file,
                              reason="%s: %s -> %s" % (item.kind, item.recorded, item.found)))
    by_version = {item.version: item for item in files}
    for version in sorted(history):
        row, item = history[version], by_version.get(version)
        if item is not None and row.rollback_sql is None and item.rollback_sql is not None \
                and not any(step.version == version for step in steps):
            steps.append(Step("repair", version, row.name, file=item.filename, reason="record rollback SQL"))
    steps.sort(key=lambda step: step.version)
    return Plan("repair", current_version(history), None, steps, [item.version for item in files if item.version not in history])


def _short_list(values: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ... (%d in all)" % len(values) if len(values) > limit else "")


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


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


@dataclass
class Status:
    current_version: int
    applied: List[Dict[str, Any]]
    pending: List[int]
    drift: List[Dict[str, Any]]
    lock_holder: Optional[Dict[str, Any]]
    tracking_table: str
    stream: str


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


# --------------------------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------------------------


class Engine:
    """Runs plans on one psycopg connection (autocommit; transactions are explicit)."""

    def __init__(self, conn: Any, settings: Settings, log: Optional[Callable[[str], None]] = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        settings.validate()
        self.conn = conn
        self.settings = settings
        self.log = log or OperationLog(settings.log_file)
        self.sleep = sleep
        self.schema = settings.tracking_schema
        self.table = "%s.%s" % (pg_sql.Identifier(self.schema).as_string(conn), TRACKING_TABLE)
        self.key = lock_key(self.schema)
        self._locked = False

    # -- session -------------------------------------------------------------------------------------------
    def prepare_session(self) -> None:
        """Validate and apply the timeouts (bad values fail here, before any lock or change)."""
        for name in ("lock_timeout", "statement_timeout"):
            value = getattr(self.settings, name)
            try:
                self.conn.execute("SELECT set_config(%s, %s, false)", (name, str(value)))
            except psycopg.Error as exc:
                raise MigrationError("invalid %s %r: %s" % (name, value, _pg_message(exc)))
        # A client killed mid-migration is noticed by the server within a second: it rolls back and frees the lock.
        try:
            self.conn.execute("SELECT set_config('client_connection_check_interval', '1000', false)")
        except psycopg.Error:
            pass

    def acquire_lock(self) -> None:
        timeout_ms = int(self.settings.lock_wait_timeout * 1000)
        start = time.monotonic()
        try:
            self.conn.execute("SELECT set_config('lock_timeout', %s, false)", (str(max(timeout_ms, 1)),))
            if timeout_ms == 0:
                got = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]
                if not got:
                    raise pg_errors.LockNotAvailable("lock held")
            else:
                self.conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
        except pg_errors.LockNotAvailable:
            holders = self.lock_holders()
            who = "; ".join(holder.describe() for holder in holders) or "a session that has since ended"
            raise LockTimeout(
                "could not get the migration lock for schema %s within %ss: held by %s. Wait for it to finish, "
                "raise lock_wait_timeout, or end a stuck holder with state=unlocked and terminate_holder=true"
                % (self.schema, self.settings.lock_wait_timeout, who),
                {"lock_holders": [asdict(holder) for holder in holders]},
            )
        finally:
            self.conn.execute("SELECT set_config('lock_timeout', %s, false)", (str(self.settings.lock_timeout),))
        self._locked = True
        self.log("lock acquired key=%d schema=%s after %d ms" % (self.key, self.schema, (time.monotonic() - start) * 1000))

    def release_lock(self) -> None:
        if self._locked:
            try:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                self.log("lock released key=%d" % self.key)
            except psycopg.Error as exc:
                if not self._connection_lost():
                    raise
                # The lock was the session's: the server freed it when the session ended. Raising here would
                # hide the error that ended the run.
                self.log("lock key=%d went with the lost connection (%s)" % (self.key, _pg_message(exc)))
            finally:
                self._locked = False

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
    def tracking_exists(self) -> bool:
        row = self.conn.execute("SELECT to_regclass(%s)", (self.table,)).fetchone()
        return row[0] is not None

    def tracking_ddl(self) -> str:
        schema = pg_sql.Identifier(self.schema).as_string(self.conn)
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
            % (schema, self.table, self.table)
        )

    def ensure_tracking(self) -> None:
        if not self.tracking_exists():
            with self.conn.transaction():
                self.conn.execute(self.tracking_ddl())
            self.log("created tracking table %s" % self.table)

    def history(self) -> Dict[int, AppliedMigration]:
        if not self.tracking_exists():
            return {}
        rows = self.conn.execute(
            "SELECT version, name, checksum, rollback_checksum, rollback_sql, rollback_no_transaction, no_transaction,"
            " baselined, applied_at::text, applied_by, execution_ms FROM %s WHERE stream = %%s ORDER BY version" % self.table,
            (self.settings.stream,),
        ).fetchall()
        return {row[0]: AppliedMigration(*row) for row in rows}

    def files(self) -> List[MigrationFile]:
        if self.settings.migrations_dir is None:
            raise MigrationError("a migrations directory is required for this operation")
        return discover(self.settings.migrations_dir)

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
        )

    def plan(self, action: str, target_version: Optional[int] = None) -> Tuple[Plan, List[MigrationFile], Dict[int, AppliedMigration]]:
        files = self.files()
        history = self.history()
        if action == "apply":
            plan = plan_migrate(files, history, target_version, self.settings.allow_out_of_order)
        elif action == "rollback":
            plan = plan_rollback(files, history, target_version)
        elif action == "baseline":
            plan = plan_baseline(files, history, target_version)
        elif action == "repair":
            plan = plan_repair(files, history)
        else:
            raise MigrationError("unknown action %r" % action)
        self._preflight(plan, files, history)
        return plan, files, history

    def _preflight(self, plan: Plan, files: Sequence[MigrationFile], history: Dict[int, AppliedMigration]) -> None:
        by_version = {item.version: item for item in files}
        for step in plan.steps:
            item = by_version.get(step.version)
            if step.action == "apply":
                check_sql(item.filename, item.sql, item.no_transaction)
                if item.rollback_sql is not None:
                    check_sql(os.path.basename(item.rollback_path), item.rollback_sql, item.rollback_no_transaction)
            elif step.action == "rollback":
                row = history[step.version]
                text = row.rollback_sql if row.rollback_sql is not None else item.rollback_sql
                check_sql("rollback of version %d" % step.version, text, step.no_transaction)

    def run(self, action: str, target_version: Optional[int] = None, dry_run: bool = False) -> RunResult:
        """Plan under the lock and execute; ``dry_run`` executes in one transaction and rolls it back."""
        started = time.monotonic()
        self.prepare_session()
        self.acquire_lock()
        try:
            plan, files, history = self.plan(action, target_version)
            result = RunResult(action, bool(plan.steps), dry_run, plan, plan.current_version, plan.current_version)
            if plan.steps:
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
        if result.done:
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
        exc.details.update(done=list(result.done), current_version=result.after_version, changed=bool(result.done),
                           timings_ms=dict(result.timings_ms), plan=result.plan.as_dicts(),
                           previous_version=result.before_version,
                           failed_version=failed.version if failed else None)
        self.log("FAILED %s%s after %d of %d step(s) (done: %s; current version: %s): %s" % (
            result.action, " version=%d name=%s" % (failed.version, failed.name) if failed else "",
            len(result.done), len(result.plan.steps), ",".join(str(v) for v in result.done) or "none",
            "unknown" if result.after_version is None else result.after_version, exc))

    # -- execution -----------------------------------------------------------------------------------------
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

    def _execute(self, plan: Plan, by_version: Dict[int, MigrationFile], history: Dict[int, AppliedMigration],
                 result: RunResult) -> None:
        need_tracking = plan.action in ("apply", "baseline") and not self.tracking_exists()
        last = plan.steps[-1]
        for step in plan.steps:
            item = by_version.get(step.version)
            tick = time.monotonic()
            # Only the last commit waits for the WAL flush; it makes every earlier commit durable too.
            sync = step is last
            if step.action == "apply":
                if step.no_transaction:
                    if need_tracking:
                        self.ensure_tracking()
                        need_tracking = False
                    self._run_no_transaction(item.filename, item.sql, lambda ms, item=item: self._insert_sql(item, ms))
                else:
                    prefix = self.tracking_ddl() if need_tracking else ""
                    self._run_transaction(item.filename, item.sql, prefix, self._insert_sql(item, -1), sync)
                    need_tracking = False
            elif step.action == "rollback":
                row = history[step.version]
                text = row.rollback_sql if row.rollback_sql is not None else item.rollback_sql
                label = os.path.basename(item.rollback_path) if item and row.rollback_sql is None else \
                    "recorded rollback of %03d_%s" % (step.version, row.name)
                if step.no_transaction:
                    self._run_no_transaction(label, text, lambda ms, version=step.version: self._delete_sql(version))
                else:
                    self._run_transaction(label, text, "", self._delete_sql(step.version), sync)
            elif step.action == "baseline":
                prefix = self.tracking_ddl() if need_tracking else ""
                need_tracking = False
                self._run_transaction(item.filename, "SELECT 1", prefix, self._insert_sql(item, 0, baselined=True), sync)
            elif step.action == "repair":
                self._run_transaction(item.filename, "SELECT 1", "", self._repair_sql(item), sync)
            elapsed = int((time.monotonic() - tick) * 1000)
            result.done.append(step.version)
            result.timings_ms[str(step.version)] = elapsed
            self.log("%s version=%d name=%s ms=%d" % (step.action, step.version, step.name, elapsed))

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
        attempt = 0
        while True:
            try:
                self.conn.execute(query)
                return
            except psycopg.Error as exc:
                self._rollback_failed()
                if _sqlstate(exc) == LOCK_NOT_AVAILABLE and attempt < self.settings.retries:
                    delay = self.settings.retry_backoff * (2 ** attempt)
                    attempt += 1
                    self.log("%s: lock_timeout hit (55P03), retry %d/%d in %.2fs" % (label, attempt, self.settings.retries, delay))
                    self.sleep(delay)
                    continue
                if self._connection_lost():
                    raise self._lost_error(label, exc, "if the server received the COMMIT it is recorded,"
                                           " otherwise nothing of it was kept")
                raise ExecutionError(
                    "%s failed%s: %s; the migration was rolled back, nothing of it was kept"
                    % (label, _where(exc, text, len(head)), _pg_message(exc)),
                    {"file": label, "sqlstate": _sqlstate(exc), "attempts": attempt + 1},
                )

    def _lost_error(self, label: str, exc: Exception, outcome: str) -> ExecutionError:
        """The server went away (restart, crash, terminated backend) while ``label`` ran: say so, and that its
        outcome is known only once the server is back."""
        return ExecutionError(
            "%s: the connection to the server was lost while it ran (%s): the server restarted, stopped or ended "
            "this session; %s. When the server is back, see what is recorded (state=status, or the "
            "migration-status playbook) and run again" % (label, _pg_message(exc), outcome),
            {"file": label, "sqlstate": _sqlstate(exc), "connection_lost": True},
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
        statements = check_sql(label, text, True)
        invalid_before = set(self._invalid_indexes())
        for number, statement in enumerate(statements, 1):
            attempt = 0
            while True:
                try:
                    self.conn.execute(statement.sql)
                    break
                except psycopg.Error as exc:
                    self._rollback_failed()
                    if _sqlstate(exc) == LOCK_NOT_AVAILABLE and attempt < self.settings.retries:
                        delay = self.settings.retry_backoff * (2 ** attempt)
                        attempt += 1
                        self.log("%s statement %d: lock_timeout hit, retry %d in %.2fs" % (label, number, attempt, delay))
                        self.sleep(delay)
                        continue
                    if self._connection_lost():
                        raise self._lost_error(
                            "%s statement %d (line %d)" % (label, number, statement.line), exc,
                            "the statements before it stay applied (no-transaction file), the migration is not "
                            "recorded; an index it was building may be left invalid")
                    dropped = self._drop_new_invalid_indexes(invalid_before)
                    raise ExecutionError(
                        "%s failed at statement %d (line %d): %s; statements before it stay applied (no-transaction file),"
                        " the migration is not recorded%s. Make the file idempotent (IF NOT EXISTS) and run again"
                        % (label, number, statement.line, _pg_message(exc),
                           "; dropped invalid index(es) it left: %s" % ", ".join(dropped) if dropped else ""),
                        {"file": label, "statement": number, "sqlstate": _sqlstate(exc), "dropped_invalid_indexes": dropped},
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
                self.log("could not drop invalid index %s: %s" % (name, _pg_message(exc)))
        return dropped

    def _dry_run(self, plan: Plan, by_version: Dict[int, MigrationFile], history: Dict[int, AppliedMigration],
                 result: RunResult) -> None:
        need_tracking = plan.action in ("apply", "baseline") and not self.tracking_exists()
        self.conn.execute("BEGIN")
        try:
            if need_tracking:
                self.conn.execute(self.tracking_ddl())
            for index, step in enumerate(plan.steps):
                if step.no_transaction:
                    result.skipped = [{"version": later.version, "reason": "no-transaction migration cannot run in a dry run"
                                       if later is step else "after a no-transaction migration"}
                                      for later in plan.steps[index:]]
                    break
                item = by_version.get(step.version)
                tick = time.monotonic()
                if step.action == "apply":
                    label, text, tracking = item.filename, item.sql, self._insert_sql(item, -1)
                elif step.action == "rollback":
                    row = history[step.version]
                    text = row.rollback_sql if row.rollback_sql is not None else item.rollback_sql
                    label, tracking = "rollback of version %d" % step.version, self._delete_sql(step.version)
                elif step.action == "baseline":
                    label, text, tracking = item.filename, "SELECT 1", self._insert_sql(item, 0, baselined=True)
                else:
                    label, text, tracking = item.filename, "SELECT 1", self._repair_sql(item)
                try:
                    self.conn.execute("%s\n;\n%s" % (text, tracking))
                except psycopg.Error as exc:
                    raise ExecutionError("dry run: %s failed%s: %s; nothing was changed"
                                         % (label, _where(exc, text, 0), _pg_message(exc)),
                                         {"file": label, "sqlstate": _sqlstate(exc)})
                result.done.append(step.version)
                result.timings_ms[str(step.version)] = int((time.monotonic() - tick) * 1000)
        finally:
            self._rollback_failed()
        self.log("dry run of %s rolled back after %d step(s)" % (plan.action, len(result.done)))

    def verify(self) -> Dict[str, Any]:
        """Checksums of applied migrations and their verify scripts (each run in a rolled-back transaction)."""
        files = self.files()
        history = self.history()
        drift = find_drift(files, history)
        by_version = {item.version: item for item in files}
        results = []
        for version in sorted(history):
            item = by_version.get(version)
            if item is None or item.verify_sql is None:
                continue
            tick = time.monotonic()
            error = None
            self.conn.execute("BEGIN")
            try:
                self.conn.execute(item.verify_sql)
            except psycopg.Error as exc:
                error = "%s failed%s: %s" % (os.path.basename(item.verify_path), _where(exc, item.verify_sql, 0), _pg_message(exc))
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


def _sqlstate(exc: Exception) -> Optional[str]:
    return getattr(exc, "sqlstate", None)


def _pg_message(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc).strip().split("\n", maxsplit=1)[0]
    extra = []
    for attr in ("message_detail", "message_hint"):
        value = getattr(diag, attr, None) if diag is not None else None
        if value:
            extra.append(value)
    state = _sqlstate(exc)
    return "%s%s%s" % (text, " (%s)" % "; ".join(extra) if extra else "", " [SQLSTATE %s]" % state if state else "")


def _where(exc: Exception, text: str, offset: int) -> str:
    """' at line N' of the file, from the error position the server reports in the sent query."""
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None) if diag is not None else None
    if not position:
        return ""
    index = int(position) - 1 - offset
    if 0 <= index <= len(text):
        return " at line %d" % line_of(text, index)
    return ""


# --------------------------------------------------------------------------------------------------------------
# Command line (used by the benchmarks and the concurrency tests; the Ansible module is the main interface)
# --------------------------------------------------------------------------------------------------------------


def cli_main(argv: Optional[Sequence[str]] = None) -> int:
    from ansible_collections.poststack.core.plugins.module_utils.database import ConnectionSettings, connect

    parser = argparse.ArgumentParser(description="poststack migration engine (password via PGPASSWORD or ~/.pgpass)")
    parser.add_argument("action", choices=["apply", "rollback", "baseline", "repair", "status", "verify", "plan"])
    parser.add_argument("--dsn", default=os.environ.get("POSTSTACK_DSN", ""))
    parser.add_argument("--dir", required=True)
    parser.add_argument("--target", type=int)
    parser.add_argument("--schema", default=DEFAULT_SCHEMA)
    parser.add_argument("--stream", default=DEFAULT_STREAM)
    parser.add_argument("--lock-wait-timeout", type=float, default=60.0)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--log-file")
    args = parser.parse_args(argv)
    settings = Settings(args.dir, args.schema, args.stream, lock_wait_timeout=args.lock_wait_timeout, log_file=args.log_file)
    try:
        conn = connect(ConnectionSettings(dsn=args.dsn, application_name="poststack_migrate"))
        with conn:
            engine = Engine(conn, settings)
            if args.action == "status":
                output: Any = asdict(engine.status())
            elif args.action == "verify":
                output = engine.verify()
            elif args.action == "plan":
                output = engine.plan("apply", args.target)[0].as_dicts()
            else:
                result = engine.run(args.action, args.target, args.dry_run)
                output = {"changed": result.changed, "done": result.done, "version": result.after_version,
                          "ms": result.total_ms}
    except (MigrationError, ValueError) as exc:
        sys.stderr.write(json.dumps({"failed": True, "msg": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps(output, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_main())
