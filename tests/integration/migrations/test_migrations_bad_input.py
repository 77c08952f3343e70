"""Bad input: every case fails with a clear error and leaves the database exactly as it was (full pg_dump)."""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import pytest

from migration_helpers import write_files
from ansible_collections.poststack.core.plugins.module_utils import migrations as m
from ansible_collections.poststack.core.plugins.module_utils.database import ConnectionSettings, ConnectionSettingsError, connect

GOOD = {
    "001_a.sql": "CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1);\n",
    "001_a.rollback.sql": "DROP TABLE a;\n",
    "002_b.sql": "CREATE TABLE b (id int);\n",
    "002_b.rollback.sql": "DROP TABLE b;\n",
}


@dataclass
class Case:
    id: str
    error: str  # regular expression the message must match
    files: Dict[str, Optional[object]] = field(default_factory=dict)  # added after GOOD (None removes)
    setup: List[Tuple[str, Optional[int]]] = field(default_factory=list)  # runs that succeed before the snapshot
    change: Dict[str, Optional[object]] = field(default_factory=dict)  # file edits between setup and the failing run
    action: str = "apply"
    target: Optional[int] = None
    settings: Dict[str, object] = field(default_factory=dict)
    kind: type = m.MigrationError


CASES = [
    Case("unparsable-name", r"abc\.sql: cannot parse the name", {"abc.sql": "SELECT 1;"}),
    Case("dash-instead-of-underscore", r"003-c\.sql: cannot parse the name", {"003-c.sql": "SELECT 1;"}),
    Case("duplicate-version", r"duplicate version 2: 002_b\.sql and 2_other\.sql", {"2_other.sql": "SELECT 1;"}),
    Case("rollback-without-migration", r"005_e\.rollback\.sql: rollback script without its migration 005_e\.sql",
         {"005_e.rollback.sql": "SELECT 1;"}),
    Case("verify-without-migration", r"005_e\.verify\.sql: verify script without its migration",
         {"005_e.verify.sql": "SELECT 1;"}),
    Case("rollback-name-mismatch", r"002_x\.rollback\.sql: rollback script name does not match its migration 002_b\.sql",
         {"002_b.rollback.sql": None, "002_x.rollback.sql": "DROP TABLE b;"}),
    Case("version-zero", r"000_z\.sql: version 0 is out of range", {"000_z.sql": "SELECT 1;"}),
    Case("version-beyond-bigint", r"is out of range", {"99999999999999999999_big.sql": "SELECT 1;"}),
    Case("empty-file", r"003_c\.sql is empty", {"003_c.sql": "-- nothing yet\n"}),
    Case("not-utf8", r"003_c\.sql is not valid UTF-8", {"003_c.sql": b"INSERT INTO a VALUES (\xe9);"}),
    Case("missing-directory", r"does not exist or is not a directory", settings={"migrations_dir": "/nonexistent/migrations"}),
    Case("unterminated-string", r"003_c\.sql: unterminated string starting at line 2", {"003_c.sql": "SELECT 1;\nSELECT 'oops;\n"}),
    Case("unterminated-dollar-quote", r"003_c\.sql: unterminated dollar-quoted string \$fn\$",
         {"003_c.sql": "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1;\n"}),
    Case("unterminated-comment", r"unterminated /\* comment", {"003_c.sql": "SELECT 1; /* note\n"}),
    Case("begin-without-commit", r"003_c\.sql line 1: 'BEGIN' controls the transaction",
         {"003_c.sql": "BEGIN;\nCREATE TABLE c ();\n"}),
    Case("commit-in-middle", r"003_c\.sql line 2: 'COMMIT' controls the transaction",
         {"003_c.sql": "CREATE TABLE c ();\nCOMMIT;\nCREATE TABLE d ();\n"}),
    Case("concurrently-without-marker", r"003_c\.sql line 1: 'CREATE INDEX CONCURRENTLY .*cannot run inside a transaction",
         {"003_c.sql": "CREATE INDEX CONCURRENTLY a_idx ON a (id);\n"}),
    Case("psql-meta-command", r"psql meta-command '\\\\i'", {"003_c.sql": "\\i other.sql\n"}),
    Case("drift-changed-migration", r"migration 001_a\.sql changed after it was applied: recorded sha256 [0-9a-f]{64}, file sha256 [0-9a-f]{64}",
         setup=[("apply", 1)], change={"001_a.sql": "CREATE TABLE a (id bigint PRIMARY KEY);\n"}),
    Case("drift-changed-rollback", r"rollback 001_a\.rollback\.sql changed after it was applied", setup=[("apply", 1)],
         change={"001_a.rollback.sql": "DROP TABLE a CASCADE;\n"}),
    Case("applied-file-missing", r"version 1 \(001_a\.sql\) is applied but its file is missing", setup=[("apply", 1)],
         change={"001_a.sql": None, "001_a.rollback.sql": None}),
    Case("out-of-order", r"002_b\.sql is lower than the highest applied version 3",
         {"002_b.sql": None, "002_b.rollback.sql": None, "003_c.sql": "CREATE TABLE c ();"}, setup=[("apply", None)],
         change={"002_b.sql": GOOD["002_b.sql"], "002_b.rollback.sql": GOOD["002_b.rollback.sql"]}),
    Case("unknown-target", r"target_version 7 matches no migration file \(known: 1, 2\)", target=7),
    Case("target-below-current", r"target_version 1 is below the current version 2: use state=rolled_back",
         setup=[("apply", None)], target=1),
    Case("rollback-target-not-applied", r"target_version 5 is not an applied version \(applied: 1, 2\)",
         setup=[("apply", None)], action="rollback", target=5),
    Case("rollback-without-target", r"target_version is required to roll back", setup=[("apply", None)], action="rollback"),
    Case("rollback-negative-target", r"target_version -1 is negative", setup=[("apply", None)], action="rollback", target=-1),
    Case("rollback-missing-one", r"no rollback for version 3 .*nothing was rolled back",
         {"003_c.sql": "CREATE TABLE c ();"}, setup=[("apply", None)], action="rollback", target=0),
    Case("baseline-unknown-version", r"baseline version 9 matches no migration file", action="baseline", target=9),
    Case("baseline-zero", r"baseline needs target_version >= 1", action="baseline", target=0),
    Case("bad-tracking-schema", r"tracking_schema 'Bad-Schema' is not a plain lower-case identifier",
         settings={"tracking_schema": "Bad-Schema"}),
    Case("bad-stream", r"stream 'Project One' must be 1-63 characters", settings={"stream": "Project One"}),
    Case("bad-lock-timeout", r"invalid lock_timeout 'soon': invalid value for parameter \"lock_timeout\"",
         settings={"lock_timeout": "soon"}),
    Case("bad-statement-timeout", r"invalid statement_timeout '5 parsecs'", settings={"statement_timeout": "5 parsecs"}),
    Case("negative-lock-wait", r"lock_wait_timeout must be >= 0", settings={"lock_wait_timeout": -1}),
    Case("negative-retries", r"retries must be >= 0", settings={"retries": -1}),
    Case("sql-error-first-migration", r"001_a\.sql failed at line 2: relation \"nope\" does not exist .*rolled back",
         {"001_a.sql": "CREATE TABLE a (id int);\nINSERT INTO nope VALUES (1);\n"}),
    Case("sql-error-after-applied", r"003_c\.sql failed: division by zero \[SQLSTATE 22012\]; the migration was rolled back", {"003_c.sql": "SELECT 1/0;"},
         setup=[("apply", 2)]),
    Case("statement-timeout-hit", r"003_c\.sql failed.*canceling statement due to statement timeout",
         {"003_c.sql": "CREATE TABLE c ();\nSELECT pg_sleep(3);"}, setup=[("apply", 2)], settings={"statement_timeout": "100ms"}),
    Case("rollback-sql-fails", r"recorded rollback of 002_b failed.*table \"b\" does not exist",
         setup=[("apply", None), ("sql", "DROP TABLE b")], action="rollback", target=1),
]


def run_case(runner, case):
    settings = dict(case.settings)
    directory = settings.pop("migrations_dir", None)
    return runner.run(case.action, case.target, directory=directory, **settings)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_and_changes_nothing(runner, case):
    files = dict(GOOD)
    files.update(case.files)
    write_files(runner.directory, {name: text for name, text in files.items() if text is not None})
    for action, target in case.setup:
        if action == "sql":
            with runner.db.connect() as conn:
                conn.execute(target)
        else:
            runner.run(action, target)
    write_files(runner.directory, case.change)
    before = runner.snapshot()
    with pytest.raises(case.kind) as info:
        run_case(runner, case)
    assert re.search(case.error, str(info.value)), str(info.value)
    assert runner.snapshot() == before
    with runner.db.connect() as conn:  # nothing left locked
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0


def test_case_count_meets_the_bar():
    assert len(CASES) >= 30


def test_lock_held_is_refused_naming_holder_and_changes_nothing(runner):
    write_files(runner.directory, GOOD)
    holder = runner.connection(application_name="other_deploy")
    holder.execute("SELECT pg_advisory_lock(%s)", (m.lock_key("poststack"),))
    before = runner.snapshot()
    with pytest.raises(m.LockTimeout, match=r"held by pid %d \(application_name 'other_deploy'" % holder.info.backend_pid):
        runner.run(lock_wait_timeout=0)
    with pytest.raises(m.MigrationError, match="terminate_holder=true"):
        runner.engine().unlock(False)
    assert runner.snapshot() == before
    assert holder.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("overrides, error", [
    ({"password": "wrong-password"}, r"password authentication failed"),
    ({"dbname": "no_such_db"}, r'database "no_such_db" does not exist'),
    ({"port": 1}, r"cannot connect to .*port=1"),
])
def test_connection_errors_are_clear_and_masked(runner, overrides, error):
    settings = ConnectionSettings(dsn=runner.db.dsn, password=runner.db.server.password, connect_timeout=3)
    for key, value in overrides.items():
        setattr(settings, key, value)
    with pytest.raises(ConnectionSettingsError) as info:
        connect(settings)
    assert re.search(error, str(info.value)), str(info.value)
    assert runner.db.server.password not in str(info.value)
    assert "wrong-password" not in str(info.value)
    assert "password=********" in str(info.value)


def test_failed_verify_reports_and_changes_nothing(runner):
    write_files(runner.directory, dict(GOOD, **{"002_b.verify.sql": "SELECT missing_column FROM b;"}))
    runner.run()
    before = runner.snapshot()
    report = runner.engine().verify()
    assert not report["ok"] and 'column "missing_column" does not exist' in report["verify_scripts"][0]["error"]
    assert runner.snapshot() == before
