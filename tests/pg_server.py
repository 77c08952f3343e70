"""A throwaway real PostgreSQL 15 for tests (no container, no mocks).

Use it from any area's conftest.py::

    from pg_server import pg_server, pg_database  # pytest fixtures

    __all__ = ["pg_server", "pg_database"]  # marks the imports as used (pylint) without ignore files

(pytest's default import mode puts tests/ on sys.path when it loads tests/conftest.py; adding it explicitly, as
tests/integration/migrations/conftest.py does, costs nothing.)

``pg_server`` (session scope) runs initdb into a temporary directory owned by ``postgres`` (when the tests run as
root: the server refuses root), listens on 127.0.0.1 on a free port with scram-sha-256 password authentication,
and is stopped with ``pg_ctl -m fast`` at the end. ``pg_database`` (function scope) is a fresh empty database,
dropped afterwards. Both expose ``dsn`` (a URI *without* the password), ``env`` (os.environ plus PGPASSWORD,
PGHOST, PGPORT, PGUSER for subprocesses), ``connect()`` (psycopg), ``dump()``/``schema_dump()`` (pg_dump text
comparable between runs); the server also has ``create_database()``/``drop_database()``.

Durability is switched off (fsync, synchronous_commit, full_page_writes) because the data is thrown away;
``start_server(durable=True)`` keeps it on (the benchmarks use that, outside pytest).
Environment: POSTSTACK_PG_BIN overrides /usr/lib/postgresql/15/bin.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

import pytest

PG_BIN = os.environ.get("POSTSTACK_PG_BIN", "/usr/lib/postgresql/15/bin")
SUPERUSER = "poststack_test"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgServer:
    """A running server: connect as ``user`` with ``password`` to 127.0.0.1:``port``."""

    base_dir: str
    port: int
    password: str = field(repr=False)
    user: str = SUPERUSER
    host: str = "127.0.0.1"
    bin_dir: str = PG_BIN
    _run_as: List[str] = field(default_factory=list, repr=False)

    @property
    def data_dir(self) -> str:
        return os.path.join(self.base_dir, "data")

    @property
    def log_file(self) -> str:
        return os.path.join(self.base_dir, "server.log")

    def dsn(self, dbname: str = "postgres") -> str:
        """A URI without the password (give it through ``env`` / PGPASSWORD)."""
        return "postgresql://%s@%s:%d/%s" % (self.user, self.host, self.port, dbname)

    @property
    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(PGPASSWORD=self.password, PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user)
        return env

    def connect(self, dbname: str = "postgres", autocommit: bool = True):
        import psycopg

        return psycopg.connect(self.dsn(dbname), password=self.password, autocommit=autocommit)

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        cmd = self._run_as + [os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data_dir, *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True)

    def create_database(self, name: Optional[str] = None) -> str:
        name = name or "t_" + uuid.uuid4().hex[:12]
        with self.connect() as conn:
            conn.execute('CREATE DATABASE "%s"' % name)
        return name

    def schema_dump(self, dbname: str, *extra: str) -> str:
        """``pg_dump --schema-only``, comparable between runs."""
        return self.dump(dbname, "--schema-only", *extra)

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)

    def dump(self, dbname: str, *extra: str) -> str:
        """``pg_dump`` text of a database, comparable between runs (version lines and random keys dropped)."""
        out = subprocess.run([os.path.join(self.bin_dir, "pg_dump"), "--no-owner", *extra, "-d", self.dsn(dbname)],
                             env=self.env, check=True, capture_output=True, text=True).stdout
        # pg_dump >= 15.14 brackets the dump with \restrict/\unrestrict and a random key: not schema.
        return "\n".join(line for line in out.splitlines()
                         if not line.startswith(("-- Dumped", "\\restrict", "\\unrestrict")))


@dataclass
class PgDatabase:
    server: PgServer
    name: str

    @property
    def dsn(self) -> str:
        return self.server.dsn(self.name)

    @property
    def env(self) -> Dict[str, str]:
        env = self.server.env
        env["PGDATABASE"] = self.name
        return env

    def connect(self, autocommit: bool = True):
        return self.server.connect(self.name, autocommit)

    def schema_dump(self, *extra: str) -> str:
        return self.server.schema_dump(self.name, *extra)

    def dump(self, *extra: str) -> str:
        return self.server.dump(self.name, *extra)


def start_server(durable: bool = False) -> PgServer:
    """initdb + start; ``durable`` keeps fsync/synchronous_commit on (benchmarks), tests turn them off."""
    base = tempfile.mkdtemp(prefix="poststack-pg-")
    run_as: List[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    os.chmod(base, 0o700)
    password = secrets.token_urlsafe(18)
    pwfile = os.path.join(base, "pwfile")
    with open(pwfile, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    if run_as:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    server = PgServer(base_dir=base, port=_free_port(), password=password, _run_as=run_as)
    subprocess.run(run_as + [os.path.join(PG_BIN, "initdb"), "-D", server.data_dir, "-U", SUPERUSER, "--pwfile", pwfile,
                             "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                   check=True, capture_output=True, text=True)
    os.unlink(pwfile)
    options = "-c listen_addresses=127.0.0.1 -k %s -c max_connections=60 -c shared_buffers=32MB" % base
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    for attempt in range(3):
        try:
            server.ctl("-w", "-t", "30", "-l", server.log_file, "-o", "-p %d %s" % (server.port, options), "start")
            break
        except subprocess.CalledProcessError:
            if attempt == 2:
                with open(server.log_file, encoding="utf-8", errors="replace") as handle:
                    raise RuntimeError("PostgreSQL did not start:\n" + handle.read()[-2000:])
            server.port = _free_port()  # another process took the port between probe and start
            time.sleep(0.2)
    return server


def stop_server(server: PgServer) -> None:
    try:
        server.ctl("-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(server.base_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[PgDatabase]:
    name = pg_server.create_database()
    try:
        yield PgDatabase(pg_server, name)
    finally:
        pg_server.drop_database(name)
