# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adopting a database that has no migration history at all: its schema, as ``pg_dump --schema-only`` writes it,
becomes the stream's first migration, recorded as applied where it was taken. On a new database that migration
makes the same schema, and the migrations written after it follow.

pg_dump runs in the PostgreSQL container (``<runtime> exec --user postgres``: the server's own version, peer
authentication, no password anywhere) or, without a container, on this host with the connection's settings in a
temporary service file (``PGSERVICEFILE``, mode 0600: no connection setting, secret or not, in its argument list
or environment; the file's values also win over an inherited ``PGPASSWORD``). What it writes leaves out data,
owners, privileges, tablespaces, publications, subscriptions and the tracking schema: the schema a new database of
the project needs, not this server's accounts.

What pg_dump writes is made into a migration: the ``\\restrict``/``\\unrestrict`` lines of newer versions around
it are taken out; its session settings become the migration's own (``SET LOCAL``, ``set_config(..., true)``), so
that they end with it, and the timeouts it turns off are left to the engine. The text then passes the engine's
pre-flight and lint as a new database's run would see it; a finding there (a construct the lint does not know to
be new) is named in an ignore line of the header, because the file only ever runs on an empty database.

The steps, under the migration lock: a stream whose history already holds a migration is left alone (a second run
changes nothing); a stream that has migration files is refused (a baseline from the schema writes the first one);
the file is written (``001_baseline.sql``, or the name the layout asks for) and recorded like a version baseline.
When recording fails and the version is not recorded, the file (and a directory made for it) is removed again.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.poststack.core.plugins.module_utils.command import CommandResult, run_command
from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import MigrationError, PlanError
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import SQITCH_PLAN, discover
from ansible_collections.poststack.core.plugins.module_utils.migrations.lint import lint_file
from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import check_sql, split_sql
from ansible_collections.poststack.core.plugins.module_utils.postgres_exec import LOCAL_SOCKET_LOGIN, exec_argv

DUMP_OPTIONS = ("--schema-only", "--no-owner", "--no-privileges", "--no-tablespaces", "--no-publications",
                "--no-subscriptions")
SERVICE = "poststack"
_RESTRICT = re.compile(r"^\\restrict (\S+)$", re.MULTILINE)  # pg_dump 17.6, 16.10, 15.14 and later
_SET = re.compile(r"^SET\s+(\w+)\s*=", re.IGNORECASE)
_SET_CONFIG = re.compile(r"^SELECT\s+pg_catalog\.set_config\((.*),\s*false\)\s*;?$", re.IGNORECASE | re.DOTALL)
_ENGINES_OWN = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


@dataclass
class Dumper:
    """How pg_dump reaches the database: in ``container`` (with ``runtime``), else on this host with ``conninfo``
    (libpq keywords, secrets included: they go into the temporary service file only)."""

    database: str
    tracking_schema: str
    container: Optional[str] = None
    runtime: str = "podman"
    conninfo: Dict[str, Any] = field(default_factory=dict, repr=False)
    lock_wait_timeout: str = "10s"

    def argv(self) -> List[str]:
        options = [*DUMP_OPTIONS, "--lock-wait-timeout=%s" % self.lock_wait_timeout,
                   "--exclude-schema", '"%s"' % self.tracking_schema.replace('"', '""')]
        if self.container:
            return exec_argv(self.runtime, self.container, ["pg_dump", *LOCAL_SOCKET_LOGIN, *options,
                                                            "--dbname", self.database])
        return ["pg_dump", "--no-password", *options, "--dbname", "service=" + SERVICE]

    def run(self, runner: Callable[..., CommandResult] = run_command) -> CommandResult:
        argv = self.argv()
        try:
            if self.container:
                return runner(argv)
            with tempfile.TemporaryDirectory(prefix="poststack-pgdump-") as tmp:
                service_file = os.path.join(tmp, "pg_service.conf")
                fd = os.open(service_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(service_text(dict(self.conninfo, dbname=self.database)))
                return runner(argv, env=dict(os.environ, PGSERVICEFILE=service_file))
        except OSError as exc:
            raise MigrationError("cannot run %s: %s. %s" % (argv[0], exc.strerror or exc, self.what_to_do()))

    def what_to_do(self) -> str:
        if self.container:
            return "Check that the container %s runs PostgreSQL (its image has pg_dump)" % self.container
        return ("Install pg_dump on this host (Debian: postgresql-client; its major version at least the server's), "
                "or dump in the PostgreSQL container (baseline_container)")


def service_text(keywords: Dict[str, Any]) -> str:
    """A pg_service.conf section of the connection's libpq keywords."""
    lines = ["[%s]" % SERVICE]
    for key, value in sorted(keywords.items()):
        if value in (None, ""):
            continue
        text = str(value)
        if "\n" in text or "\r" in text:
            raise MigrationError("the connection's %s holds a line break, which pg_dump's service file cannot hold"
                                 % key)
        lines.append("%s=%s" % (key, text))
    return "\n".join(lines) + "\n"


def _own_settings(body: str) -> str:
    """pg_dump's session settings made the migration's own, statement by statement (never inside a body)."""
    pieces, last = [], 0
    for statement in split_sql(body):
        made, config = _SET.match(statement.head), _SET_CONFIG.match(statement.head)
        if made and made.group(1).lower() in _ENGINES_OWN:
            replacement = ""
        elif made:
            replacement = re.sub(r"^SET\s+", "SET LOCAL ", body[statement.start:statement.end], count=1,
                                 flags=re.IGNORECASE)
        elif config:
            replacement = "SELECT pg_catalog.set_config(%s, true);" % config.group(1)
        else:
            continue
        pieces += [body[last:statement.start], replacement]
        last = statement.end
    return "".join(pieces + [body[last:]])


def _without_restrict(dump: str) -> str:
    """pg_dump's ``\\restrict KEY`` line (the first) and its ``\\unrestrict KEY`` (the same random key, the last)."""
    found = _RESTRICT.search(dump)
    if found is None:
        return dump
    closing = "\\unrestrict " + found.group(1)
    dump = dump[:found.start()] + dump[found.end():]
    at = dump.rfind("\n" + closing)
    return dump if at < 0 else dump[:at + 1] + dump[at + 1 + len(closing):]


def _is_session_setting(head: str) -> bool:
    return bool(_SET.match(head) or head.lower().startswith("select pg_catalog.set_config("))


def migration_text(dump: str, database: str, taken_on: datetime.date, filename: str, dbmate: bool = False) -> str:
    """The migration's text: a header that says what it is, then pg_dump's output as a migration (see above).
    Refused: a database without a schema, and SQL the engine would not run on a new database."""
    body = _without_restrict(dump.replace("\r\n", "\n")).strip("\n")
    if all(_is_session_setting(statement.head) for statement in split_sql(body)):
        raise PlanError("database %s has no schema to take a baseline of (pg_dump found no table, type, function or "
                        "other object outside the tracking schema): write the first migration by hand instead" % database)
    body = _own_settings(body)
    header = [
        "-- The schema of database %s as poststack found it on %s, when it adopted the database: pg_dump" % (
            database, taken_on.isoformat()),
        "-- --schema-only (no data, owners, privileges, tablespaces, publications or subscriptions; without the",
        "-- tracking schema). Recorded there as applied without running it; on a new database it makes this schema.",
        "-- Its checksum is recorded: change it only before it is applied anywhere else.",
    ]
    text = "\n".join(header + ["", body, ""])
    try:
        checked = check_sql(filename, text, False)
    except MigrationError as exc:
        raise MigrationError("what pg_dump wrote is not a migration the engine would run (%s): nothing was written or "
                             "recorded" % exc)
    rules = sorted({finding.rule for finding in lint_file(filename, text, checked.statements, set())})
    if rules:  # it runs on an empty database only, where nothing it touches is in use
        header.append("-- It runs only on an empty database, where the lint's findings do not apply:")
        header.append("-- poststack:lint-ignore %s" % ", ".join(rules))
        text = "\n".join(header + ["", body, ""])
    return ("-- migrate:up\n" if dbmate else "") + text


def file_name(layout: str, version: int) -> str:
    """The baseline's file name in the directory's layout (``auto`` on a directory without files: poststack's)."""
    if layout == "sqitch":
        raise PlanError("a Sqitch project's changes are added with sqitch itself (sqitch add baseline, with the "
                        "dump as its deploy script): a baseline from the schema writes files of the other layouts")
    names = {"flyway": "V%d__baseline.sql", "golang-migrate": "%d_baseline.up.sql"}
    return names.get(layout, "%03d_baseline.sql") % version


def version_for(layout: str, now: datetime.datetime) -> int:
    """1, or for dbmate (whose versions are the time the file was made) the time now, YYYYMMDDHHMMSS."""
    return int(now.strftime("%Y%m%d%H%M%S")) if layout == "dbmate" else 1


def write_new(path: str, text: str) -> None:
    """Write ``path``, which must not exist, whole or not at all (a temporary file linked into place; where the
    file system has no hard links, created exclusively and written)."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".baseline-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)  # fails when the name exists: a file nobody wrote here is never replaced
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(out, "w", encoding="utf-8") as handle:
                handle.write(text)
    finally:
        os.unlink(tmp)


@dataclass
class SchemaBaseline:
    """What a baseline from the schema did or would do."""

    file: Optional[str] = None  # the migration written (or that would be)
    version: Optional[int] = None
    written: bool = False
    statements: int = 0
    bytes: int = 0
    already: Optional[int] = None  # the stream's version when its history already held migrations
    commands: List[Dict[str, Any]] = field(default_factory=list)
    run: Any = None  # the engine's RunResult of recording it

    def as_dict(self) -> Dict[str, Any]:
        return {"file": self.file, "version": self.version, "written": self.written, "statements": self.statements,
                "bytes": self.bytes, "already_at": self.already}


def _recorded(engine: Any, version: int) -> bool:
    """Whether ``version`` is recorded; True when that cannot be read (the file then stays)."""
    try:
        return version in engine.history()
    except Exception:  # pylint: disable=broad-except  # a lost connection: the outcome is not known
        return True


def take(engine: Any, dumper: Dumper, check_only: bool, now: Optional[datetime.datetime] = None) -> SchemaBaseline:
    """Write the schema as the stream's first migration and record it, under the migration lock (``check_only``:
    dump and say what would be written, without the lock, changing nothing)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    directory = engine.settings.migrations_dir
    engine.prepare_session()
    if not check_only:
        engine.acquire_lock()
    try:
        history = engine.history()
        if history:
            return SchemaBaseline(already=max(history))
        layout = engine.settings.layout
        if os.path.isdir(directory):
            if layout == "auto" and os.path.isfile(os.path.join(directory, SQITCH_PLAN)):
                layout = "sqitch"
            files = discover(directory, layout)
            if files:
                names = ", ".join(item.filename for item in files[:3]) + (", ..." if len(files) > 3 else "")
                raise PlanError("%s already has %d migration%s (%s): a baseline from the schema writes a stream's "
                                "first migration. Record the ones already applied with a version baseline instead "
                                "(target_version)" % (directory, len(files), "" if len(files) == 1 else "s", names))
        version = version_for(layout, now)
        path = os.path.join(directory, file_name(layout, version))
        outcome = dumper.run()
        baseline = SchemaBaseline(file=path, version=version, commands=[outcome.record()])
        try:
            if outcome.rc != 0:
                raise MigrationError("pg_dump failed (rc %d): %s. %s; nothing was written or recorded"
                                     % (outcome.rc, outcome.stderr.strip()[-1500:] or "no message", dumper.what_to_do()))
            text = migration_text(outcome.stdout, dumper.database, now.date(), os.path.basename(path),
                                  dbmate=layout == "dbmate")
        except MigrationError as exc:
            exc.details.setdefault("commands", baseline.commands)
            raise
        baseline.statements = len(split_sql(text))
        baseline.bytes = len(text.encode("utf-8"))
        if check_only:
            return baseline
        made_directory = not os.path.isdir(directory)
        try:
            os.makedirs(directory, exist_ok=True)
            write_new(path, text)
        except OSError as exc:
            raise MigrationError("cannot write %s: %s; nothing was recorded" % (path, exc.strerror or exc),
                                 {"commands": baseline.commands})
        baseline.written = True
        engine.forget_files()
        try:
            baseline.run = engine.run("baseline", version)
        except BaseException as exc:
            if not _recorded(engine, version):
                try:
                    os.unlink(path)
                    if made_directory:
                        os.rmdir(directory)
                except OSError:
                    pass
            if isinstance(exc, MigrationError):
                exc.details.setdefault("commands", baseline.commands)
            raise
        return baseline
    finally:
        if not check_only:
            engine.release_lock()
