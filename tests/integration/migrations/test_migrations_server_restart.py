"""A PostgreSQL restart while a migration runs: the error names the migration, says that the connection was lost
and that its outcome is known once the server is back; what was done before it is reported and stays."""
import os
import threading
import time

import pytest

from migration_helpers import write_files
from pg_server import start_server, stop_server
from ansible_collections.poststack.core.plugins.module_utils import migrations as m
from ansible_collections.poststack.core.plugins.module_utils.database import ConnectionSettings, connect


@pytest.fixture
def own_server():
    """A server of this test's own: it is restarted under the migration."""
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


def _wait_for_sleeping_backend(server, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with server.connect() as conn:
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%'"
                            " AND pid <> pg_backend_pid()").fetchone()[0]:
                return
        time.sleep(0.1)
    raise AssertionError("the migration never started its pg_sleep")


def test_server_restart_during_a_migration_names_it_and_reports_what_is_known(own_server, tmp_path):
    directory = write_files(tmp_path / "migrations", {
        "001_a.sql": "CREATE TABLE a (id int);",
        "002_slow.sql": "CREATE TABLE b (id int);\nSELECT pg_sleep(60);\n",
    })
    log_file = str(tmp_path / "migrations.log")
    conn = connect(ConnectionSettings(dsn=own_server.dsn(), password=own_server.password,
                                      application_name="poststack_test"))
    engine = m.Engine(conn, m.Settings(directory, lock_wait_timeout=5, log_file=log_file))
    restarted = []

    def restart():
        _wait_for_sleeping_backend(own_server)
        restarted.append(own_server.ctl("-m", "fast", "-w", "-t", "60", "-l", own_server.log_file, "restart").returncode)

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        with pytest.raises(m.ExecutionError) as info:
            engine.run("apply")
    finally:
        thread.join(90)
        conn.close()
    assert restarted == [0]
    message = str(info.value)
    # Not psycopg's bare "the connection is closed" from releasing the lock: the migration, what happened, what next.
    assert message.startswith("002_slow.sql: the connection to the server was lost while it ran (")
    assert "if the server received the COMMIT it is recorded, otherwise nothing of it was kept" in message
    assert "state=status" in message
    details = info.value.details
    assert (details["done"], details["current_version"], details["changed"], details["failed_version"]) == \
        ([1], None, True, 2)
    assert details["connection_lost"] is True
    # The server is back: 001 is recorded (a fast shutdown flushes WAL), 002 is not, and nothing of it was kept.
    with own_server.connect() as check:
        assert [row[0] for row in check.execute(
            "SELECT version FROM poststack.schema_migrations ORDER BY version").fetchall()] == [1]
        assert check.execute("SELECT to_regclass('b')").fetchone()[0] is None
    with open(log_file, encoding="utf-8") as handle:
        failed = [line for line in handle if " FAILED " in line]
    assert len(failed) == 1
    assert "FAILED apply version=2 name=slow after 1 of 2 step(s) (done: 1; current version: unknown)" in failed[0]
    assert os.path.exists(os.path.join(directory, "002_slow.sql"))
