"""The SQL lexer used for no-transaction files and pre-flight checks."""
import re

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
    ("BEGIN; CREATE TABLE a(); COMMIT;", True, "controls the transaction; a -- poststack:no-transaction file"),
    ("CREATE TABLE a();\n  commit;", False, "line 2: 'commit' controls the transaction"),
    ("BEGIN;\nCREATE TABLE a();\nCOMMIT;\nBEGIN;\nCREATE TABLE b();\nCOMMIT;", False,
     "line 3: 'COMMIT' controls the transaction; a migration is one transaction"),
    ("BEGIN;\nCREATE TABLE a();", False, "line 1: 'BEGIN' controls the transaction"),
    ("BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE a();\nCOMMIT;", False, "sets transaction modes"),
    ("BEGIN;\nCREATE TABLE a();\nROLLBACK;", False, "line 3: 'ROLLBACK' controls the transaction"),
    ("CREATE TABLE a();\nCOMMIT AND CHAIN;", False, "line 2: 'COMMIT AND CHAIN' controls the transaction"),
    ("START TRANSACTION;", True, "controls the transaction"),
    ("SAVEPOINT s;", True, "controls the transaction"),
    ("CREATE INDEX CONCURRENTLY i ON t(a);", False, "cannot run inside a transaction"),
    ("create unique index\nconcurrently i ON t(a);", False, "cannot run inside a transaction"),
    ("VACUUM t;", False, "cannot run inside a transaction"),
    ("\\set x 1\nSELECT 1;", False, "psql meta-command"),
    ("SELECT 'x", False, "unterminated string"),
])
def test_preflight_rejections(sql, no_transaction, fragment):
    with pytest.raises(DiscoveryError, match=re.escape(fragment)):
        check_sql("001_x.sql", sql, no_transaction)


def test_preflight_accepts_concurrently_in_no_transaction_files_and_in_strings():
    assert len(check_sql("f", "-- poststack:no-transaction\nCREATE INDEX CONCURRENTLY i ON t(a);", True).statements) == 1
    assert len(check_sql("f", "SELECT 'BEGIN; CREATE INDEX CONCURRENTLY';", False).statements) == 1
    checked = check_sql("f", "CREATE FUNCTION f() RETURNS void AS $$ BEGIN NULL; END $$ LANGUAGE plpgsql;", False)
    assert len(checked.statements) == 1 and not checked.unwrapped


@pytest.mark.parametrize("begin, commit", [
    ("BEGIN;", "COMMIT;"), ("begin transaction ;", "end;"), ("START TRANSACTION;", "COMMIT WORK;"),
    ("BEGIN WORK; -- ours", "END TRANSACTION"),
])
def test_a_begin_commit_around_the_whole_file_is_taken_off_lines_and_offsets_kept(begin, commit):
    text = "-- 003: users\n%s\nCREATE TABLE u (id int);\nSAVEPOINT s;\nINSERT INTO u VALUES (1);\n" \
           "ROLLBACK TO SAVEPOINT s;\nRELEASE s;\n%s\n" % (begin, commit)
    checked = check_sql("003_users.sql", text, False)
    assert checked.unwrapped
    assert [s.head for s in checked.statements] == [
        "CREATE TABLE u (id int)", "SAVEPOINT s", "INSERT INTO u VALUES (1)", "ROLLBACK TO SAVEPOINT s", "RELEASE s"]
    assert len(checked.body) == len(text) and checked.body.count("\n") == text.count("\n")
    assert checked.body.index("CREATE TABLE") == text.index("CREATE TABLE")
    assert [s.head for s in split_sql(checked.body)] == [s.head for s in checked.statements]
    assert "-- ours" in checked.body or "ours" not in begin  # a comment after the BEGIN stays


def test_a_file_without_a_wrapper_runs_as_written():
    text = "CREATE TABLE a ();\nSAVEPOINT s;\nRELEASE s;"
    checked = check_sql("001_a.sql", text, False)
    assert checked.body == text and not checked.unwrapped and len(checked.statements) == 3


def test_every_problem_of_a_file_is_named_in_one_error():
    text = "\\set x 1\nCREATE TABLE a ();\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON a (id);\nVACUUM a;\n"
    with pytest.raises(DiscoveryError) as caught:
        check_sql("004_d.sql", text, False)
    problems = caught.value.details["problems"]
    assert [p.split(":")[0] for p in problems] == ["004_d.sql line 1", "004_d.sql line 3", "004_d.sql line 4",
                                                   "004_d.sql line 5"]
    assert all(p in str(caught.value) for p in problems)


def test_a_sql_standard_function_body_is_one_statement():
    text = ("CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a "
            "ELSE 0 END;\n  SELECT a + b;\nEND;\nCREATE TABLE after_it (id int);\n")
    assert [s.line for s in split_sql(text)] == [1, 6]
    checked = check_sql("007_f.sql", "BEGIN;\n" + text + "COMMIT;\n", False)
    assert checked.unwrapped and [s.line for s in checked.statements] == [2, 7]


@pytest.mark.parametrize("savepoint", ["ROLLBACK TO SAVEPOINT a", "ROLLBACK TRANSACTION TO SAVEPOINT a",
                                       "rollback work to a", "RELEASE SAVEPOINT a", "RELEASE a"])
def test_every_spelling_of_a_savepoint_works_inside(savepoint):
    assert len(check_sql("f", "SAVEPOINT a;\n%s;" % savepoint, False).statements) == 2


def test_a_verify_script_in_begin_rollback_runs_without_them():
    from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import verify_body
    text = "-- Verify shop:orders\nBEGIN;\nSELECT id\n  FROM orders WHERE false;\nROLLBACK;\n"
    body = verify_body(text)
    assert body.count("\n") == text.count("\n") and "BEGIN" not in body and "ROLLBACK" not in body
    assert body.split("\n")[2:4] == ["SELECT id", "  FROM orders WHERE false;"]
    for kept in ("SELECT 1;\n", "BEGIN;\nSELECT 1;\n", "SELECT 1;\nROLLBACK;\n", "BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nROLLBACK;\n"):
        assert verify_body(kept) == kept
