# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adopting a database that has no migration history at all: its schema, as ``pg_dump --schema-only`` writes it,
becomes the stream's first migration, recorded as applied where it was taken. On a new database that migration
makes the same schema, and the migrations written after it follow.

pg_dump runs in the PostgreSQL container (``<runtime> exec --user postgres``: the server's own version, peer
authentication, no password anywhere) or, without a container, on this host with the connection's settings (the
password in a temporary passfile, never in the argument list or the environment). What it writes leaves out data,
owners, privileges, tablespaces, publications, subscriptions and the tracking schema: the schema a new database of
the project needs, not this server's accounts. The psql commands of newer pg_dump versions (``\\restrict``) are
taken out; any other psql command is refused, because the engine runs SQL, not psql scripts.

The steps: under the migration lock, a stream whose history already holds a migration is left alone (a second run
changes nothing); a stream that has migration files is refused (a baseline from the schema writes the first one);
the dump is written next to where the files go (``001_baseline.sql``, or the name the layout asks for) and recorded
like a version baseline. When recording fails, the written file is removed again.
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.poststack.core.plugins.module_utils.command import CommandResult, run_command
from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import MigrationError, PlanError
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import SQITCH_PLAN, discover
from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import split_sql

DUMP_OPTIONS = ("--schema-only", "--no-owner", "--no-privileges", "--no-tablespaces", "--no-publications",
                "--no-subscriptions")
SOCKET_DIR = "/var/run/postgresql"
_RESTRICT = re.compile(r"^\\(un)?restrict\b")  # pg_dump 17.6, 16.10, 15.14 and later


@dataclass
class Dumper:
    """How pg_dump reaches the database: in ``container`` (with ``runtime``), else on this host with ``conninfo``
    (libpq keywords or a URI; its password is taken out into a passfile)."""

    database: str
    tracking_schema: str
    container: Optional[str] = None
    runtime: str = "podman"
    conninfo: Dict[str, Any] = field(default_factory=dict, repr=False)

    def argv(self) -> List[str]:
        exclude = ["--exclude-schema", self.tracking_schema]
        if self.container:
            return [self.runtime, "exec", "--user", "postgres", self.container, "pg_dump", "--host", SOCKET_DIR,
                    "--username", "postgres", "--no-password", *DUMP_OPTIONS, *exclude, "--dbname", self.database]
        keywords = {key: value for key, value in self.conninfo.items() if key != "password" and value not in (None, "")}
        return ["pg_dump", "--no-password", *DUMP_OPTIONS, *exclude, "--dbname", _keyword_conninfo(keywords)]

    def run(self, runner: Callable[..., CommandResult] = run_command) -> CommandResult:
        argv = self.argv()
        password = self.conninfo.get("password")
        try:
            if self.container or not password:
                return runner(argv)
            with tempfile.TemporaryDirectory(prefix="poststack-pgdump-") as tmp:
                passfile = os.path.join(tmp, "pgpass")
                fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write("*:*:*:*:%s\n" % _pgpass_escape(str(password)))
                return runner(argv, env=dict(os.environ, PGPASSFILE=passfile))
        except OSError as exc:
            raise MigrationError("cannot run %s: %s. %s" % (argv[0], exc.strerror or exc, self.what_to_do()))

    def what_to_do(self) -> str:
        if self.container:
            return "Check that the container %s runs PostgreSQL (its image has pg_dump)" % self.container
        return ("Install pg_dump on this host (Debian: postgresql-client; its major version at least the server's), "
                "or dump in the PostgreSQL container (baseline_container)")


def _keyword_conninfo(keywords: Dict[str, Any]) -> str:
    def quote(value: Any) -> str:
        text = str(value)
        if text and not re.search(r"[\s'\\]", text):
            return text
        return "'%s'" % text.replace("\\", "\\\\").replace("'", "\\'")
    return " ".join("%s=%s" % (key, quote(value)) for key, value in sorted(keywords.items()))


def _pgpass_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def migration_text(dump: str, database: str, taken_on: datetime.date, dbmate: bool = False) -> str:
    """The migration's text: a header that says what it is, then pg_dump's output without its psql commands."""
    problems = []
    lines = []
    for number, line in enumerate(dump.splitlines(), 1):
        if line.startswith("\\"):
            if _RESTRICT.match(line):
                continue
            problems.append("line %d: %s" % (number, line[:60]))
        lines.append(line)
    if problems:
        raise MigrationError("pg_dump wrote psql commands, which a migration cannot hold (%s): nothing was written or "
                             "recorded" % "; ".join(problems[:5]))
    body = "\n".join(lines).strip("\n")
    if not split_sql(body):
        raise PlanError("database %s has no schema to take a baseline of (pg_dump found no table, type, function or "
                        "other object outside the tracking schema): write the first migration by hand instead" % database)
    header = [
        "-- The schema of database %s as poststack found it on %s, when it adopted the database: pg_dump" % (
            database, taken_on.isoformat()),
        "-- --schema-only (no data, owners, privileges, tablespaces, publications or subscriptions; without the",
        "-- tracking schema). Recorded there as applied without running it; on a new database it makes this schema.",
        "-- Its checksum is recorded: change it only before it is applied anywhere else.",
    ]
    if dbmate:
        header = ["-- migrate:up"] + header
    return "\n".join(header) + "\n\n" + body + "\n"


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
    """Write ``path``, which must not exist, whole or not at all (a temporary file renamed into place)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".baseline-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.link(tmp, path)  # fails when the name exists: a file nobody wrote here is never replaced
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


def take(engine: Any, dumper: Dumper, check_only: bool, now: Optional[datetime.datetime] = None) -> SchemaBaseline:
    """Under the migration lock: write the schema as the stream's first migration and record it (``check_only``:
    dump and say what would be written, change nothing)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    directory = engine.settings.migrations_dir
    engine.prepare_session()
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
        if outcome.rc != 0:
            raise MigrationError("pg_dump failed (rc %d): %s. %s; nothing was written or recorded"
                                 % (outcome.rc, outcome.stderr.strip()[-1500:] or "no message", dumper.what_to_do()),
                                 {"commands": baseline.commands})
        text = migration_text(outcome.stdout, dumper.database, now.date(), dbmate=layout == "dbmate")
        baseline.statements = len(split_sql(text))
        baseline.bytes = len(text.encode("utf-8"))
        if check_only:
            return baseline
        try:
            write_new(path, text)
        except OSError as exc:
            raise MigrationError("cannot write %s: %s; nothing was recorded" % (path, exc.strerror or exc))
        baseline.written = True
        engine.forget_files()
        try:
            baseline.run = engine.run("baseline", version)
        except BaseException:
            os.unlink(path)
            raise
        return baseline
    finally:
        engine.release_lock()
