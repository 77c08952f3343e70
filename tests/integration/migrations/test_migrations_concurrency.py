"""Concurrent runs and a client killed mid-migration, with real processes."""
import json
import os
import signal
import subprocess
import time

from migration_helpers import CLI, cli_env, write_files


def many_migrations(count):
    files = {"001_log.sql": "CREATE TABLE apply_log (version int NOT NULL, pid int NOT NULL DEFAULT pg_backend_pid());\n"
                            "INSERT INTO apply_log (version) VALUES (1);\n"}
    for version in range(2, count + 1):
        files["%03d_step.sql" % version] = (
            "CREATE TABLE t%d (id int);\nINSERT INTO apply_log (version) VALUES (%d);\nSELECT pg_sleep(0.01);\n" % (version, version))
    return files


def test_ten_concurrent_processes_apply_each_migration_exactly_once(runner):
    write_files(runner.directory, many_migrations(25))
    env = cli_env(runner.db)
    processes = [subprocess.Popen(CLI + ["apply", "--dsn", runner.db.dsn, "--dir", runner.directory, "--lock-wait-timeout", "60"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for dummy in range(10)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 10, outputs
    results = [json.loads(out) for out, dummy in outputs]
    applied = sorted(version for result in results for version in result["done"])
    assert applied == list(range(1, 26))  # every version reported by exactly one process
    assert sum(1 for result in results if result["changed"]) >= 1
    assert all(result["version"] == 25 for result in results)
    with runner.db.connect() as conn:
        counts = conn.execute("SELECT version, count(*) FROM apply_log GROUP BY version ORDER BY version").fetchall()
        assert counts == [(version, 1) for version in range(1, 26)]
        history = conn.execute("SELECT version FROM poststack.schema_migrations ORDER BY version").fetchall()
        assert [row[0] for row in history] == list(range(1, 26))


def wait_for(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def test_kill_9_mid_migration_leaves_no_partial_schema_and_no_lock(runner):
    write_files(runner.directory, {
        "001_base.sql": "CREATE TABLE base (id int);\n",
        "002_long.sql": ("CREATE TABLE half_done (id int);\nINSERT INTO half_done SELECT generate_series(1, 1000);\n"
                         "CREATE INDEX half_done_idx ON half_done (id);\nSELECT pg_sleep(2);\n"
                         "CREATE TABLE after_sleep (id int);\n"),
    })
    runner.run(target=1)
    before = runner.db.schema_dump()
    env = cli_env(runner.db)
    process = subprocess.Popen(CLI + ["apply", "--dsn", runner.db.dsn, "--dir", runner.directory], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with runner.db.connect() as conn:
        sleeping = wait_for(lambda: conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND state = 'active'", ("%pg_sleep(2)%",)).fetchone(), 15)
        assert sleeping, "the long migration never started"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        # The server notices the dead client (client_connection_check_interval), rolls back, frees the lock.
        gone = wait_for(lambda: conn.execute("SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0], 10)
        assert gone, "the advisory lock outlived the killed client"
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (sleeping[0],)).fetchone()[0] == 0
        assert conn.execute("SELECT to_regclass('half_done')").fetchone()[0] is None
    assert runner.db.schema_dump() == before
    result = runner.run()
    assert result.done == [2]
    with runner.db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM half_done").fetchone()[0] == 1000


def test_create_index_concurrently_completes_while_five_runners_wait_for_the_lock(runner):
    """CREATE INDEX CONCURRENTLY waits for every transaction that holds a snapshot; a runner blocked in
    pg_advisory_lock() holds one while it waits for the lock the CIC's runner has: a deadlock (Flyway's). Waiting
    runners poll for the lock in short statements instead, so the index is built and they find nothing to do."""
    write_files(runner.directory, {
        "001_big.sql": "CREATE TABLE big (id int, v text);\nINSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 20000) g;\n",
        "002_idx.sql": "-- poststack:no-transaction\nSELECT pg_sleep(2);\nCREATE INDEX CONCURRENTLY big_v ON big (v);\n",
    })
    runner.run(target=1)
    env = cli_env(runner.db)
    first = subprocess.Popen(CLI + ["apply", "--dsn", runner.db.dsn, "--dir", runner.directory], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with runner.db.connect() as conn:
        assert wait_for(lambda: conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE %s AND state = 'active'", ("%pg_sleep(2)%",)).fetchone(), 15)
    waiting = [subprocess.Popen(CLI + ["apply", "--dsn", runner.db.dsn, "--dir", runner.directory, "--lock-wait-timeout",
                                       "60"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for dummy in range(5)]
    outputs = [process.communicate(timeout=90) for process in [first] + waiting]
    assert [process.returncode for process in [first] + waiting] == [0] * 6, outputs
    assert json.loads(outputs[0][0])["done"] == [2]
    assert all(json.loads(out)["done"] == [] for out, _err in outputs[1:])
    with runner.db.connect() as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v'::regclass").fetchone() == (True,)
