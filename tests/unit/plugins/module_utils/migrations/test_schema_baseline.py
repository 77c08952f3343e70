"""A baseline from the live schema: how pg_dump is called (no password in its arguments or environment), what
becomes of its output, the file's name per layout, and that a file is never replaced."""
import datetime
import os
import stat

import pytest

from ansible_collections.poststack.core.plugins.module_utils.command import CommandResult
from ansible_collections.poststack.core.plugins.module_utils.migrations import MigrationError, PlanError, discover
from ansible_collections.poststack.core.plugins.module_utils.migrations.schema_baseline import (
    Dumper, file_name, migration_text, version_for, write_new,
)

DAY = datetime.date(2026, 12, 7)
DUMP = """--
-- PostgreSQL database dump
--

\\restrict 6mLzIcx9yFCDR0rP7IWOlSm

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE TABLE public.accounts (
    id integer NOT NULL,
    note text DEFAULT 'a; b'::text
);

\\unrestrict 6mLzIcx9yFCDR0rP7IWOlSm
"""


def test_the_psql_restrict_commands_are_taken_out_and_a_header_says_what_the_file_is():
    text = migration_text(DUMP, "app", DAY)
    assert "\\restrict" not in text and "\\unrestrict" not in text
    assert text.startswith("-- The schema of database app as poststack found it on 2026-12-07")
    assert "CREATE TABLE public.accounts" in text and text.endswith(");\n")


def test_any_other_psql_command_is_refused_naming_its_line():
    with pytest.raises(MigrationError, match=r"line 2: \\connect other"):
        migration_text("SET x = 1;\n\\connect other\nCREATE TABLE t (id int);\n", "app", DAY)


def test_a_database_without_a_schema_is_refused():
    with pytest.raises(PlanError, match="database app has no schema to take a baseline of"):
        migration_text("--\n-- PostgreSQL database dump\n--\n\\restrict k\n\\unrestrict k\n", "app", DAY)


def test_dbmate_files_start_with_their_marker(tmp_path):
    version = version_for("dbmate", datetime.datetime(2026, 12, 7, 14, 5, 9))
    assert version == 20261207140509
    (tmp_path / file_name("dbmate", version)).write_text(migration_text(DUMP, "app", DAY, dbmate=True))
    found = discover(str(tmp_path), "dbmate")
    assert [(m.version, m.filename) for m in found] == [(version, "20261207140509_baseline.sql")]
    assert "CREATE TABLE public.accounts" in found[0].sql and found[0].rollback_sql is None


@pytest.mark.parametrize("layout, name", [("auto", "001_baseline.sql"), ("poststack", "001_baseline.sql"),
                                          ("flyway", "V1__baseline.sql"), ("golang-migrate", "1_baseline.up.sql")])
def test_the_name_is_the_layouts_and_discovery_reads_it_as_version_1(tmp_path, layout, name):
    assert file_name(layout, version_for(layout, datetime.datetime.now())) == name
    (tmp_path / name).write_text(migration_text(DUMP, "app", DAY))
    assert [m.version for m in discover(str(tmp_path), layout)] == [1]


def test_sqitch_projects_are_told_to_add_the_change_with_sqitch():
    with pytest.raises(PlanError, match="sqitch add baseline"):
        file_name("sqitch", 1)


def test_in_the_container_pg_dump_runs_as_postgres_over_the_socket():
    argv = Dumper("app", "poststack", container="demo-postgres", runtime="docker").argv()
    assert argv[:5] == ["docker", "exec", "--user", "postgres", "demo-postgres"]
    assert argv[5] == "pg_dump" and argv[-2:] == ["--dbname", "app"]
    assert {"--schema-only", "--no-owner", "--no-privileges"} <= set(argv)
    assert argv[argv.index("--exclude-schema") + 1] == "poststack"


def test_on_the_host_the_password_goes_into_a_private_passfile_only():
    secret = "s3cr:et\\pw"
    seen = {}

    def runner(argv, env=None):
        passfile = env["PGPASSFILE"]
        seen.update(argv=argv, env={k: v for k, v in env.items() if k.startswith("PG")},
                    mode=stat.S_IMODE(os.stat(passfile).st_mode), content=open(passfile, encoding="utf-8").read(),
                    passfile=passfile)
        return CommandResult(list(argv), 0, "CREATE TABLE t (id int);\n")

    dumper = Dumper("app db", "poststack", conninfo={"host": "127.0.0.1", "port": "5433", "user": "app",
                                                     "dbname": "app db", "password": secret})
    assert dumper.run(runner).rc == 0
    assert secret not in " ".join(seen["argv"]) and secret not in str(seen["env"])
    assert seen["argv"][-1] == "dbname='app db' host=127.0.0.1 port=5433 user=app"
    assert seen["mode"] == 0o600
    assert seen["content"] == "*:*:*:*:s3cr\\:et\\\\pw\n"  # pgpass escapes ':' and '\'
    assert not os.path.exists(seen["passfile"]), "the passfile outlives the dump"


def test_without_a_password_no_passfile_is_made():
    calls = []
    Dumper("app", "poststack", conninfo={"host": "/run/postgresql", "user": "app"}).run(
        lambda argv, **kw: calls.append(kw) or CommandResult(list(argv), 0, ""))
    assert calls == [{}]


def test_a_missing_pg_dump_says_what_to_install():
    def runner(argv, **_kw):
        raise FileNotFoundError(2, "No such file or directory")
    with pytest.raises(MigrationError, match="cannot run pg_dump: No such file or directory. Install pg_dump on this "
                                             "host .Debian: postgresql-client"):
        Dumper("app", "poststack", conninfo={"user": "app"}).run(runner)


def test_an_existing_file_is_never_replaced(tmp_path):
    target = tmp_path / "migrations" / "001_baseline.sql"
    write_new(str(target), "CREATE TABLE a (id int);\n")
    assert target.read_text() == "CREATE TABLE a (id int);\n"
    with pytest.raises(FileExistsError):
        write_new(str(target), "CREATE TABLE b (id int);\n")
    assert target.read_text() == "CREATE TABLE a (id int);\n"
    assert sorted(os.listdir(target.parent)) == ["001_baseline.sql"], "a temporary file was left"
