"""Flyway's repeatable migrations (R__description.sql) against a real PostgreSQL: applied after the versioned ones
of a run to the end, again when edited, never by a run to a target version or a rollback; a failing one keeps the
versioned steps before it; a dry run runs them and keeps nothing."""
import os

import pytest

from migration_helpers import write_files
from ansible_collections.poststack.core.plugins.module_utils import migrations as m

SET = {
    "V1__accounts.sql": "CREATE TABLE accounts (id int PRIMARY KEY, email text);\n",
    "U1__accounts.sql": "DROP TABLE accounts;\n",
    "V2__orders.sql": "CREATE TABLE orders (id int PRIMARY KEY);\n",
    "U2__orders.sql": "DROP TABLE orders;\n",
    "R__account_view.sql": "CREATE OR REPLACE VIEW account_emails AS SELECT email FROM accounts;\n",
    # after the view (descriptions in order), without a transaction
    "R__grants.sql": "-- poststack:no-transaction\nGRANT SELECT ON account_emails TO PUBLIC;\n",
}


def recorded(db):
    with db.connect() as conn:
        if conn.execute("SELECT to_regclass('poststack.schema_repeatables')").fetchone() == (None,):
            return []  # made by the first repeatable that is applied
        return conn.execute("SELECT name, execution_ms >= 0 FROM poststack.schema_repeatables WHERE stream = 'project' "
                            "ORDER BY name").fetchall()


def view_columns(db):
    with db.connect() as conn:
        return [row[0] for row in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'account_emails'::regclass AND attnum > 0 ORDER BY attnum")]


def states(runner):
    return [(r["name"], r["state"]) for r in runner.engine().status().repeatables]


def test_applied_after_the_versioned_ones_and_again_when_edited(runner, pg_database):
    write_files(runner.directory, SET)
    assert states(runner) == [("account_view", "pending"), ("grants", "pending")]
    first = runner.run()
    assert first.changed and first.done == [1, 2] and first.repeated == ["account_view", "grants"]
    assert [(s.name, s.reason) for s in first.plan.repeatables] == [("account_view", "new"), ("grants", "new")]
    assert recorded(pg_database) == [("account_view", True), ("grants", True)] and view_columns(pg_database) == ["email"]
    with pg_database.connect() as conn:
        assert conn.execute("SELECT has_table_privilege('public', 'account_emails', 'SELECT')").fetchone() == (True,)
    again = runner.run()
    assert not again.changed and again.done == [] and again.repeated == []

    write_files(runner.directory, {"R__account_view.sql": "CREATE OR REPLACE VIEW account_emails AS SELECT email, id "
                                                          "FROM accounts;\n"})
    assert states(runner) == [("account_view", "changed"), ("grants", "applied")]
    # a run to a target version leaves them for the run to the end
    assert not runner.run(target=2).changed and view_columns(pg_database) == ["email"]
    edited = runner.run()
    assert edited.changed and edited.done == [] and edited.repeated == ["account_view"]
    assert edited.plan.repeatables[0].reason == "changed" and view_columns(pg_database) == ["email", "id"]
    assert states(runner) == [("account_view", "applied"), ("grants", "applied")]

    # a rollback of the versioned ones leaves them (they have none)
    rolled = runner.run("rollback", 1)
    assert rolled.done == [2] and rolled.repeated == [] and recorded(pg_database) == [("account_view", True), ("grants", True)]
    os.unlink(os.path.join(runner.directory, "R__grants.sql"))
    assert states(runner) == [("account_view", "applied"), ("grants", "missing")]


def test_a_failing_one_keeps_the_versioned_steps_and_is_named(runner, pg_database):
    write_files(runner.directory, {"V1__accounts.sql": SET["V1__accounts.sql"],
                                   "R__report.sql": "CREATE VIEW report AS SELECT * FROM nowhere;\n"})
    with pytest.raises(m.ExecutionError) as failed:
        runner.run()
    assert "R__report.sql failed" in str(failed.value) and 'relation "nowhere" does not exist' in str(failed.value)
    details = failed.value.details
    assert details["done"] == [1] and details["failed_repeatable"] == "report" and details["current_version"] == 1
    assert details["failed_version"] is None and details["changed"] is True
    with pg_database.connect() as conn:
        assert conn.execute("SELECT to_regclass('report')").fetchone() == (None,)
    assert recorded(pg_database) == []
    write_files(runner.directory, {"R__report.sql": "CREATE OR REPLACE VIEW report AS SELECT * FROM accounts;\n"})
    fixed = runner.run()
    assert fixed.done == [] and fixed.repeated == ["report"]


def test_a_dry_run_runs_them_and_keeps_nothing(runner, pg_database):
    write_files(runner.directory, {name: SET[name] for name in ("V1__accounts.sql", "R__account_view.sql")})
    before = pg_database.dump()
    dry = runner.run(dry_run=True)
    assert dry.done == [1] and dry.repeated == ["account_view"] and pg_database.dump() == before
    write_files(runner.directory, {"R__account_view.sql": "CREATE VIEW account_emails AS SELECT nothing FROM accounts;\n"})
    with pytest.raises(m.ExecutionError, match="dry run: R__account_view.sql failed.*nothing was changed"):
        runner.run(dry_run=True)
    assert pg_database.dump() == before
