"""The engine against a real PostgreSQL: apply, idempotence, rollback, status, verify, baseline, repair, locks."""
import os
import threading
import time

import pytest

from migration_helpers import write_files
from ansible_collections.poststack.core.plugins.module_utils import migrations as m

BASIC = {
    "001_users.sql": "CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);\n",
    "001_users.rollback.sql": "DROP TABLE users;\n",
    "001_users.verify.sql": "SELECT id, name FROM users WHERE false;\n",
    "002_users_email.sql": "ALTER TABLE users ADD COLUMN email text;\n",
    "002_users_email.rollback.sql": "ALTER TABLE users DROP COLUMN email;\n",
    "010_audit.sql": "CREATE TABLE audit (at timestamptz DEFAULT now(), what text);\nINSERT INTO audit (what) VALUES ('x;y');\n",
    "010_audit.rollback.sql": "DROP TABLE audit;\n",
}


def history(runner, stream="project"):
    with runner.db.connect() as conn:
        return conn.execute("SELECT version, name, checksum, rollback_sql IS NOT NULL, baselined FROM poststack.schema_migrations"
                            " WHERE stream = %s ORDER BY version", (stream,)).fetchall()


def test_apply_then_nothing_to_do(runner):
    write_files(runner.directory, BASIC)
    first = runner.run()
    assert first.changed and first.done == [1, 2, 10] and first.after_version == 10
    assert set(first.timings_ms) == {"1", "2", "10"}
    rows = history(runner)
    assert [(r[0], r[1], r[3]) for r in rows] == [(1, "users", True), (2, "users_email", True), (10, "audit", True)]
    assert rows[0][2] == m.checksum(BASIC["001_users.sql"])
    second = runner.run()
    assert not second.changed and second.done == [] and second.after_version == 10


def test_target_version_then_rest(runner):
    write_files(runner.directory, BASIC)
    assert runner.run(target=2).done == [1, 2]
    assert runner.run(target=2).done == []
    assert runner.run().done == [10]


def test_rollback_newest_first_then_idempotent(runner):
    write_files(runner.directory, BASIC)
    runner.run()
    result = runner.run("rollback", 1)
    assert result.done == [10, 2] and result.after_version == 1
    assert runner.run("rollback", 1).done == []
    with runner.db.connect() as conn:
        columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")]
        assert "email" not in columns
        assert conn.execute("SELECT to_regclass('audit')").fetchone()[0] is None


def test_rollback_uses_recorded_sql_when_files_are_gone(runner):
    write_files(runner.directory, BASIC)
    runner.run()
    write_files(runner.directory, {"010_audit.sql": None, "010_audit.rollback.sql": None})
    assert runner.run("rollback", 2).done == [10]
    with runner.db.connect() as conn:
        assert conn.execute("SELECT to_regclass('audit')").fetchone()[0] is None


def test_dry_run_executes_and_rolls_back(runner):
    write_files(runner.directory, BASIC)
    before = runner.snapshot()
    result = runner.run(dry_run=True)
    assert result.done == [1, 2, 10] and result.after_version == 0
    assert runner.snapshot() == before
    write_files(runner.directory, {"011_bad.sql": "INSERT INTO missing_table VALUES (1);"})
    with pytest.raises(m.ExecutionError, match="dry run: 011_bad.sql failed at line 1: relation \"missing_table\" does not exist"):
        runner.run(dry_run=True)
    assert runner.snapshot() == before


def test_status_reports_pending_drift_and_lock(runner):
    write_files(runner.directory, BASIC)
    runner.run(target=1)
    write_files(runner.directory, {"001_users.sql": BASIC["001_users.sql"] + "-- edited\n"})
    status = runner.engine().status()
    assert status.current_version == 1 and status.pending == [2, 10]
    assert [(d["version"], d["kind"]) for d in status.drift] == [(1, "changed")]
    assert status.lock_holder is None


def test_verify_scripts_and_checksums(runner):
    write_files(runner.directory, BASIC)
    runner.run()
    assert runner.engine().verify()["ok"]
    with runner.db.connect() as conn:
        conn.execute("ALTER TABLE users RENAME COLUMN name TO full_name")
    report = runner.engine().verify()
    assert not report["ok"]
    assert 'column "name" does not exist' in report["verify_scripts"][0]["error"]


def test_baseline_records_without_running(runner):
    write_files(runner.directory, BASIC)
    with runner.db.connect() as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, email text)")
    result = runner.run("baseline", 2)
    assert result.done == [1, 2]
    assert [(r[0], r[4]) for r in history(runner)] == [(1, True), (2, True)]
    assert runner.run("baseline", 2).done == []
    assert runner.run().done == [10]


def test_repair_accepts_new_checksum(runner):
    write_files(runner.directory, BASIC)
    runner.run()
    edited = BASIC["002_users_email.sql"] + "-- reviewed\n"
    write_files(runner.directory, {"002_users_email.sql": edited})
    with pytest.raises(m.PlanError, match="002_users_email.sql changed after it was applied"):
        runner.run()
    assert runner.run("repair").done == [2]
    assert runner.run("repair").done == []
    assert history(runner)[1][2] == m.checksum(edited)
    assert not runner.run().changed


def test_lock_timeout_names_holder_and_unlock_terminates(runner):
    write_files(runner.directory, BASIC)
    holder = runner.connection(application_name="stuck_migrator")
    holder.execute("SELECT pg_advisory_lock(%s)", (m.lock_key("poststack"),))
    holder_pid = holder.info.backend_pid
    started = time.monotonic()
    with pytest.raises(m.LockTimeout) as info:
        runner.run(lock_wait_timeout=0.3)
    assert time.monotonic() - started < 3
    assert "pid %d (application_name 'stuck_migrator'" % holder_pid in str(info.value)
    assert "client 127.0.0.1" in str(info.value)
    with pytest.raises(m.MigrationError, match="set terminate_holder=true"):
        runner.engine().unlock(False)
    report = runner.engine().unlock(True)
    assert report["changed"] and report["terminated"] == [holder_pid]
    assert not runner.engine().unlock(True)["changed"]
    assert runner.run().done == [1, 2, 10]


def test_lock_not_available_is_retried_with_backoff(runner, tmp_path):
    write_files(runner.directory, {"001_t.sql": "CREATE TABLE t (id int);"})
    runner.run()
    write_files(runner.directory, {"002_t_col.sql": "ALTER TABLE t ADD COLUMN c int;"})
    blocker = runner.connection()
    blocker.execute("BEGIN")
    blocker.execute("LOCK TABLE t IN ACCESS SHARE MODE")
    timer = threading.Timer(0.6, lambda: blocker.execute("COMMIT"))
    timer.start()
    log_file = tmp_path / "retry.log"
    try:
        result = runner.run(lock_timeout="100ms", retries=5, retry_backoff=0.2, log_file=str(log_file))
    finally:
        timer.join()
    assert result.done == [2]
    assert "lock_timeout hit (55P03), retry 1/5" in log_file.read_text()


def test_lock_not_available_gives_up_after_retries(runner, tmp_path):
    write_files(runner.directory, {"001_t.sql": "CREATE TABLE t (id int);"})
    runner.run()
    write_files(runner.directory, {"002_t_col.sql": "ALTER TABLE t ADD COLUMN c int;"})
    blocker = runner.connection()
    blocker.execute("BEGIN")
    blocker.execute("LOCK TABLE t IN ACCESS SHARE MODE")
    log_file = tmp_path / "logs" / "database" / "migrations.log"
    with pytest.raises(m.ExecutionError) as info:
        runner.run(lock_timeout="50ms", retries=2, retry_backoff=0.05, log_file=str(log_file))
    assert info.value.details["attempts"] == 3 and info.value.details["sqlstate"] == "55P03"
    blocker.execute("ROLLBACK")
    text = log_file.read_text()
    assert text.count("lock_timeout hit (55P03)") == 2
    assert "lock acquired" in text and "lock released" in text
    assert runner.db.server.password not in text


def test_streams_keep_versions_apart(runner, tmp_path):
    core_files = {"001_core.sql": "CREATE TABLE core_t (id int);", "001_core.rollback.sql": "DROP TABLE core_t;"}
    other = write_files(tmp_path / "core", core_files)
    write_files(runner.directory, BASIC)
    assert runner.run(directory=other, stream="core").done == [1]
    assert runner.run().done == [1, 2, 10]
    assert runner.run("rollback", 0).done == [10, 2, 1]
    assert [r[0] for r in history(runner, "core")] == [1]


def test_out_of_order_when_allowed(runner):
    write_files(runner.directory, {"001_a.sql": "CREATE TABLE a ();", "003_c.sql": "CREATE TABLE c ();"})
    runner.run()
    write_files(runner.directory, {"002_b.sql": "CREATE TABLE b ();"})
    assert runner.run(allow_out_of_order=True).done == [2]


def test_failed_migration_keeps_earlier_ones_and_reports_line(runner):
    write_files(runner.directory, {
        "001_a.sql": "CREATE TABLE a (id int);",
        "002_b.sql": "CREATE TABLE b (id int);\n\nINSERT INTO b VALUES ('not a number');\n",
    })
    log_file = os.path.join(runner.directory, "..", "migrations.log")
    with pytest.raises(m.ExecutionError) as info:
        runner.run(log_file=log_file)
    assert "002_b.sql failed at line 3" in str(info.value)
    assert "invalid input syntax for type integer" in str(info.value)
    assert [r[0] for r in history(runner)] == [1]
    # What really happened is in the error's details and in the log: 001 stays applied, 002 failed.
    details = info.value.details
    assert (details["done"], details["current_version"], details["changed"], details["failed_version"]) == ([1], 1, True, 2)
    assert details["previous_version"] == 0 and [step["version"] for step in details["plan"]] == [1, 2]
    with open(log_file, encoding="utf-8") as handle:
        failed = [line for line in handle if " FAILED " in line]
    assert len(failed) == 1 and "FAILED apply version=2 name=b after 1 of 2 step(s) (done: 1; current version: 1)" in failed[0]
    assert "002_b.sql failed at line 3" in failed[0]
    with runner.db.connect() as conn:
        assert conn.execute("SELECT to_regclass('b')").fetchone()[0] is None
    assert os.path.exists(os.path.join(runner.directory, "002_b.sql"))


def test_failed_rollback_keeps_the_rollbacks_before_it_and_says_so(runner):
    write_files(runner.directory, {
        "001_a.sql": "CREATE TABLE a (id int);", "001_a.rollback.sql": "DROP TABLE a;",
        "002_b.sql": "CREATE TABLE b (id int);", "002_b.rollback.sql": "DROP TABLE no_such_table;",
        "003_c.sql": "CREATE TABLE c (id int);", "003_c.rollback.sql": "DROP TABLE c;",
    })
    runner.run()
    with pytest.raises(m.ExecutionError) as info:
        runner.run("rollback", 0)
    assert "recorded rollback of 002_b failed" in str(info.value)
    details = info.value.details
    assert (details["done"], details["current_version"], details["changed"], details["failed_version"]) == ([3], 2, True, 2)
    assert [r[0] for r in history(runner)] == [1, 2]


def test_nothing_done_before_the_failure_is_no_change(runner):
    write_files(runner.directory, {"001_a.sql": "SELECT 1/0;"})
    with pytest.raises(m.ExecutionError) as info:
        runner.run()
    details = info.value.details
    assert (details["done"], details["current_version"], details["changed"], details["failed_version"]) == ([], 0, False, 1)
