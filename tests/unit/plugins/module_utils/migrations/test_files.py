"""Discovery and checksums: names, integer versions, attachments and the errors that name the files."""
import hashlib
import os

import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import (
    DiscoveryError, checksum, discover, has_no_transaction_marker,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import sqitch_project


def write(directory, files):
    for name, text in files.items():
        path = directory / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return str(directory)


def test_versions_are_integers_not_strings(tmp_path):
    found = discover(write(tmp_path, {"9_a.sql": "SELECT 9;", "10_b.sql": "SELECT 10;", "002_c.sql": "SELECT 2;"}))
    assert [m.version for m in found] == [2, 9, 10]
    assert [m.name for m in found] == ["c", "a", "b"]


def test_rollback_and_verify_attached(tmp_path):
    found = discover(write(tmp_path, {
        "001_users.sql": "CREATE TABLE users(id int);",
        "001_users.rollback.sql": "DROP TABLE users;",
        "001_users.verify.sql": "SELECT id FROM users WHERE false;",
        "README.md": "not a migration",
        ".hidden.sql": "ignored",
    }))
    assert len(found) == 1
    item = found[0]
    assert item.rollback_sql == "DROP TABLE users;"
    assert item.rollback_checksum == hashlib.sha256(b"DROP TABLE users;").hexdigest()
    assert item.verify_sql.startswith("SELECT id")
    assert not item.no_transaction


def test_checksum_ignores_line_endings_only():
    assert checksum("a\r\nb\r\n") == checksum("a\nb\n") == checksum("a\rb\r")
    assert checksum("a\nb\n") != checksum("a\nb")
    assert checksum("x") == hashlib.sha256(b"x").hexdigest()


def test_crlf_file_has_same_checksum_as_lf(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    crlf = discover(write(tmp_path / "a", {"001_x.sql": b"CREATE TABLE x(id int);\r\n"}))[0]
    lf = discover(write(tmp_path / "b", {"001_x.sql": b"CREATE TABLE x(id int);\n"}))[0]
    assert crlf.checksum == lf.checksum


def test_no_transaction_marker_must_be_first_non_blank_line():
    assert has_no_transaction_marker("\n  \n-- poststack:no-transaction\nCREATE INDEX CONCURRENTLY i ON t(a);")
    assert not has_no_transaction_marker("SELECT 1;\n-- poststack:no-transaction\n")
    assert not has_no_transaction_marker("-- poststack:no-transactions\n")


@pytest.mark.parametrize("files, fragment", [
    ({"001_a.sql": "SELECT 1;", "1_b.sql": "SELECT 2;"}, "duplicate version 1: 001_a.sql and 1_b.sql"),
    ({"abc.sql": "SELECT 1;"}, "abc.sql: cannot parse the name"),
    ({"001-a.sql": "SELECT 1;"}, "001-a.sql: cannot parse the name"),
    ({"001_a b.sql": "SELECT 1;"}, "001_a b.sql: cannot parse the name"),
    ({"001_a.down.sql": "SELECT 1;"}, "001_a.down.sql: rollback script without its migration 001_a.up.sql"),
    ({"001_a.sideways.sql": "SELECT 1;"}, "001_a.sideways.sql: cannot parse the name"),
    ({"002_b.rollback.sql": "DROP TABLE b;"}, "002_b.rollback.sql: rollback script without its migration 002_b.sql"),
    ({"002_b.verify.sql": "SELECT 1;"}, "002_b.verify.sql: verify script without its migration"),
    ({"002_b.sql": "SELECT 1;", "002_c.rollback.sql": "SELECT 1;"}, "002_c.rollback.sql: rollback script name does not match"),
    ({"000_zero.sql": "SELECT 1;"}, "version 0 is out of range"),
    ({"99999999999999999999_big.sql": "SELECT 1;"}, "is out of range"),
    ({"001_a.sql": "-- only a comment\n\n"}, "is empty"),
    ({"001_a.sql": b"SELECT '\xff';"}, "is not valid UTF-8"),
])
def test_bad_files_name_the_file(tmp_path, files, fragment):
    with pytest.raises(DiscoveryError) as info:
        discover(write(tmp_path, files))
    assert fragment in str(info.value)


def test_all_problems_reported_at_once(tmp_path):
    with pytest.raises(DiscoveryError) as info:
        discover(write(tmp_path, {"x.sql": "SELECT 1;", "003_c.rollback.sql": "SELECT 1;"}))
    assert len(info.value.details["problems"]) == 2


def test_files_that_look_like_migrations_are_never_skipped_silently(tmp_path):
    """Each of these used to be skipped without a word; all are named in one run, with bad contents too."""
    write(tmp_path, {"001_ok.sql": "SELECT 1;", "003_upper.SQL": "SELECT 3;", "005_empty.sql": "-- nothing\n",
                     "006_latin1.sql": b"SELECT '\xe9';", "x.sql": "SELECT 1;", "notes.txt": "not a migration"})
    (tmp_path / "002_dir.sql").mkdir()
    (tmp_path / "004_broken.sql").symlink_to(tmp_path / "nowhere.sql")
    with pytest.raises(DiscoveryError) as info:
        discover(str(tmp_path))
    problems = info.value.details["problems"]
    assert problems == [
        "002_dir.sql: is a directory, not a migration file; rename or move it",
        "003_upper.SQL: the extension must be .sql in lower case; rename it",
        "004_broken.sql: is a symbolic link to %s, which does not exist; fix or remove the link"
        % (tmp_path / "nowhere.sql"),
        "x.sql: cannot parse the name; use NNN_name.sql, NNN_name.rollback.sql or NNN_name.verify.sql "
        "(NNN digits, name of letters, digits, _ and -), or golang-migrate's NNN_title.up.sql and NNN_title.down.sql, "
        "or Flyway's VNNN__description.sql and UNNN__description.sql",
        "%s is empty (only comments or whitespace): write its SQL or remove the file" % (tmp_path / "005_empty.sql"),
        "%s is not valid UTF-8 (byte 8): save it as UTF-8" % (tmp_path / "006_latin1.sql"),
    ]


def test_a_link_to_a_file_is_a_migration(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "001_a.sql").write_text("SELECT 1;", encoding="utf-8")
    migrations = tmp_path / "m"
    migrations.mkdir()
    (migrations / "001_a.sql").symlink_to(shared / "001_a.sql")
    assert [item.version for item in discover(str(migrations))] == [1]


def test_missing_directory():
    with pytest.raises(DiscoveryError, match="does not exist"):
        discover("/nonexistent/poststack/migrations")


def test_golang_migrate_files_are_read_in_place(tmp_path):
    found = discover(write(tmp_path, {
        "000001_create_users.up.sql": "CREATE TABLE users (id int);\n",
        "000001_create_users.down.sql": "DROP TABLE users;\n",
        "20230102150405_add.email.column.up.sql": "ALTER TABLE users ADD email text;\n",
    }), "golang-migrate")
    assert [(m.version, m.name, m.filename) for m in found] == [
        (1, "create_users", "000001_create_users.up.sql"), (20230102150405, "add.email.column",
                                                            "20230102150405_add.email.column.up.sql")]
    assert found[0].rollback_sql == "DROP TABLE users;\n" and found[0].rollback_filename == "000001_create_users.down.sql"
    assert found[1].rollback_sql is None
    assert [m.version for m in discover(str(tmp_path))] == [1, 20230102150405]  # auto reads them too


DBMATE = ("-- migrate:up\nCREATE TABLE users (id int);\nINSERT INTO users VALUES (1);\n\n"
          "-- migrate:down\nDROP TABLE users;\n")


def test_dbmate_files_are_split_into_their_parts_keeping_line_numbers(tmp_path):
    item = discover(write(tmp_path, {"20151129054053_users.sql": DBMATE}), "dbmate")[0]
    assert item.version == 20151129054053 and item.name == "users"
    assert item.sql == "-- migrate:up\nCREATE TABLE users (id int);\nINSERT INTO users VALUES (1);\n\n"
    assert item.rollback_sql == "\n" * 4 + "-- migrate:down\nDROP TABLE users;\n"  # DROP is on line 6, as in the file
    assert item.checksum == checksum(item.sql) and item.rollback_checksum == checksum(item.rollback_sql)
    assert item.rollback_filename == "20151129054053_users.sql (its -- migrate:down part)"
    assert not item.no_transaction and not item.rollback_no_transaction


def test_dbmate_transaction_false_and_an_empty_down_part(tmp_path):
    item = discover(write(tmp_path, {"1_idx.sql": "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
                                                  "-- migrate:down\n"}))[0]
    assert item.no_transaction and item.rollback_sql is None


@pytest.mark.parametrize("files, layout, fragment", [
    ({"1_a.sql": "-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a ();\n"}, "auto",
     "1_a.sql: dbmate markers must be one '-- migrate:up' and at most one '-- migrate:down' after it"),
    ({"1_a.sql": "CREATE TABLE x ();\n-- migrate:up\nCREATE TABLE a ();\n"}, "auto", "SQL before '-- migrate:up'"),
    ({"1_a.sql": "-- migrate:up transaction:maybe\nCREATE TABLE a ();\n"}, "auto", "unknown option(s)"),
    ({"1_a.sql": DBMATE, "1_a.rollback.sql": "DROP TABLE a;"}, "auto",
     "is a dbmate file (-- migrate:up) and has 1_a.rollback.sql too"),
    ({"1_a.sql": DBMATE}, "poststack", "which format poststack would run as one migration, down part included"),
    ({"1_a.sql": "CREATE TABLE a ();"}, "dbmate", "has no '-- migrate:up' line (format dbmate)"),
    ({"1_a.up.sql": "CREATE TABLE a ();"}, "poststack", "1_a.up.sql: is not a poststack name (format poststack)"),
    ({"1_a.sql": "CREATE TABLE a ();"}, "golang-migrate", "1_a.sql: is not a golang-migrate name"),
    ({"1_a.up.sql": "CREATE TABLE a ();", "1_b.up.sql": "SELECT 1;"}, "auto", "duplicate version 1"),
    ({"2_a.down.sql": "DROP TABLE a;"}, "auto", "2_a.down.sql: rollback script without its migration 2_a.up.sql"),
    ({"1_a.sql": "CREATE TABLE a ();", "1_a.down.sql": "DROP TABLE a;", "2_b.up.sql": "SELECT 1;"}, "auto",
     None),
])
def test_layout_errors_name_the_file(tmp_path, files, layout, fragment):
    if fragment is None:  # a poststack migration with a golang-migrate rollback: auto takes each file as it comes
        assert [m.rollback_sql for m in discover(write(tmp_path, files), layout)] == ["DROP TABLE a;", None]
        return
    with pytest.raises(DiscoveryError) as caught:
        discover(write(tmp_path, files), layout)
    assert fragment in str(caught.value)


def test_dbmate_comments_above_the_marker_and_look_alike_lines(tmp_path):
    text = ("-- Created by someone\n\n-- migrate:up\nCREATE TABLE a ();\n"
            "-- migrate:upgrade notes: none\n-- migrate:down\nDROP TABLE a;\n")
    item = discover(write(tmp_path, {"1_a.sql": text}))[0]
    assert "migrate:upgrade" in item.sql and item.rollback_sql.strip().endswith("DROP TABLE a;")


def test_flyway_files_are_read_in_place(tmp_path):
    found = discover(write(tmp_path, {"V1__create_users.sql": "CREATE TABLE users (id int);",
                                      "U1__create_users.sql": "DROP TABLE users;",
                                      "V002__add email.sql": "ALTER TABLE users ADD email text;"}), "flyway")
    assert [(m.version, m.name, m.rollback_filename) for m in found] == [
        (1, "create_users", "U1__create_users.sql"), (2, "add email", None)]


@pytest.mark.parametrize("files, layout, fragment", [
    ({"V1_1__x.sql": "SELECT 1;"}, "auto", "V1_1__x.sql: version 1_1 is not a whole number"),
    ({"V1.2__x.sql": "SELECT 1;"}, "flyway", "V1.2__x.sql: version 1.2 is not a whole number"),
    ({"R__views.sql": "SELECT 1;"}, "golang-migrate",
     "R__views.sql: is Flyway's repeatable migration, not a golang-migrate name (format golang-migrate)"),
    ({"U3__x.sql": "SELECT 1;"}, "auto", "U3__x.sql: rollback script without its migration V3__x.sql"),
    ({"V1__x.sql": "SELECT 1;"}, "poststack", "V1__x.sql: is not a poststack name (format poststack)"),
    ({"1_x.sql": "SELECT 1;"}, "flyway", "1_x.sql: is not a flyway name (format flyway)"),
    ({"V1__x.sql": "SELECT 1;", "1_y.sql": "SELECT 1;"}, "auto", "duplicate version 1"),
])
def test_flyway_names_that_are_refused(tmp_path, files, layout, fragment):
    with pytest.raises(DiscoveryError) as caught:
        discover(write(tmp_path, files), layout)
    assert fragment in str(caught.value)


def put(directory, name, text):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


SQITCH_PLAN = """%syntax-version=1.0.0
%project=shop
%uri=https://example.org/shop/

accounts 2024-01-02T03:04:05Z Ann Planner <ann@example.org> # the accounts
orders [accounts] 2024-01-03T03:04:05Z Ann Planner <ann@example.org> # orders need accounts
@v1.0 2024-01-04T00:00:00Z Ann Planner <ann@example.org> # first release

orders_index [orders] 2024-01-05T00:00:00Z Ann Planner <ann@example.org>
"""


def write_sqitch(base, plan=SQITCH_PLAN, skip=()):
    for name in ("accounts", "orders", "orders_index"):
        if name in skip:
            continue
        deploy = "-- Deploy shop:%s to pg\n\nBEGIN;\nCREATE TABLE %s (id int);\nCOMMIT;\n" % (name, name)
        put(base / "deploy", name + ".sql", deploy)
        put(base / "revert", name + ".sql", "BEGIN;\nDROP TABLE %s;\nCOMMIT;\n" % name)
        template = "-- Verify shop:%s on pg\n\nBEGIN;\n\nROLLBACK;\n" % name
        put(base / "verify", name + ".sql", template if name == "orders" else "SELECT id FROM %s WHERE false;\n" % name)
    put(base, "sqitch.plan", plan)


def test_a_sqitch_project_is_read_in_plan_order(tmp_path):
    write_sqitch(tmp_path)
    assert sqitch_project(str(tmp_path)) == "shop"
    assert sqitch_project(str(tmp_path / "deploy")) is None  # no plan there
    for layout in ("auto", "sqitch"):
        found = discover(str(tmp_path), layout)
        assert [(f.version, f.name, os.path.relpath(f.path, str(tmp_path))) for f in found] == [
            (1, "accounts", "deploy/accounts.sql"), (2, "orders", "deploy/orders.sql"),
            (3, "orders_index", "deploy/orders_index.sql")]
        assert found[0].rollback_sql == "BEGIN;\nDROP TABLE accounts;\nCOMMIT;\n"
        assert found[0].verify_sql == "SELECT id FROM accounts WHERE false;\n"
        assert found[1].verify_sql is None  # sqitch's template (no SQL but BEGIN/ROLLBACK) verifies nothing


def test_sqitch_top_dir_from_its_conf(tmp_path):
    write_sqitch(tmp_path / "db")
    (tmp_path / "db" / "sqitch.plan").rename(tmp_path / "sqitch.plan")
    put(tmp_path, "sqitch.conf", "[core]\n\tengine = pg\n\ttop_dir = db\n\tplan_file = sqitch.plan\n")
    assert [f.name for f in discover(str(tmp_path), "sqitch")] == ["accounts", "orders", "orders_index"]


def test_sqitch_problems_are_named_at_once(tmp_path):
    plan = SQITCH_PLAN + "accounts 2024-02-01T00:00:00Z Ann <ann@example.org> # reworked\nnot a change line\n"
    write_sqitch(tmp_path, plan=plan, skip=("orders_index",))
    with pytest.raises(DiscoveryError) as err:
        discover(str(tmp_path))
    problems = err.value.details["problems"]
    assert any("line 10: change accounts is planned again (a Sqitch rework)" in p for p in problems), problems
    assert any("line 11: not a change line" in p for p in problems), problems
    assert any("change orders_index has no deploy script" in p for p in problems), problems
    assert len(problems) == 3
