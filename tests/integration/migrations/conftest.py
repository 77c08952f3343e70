"""Fixtures for tests/integration/migrations: a real PostgreSQL per session, a fresh database per test."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(os.path.dirname(HERE))
for path in (TESTS, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

from pg_server import pg_database, pg_server  # noqa: E402  (pytest fixtures)
from migration_helpers import runner  # noqa: E402  (pytest fixture)

__all__ = ["pg_database", "pg_server", "runner"]
