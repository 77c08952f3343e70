"""The SQL lexer used for no-transaction files and pre-flight checks."""
import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import (
    DiscoveryError, SqlLexError, check_sql, split_sql, strip_sql_comments,
)


def texts(sql):
    return [statement.sql for statement in split_sql(sql)]


def test_plain_statements_and_lines():
    statements = split_sql("CREATE TABLE a(id int);\n\nCREATE TABLE b(id int);\nSELECT 1")
    assert [s.sql for s in statements] == ["CREATE TABLE a(id int)", "CREATE TABLE b(id int)", "SELECT 1"]
    assert [s.line for s in statements] == [1, 3, 4]


def test_semicolons_inside_strings_identifiers_and_comments():
    sql = ("INSERT INTO t VALUES ('a;b', 'it''s; here');\n"
           'CREATE TABLE "we;ird" (id int);\n'
           "-- a comment; with a semicolon\n"
           "/* block; /* nested; */ still comment; */ SELECT 2;")
    assert texts(sql) == [
        "INSERT INTO t VALUES ('a;b', 'it''s; here')",
        'CREATE TABLE "we;ird" (id int)',
        "-- a comment; with a semicolon\n/* block; /* nested; */ still comment; */ SELECT 2",
    ]


def test_dollar_quotes_with_and_without_tags():
    sql = ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
           "DO $body$ BEGIN PERFORM 1; RAISE NOTICE '$$;'; END $body$;\n"
           "SELECT $1;")
    assert len(texts(sql)) == 3
    assert texts(sql)[1].startswith("DO $body$") and texts(sql)[1].endswith("END $body$")


def test_escape_strings_allow_backslash_quote():
    assert texts(r"SELECT E'a\';b'; SELECT 'c\'; SELECT 3;") == [r"SELECT E'a\';b'", r"SELECT 'c\'", "SELECT 3"]


def test_identifier_ending_in_e_is_not_an_escape_string():
    assert texts(r"SELECT name'\'; SELECT 2;") == [r"SELECT name'\'", "SELECT 2"]


def test_dollar_inside_identifier_is_not_a_quote():
    assert texts("SELECT a$b$ FROM t; SELECT 2;") == ["SELECT a$b$ FROM t", "SELECT 2"]


def test_comment_only_chunks_are_dropped():
    assert texts("SELECT 1;\n-- trailing comment\n;  ;") == ["SELECT 1"]


@pytest.mark.parametrize("sql, fragment", [
    ("SELECT 'open", "unterminated string starting at line 1"),
    ('SELECT "open', "unterminated quoted identifier"),
    ("SELECT 1;\nSELECT $x$ open", "unterminated dollar-quoted string $x$ starting at line 2"),
    ("/* open /* nested */", "unterminated /* comment"),
])
def test_unterminated_constructs(sql, fragment):
    with pytest.raises(SqlLexError, match=fragment.replace("$", r"\$").replace("*", r"\*")):
        split_sql(sql)


def test_strip_comments_keeps_strings():
    assert strip_sql_comments("SELECT '--x' -- y\n/* z */").split() == ["SELECT", "'--x'"]


@pytest.mark.parametrize("sql, no_transaction, fragment", [
    ("BEGIN; CREATE TABLE a(); COMMIT;", False, "controls the transaction"),
    ("CREATE TABLE a();\n  commit;", False, "line 2: 'commit' controls the transaction"),
    ("START TRANSACTION;", True, "controls the transaction"),
    ("CREATE INDEX CONCURRENTLY i ON t(a);", False, "cannot run inside a transaction"),
    ("create unique index\nconcurrently i ON t(a);", False, "cannot run inside a transaction"),
    ("VACUUM t;", False, "cannot run inside a transaction"),
    ("\\set x 1\nSELECT 1;", False, "psql meta-command"),
    ("SELECT 'x", False, "unterminated string"),
])
def test_preflight_rejections(sql, no_transaction, fragment):
    with pytest.raises(DiscoveryError, match=fragment):
        check_sql("001_x.sql", sql, no_transaction)


def test_preflight_accepts_concurrently_in_no_transaction_files_and_in_strings():
    assert len(check_sql("f", "-- poststack:no-transaction\nCREATE INDEX CONCURRENTLY i ON t(a);", True)) == 1
    assert len(check_sql("f", "SELECT 'BEGIN; CREATE INDEX CONCURRENTLY';", False)) == 1
    assert len(check_sql("f", "CREATE FUNCTION f() RETURNS void AS $$ BEGIN NULL; END $$ LANGUAGE plpgsql;", False)) == 1
