"""A baseline from the live schema: how pg_dump is called (no connection setting in its arguments or environment),
what becomes of its output, the file's name per layout, a file never replaced, and take()'s steps with a fake
engine (nothing written in check mode, a stream with history left alone, the file removed when recording fails)."""
import datetime
import os
import stat

import pytest

from ansible_collections.poststack.core.plugins.module_utils.command import CommandResult
from ansible_collections.poststack.core.plugins.module_utils.migrations import (
    MigrationError, PlanError, check_sql, discover,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.schema_baseline import (
    Dumper, file_name, migration_text, take, version_for, write_new,
)

DAY = datetime.date(2026, 12, 7)
KEY = "OPhsjJ8pvApAZxIOdoAToH0XNuhN816oBRNewdUHmFWzeO4cnpCzbYZl2hgDBay"
# What pg_dump 15.18 --schema-only writes for an empty database, as it is.
PREAMBLE = """--
-- PostgreSQL database dump
--

\\restrict %s

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
""" % KEY
EPILOGUE = """
--
-- PostgreSQL database dump complete
--

\\unrestrict %s

""" % KEY
EMPTY = PREAMBLE + EPILOGUE
SCHEMA = """
CREATE FUNCTION public.digits(t text) RETURNS boolean
    LANGUAGE sql
    AS $_$ SELECT t ~ '^
\\d+$' $_$;

SET default_table_access_method = heap;

CREATE TABLE public.accounts (
    id integer NOT NULL,
    note text DEFAULT 'SET lock_timeout = 0;'::text
);

CREATE MATERIALIZED VIEW public.totals AS
 SELECT count(*) AS n FROM public.accounts
  WITH NO DATA;

CREATE INDEX totals_n ON public.totals USING btree (n);
"""
DUMP = PREAMBLE + SCHEMA + EPILOGUE


def text_of(dump=DUMP, dbmate=False):
    return migration_text(dump, "app", DAY, "001_baseline.sql", dbmate=dbmate)


def test_the_restrict_lines_go_and_the_settings_become_the_migrations_own():
    text = text_of()
    assert "\\restrict" not in text and "\\unrestrict" not in text and KEY not in text
    assert text.startswith("-- The schema of database app as poststack found it on 2026-12-07")
    # pg_dump's session settings end with the migration; the timeouts are the engine's
    assert "SET LOCAL client_encoding = 'UTF8';" in text and "SET LOCAL default_table_access_method = heap;" in text
    assert "SELECT pg_catalog.set_config('search_path', '', true);" in text
    assert "SET statement_timeout" not in text and "\nSET lock_timeout" not in text
    assert "idle_in_transaction_session_timeout" not in text
    # ... but not inside a string or a function's body
    assert "note text DEFAULT 'SET lock_timeout = 0;'::text" in text and "'^\n\\d+$'" in text
    assert check_sql("001_baseline.sql", text, False).statements


def test_a_construct_the_lint_would_flag_on_an_empty_database_is_ignored_in_the_header():
    # an index on a materialized view made in the same file is new (the lint knows it now): nothing to ignore
    assert "lint-ignore" not in text_of()
    flagged = text_of(PREAMBLE + "CREATE INDEX a_n ON public.elsewhere (n);\n" + EPILOGUE)
    assert "-- poststack:lint-ignore require-concurrent-index-creation\n" in flagged


def test_a_psql_command_at_a_statement_start_is_refused():
    with pytest.raises(MigrationError, match="not a migration the engine would run .*psql meta-command"):
        text_of(PREAMBLE + "\\connect other\nCREATE TABLE public.t (id int);\n" + EPILOGUE)


def test_a_database_without_a_schema_is_refused():
    with pytest.raises(PlanError, match="database app has no schema to take a baseline of"):
        text_of(EMPTY)


def test_dbmate_files_start_with_their_marker(tmp_path):
    version = version_for("dbmate", datetime.datetime(2026, 12, 7, 14, 5, 9))
    assert version == 20261207140509
    (tmp_path / file_name("dbmate", version)).write_text(text_of(dbmate=True))
    found = discover(str(tmp_path), "dbmate")
    assert [(m.version, m.filename) for m in found] == [(version, "20261207140509_baseline.sql")]
    assert "CREATE TABLE public.accounts" in found[0].sql and found[0].rollback_sql is None


@pytest.mark.parametrize("layout, name", [("auto", "001_baseline.sql"), ("poststack", "001_baseline.sql"),
                                          ("flyway", "V1__baseline.sql"), ("golang-migrate", "1_baseline.up.sql")])
def test_the_name_is_the_layouts_and_discovery_reads_it_as_version_1(tmp_path, layout, name):
    assert file_name(layout, version_for(layout, datetime.datetime.now())) == name
    (tmp_path / name).write_text(text_of())
    assert [m.version for m in discover(str(tmp_path), layout)] == [1]


def test_sqitch_projects_are_told_to_add_the_change_with_sqitch():
    with pytest.raises(PlanError, match="sqitch add baseline"):
        file_name("sqitch", 1)


def test_in_the_container_pg_dump_runs_as_postgres_over_the_socket():
    argv = Dumper("app", "poststack", container="demo-postgres", runtime="docker").argv()
    assert argv[:5] == ["docker", "exec", "--user", "postgres", "demo-postgres"]
    assert argv[5] == "pg_dump" and argv[-2:] == ["--dbname", "app"]
    assert {"--schema-only", "--no-owner", "--no-privileges", "--lock-wait-timeout=10s"} <= set(argv)
    assert argv[argv.index("--exclude-schema") + 1] == '"poststack"'  # a name, not a pattern


def test_on_the_host_every_connection_setting_goes_into_a_private_service_file_only(monkeypatch):
    secret = "s3cr:et\\pw = x"
    monkeypatch.setenv("PGPASSWORD", "the-environment's")
    seen = {}

    def runner(argv, env=None):
        service = env["PGSERVICEFILE"]
        seen.update(argv=argv, mode=stat.S_IMODE(os.stat(service).st_mode), service=service,
                    content=open(service, encoding="utf-8").read())
        return CommandResult(list(argv), 0, "CREATE TABLE t (id int);\n")

    dumper = Dumper("app db", "poststack", conninfo={"host": "127.0.0.1", "port": 5433, "user": "app",
                                                     "dbname": "ignored", "password": secret, "sslmode": ""})
    assert dumper.run(runner).rc == 0
    assert seen["argv"][-2:] == ["--dbname", "service=poststack"]
    assert secret not in " ".join(seen["argv"]) and "127.0.0.1" not in " ".join(seen["argv"])
    assert seen["mode"] == 0o600
    assert seen["content"] == ("[poststack]\ndbname=app db\nhost=127.0.0.1\npassword=%s\nport=5433\nuser=app\n"
                               % secret)
    assert not os.path.exists(seen["service"]), "the service file outlives the dump"


def test_a_value_with_a_line_break_is_refused_without_showing_it():
    with pytest.raises(MigrationError, match="password holds a line break") as raised:
        Dumper("app", "poststack", conninfo={"password": "a\nb-secret"}).run(lambda argv, **kw: None)
    assert "b-secret" not in str(raised.value)


def test_a_missing_pg_dump_says_what_to_install():
    def runner(argv, **_kw):
        raise FileNotFoundError(2, "No such file or directory")
    with pytest.raises(MigrationError, match="cannot run pg_dump: No such file or directory. Install pg_dump on this "
                                             "host .Debian: postgresql-client"):
        Dumper("app", "poststack", conninfo={"user": "app"}).run(runner)


def test_an_existing_file_is_never_replaced(tmp_path):
    target = tmp_path / "001_baseline.sql"
    write_new(str(target), "CREATE TABLE a (id int);\n")
    assert target.read_text() == "CREATE TABLE a (id int);\n"
    with pytest.raises(FileExistsError):
        write_new(str(target), "CREATE TABLE b (id int);\n")
    assert target.read_text() == "CREATE TABLE a (id int);\n"
    assert sorted(os.listdir(tmp_path)) == ["001_baseline.sql"], "a temporary file was left"


class FakeSettings:
    def __init__(self, directory):
        self.migrations_dir = directory
        self.layout = "auto"


class FakeEngine:
    """What take() asks of the engine: the history, the lock, the files, run()."""

    def __init__(self, directory, history=None, fail=None):
        self.settings = FakeSettings(directory)
        self.recorded = dict(history or {})
        self.fail = fail
        self.calls = []

    def prepare_session(self):
        self.calls.append("prepare")

    def acquire_lock(self):
        self.calls.append("lock")

    def release_lock(self):
        self.calls.append("unlock")

    def history(self):
        return self.recorded

    def forget_files(self):
        self.calls.append("forget")

    def run(self, action, version):
        self.calls.append((action, version, sorted(os.listdir(self.settings.migrations_dir))))
        if self.fail:
            raise self.fail
        self.recorded[version] = "baselined"
        return "recorded"


class FakeDumper(Dumper):
    def run(self, runner=None):
        return CommandResult(["pg_dump"], 0, DUMP)


def test_take_writes_then_records_under_the_lock(tmp_path):
    directory = str(tmp_path / "migrations")  # not there yet
    engine = FakeEngine(directory)
    baseline = take(engine, FakeDumper("app", "poststack"), check_only=False)
    assert baseline.written and baseline.run == "recorded" and baseline.version == 1
    assert engine.calls == ["prepare", "lock", "forget", ("baseline", 1, ["001_baseline.sql"]), "unlock"]
    assert baseline.commands == [{"argv": ["pg_dump"], "rc": 0, "seconds": 0.0, "stderr": ""}]


def test_check_mode_writes_nothing_and_takes_no_lock(tmp_path):
    engine = FakeEngine(str(tmp_path / "migrations"))
    baseline = take(engine, FakeDumper("app", "poststack"), check_only=True)
    assert not baseline.written and baseline.file.endswith("/migrations/001_baseline.sql") and baseline.statements > 3
    assert engine.calls == ["prepare"] and not os.path.exists(str(tmp_path / "migrations"))


def test_a_stream_with_history_is_left_alone(tmp_path):
    engine = FakeEngine(str(tmp_path), history={3: "applied"})
    baseline = take(engine, FakeDumper("app", "poststack"), check_only=False)
    assert baseline.already == 3 and baseline.file is None and os.listdir(str(tmp_path)) == []


def test_when_recording_fails_the_file_and_its_new_directory_go(tmp_path):
    directory = tmp_path / "migrations"
    engine = FakeEngine(str(directory), fail=MigrationError("the tracking table cannot be made"))
    with pytest.raises(MigrationError) as raised:
        take(engine, FakeDumper("app", "poststack"), check_only=False)
    assert raised.value.details["commands"][0]["argv"] == ["pg_dump"]
    assert not directory.exists() and engine.calls[-1] == "unlock"


def test_a_file_whose_version_may_be_recorded_stays(tmp_path):
    class Lost(FakeEngine):
        def history(self):
            if any(isinstance(call, tuple) for call in self.calls):
                raise OSError("the connection is gone")
            return {}

    engine = Lost(str(tmp_path), fail=MigrationError("connection lost at COMMIT"))
    with pytest.raises(MigrationError):
        take(engine, FakeDumper("app", "poststack"), check_only=False)
    assert os.listdir(str(tmp_path)) == ["001_baseline.sql"]
