"""Helpers and fixtures for the migration engine's integration tests (real PostgreSQL from tests/pg_server.py)."""
import os
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from ansible_collections.poststack.core.plugins.module_utils import migrations as m  # noqa: E402
from ansible_collections.poststack.core.plugins.module_utils.database import ConnectionSettings, connect  # noqa: E402

ROOT = os.path.dirname(TESTS)
COLLECTIONS = os.path.join(ROOT, ".collections")


def write_files(directory, files):
    """Create/replace (text) or delete (None) files in ``directory``; returns it as str."""
    os.makedirs(str(directory), exist_ok=True)
    for name, text in files.items():
        path = os.path.join(str(directory), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)  # names may hold directories (deploy/x.sql)
        if text is None:
            os.unlink(path)
        elif isinstance(text, bytes):
            with open(path, "wb") as handle:
                handle.write(text)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
    return str(directory)


class Runner:
    """Opens engines against one database; each ``engine()`` gets its own connection (closed at teardown)."""

    def __init__(self, db, directory):
        self.db = db
        self.directory = str(directory)
        self.connections = []

    def connection(self, **overrides):
        settings = ConnectionSettings(dsn=self.db.dsn, password=self.db.server.password, application_name="poststack_test")
        for key, value in overrides.items():
            setattr(settings, key, value)
        conn = connect(settings)
        self.connections.append(conn)
        return conn

    def engine(self, directory=None, **settings):
        settings.setdefault("lock_wait_timeout", 5)
        return m.Engine(self.connection(), m.Settings(directory or self.directory, **settings))

    def run(self, action="apply", target=None, directory=None, dry_run=False, **settings):
        return self.engine(directory, **settings).run(action, target, dry_run)

    def snapshot(self):
        """Full dump (schema + data, history rows included): equal snapshots mean an unchanged database."""
        return self.db.dump()

    def close(self):
        for conn in self.connections:
            conn.close()


@pytest.fixture
def runner(pg_database, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    item = Runner(pg_database, directory)
    try:
        yield item
    finally:
        item.close()


def cli_env(db):
    env = db.env
    env["PYTHONPATH"] = COLLECTIONS + os.pathsep + env.get("PYTHONPATH", "")
    return env


CLI = [sys.executable, "-m", "ansible_collections.poststack.core.plugins.module_utils.migrations"]
