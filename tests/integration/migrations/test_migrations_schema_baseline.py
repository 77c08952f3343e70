"""A database made without migrations, adopted from its live schema (this host's pg_dump 15 against a real
PostgreSQL 15; the CLI tests take it in the project's container): migration-admin.yml writes
migrations/001_baseline.sql and records it, check mode writes nothing, a second run changes nothing, and a new
database migrated from that directory has the same schema. A directory that has migrations is refused before
anything is written or recorded."""
import os

import pytest

from migration_helpers import playbook, write_files
from ansible_collections.poststack.core.plugins.module_utils.migrations import LockTimeout
from ansible_collections.poststack.core.plugins.module_utils.migrations.schema_baseline import Dumper, take

ADMIN = "playbooks/migration-admin.yml"
SAID = "Show what was found"
SCHEMA_SQL = """
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, mood mood DEFAULT 'ok',
                       created timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     account bigint NOT NULL REFERENCES accounts (id), total numeric(10, 2) CHECK (total >= 0));
CREATE INDEX orders_account ON orders (account);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created := now(); RETURN NEW; END; $$;
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
CREATE SCHEMA reporting;
CREATE TABLE reporting.daily (day date PRIMARY KEY, n int);
COMMENT ON TABLE accounts IS 'people; a semicolon in a comment';
INSERT INTO accounts (email) VALUES ('a@example.com');
"""


def tracking(db):
    with db.connect() as conn:
        if conn.execute("SELECT to_regclass('poststack.schema_migrations')").fetchone()[0] is None:
            return None
        return conn.execute("SELECT stream, version, name, baselined FROM poststack.schema_migrations "
                            "ORDER BY stream, version").fetchall()


def schema(db):
    return db.server.dump(db.name, "--schema-only", "--exclude-schema=poststack")


def test_a_database_without_migrations_is_adopted_from_its_schema(pg_database, tmp_path):
    db = pg_database
    with db.connect() as conn:
        conn.execute(SCHEMA_SQL)
    directory = tmp_path / "project" / "migrations"  # not there yet: the baseline makes it
    # No container of this name: pg_dump runs on this host. The password goes to the module as a variable, so
    # pg_dump reads it from a passfile (playbook() checks that it is in no output).
    adopt = {"migrations_path": str(directory), "migrations_admin_state": "baselined",
             "migrations_baseline_from": "schema", "migrations_postgres_container": "no-such-container-here"}

    rc, tasks, stats, out = playbook(db, tmp_path, ADMIN, extra_vars=adopt, password_in_vars=True, check=True)
    assert rc == 0, out[-3000:]
    assert stats["changed"] == 1 and "would be written to %s/001_baseline.sql" % directory in tasks[SAID]["msg"]
    assert not directory.exists() and tracking(db) is None

    rc, tasks, stats, out = playbook(db, tmp_path, ADMIN, extra_vars=adopt, password_in_vars=True)
    assert rc == 0, out[-3000:]
    said = tasks[SAID]["msg"]
    assert "recorded as applied without running them [1]" in said and "written to %s/001_baseline.sql" % directory in said
    assert sorted(os.listdir(directory)) == ["001_baseline.sql"]
    text = (directory / "001_baseline.sql").read_text()
    assert text.startswith("-- The schema of database %s as poststack found it on" % db.name)
    assert "CREATE TABLE public.orders" in text and "\\restrict" not in text and "OWNER TO" not in text
    assert "poststack" not in text.split("\n\n", 1)[1], "the tracking schema is in the dump"
    assert tracking(db) == [("project", 1, "baseline", True)]
    with db.connect() as conn:
        assert conn.execute("SELECT email FROM accounts").fetchall() == [("a@example.com",)]

    rc, tasks, stats, out = playbook(db, tmp_path, ADMIN, extra_vars=adopt, password_in_vars=True)
    assert rc == 0 and stats["changed"] == 0, out[-3000:]
    assert "nothing (already recorded)" in tasks[SAID]["msg"]
    assert sorted(os.listdir(directory)) == ["001_baseline.sql"]

    # A new database migrated from that directory gets the same schema (the lint of the plan finds nothing).
    fresh = type(db)(db.server, db.server.create_database())
    try:
        rc, tasks, stats, out = playbook(fresh, tmp_path, "playbooks/migrate.yml",
                                         extra_vars={"migrations_path": str(directory), "migrations_lint": "error"})
        assert rc == 0, out[-3000:]
        assert [row[1:] for row in tracking(fresh) if row[0] == "project"] == [(1, "baseline", False)]
        assert schema(fresh) == schema(db)
    finally:
        db.server.drop_database(fresh.name)


def test_a_stream_that_has_migrations_is_refused_and_nothing_is_written(pg_database, tmp_path):
    db = pg_database
    with db.connect() as conn:
        conn.execute("CREATE TABLE t (id int)")
    directory = write_files(tmp_path / "migrations", {"001_t.sql": "CREATE TABLE t (id int);\n"})
    rc, tasks, stats, out = playbook(db, tmp_path, ADMIN, extra_vars={
        "migrations_path": directory, "migrations_admin_state": "baselined", "migrations_baseline_from": "schema",
        "migrations_postgres_container": "no-such-container-here"})
    assert rc != 0
    msg = tasks["Verify the project's migrations, release their lock, or record a baseline"]["msg"]
    assert "%s already has 1 migration (001_t.sql)" % directory in msg and "version baseline" in msg, msg
    assert sorted(os.listdir(directory)) == ["001_t.sql"]
    assert tracking(db) is None or tracking(db) == []


def test_the_engine_holds_the_lock_once_around_the_dump_and_frees_it(runner):
    """take() holds the migration lock around the dump, the write and the recording (run() takes it again inside):
    a second runner waits, and afterwards the session holds no advisory lock."""
    db = runner.db
    with db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    engine = runner.engine(str(runner.directory))
    dumper = Dumper(db.name, "poststack", conninfo={"host": db.server.host, "port": db.server.port,
                                                    "user": db.server.user, "dbname": db.name,
                                                    "password": db.server.password})
    other = runner.engine(str(runner.directory), lock_wait_timeout=0)
    real_run = dumper.run

    def run_while_another_tries(*args, **kwargs):
        with pytest.raises(LockTimeout):
            other.acquire_lock()
        return real_run(*args, **kwargs)

    dumper.run = run_while_another_tries
    baseline = take(engine, dumper, check_only=False)
    assert baseline.written and baseline.run.done == [1] and baseline.commands[0]["rc"] == 0
    assert db.server.password not in str(baseline.commands)
    held = engine.conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
    assert held.fetchone()[0] == 0
    other.acquire_lock()  # free for the next runner
    other.release_lock()


def test_a_project_without_a_migrations_directory_gets_one(pg_database, tmp_path):
    """The role's path is the core schema's when the project has no migrations/ (what a migrate applies then):
    the baseline goes to the project's migrations/, made for it, not next to the core files."""
    db = pg_database
    with db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    project = tmp_path / "project"
    project.mkdir()
    rc, tasks, stats, out = playbook(db, tmp_path, ADMIN, extra_vars={
        "poststack_project_dir": str(project), "migrations_admin_state": "baselined",
        "migrations_baseline_from": "schema", "migrations_postgres_container": "no-such-container-here"})
    assert rc == 0, out[-3000:]
    assert "written to %s/migrations/001_baseline.sql" % project in tasks[SAID]["msg"], tasks[SAID]["msg"]
    assert os.listdir(project / "migrations") == ["001_baseline.sql"]
    assert tracking(db) == [("project", 1, "baseline", True)]
