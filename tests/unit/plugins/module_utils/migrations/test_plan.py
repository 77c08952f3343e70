"""The pure planner: files + history -> steps, or an error that says why nothing runs."""
import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import (
    AppliedMigration, MigrationFile, PlanError, checksum, find_drift, lock_key, plan_baseline, plan_migrate,
    plan_repair, plan_rollback,
)


def mf(version, name=None, sql=None, rollback="DROP", no_tx=False):
    name = name or "m%d" % version
    sql = sql or "CREATE TABLE t%d();" % version
    return MigrationFile(version, name, "/m/%03d_%s.sql" % (version, name), sql, checksum(sql), no_tx,
                         "/m/%03d_%s.rollback.sql" % (version, name) if rollback else None,
                         rollback, checksum(rollback) if rollback else None)


def applied(item, rollback_sql="from-file"):
    stored = item.rollback_sql if rollback_sql == "from-file" else rollback_sql
    return AppliedMigration(item.version, item.name, item.checksum, checksum(stored) if stored else None, stored,
                            False, item.no_transaction, False, "2026-01-01", "me", 1)


def history_of(*items):
    return {item.version: applied(item) for item in items}


def test_plan_applies_pending_in_integer_order_up_to_target():
    files = [mf(1), mf(2), mf(10), mf(9)]
    files.sort(key=lambda m: m.version)
    plan = plan_migrate(files, {}, None)
    assert plan.versions == [1, 2, 9, 10]
    assert plan_migrate(files, {}, 9).versions == [1, 2, 9]
    assert plan_migrate(files, history_of(files[0]), 2).versions == [2]
    assert plan_migrate(files, history_of(*files), None).steps == []


def test_target_must_exist_and_not_be_below_current():
    files = [mf(1), mf(2), mf(3)]
    with pytest.raises(PlanError, match="target_version 7 matches no migration file"):
        plan_migrate(files, {}, 7)
    with pytest.raises(PlanError, match="below the current version 3: use state=rolled_back"):
        plan_migrate(files, history_of(*files), 2)


def test_drift_names_file_and_both_checksums():
    old = mf(1, sql="CREATE TABLE a();")
    new = mf(1, sql="CREATE TABLE a(id int);")
    with pytest.raises(PlanError) as info:
        plan_migrate([new, mf(2)], history_of(old))
    message = str(info.value)
    assert "001_m1.sql changed after it was applied" in message
    assert old.checksum in message and new.checksum in message
    assert "state=repaired" in message


def test_missing_applied_file_is_drift_for_migrate_but_not_for_rollback():
    one, two = mf(1), mf(2)
    with pytest.raises(PlanError, match="version 2 .* is applied but its file is missing"):
        plan_migrate([one], history_of(one, two))
    assert plan_rollback([one], history_of(one, two), 1).versions == [2]


def test_out_of_order_refused_unless_allowed():
    files = [mf(1), mf(2), mf(3)]
    with pytest.raises(PlanError, match="002_m2.sql is lower than the highest applied version 3"):
        plan_migrate(files, history_of(files[0], files[2]))
    assert plan_migrate(files, history_of(files[0], files[2]), allow_out_of_order=True).versions == [2]


def test_rollback_newest_first_and_all_or_nothing():
    files = [mf(1), mf(2), mf(3), mf(4)]
    hist = history_of(*files)
    assert plan_rollback(files, hist, 1).versions == [4, 3, 2]
    assert plan_rollback(files, hist, 0).versions == [4, 3, 2, 1]
    assert plan_rollback(files, hist, 4).steps == []
    hist[3] = applied(files[2], rollback_sql=None)
    files[2] = mf(3, rollback=None)
    with pytest.raises(PlanError, match="no rollback for version 3 .*nothing was rolled back"):
        plan_rollback(files, hist, 1)


def test_rollback_uses_recorded_sql_when_file_gone():
    one = mf(1)
    assert plan_rollback([], history_of(one), 0).versions == [1]


def test_rollback_target_validation():
    files = [mf(1), mf(2)]
    with pytest.raises(PlanError, match="target_version is required"):
        plan_rollback(files, history_of(*files), None)
    with pytest.raises(PlanError, match="target_version 5 is not an applied version"):
        plan_rollback(files, history_of(*files), 5)
    with pytest.raises(PlanError, match="negative"):
        plan_rollback(files, history_of(*files), -1)


def test_changed_rollback_file_is_drift():
    item = mf(1)
    changed = mf(1, rollback="DROP TABLE t1 CASCADE;")
    drift = find_drift([changed], history_of(item))
    assert [(d.kind, d.version) for d in drift] == [("rollback_changed", 1)]
    with pytest.raises(PlanError, match="rollback 001_m1.rollback.sql changed"):
        plan_rollback([changed], history_of(item), 0)


def test_baseline_records_up_to_version():
    files = [mf(1), mf(2), mf(3)]
    assert plan_baseline(files, {}, 2).versions == [1, 2]
    assert plan_baseline(files, history_of(files[0], files[1]), 2).steps == []
    with pytest.raises(PlanError, match="matches no migration file"):
        plan_baseline(files, {}, 9)
    with pytest.raises(PlanError, match="target_version >= 1"):
        plan_baseline(files, {}, 0)


def test_repair_lists_changed_checksums_only():
    old, new = mf(1, sql="A;"), mf(1, sql="B;")
    plan = plan_repair([new, mf(2)], history_of(old, mf(2)))
    assert plan.versions == [1]
    assert plan_repair([old], history_of(old)).steps == []


def test_lock_key_depends_on_schema_and_fits_bigint():
    assert lock_key("poststack") == lock_key("poststack")
    assert lock_key("poststack") != lock_key("other")
    assert -2 ** 63 <= lock_key("poststack") < 2 ** 63
