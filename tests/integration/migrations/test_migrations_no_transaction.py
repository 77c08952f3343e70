"""CREATE INDEX CONCURRENTLY in no-transaction migrations: works; a failing one is reported and cleaned up."""
import re

import pytest

from migration_helpers import write_files
from ansible_collections.poststack.core.plugins.module_utils import migrations as m

BASE = {
    "001_items.sql": "CREATE TABLE items (id int, code text);\nINSERT INTO items SELECT g, 'c' || (g % 50) FROM generate_series(1, 500) g;\n",
    "001_items.rollback.sql": "DROP TABLE items;\n",
}


def invalid_indexes(runner):
    with runner.db.connect() as conn:
        return conn.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid").fetchall()


def index_names(runner):
    with runner.db.connect() as conn:
        return sorted(r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'items'"))


def test_create_index_concurrently_applies_once_and_rolls_back(runner):
    write_files(runner.directory, dict(BASE, **{
        "002_items_idx.sql": "-- poststack:no-transaction\nCREATE INDEX CONCURRENTLY items_id_idx ON items (id);\n"
                             "CREATE INDEX CONCURRENTLY items_code_idx ON items (code);\n",
        "002_items_idx.rollback.sql": "-- poststack:no-transaction\nDROP INDEX CONCURRENTLY items_code_idx;\n"
                                      "DROP INDEX CONCURRENTLY items_id_idx;\n",
    }))
    result = runner.run()
    assert result.done == [1, 2]
    assert index_names(runner) == ["items_code_idx", "items_id_idx"]
    assert not runner.run().changed
    assert runner.run("rollback", 1).done == [2]
    assert index_names(runner) == []
    assert runner.run().done == [2]


def test_failing_concurrent_unique_index_is_reported_and_cleaned_up(runner):
    write_files(runner.directory, dict(BASE, **{
        "002_unique_code.sql": "-- poststack:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY items_code_key ON items (code);\n",
    }))
    runner.run(target=1)
    before = runner.db.schema_dump()
    with pytest.raises(m.ExecutionError) as info:
        runner.run()
    message = str(info.value)
    assert re.search(r"002_unique_code\.sql failed at statement 1 \(line 2\): could not create unique index \"items_code_key\"", message)
    assert "dropped invalid index(es) it left: items_code_key" in message
    assert info.value.details["dropped_invalid_indexes"] == ["items_code_key"]
    assert invalid_indexes(runner) == []
    assert runner.db.schema_dump() == before
    with runner.db.connect() as conn:
        assert conn.execute("SELECT max(version) FROM poststack.schema_migrations").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0
    # Fix the data, run again: the same file now succeeds.
    with runner.db.connect() as conn:
        conn.execute("UPDATE items SET code = 'c' || id")
    assert runner.run().done == [2]
    assert "items_code_key" in index_names(runner)


def test_dry_run_skips_no_transaction_migrations(runner):
    write_files(runner.directory, dict(BASE, **{
        "002_idx.sql": "-- poststack:no-transaction\nCREATE INDEX CONCURRENTLY items_id_idx ON items (id);\n",
        "003_more.sql": "ALTER TABLE items ADD COLUMN extra int;\n",
    }))
    before = runner.db.dump()
    result = runner.run(dry_run=True)
    assert result.done == [1]
    assert [entry["version"] for entry in result.skipped] == [2, 3]
    assert runner.db.dump() == before
