"""Flyway's repeatable migrations: found in place, planned when new or changed, their states for a status."""
import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import DiscoveryError, discover
from ansible_collections.poststack.core.plugins.module_utils.migrations.repeatables import (
    RepeatableStep, discover_repeatables, plan_repeatables, repeatable_states,
)


def write(directory, files):
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return str(directory)


FLYWAY = {"V1__accounts.sql": "CREATE TABLE accounts (id int);\n",
          "R__views.sql": "CREATE OR REPLACE VIEW v AS SELECT id FROM accounts;\n",
          "R__a grants.sql": "-- poststack:no-transaction\nGRANT SELECT ON accounts TO PUBLIC;\n"}


def test_they_are_read_beside_the_versioned_ones_in_name_order(tmp_path):
    directory = write(tmp_path, FLYWAY)
    assert [m.version for m in discover(directory, "flyway")] == [1]  # the versioned ones only
    assert [m.version for m in discover(directory, "auto")] == [1]
    found = discover_repeatables(directory, "flyway")
    assert [(r.name, r.filename, r.no_transaction) for r in found] == [
        ("a grants", "R__a grants.sql", True), ("views", "R__views.sql", False)]
    assert [r.name for r in discover_repeatables(directory, "auto")] == ["a grants", "views"]
    assert discover_repeatables(directory, "poststack") == []  # only Flyway's layout has them


def test_empty_or_unreadable_ones_are_all_named(tmp_path):
    directory = write(tmp_path, {"R__empty.sql": "-- nothing yet\n", "R__latin1.sql": "SELECT 'caf\xe9';"})
    (tmp_path / "R__latin1.sql").write_bytes(b"SELECT 'caf\xe9';")
    with pytest.raises(DiscoveryError) as caught:
        discover_repeatables(directory)
    problems = caught.value.details["problems"]
    assert len(problems) == 2 and "R__empty.sql is empty" in problems[0] and "R__latin1.sql" in problems[1]


def test_a_run_applies_the_new_and_the_changed(tmp_path):
    found = discover_repeatables(write(tmp_path, FLYWAY))
    recorded = {item.name: item.checksum for item in found}
    assert plan_repeatables(found, {}) == [RepeatableStep("a grants", "R__a grants.sql", "new", True),
                                           RepeatableStep("views", "R__views.sql", "new", False)]
    assert plan_repeatables(found, recorded) == []
    recorded["views"] = "0" * 64
    assert plan_repeatables(found, recorded) == [RepeatableStep("views", "R__views.sql", "changed", False)]


def test_states_for_a_status(tmp_path):
    found = discover_repeatables(write(tmp_path, FLYWAY))
    recorded = {"views": {"checksum": "0" * 64, "applied_at": "t1"},
                "old": {"checksum": "1" * 64, "applied_at": "t0"}}
    assert repeatable_states(found, recorded) == [
        {"name": "a grants", "file": "R__a grants.sql", "state": "pending", "applied_at": None},
        {"name": "views", "file": "R__views.sql", "state": "changed", "applied_at": "t1"},
        {"name": "old", "file": None, "state": "missing", "applied_at": "t0"}]
    recorded["views"]["checksum"] = found[1].checksum
    assert repeatable_states(found, recorded)[1]["state"] == "applied"
