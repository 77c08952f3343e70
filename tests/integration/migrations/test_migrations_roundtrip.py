"""Round trips: for every migration of each set, up -> down -> up leaves pg_dump --schema-only identical."""
import os

import pytest

from migration_helpers import ROOT, write_files
from ansible_collections.poststack.core.plugins.module_utils import migrations as m

RICH = {
    "001_types.sql": "CREATE TYPE mood AS ENUM ('ok', 'meh');\nCREATE DOMAIN positive AS int CHECK (VALUE > 0);\n",
    "001_types.rollback.sql": "DROP DOMAIN positive;\nDROP TYPE mood;\n",
    "002_tables.sql": ("CREATE TABLE people (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL,"
                       " mood mood DEFAULT 'ok', age positive);\n"
                       "CREATE TABLE pets (id serial PRIMARY KEY, owner bigint REFERENCES people (id) ON DELETE CASCADE);\n"),
    "002_tables.rollback.sql": "DROP TABLE pets;\nDROP TABLE people;\n",
    "003_function_trigger.sql": (
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.name := trim(NEW.name);\n"
        "  RETURN NEW; -- a comment; with a semicolon\nEND\n$$;\n"
        "CREATE TRIGGER people_touch BEFORE INSERT OR UPDATE ON people FOR EACH ROW EXECUTE FUNCTION touch();\n"),
    "003_function_trigger.rollback.sql": "DROP TRIGGER people_touch ON people;\nDROP FUNCTION touch();\n",
    "004_view_and_grant.sql": ("CREATE VIEW adults AS SELECT id, name FROM people WHERE age >= 18;\n"
                               "CREATE ROLE poststack_rt_reader NOLOGIN;\nGRANT SELECT ON adults TO poststack_rt_reader;\n"
                               "COMMENT ON VIEW adults IS 'people of age; ''quoted''';\n"),
    "004_view_and_grant.rollback.sql": "DROP VIEW adults;\nDROP ROLE poststack_rt_reader;\n",
    "005_index_concurrently.sql": "-- poststack:no-transaction\nCREATE INDEX CONCURRENTLY people_name_idx ON people (name);\n",
    "005_index_concurrently.rollback.sql": "-- poststack:no-transaction\nDROP INDEX CONCURRENTLY people_name_idx;\n",
    "006_alter.sql": "ALTER TABLE people ADD COLUMN email text UNIQUE;\nALTER TABLE pets ALTER COLUMN owner SET NOT NULL;\n",
    "006_alter.rollback.sql": "ALTER TABLE pets ALTER COLUMN owner DROP NOT NULL;\nALTER TABLE people DROP COLUMN email;\n",
}

SETS = {
    "core": os.path.join(ROOT, "migrations"),
    "example-project": os.path.join(ROOT, "examples", "project", "migrations"),
    "rich": None,
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_up_down_up_is_identical_for_every_migration(runner, name):
    directory = SETS[name] or write_files(runner.directory, RICH)
    versions = [item.version for item in m.discover(directory)]
    assert versions, "no migrations in %s" % directory
    # History in its own schema, left out of the dumps: they compare what the migrations did.
    settings = {"tracking_schema": "rt_history"}

    def schema():
        return runner.db.schema_dump("--exclude-schema=rt_history")

    empty = None
    previous = 0
    for version in versions:
        if empty is None:
            empty = schema()
        before = schema()
        assert runner.run("apply", version, directory=directory, **settings).done == [version]
        up = schema()
        assert runner.run("rollback", previous, directory=directory, **settings).done == [version]
        assert schema() == before, "rollback of %d did not restore the schema" % version
        assert runner.run("apply", version, directory=directory, **settings).done == [version]
        assert schema() == up, "re-applying %d gave a different schema" % version
        previous = version
    assert runner.run("rollback", 0, directory=directory, **settings).done == list(reversed(versions))
    assert schema() == empty
