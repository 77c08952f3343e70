"""Stat before read on a real PostgreSQL: runs whose files come from the checksum cache apply, roll back, dry-run and
verify as runs that read everything do, read only the files their steps run, and still see an edited file."""
import os
import time

from migration_helpers import write_files

FILES = {
    "001_a.sql": "CREATE TABLE a (id int);\n", "001_a.rollback.sql": "DROP TABLE a;\n",
    "001_a.verify.sql": "SELECT id FROM a WHERE false;\n",
    "002_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\n",
    "003_c.sql": "-- poststack:no-transaction\nCREATE TABLE c (id int);\n", "003_c.rollback.sql": "DROP TABLE c;\n",
}


def sql_read(opened):
    names = sorted(name for name in opened if name.endswith(".sql"))
    del opened[:]
    return names


def tables(db):
    with db.connect() as conn:
        return sorted(row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall())


def test_runs_from_the_cache(runner, pg_database, tmp_path, monkeypatch, opened):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_files(runner.directory, FILES)
    del opened[:]
    time.sleep(2.1)  # files changed within the last 2 s are never taken from the cache
    assert runner.run(target=1).done == [1]
    assert sql_read(opened) == sorted(FILES), "the first run reads every file"
    assert len(os.listdir(str(tmp_path / "cache" / "poststack" / "migrations"))) == 1

    assert runner.run(target=2).done == [2]
    assert sql_read(opened) == ["002_b.sql"], "only the step's file is read"
    dry = runner.run("apply", dry_run=True)  # a no-transaction file cannot be dry-run: it is listed as skipped
    assert [item["version"] for item in dry.skipped] == [3] and tables(pg_database) == ["a", "b"]
    assert sql_read(opened) == ["003_c.rollback.sql", "003_c.sql"]
    assert runner.run().done == [3] and tables(pg_database) == ["a", "b", "c"]
    assert sql_read(opened) == ["003_c.rollback.sql", "003_c.sql"]
    assert runner.run().done == [] and sql_read(opened) == []  # a no-op reads nothing

    assert runner.run("rollback", target=0).done == [3, 2, 1] and tables(pg_database) == []
    assert runner.run().done == [1, 2, 3]
    assert runner.engine().verify()["ok"]
    sql_read(opened)

    # an edit of an applied file that keeps its size and modification time is seen
    path = os.path.join(runner.directory, "001_a.sql")
    info = os.stat(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("CREATE TABLE z (id int);\n")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    time.sleep(2.1)
    report = runner.engine().verify()
    assert not report["ok"] and [item["file"] for item in report["drift"]] == ["001_a.sql"]
    assert [item["file"] for item in runner.engine().status().drift] == ["001_a.sql"]


def test_without_the_cache_every_run_reads_every_file(runner, pg_database, tmp_path, monkeypatch, opened):
    """checksum_cache=false (file systems whose stat can be stale): nothing from the cache, nothing written to it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_files(runner.directory, FILES)
    time.sleep(2.1)
    assert runner.run(target=2, checksum_cache=False).done == [1, 2]
    assert runner.run(target=2, checksum_cache=False).done == []
    del opened[:]
    assert runner.run(target=2, checksum_cache=False).done == []
    assert sql_read(opened) == sorted(FILES), "a no-op without the cache reads every file"
    assert not os.path.exists(str(tmp_path / "cache")), "the cache was written"
    assert runner.run(target=2).done == [] and os.listdir(str(tmp_path / "cache" / "poststack" / "migrations"))
