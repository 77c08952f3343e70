"""Migration sets as real projects write them, against a real PostgreSQL: files that wrap themselves in
BEGIN/COMMIT, every bad file named in one run, a clean session for each migration, and a playbook killed with
SIGKILL in the middle of a run."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from migration_helpers import ROOT, write_files
from ansible_collections.poststack.core.plugins.module_utils.database import ConnectionSettings, connect
from ansible_collections.poststack.core.plugins.module_utils import migrations as m

WRAPPERS = [("BEGIN;", "COMMIT;"), ("begin transaction;", "end;"), ("START TRANSACTION;", "COMMIT WORK;"),
            ("BEGIN WORK;", "END TRANSACTION;")]


def wrapped_set():
    """20 up/down pairs; 16 wrap themselves in BEGIN/COMMIT (four spellings), some use savepoints, PL/pgSQL
    BEGIN ... END blocks and strings that say COMMIT."""
    files, wrapped = {}, 0
    for version in range(1, 21):
        name = "%03d_t%d" % (version, version)
        up = ("CREATE TABLE t%d (id bigint PRIMARY KEY, note text DEFAULT 'BEGIN; COMMIT;');\n"
              "COMMENT ON TABLE t%d IS 'version %d';\n" % (version, version, version))
        if version % 5 == 0:
            up += ("DO $$ BEGIN\n  INSERT INTO t%d (id) VALUES (1);\nEND $$;\n"
                   "SAVEPOINT before_risky;\nINSERT INTO t%d (id) VALUES (2);\nROLLBACK TO SAVEPOINT before_risky;\n"
                   "RELEASE SAVEPOINT before_risky;\n" % (version, version))
        down = "DROP TABLE t%d;\n" % version
        if version % 5 != 4:  # 16 of 20 wrapped
            begin, commit = WRAPPERS[version % len(WRAPPERS)]
            up = "-- +migrate Up\n%s\n%s%s\n" % (begin, up, commit)
            down = "%s\n%s%s\n" % (begin, down, commit)
            wrapped += 1
        files[name + ".sql"] = up
        files[name + ".rollback.sql"] = down
    assert wrapped == 16
    return files


def psql_apply(server, dbname, directory, names):
    for name in names:
        subprocess.run([os.path.join(server.bin_dir, "psql"), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1",
                        "-d", server.dsn(dbname), "-f", os.path.join(directory, name)],
                       env=server.env, check=True, capture_output=True, text=True)


def test_a_set_whose_files_wrap_themselves_in_begin_commit_applies_rolls_back_and_matches_psql(
        runner, pg_database, pg_server):
    files = wrapped_set()
    write_files(runner.directory, files)
    first = runner.run()
    assert first.done == list(range(1, 21))
    with pg_database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM t5").fetchone() == (1,), "the savepoint rolled back row 2 only"
    # The same files through psql -1, the floor users compare with: the same schema.
    other = pg_server.create_database()
    try:
        psql_apply(pg_server, other, runner.directory, sorted(name for name in files if not name.endswith("rollback.sql")))
        assert pg_database.schema_dump("-N", "poststack") == pg_server.schema_dump(other)
    finally:
        pg_server.drop_database(other)
    assert runner.run("rollback", 0).done == list(range(20, 0, -1))
    with pg_database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    assert runner.run().done == list(range(1, 21))


def test_every_offending_file_is_named_in_one_run_and_nothing_runs(runner, pg_database):
    write_files(runner.directory, {
        "001_ok.sql": "BEGIN;\nCREATE TABLE ok ();\nCOMMIT;\n",
        "002_two_transactions.sql": "BEGIN;\nCREATE TABLE a ();\nCOMMIT;\nBEGIN;\nCREATE TABLE b ();\nCOMMIT;\n",
        "003_isolation.sql": "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE c ();\nCOMMIT;\n",
        "004_cic.sql": "CREATE INDEX CONCURRENTLY ok_idx ON ok ((1));\n",
        "005_ok.sql": "CREATE TABLE ok5 ();\n",
        "006_meta.sql": "\\i other.sql\n",
    })
    before = pg_database.dump()
    with pytest.raises(m.DiscoveryError) as caught:
        runner.run()
    message = str(caught.value)
    assert message.startswith("invalid SQL, nothing was run: ")
    for fragment in ("002_two_transactions.sql line 3: 'COMMIT' controls the transaction",
                     "003_isolation.sql line 1: 'BEGIN ISOLATION LEVEL SERIALIZABLE' sets transaction modes",
                     "004_cic.sql line 1: 'CREATE INDEX CONCURRENTLY",
                     "006_meta.sql line 1: psql meta-command '\\\\i'"):
        assert fragment in message, message
    assert len(caught.value.details["problems"]) == 5  # 002 twice (line 3 COMMIT, line 4 BEGIN)
    assert pg_database.dump() == before


# The role 001 switches to is a superuser: the history row of 001 is written in its transaction, after its SET ROLE.
ISOLATION = {
    "001_other.sql": "CREATE SCHEMA other;\nSET search_path = other;\nCREATE TABLE a (id int);\n"
                     "CREATE TEMP TABLE scratch (id int);\nCREATE ROLE {role} SUPERUSER;\n"
                     "SET ROLE {role};\nLISTEN somewhere;\n",
    "002_public.sql": "CREATE TABLE b (owner text DEFAULT current_user);\nINSERT INTO b DEFAULT VALUES;\n"
                      "CREATE TEMP TABLE scratch (id int);\n",
    "003_no_transaction.sql": "-- poststack:no-transaction\nCREATE TABLE c (path text DEFAULT current_setting('search_path'));\n"
                              "INSERT INTO c DEFAULT VALUES;\nSET search_path = other;\n",
    "004_after.sql": "CREATE TABLE d (id int);\n",
}


@pytest.mark.parametrize("together", [True, False], ids=["one-run", "one-run-each"])
def test_each_migration_starts_from_a_clean_session(runner, pg_database, together):
    role = "isolation_%s" % pg_database.name.replace("-", "_")[-20:]
    write_files(runner.directory, {name: text.replace("{role}", role) for name, text in ISOLATION.items()})
    try:
        if together:
            assert runner.run().done == [1, 2, 3, 4]
        else:
            for version in (1, 2, 3, 4):
                assert runner.run(target=version).done == [version]
        with pg_database.connect() as conn:
            where = dict(conn.execute("SELECT tablename, schemaname FROM pg_tables WHERE tablename IN "
                                      "('a', 'b', 'c', 'd')").fetchall())
            assert where == {"a": "other", "b": "public", "c": "public", "d": "public"}
            user = conn.execute("SELECT current_user").fetchone()[0]
            assert conn.execute("SELECT owner FROM b").fetchone() == (user,), "SET ROLE reached the next migration"
            assert conn.execute("SELECT path FROM c").fetchone() == ('"$user", public',)
    finally:
        with pg_database.connect() as conn:
            conn.execute("DROP SCHEMA IF EXISTS other CASCADE")
            conn.execute("DROP OWNED BY %s" % role)
            conn.execute("DROP ROLE %s" % role)


def playbook_args(db, tmp_path, directory, **extra):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    variables = {"migrations_db_host": db.server.host, "migrations_db_port": db.server.port,
                 "migrations_db_name": db.name, "migrations_db_user": db.server.user,
                 "migrations_path": directory, "migrations_log_file": str(tmp_path / "migrations.log"), **extra}
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    return [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
            "-e", "@%s" % (tmp_path / "vars.json"), "playbooks/migrate.yml"]


def recorded(db):
    with db.connect() as conn:
        if conn.execute("SELECT to_regclass('poststack.schema_migrations')").fetchone()[0] is None:
            return []
        return [row[0] for row in conn.execute(
            "SELECT version FROM poststack.schema_migrations WHERE stream = 'project' ORDER BY version")]


# Both ways the module's work runs: in Ansible's worker (a local target with the controller's Python, the default)
# and in a module process of its own.
@pytest.mark.parametrize("in_process", [True, False], ids=["in-worker", "module-process"])
def test_a_playbook_killed_mid_run_stops_its_module_between_two_migrations(pg_database, tmp_path, in_process):
    directory = str(tmp_path / "migrations")
    write_files(directory, {"%03d_slow.sql" % version: "SELECT pg_sleep(1.5);\nCREATE TABLE slow%d ();\n" % version
                            for version in range(1, 11)})
    env = dict(pg_database.env, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    proc = subprocess.Popen(playbook_args(pg_database, tmp_path, directory, poststack_in_process=in_process), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(recorded(pg_database)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not get to its second migration"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)  # ansible-playbook's main process only: its worker and module go on
        at_kill = len(recorded(pg_database))
        log_file, log = str(tmp_path / "migrations.log"), ""
        deadline = time.monotonic() + 20
        while not ("FAILED" in log and "lock released" in log.rsplit("FAILED", 1)[1]) and time.monotonic() < deadline:
            time.sleep(0.2)
            with open(log_file, encoding="utf-8") as handle:
                log = handle.read()
        done = recorded(pg_database)
        assert "stopped before %03d_slow: ansible process" % (len(done) + 1) in log, log[-2000:]
        assert at_kill <= len(done) <= at_kill + 1, "it ran on: %d recorded at the kill, %d after" % (at_kill, len(done))
        assert done == list(range(1, len(done) + 1))
        time.sleep(2)  # longer than a migration: nothing more comes
        assert recorded(pg_database) == done
        with pg_database.connect() as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'slow%'").fetchone()[0]
            assert tables == len(done), "a migration ran without being recorded, or the other way round"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # The lock went with the module's session: the next run goes on where it stopped.
    rerun = subprocess.run(playbook_args(pg_database, tmp_path, directory), cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=240, check=False)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert recorded(pg_database) == list(range(1, 11))


# One logical set, written in each layout: (up, down) per version; 3 wraps itself, 4 needs no transaction.
LOGICAL = {
    1: ("CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n", "DROP TABLE accounts;\n"),
    2: ("ALTER TABLE accounts ADD COLUMN created timestamptz DEFAULT now();\n",
        "ALTER TABLE accounts DROP COLUMN created;\n"),
    3: ("BEGIN;\nCREATE TABLE orders (id bigint PRIMARY KEY, account bigint REFERENCES accounts);\n"
        "INSERT INTO accounts (id, email) VALUES (1, 'a@example.org');\nCOMMIT;\n", "DROP TABLE orders;\n"),
    4: (None, None),  # filled per layout: CREATE INDEX CONCURRENTLY, without a transaction
    20230102150405: ("CREATE VIEW account_orders AS SELECT a.email, o.id FROM accounts a JOIN orders o ON o.account = a.id;\n",
                     "DROP VIEW account_orders;\n"),
}
CIC_UP, CIC_DOWN = "CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n", "DROP INDEX accounts_email;\n"


def layout_files(layout):
    files = {}
    for version, (up, down) in LOGICAL.items():
        name = "%03d_step%d" % (version, version % 100)
        if layout == "poststack":
            marker = "-- poststack:no-transaction\n" if up is None else ""
            files[name + ".sql"], files[name + ".rollback.sql"] = marker + (up or CIC_UP), down or CIC_DOWN
        elif layout == "golang-migrate":
            marker = "-- poststack:no-transaction\n" if up is None else ""
            files[name + ".up.sql"], files[name + ".down.sql"] = marker + (up or CIC_UP), down or CIC_DOWN
        elif layout == "flyway":
            marker = "-- poststack:no-transaction\n" if up is None else ""
            described = "%d__step%d.sql" % (version, version % 100)
            files["V" + described], files["U" + described] = marker + (up or CIC_UP), down or CIC_DOWN
        elif layout == "sqitch":  # the plan's order is the version order; BEGIN/COMMIT as Sqitch's templates
            marker = "-- poststack:no-transaction\n" if up is None else ""
            change = "step%d" % (version % 100)
            wrapped = up if up is None or up.startswith("BEGIN") else "BEGIN;\n%sCOMMIT;\n" % up
            files["deploy/%s.sql" % change] = marker + (wrapped or CIC_UP)
            files["revert/%s.sql" % change] = marker + (("BEGIN;\n%sCOMMIT;\n" % down) if down else CIC_DOWN)
            files["verify/%s.sql" % change] = "-- Verify %s\nBEGIN;\nSELECT 1;\nROLLBACK;\n" % change
            plan = files.get("sqitch.plan", "%syntax-version=1.0.0\n%project=shop\n\n")
            files["sqitch.plan"] = plan + "%s 2024-01-0%dT00:00:00Z Ann <ann@example.org> # step\n" % (
                change, len(plan.splitlines()) % 9 + 1)
        else:
            option = " transaction:false" if up is None else ""
            files[name + ".sql"] = "-- migrate:up%s\n%s\n-- migrate:down\n%s" % (option, up or CIC_UP, down or CIC_DOWN)
    return files


@pytest.mark.parametrize("layout", ["poststack", "golang-migrate", "dbmate", "flyway", "sqitch"])
def test_each_layout_is_read_in_place_and_round_trips_to_psqls_schema(runner, pg_database, pg_server, layout, tmp_path):
    write_files(runner.directory, layout_files(layout))
    # Sqitch numbers its changes by their place in the plan
    versions = list(range(1, len(LOGICAL) + 1)) if layout == "sqitch" else sorted(LOGICAL)
    assert runner.run(layout=layout).done == versions
    with pg_database.connect() as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email'::regclass").fetchone() == (True,)
    if layout == "sqitch":  # its verify scripts, BEGIN ... ROLLBACK as Sqitch writes them, pass
        report = runner.engine(layout=layout).verify()
        expected = ["step%d.sql" % (v % 100) for v in sorted(LOGICAL)]
        assert report["ok"] and [r["file"] for r in report["verify_scripts"]] == expected
    applied = pg_database.schema_dump("-N", "poststack")
    other = pg_server.create_database()
    try:
        ups = tmp_path / "psql"
        write_files(ups, {"%020d.sql" % version: up or CIC_UP for version, (up, _down) in LOGICAL.items()})
        for version in sorted(LOGICAL):  # psql -1 cannot run CREATE INDEX CONCURRENTLY: that one without -1
            path = str(ups / ("%020d.sql" % version))
            subprocess.run([os.path.join(pg_server.bin_dir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
                           + ([] if LOGICAL[version][0] is None else ["-1"]) + ["-d", pg_server.dsn(other), "-f", path],
                           env=pg_server.env, check=True, capture_output=True, text=True)
        assert applied == pg_server.schema_dump(other)
    finally:
        pg_server.drop_database(other)
    assert runner.run("rollback", 0, layout=layout).done == versions[::-1]
    with pg_database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone() == (0,)
    assert runner.run(layout=layout).done == versions
    assert pg_database.schema_dump("-N", "poststack") == applied


def test_the_role_reads_a_golang_migrate_set_in_place(pg_database, tmp_path):
    directory = write_files(str(tmp_path / "migrations"), layout_files("golang-migrate"))
    base = playbook_args(pg_database, tmp_path, directory)
    env = dict(pg_database.env, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    for playbook, extra in (("playbooks/migrate.yml", "golang-migrate"), ("playbooks/migrate.yml", "golang-migrate"),
                            ("playbooks/migration-status.yml", "golang-migrate"), ("playbooks/migrate.yml", "dbmate")):
        proc = subprocess.run(base[:-1] + ["-e", "migrations_format=" + extra, playbook], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=240, check=False)
        if extra == "dbmate":  # the files are not dbmate's: refused, naming them, nothing changed
            assert proc.returncode != 0 and "001_step1.up.sql: is not a dbmate name (format dbmate)" in \
                " ".join(proc.stdout.split()), proc.stdout[-3000:]
        else:
            assert proc.returncode == 0, proc.stdout[-3000:]
    assert recorded(pg_database) == sorted(LOGICAL)


def test_the_lint_warns_in_check_mode_refuses_with_error_and_changes_nothing(pg_database, tmp_path):
    directory = write_files(str(tmp_path / "migrations"), {
        "001_users.sql": "CREATE TABLE users (id int, email text);\nCREATE INDEX users_id ON users (id);\n",
    })
    base = playbook_args(pg_database, tmp_path, directory)
    env = dict(pg_database.env, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")

    def run(*args):
        return subprocess.run(base[:-1] + list(args) + [base[-1]], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=240, check=False)

    first = run("-e", "migrations_lint=error")  # a new table: nothing to say
    assert first.returncode == 0 and "[WARNING]" not in first.stdout + first.stderr, first.stdout[-3000:]
    write_files(directory, {"002_email.sql": "CREATE INDEX users_email ON users (email);\n"
                                             "ALTER TABLE users ALTER COLUMN id TYPE bigint;\n"})
    before = pg_database.dump()
    checked = run("--check")
    assert checked.returncode == 0, checked.stdout[-3000:]
    warnings = " ".join((checked.stdout + checked.stderr).split())
    assert "002_email.sql line 1 [require-concurrent-index-creation]" in warnings, warnings[-3000:]
    assert "002_email.sql line 2 [changing-column-type]" in warnings
    refused = run("-e", "migrations_lint=error")
    out = " ".join(refused.stdout.split())
    assert refused.returncode != 0 and "unsafe DDL (lint=error), nothing was run:" in out, out[-3000:]
    assert "002_email.sql line 2: ALTER TABLE users ALTER COLUMN id TYPE bigint [changing-column-type]" in out
    assert pg_database.dump() == before
    assert run("-e", "migrations_lint=off").returncode == 0
    assert recorded(pg_database) == [1, 2]


FOREIGN = {  # each tool's own history table, as it leaves it after applying versions 1 and 2 of LOGICAL_SMALL
    "golang-migrate": "CREATE TABLE public.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);\n"
                      "INSERT INTO public.schema_migrations VALUES (2, false);\n",
    "dbmate": "CREATE TABLE public.schema_migrations (version varchar(128) PRIMARY KEY);\n"
              "INSERT INTO public.schema_migrations VALUES ('1'), ('2');\n",
    "flyway": "CREATE TABLE public.flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50),"
              " description varchar(200), type varchar(20), script varchar(1000), checksum int, installed_by varchar(100),"
              " installed_on timestamp DEFAULT now(), execution_time int, success boolean);\n"
              "INSERT INTO public.flyway_schema_history (installed_rank, version, type, script, success) VALUES"
              " (1, '1', 'SQL', 'V1__accounts.sql', true), (2, '2', 'SQL', 'V2__created.sql', true),"
              " (3, '3', 'SQL', 'V3__orders.sql', true), (4, '3', 'UNDO_SQL', 'U3__orders.sql', true);\n",
}


@pytest.mark.parametrize("tool", sorted(FOREIGN))
def test_a_database_another_tool_migrated_is_adopted_from_its_history(runner, pg_database, tool):
    # each tool's own files, as they are (golang-migrate's, dbmate's with its markers, Flyway's V/U)
    layout = {"golang-migrate": "golang-migrate", "dbmate": "dbmate", "flyway": "flyway"}[tool]
    files = {name: text for name, text in layout_files(layout).items()
             if name.lstrip("VU").startswith(("001_", "002_", "003_", "1__", "2__", "3__"))}
    assert len(files) == (3 if tool == "dbmate" else 6), sorted(files)
    write_files(runner.directory, files)
    with pg_database.connect() as conn:  # what the other tool did: versions 1 and 2, and its history
        conn.execute(LOGICAL[1][0] + LOGICAL[2][0] + FOREIGN[tool])
    before = pg_database.dump()
    dry = runner.run("baseline", dry_run=True, baseline_from=tool)
    assert dry.plan.versions == [1, 2] and pg_database.dump() == before
    result = runner.run("baseline", baseline_from=tool)
    assert result.done == [1, 2] and result.after_version == 2
    with pg_database.connect() as conn:
        rows = conn.execute("SELECT version, baselined FROM poststack.schema_migrations ORDER BY version").fetchall()
        assert rows == [(1, True), (2, True)]
    assert runner.run("baseline", baseline_from=tool).done == []  # once
    assert runner.run().done == [3]


def sqitch(pg_database, directory, *args):
    """The real Sqitch (Debian's; scripts/bootstrap.sh --for-tests installs it) against the test database."""
    program = shutil.which("sqitch")
    assert program, "sqitch is not installed: scripts/bootstrap.sh --for-tests installs it (apt-get install sqitch libdbd-pg-perl)"
    server = pg_database.server
    env = dict(pg_database.env, SQITCH_FULLNAME="Ann Planner", SQITCH_EMAIL="ann@example.org",
               SQITCH_PASSWORD=server.password, HOME=str(directory))
    target = "db:pg://%s@%s:%d/%s" % (server.user, server.host, server.port, pg_database.name)
    proc = subprocess.run([program, *args, target], cwd=str(directory), env=env, capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_a_database_sqitch_deployed_is_adopted_from_its_registry(runner, pg_database, tmp_path):
    """Sqitch itself deploys the first two changes of a project and those of another project into the same registry;
    the registry is adopted for the plan's project (its change N is version N), the rest is applied by poststack."""
    write_files(runner.directory, layout_files("sqitch"))
    sqitch(pg_database, runner.directory, "deploy", "--to", "step2")
    other = tmp_path / "blog"  # another project's change in the same registry (sqitch.changes)
    write_files(other, {"sqitch.plan": "%syntax-version=1.0.0\n%project=blog\n\n"
                                       "posts 2024-02-01T00:00:00Z Bob <bob@example.org> # posts\n",
                        "deploy/posts.sql": "BEGIN;\nCREATE TABLE posts (id int);\nCOMMIT;\n",
                        "revert/posts.sql": "BEGIN;\nDROP TABLE posts;\nCOMMIT;\n"})
    sqitch(pg_database, other, "deploy")
    before = pg_database.dump()
    dry = runner.run("baseline", dry_run=True, baseline_from="sqitch")
    assert dry.plan.versions == [1, 2] and pg_database.dump() == before
    result = runner.run("baseline", baseline_from="sqitch")
    assert result.done == [1, 2] and result.after_version == 2
    with pg_database.connect() as conn:
        rows = conn.execute("SELECT version, name, baselined FROM poststack.schema_migrations ORDER BY version").fetchall()
        assert rows == [(1, "step1", True), (2, "step2", True)]
        assert conn.execute("SELECT count(*) FROM sqitch.changes").fetchone() == (3,)  # only read
    assert runner.run("baseline", baseline_from="sqitch").done == []  # once
    assert runner.run().done == [3, 4, 5]

    # a change Sqitch deployed that the plan no longer has: refused, nothing recorded
    with pg_database.connect() as conn:
        conn.execute("DELETE FROM poststack.schema_migrations")
    with open(os.path.join(runner.directory, "sqitch.plan"), encoding="utf-8") as handle:
        plan = handle.read().replace("step2 ", "step2_renamed ")
    write_files(runner.directory, {"sqitch.plan": plan, "deploy/step2_renamed.sql": "SELECT 1;\n"})
    with pytest.raises(m.PlanError, match="deployed change step2, which the migrations do not have"):
        runner.run("baseline", baseline_from="sqitch")
    with pg_database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM poststack.schema_migrations").fetchone() == (0,)


def test_adopting_a_dirty_or_unknown_history_changes_nothing(runner, pg_database):
    write_files(runner.directory, {name: text for name, text in layout_files("poststack").items()
                                   if name.startswith(("001_", "002_"))})
    with pg_database.connect() as conn:
        conn.execute(FOREIGN["golang-migrate"].replace("(2, false)", "(2, true)"))
    before = pg_database.dump()
    with pytest.raises(m.PlanError, match="golang-migrate's history is dirty at version 2"):
        runner.run("baseline", baseline_from="golang-migrate")
    with pytest.raises(m.PlanError, match="flyway's history table public.flyway_schema_history does not exist"):
        runner.run("baseline", baseline_from="flyway")
    with pytest.raises(m.PlanError, match="does not look like dbmate's history table"):
        runner.run("baseline", baseline_from="dbmate", baseline_table="pg_catalog.pg_class")
    with pytest.raises(m.PlanError, match=r"public.schema_migrations does not look like dbmate's history table "
                                          r"\(columns version, without dirty; it has dirty, version\)"):
        runner.run("baseline", baseline_from="dbmate")  # golang-migrate's table, at dbmate's default place
    runner.run(target=1)  # poststack's own history exists now
    before = pg_database.dump()
    with pytest.raises(m.PlanError, match="poststack.schema_migrations is poststack's own history table"):
        runner.run("baseline", baseline_from="dbmate", baseline_table="poststack.schema_migrations")
    assert pg_database.dump() == before
    assert pg_database.dump() == before


def test_a_role_the_login_gets_by_default_stays_for_every_migration_of_a_run(runner, pg_database):
    """ALTER ... SET role: the session's role from the start. The clean session of each migration keeps it (RESET
    SESSION AUTHORIZATION alone would make the login user current again)."""
    owner = "owner_%s" % pg_database.name[-12:]
    write_files(runner.directory, {"001_a.sql": "CREATE TABLE a (id int);\n", "002_b.sql": "CREATE TABLE b (id int);\n",
                                   "003_c.sql": "SET ROLE NONE;\nCREATE TABLE c (id int);\n", "004_d.sql": "CREATE TABLE d ();\n"})
    with pg_database.connect() as conn:
        conn.execute("CREATE ROLE %s NOLOGIN" % owner)
        conn.execute("GRANT ALL ON DATABASE %s TO %s" % (pg_database.name, owner))
        conn.execute("GRANT ALL ON SCHEMA public TO %s" % owner)
        conn.execute("ALTER DATABASE %s SET role = %s" % (pg_database.name, owner))
    try:
        assert runner.run().done == [1, 2, 3, 4]
        with pg_database.connect() as conn:
            owners = dict(conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall())
            login = conn.execute("SELECT session_user").fetchone()[0]
        assert owners == {"a": owner, "b": owner, "c": login, "d": owner}, owners
    finally:
        with pg_database.connect() as conn:
            conn.execute("SET ROLE NONE")  # this connection got the database's role too
            conn.execute("ALTER DATABASE %s RESET role" % pg_database.name)
            conn.execute("DROP OWNED BY %s" % owner)
            conn.execute("DROP ROLE %s" % owner)


def test_the_format_and_the_lint_come_from_the_projects_settings(pg_database, tmp_path):
    """POSTSTACK_MIGRATIONS_FORMAT and POSTSTACK_MIGRATIONS_LINT, as a seed 003 user sets them in .env."""
    directory = write_files(str(tmp_path / "migrations"), {"001_t.sql": "CREATE TABLE t (id int);\n"})
    base = playbook_args(pg_database, tmp_path, directory)
    env = dict(pg_database.env, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               POSTSTACK_MIGRATIONS_FORMAT="golang-migrate")
    refused = subprocess.run(base, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert refused.returncode != 0 and "001_t.sql: is not a golang-migrate name" in " ".join(refused.stdout.split())
    env.update(POSTSTACK_MIGRATIONS_FORMAT="auto", POSTSTACK_MIGRATIONS_LINT="error")
    assert subprocess.run(base, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
                          check=False).returncode == 0
    write_files(directory, {"002_i.sql": "CREATE INDEX t_id ON t (id);\n"})
    refused = subprocess.run(base, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert refused.returncode != 0 and "unsafe DDL (lint=error)" in " ".join(refused.stdout.split())
    assert recorded(pg_database) == [1]


def test_a_login_named_like_the_tracking_schema_creates_in_public(pg_database, tmp_path):
    """Seed 003's login poststack with the tracking schema poststack: "$user" first in the default search_path put
    a project's unqualified tables into the tracking schema. They go to public now; a table a project made there
    before is still found by its plain name, and the core stream (which qualifies its names) is left as it was."""
    password = "pw-" + pg_database.name
    with pg_database.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'poststack'").fetchone():
            conn.execute("CREATE ROLE poststack LOGIN")
        conn.execute("ALTER ROLE poststack PASSWORD '%s'" % password)
        conn.execute('GRANT ALL ON DATABASE "%s" TO poststack' % pg_database.name)
        conn.execute("GRANT CREATE ON SCHEMA public TO poststack")
        conn.execute("CREATE SCHEMA poststack AUTHORIZATION poststack")
        conn.execute("CREATE TABLE poststack.legacy (id int)")  # made by an earlier run, before the fix
        conn.execute("ALTER TABLE poststack.legacy OWNER TO poststack")
    directory = write_files(tmp_path / "m", {"001_items.sql": "CREATE TABLE items (id int);\n",
                                             "002_legacy.sql": "ALTER TABLE legacy ADD COLUMN note text;\n"
                                                               "CREATE TABLE more (id int);\n"})
    settings = ConnectionSettings(dsn=pg_database.dsn, user="poststack", password=password,
                                  application_name="poststack_test")
    with connect(settings) as conn:
        assert m.Engine(conn, m.Settings(directory, lock_wait_timeout=5)).run("apply").done == [1, 2]
        assert conn.execute("SELECT current_setting('search_path')").fetchone() == ('public, "$user"',)
    with pg_database.connect() as conn:
        where = dict(conn.execute("SELECT tablename, schemaname FROM pg_tables WHERE tablename IN "
                                  "('items', 'more', 'legacy')").fetchall())
        assert where == {"items": "public", "more": "public", "legacy": "poststack"}
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'poststack' "
                            "AND table_name = 'legacy' AND column_name = 'note'").fetchone() == (1,)
        conn.execute("DROP SCHEMA poststack CASCADE")
        conn.execute("DROP TABLE public.items, public.more")
        conn.execute('REVOKE ALL ON DATABASE "%s" FROM poststack' % pg_database.name)
        conn.execute("REVOKE CREATE ON SCHEMA public FROM poststack")
