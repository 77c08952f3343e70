"""Discovery and checksums: names, integer versions, attachments and the errors that name the files."""
import hashlib

import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import (
    DiscoveryError, checksum, discover, has_no_transaction_marker,
)


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
    ({"001_a.down.sql": "SELECT 1;"}, "001_a.down.sql: cannot parse the name"),
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
        "(NNN digits, name of letters, digits, _ and -)",
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
