"""Adopting another tool's history: which versions it says are applied, and what is refused."""
import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import MigrationFile, PlanError
from ansible_collections.poststack.core.plugins.module_utils.migrations.adopt import applied_versions, check_table
from ansible_collections.poststack.core.plugins.module_utils.migrations.plan import plan_baseline

FILES = [1, 2, 3, 5, 20230102150405]


def test_golang_migrate_keeps_one_row_and_everything_up_to_it_is_applied():
    assert applied_versions("golang-migrate", [(3, False)], FILES) == {1, 2, 3}
    assert applied_versions("golang-migrate", [("4", False)], FILES) == {1, 2, 3, 4}  # 4 has no file
    with pytest.raises(PlanError, match="dirty at version 3: that migration failed half-way.*migrate force 3"):
        applied_versions("golang-migrate", [(3, True)], FILES)
    assert applied_versions("golang-migrate", [], FILES) == set()  # after a full migrate down
    with pytest.raises(PlanError, match="holds 2 rows"):
        applied_versions("golang-migrate", [(3, False), (4, False)], FILES)


def test_dbmate_keeps_one_row_per_version():
    rows = [("20230102150405",), ("1",), ("3",)]
    assert applied_versions("dbmate", rows, FILES) == {1, 3, 20230102150405}
    assert applied_versions("dbmate", [], FILES) == set()


def test_flyway_runs_in_order_undo_included():
    rows = [(1, None, "SCHEMA", True, "<< Flyway Schema Creation >>"), (2, "1", "SQL", True, "V1__a.sql"),
            (3, "2", "SQL", True, "V2__b.sql"), (4, None, "SQL", True, "R__views.sql"), (5, "3", "SQL", True, "V3__c.sql"),
            (6, "3", "UNDO_SQL", True, "U3__c.sql")]
    assert applied_versions("flyway", rows, FILES) == {1, 2}
    baseline = [(1, "3", "BASELINE", True, "<< Flyway Baseline >>"), (2, "5", "SQL", True, "V5__e.sql"),
                (3, "5", "UNDO_SCRIPT", True, "U5__e.sh")]
    assert applied_versions("flyway", baseline, FILES) == {1, 2, 3}
    with pytest.raises(PlanError, match=r"failed run \(installed_rank 7, V5__e.sql\)"):
        applied_versions("flyway", rows + [(7, "5", "SQL", False, "V5__e.sql")], FILES)
    with pytest.raises(PlanError, match="version '1.1', which is not a whole number"):
        applied_versions("flyway", [(1, "1.1", "SQL", True, "V1_1__x.sql")], FILES)


def item(version):
    return MigrationFile(version=version, name="m%d" % version, path="/m/%d_m.sql" % version, sql="SELECT 1;",
                         checksum="0" * 64)


def test_sqitch_names_its_changes_and_shares_a_registry_between_projects():
    names = {"accounts": 1, "orders": 2, "audit": 3}
    rows = [("accounts", "shop"), ("orders", "shop"), ("users", "blog")]
    assert applied_versions("sqitch", rows, [1, 2, 3], names, "shop") == {1, 2}
    assert applied_versions("sqitch", rows[:2], [1, 2, 3], names, None) == {1, 2}  # one project: no plan needed
    assert applied_versions("sqitch", [], [1, 2, 3], names, "shop") == set()  # nothing deployed (or all reverted)
    with pytest.raises(PlanError, match=r"changes of 2 projects \(blog, shop\) and the migrations name none"):
        applied_versions("sqitch", rows, [1, 2, 3], names, None)
    with pytest.raises(PlanError, match="no change of project inventory, the one sqitch.plan names .it holds blog, shop"):
        applied_versions("sqitch", rows, [1, 2, 3], names, "inventory")
    with pytest.raises(PlanError, match="deployed changes payments, refunds, which the migrations do not have"):
        applied_versions("sqitch", rows + [("payments", "shop"), ("refunds", "shop")], [1, 2, 3], names, "shop")


def test_a_baseline_of_exact_versions_needs_a_file_for_each():
    files = [item(v) for v in FILES]
    plan = plan_baseline(files, {}, None, {1, 3}, "dbmate's history")
    assert plan.versions == [1, 3] and plan.target_version == 3 and plan.pending == FILES
    with pytest.raises(PlanError, match=r"dbmate's history records version\(s\) 4 that no migration file has"):
        plan_baseline(files, {}, None, {1, 4}, "dbmate's history")
    assert plan_baseline(files, {}, None, set(), "x").steps == []


@pytest.mark.parametrize("table", ["public.schema_migrations", "flyway_schema_history"])
def test_table_names_are_plain(table):
    assert check_table(table) == table


@pytest.mark.parametrize("table", ["x; DROP TABLE y", "Public.T", "a.b.c", ""])
def test_other_table_names_are_refused(table):
    with pytest.raises(PlanError, match="must be"):
        check_table(table)
