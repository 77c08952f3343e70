"""The safe-DDL lint: every rule fires on an example and stays silent on its safer form."""
import glob
import os

import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import discover
from ansible_collections.poststack.core.plugins.module_utils.migrations.lint import lint_file
from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import check_sql

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5))


def rules(sql, created=(), no_transaction=False, lock_timeout_disabled=False):
    checked = check_sql("009_x.sql", sql, no_transaction)
    found = lint_file("009_x.sql", sql, checked.statements, set(created), lock_timeout_disabled)
    return [(finding.rule, finding.line) for finding in found]


@pytest.mark.parametrize("rule, unsafe, safe", [
    ("require-concurrent-index-creation", "CREATE INDEX users_email ON users (email);",
     "-- poststack:no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);"),
    ("require-concurrent-index-creation", "create unique index if not exists on public.users using btree (email);",
     "-- poststack:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS u ON public.users (email);"),
    ("require-concurrent-index-deletion", "DROP INDEX users_email;",
     "-- poststack:no-transaction\nDROP INDEX CONCURRENTLY users_email;"),
    ("adding-foreign-key-constraint", "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users;",
     "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users NOT VALID;"),
    ("constraint-missing-not-valid", "ALTER TABLE orders ADD CHECK (total >= 0);",
     "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0) NOT VALID;\n"
     "-- validated in the next migration"),
    ("disallowed-unique-constraint", "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
     "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email;"),
    ("disallowed-unique-constraint", "ALTER TABLE users ADD PRIMARY KEY (id);",
     "ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX users_id;"),
    ("changing-column-type", "ALTER TABLE users ALTER COLUMN id TYPE bigint;",
     "ALTER TABLE users ADD COLUMN id_new bigint;"),
    ("changing-column-type", "alter table users alter id set data type bigint;", "ALTER TABLE users ADD id2 bigint;"),
    ("adding-not-nullable-field", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
     "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;"),
    ("adding-field-with-volatile-default", "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
     "ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now();"),
    ("adding-field-with-volatile-default", "ALTER TABLE users ADD COLUMN n bigserial;",
     "ALTER TABLE users ADD COLUMN n bigint;"),
    ("adding-field-with-volatile-default",
     "ALTER TABLE users ADD COLUMN lower_email text GENERATED ALWAYS AS (lower(email)) STORED;",
     "ALTER TABLE users ADD COLUMN lower_email text;"),
    ("adding-required-field", "ALTER TABLE users ADD COLUMN plan text NOT NULL;",
     "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';"),
    ("renaming-column", "ALTER TABLE users RENAME COLUMN email TO mail;", "ALTER TABLE users ADD COLUMN mail text;"),
    ("renaming-table", "ALTER TABLE users RENAME TO members;", "CREATE VIEW members AS SELECT * FROM users;"),
    ("ban-vacuum-full", "-- poststack:no-transaction\nVACUUM FULL users;", "-- poststack:no-transaction\nVACUUM users;"),
    ("ban-vacuum-full", "-- poststack:no-transaction\nVACUUM (FULL, ANALYZE) users;",
     "-- poststack:no-transaction\nVACUUM (ANALYZE) users;"),
    ("ban-vacuum-full", "CLUSTER users USING users_pkey;", "ANALYZE users;"),
])
def test_each_rule_fires_on_its_example_and_not_on_the_safer_form(rule, unsafe, safe):
    no_transaction = unsafe.startswith("-- poststack:no-transaction")
    found = rules(unsafe, no_transaction=no_transaction)
    assert [r for r, _line in found] == [rule], found
    assert rules(safe, no_transaction=safe.startswith("-- poststack:no-transaction")) == []


def test_the_lock_timeout_rule_fires_only_when_the_engine_has_none_and_the_file_sets_none():
    sql = "ALTER TABLE users ADD COLUMN bio text;"
    assert rules(sql) == []
    assert rules(sql, lock_timeout_disabled=True) == [("require-timeout-settings", 1)]
    assert rules("SET LOCAL lock_timeout = '5s';\n" + sql, lock_timeout_disabled=True) == []
    assert rules("CREATE TABLE t (id int);", lock_timeout_disabled=True) == []


def test_tables_created_in_the_run_are_new_and_exempt():
    sql = ("CREATE TABLE accounts (id int);\nCREATE INDEX accounts_id ON accounts (id);\n"
           "ALTER TABLE accounts ADD CONSTRAINT accounts_pk PRIMARY KEY (id);\n"
           "ALTER TABLE ONLY \"Accounts2\" ADD CHECK (id > 0);\n")
    assert rules(sql) == [("constraint-missing-not-valid", 4)]  # "Accounts2" is another table
    assert rules("ALTER TABLE Accounts ALTER COLUMN id TYPE bigint;", created={"accounts"}) == []
    assert rules('ALTER TABLE public."Mixed" ALTER COLUMN id TYPE bigint;', created={"Mixed"}) == []
    assert rules('ALTER TABLE public."Mixed" ALTER COLUMN id TYPE bigint;', created={"mixed"}) != []


def test_findings_name_the_line_and_a_file_can_silence_a_rule():
    sql = "-- 009\nBEGIN;\nALTER TABLE users\n  ALTER COLUMN id TYPE bigint;\nCREATE INDEX i ON users (a);\nCOMMIT;\n"
    assert rules(sql) == [("changing-column-type", 3), ("require-concurrent-index-creation", 5)]
    assert rules("-- poststack:lint-ignore changing-column-type, require-concurrent-index-creation\n" + sql) == []
    assert rules("-- poststack:lint-ignore changing-column-type\n" + sql) == [("require-concurrent-index-creation", 6)]


def test_the_collections_and_the_examples_migrations_are_clean():
    """What every user runs must not warn: the core schema and the example projects, each applied in one run."""
    directories = [os.path.join(ROOT, "migrations")] + sorted(
        os.path.dirname(path) for path in glob.glob(os.path.join(ROOT, "examples", "*", "migrations", "*.sql")))
    for directory in sorted(set(directories)):
        created = set()
        for item in discover(directory):
            checked = check_sql(item.filename, item.sql, item.no_transaction)
            assert lint_file(item.filename, item.sql, checked.statements, created) == [], directory


@pytest.mark.parametrize("sql, expected", [
    # a column called "type" is not a type change
    ("ALTER TABLE t ALTER COLUMN type SET DEFAULT 'x';", []),
    ("ALTER TABLE t ALTER COLUMN type DROP NOT NULL;", []),
    ("ALTER TABLE t ALTER COLUMN type TYPE text;", ["changing-column-type"]),
    ("ALTER TABLE t RENAME COLUMN type TO kind;", ["renaming-column"]),
    # commas inside parentheses and strings do not end an action; each action is linted
    ("ALTER TABLE t ADD COLUMN price numeric(10,2) NOT NULL;", ["adding-required-field"]),
    ("ALTER TABLE t ADD COLUMN price numeric(10,2) DEFAULT random();", ["adding-field-with-volatile-default"]),
    ("ALTER TABLE t ADD COLUMN c text GENERATED ALWAYS AS (coalesce(a, b)) STORED;",
     ["adding-field-with-volatile-default"]),
    ("ALTER TABLE t ADD COLUMN c text DEFAULT 'a,b' NOT NULL, ADD COLUMN d int;", []),
    ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID, ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id);",
     ["adding-foreign-key-constraint"]),
    ("ALTER TABLE t ADD COLUMN a int, ALTER COLUMN b TYPE bigint, ALTER COLUMN c SET NOT NULL;",
     ["changing-column-type", "adding-not-nullable-field"]),
])
def test_actions_are_linted_one_by_one(sql, expected):
    assert [rule for rule, _line in rules(sql)] == expected


def test_a_first_deployment_warns_about_nothing_even_without_a_lock_timeout():
    sql = ("CREATE TABLE n (a int);\nALTER TABLE n ADD COLUMN b int NOT NULL;\nCREATE INDEX n_a ON n (a);\n"
           "DROP INDEX n_a;\nDROP INDEX IF EXISTS public.n_a CASCADE;\n")
    assert rules(sql, lock_timeout_disabled=True) == []
    assert rules("DROP INDEX old_idx;", lock_timeout_disabled=True) == [
        ("require-timeout-settings", 1), ("require-concurrent-index-deletion", 1)]
