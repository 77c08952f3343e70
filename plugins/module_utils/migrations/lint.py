# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The safe-DDL lint: statements of pending migrations that lock or rewrite a table other sessions use, each
with the file, the line and the safer form. The rules follow squawk's (https://squawkhq.com/docs/rules), named
as there where one matches. A table created earlier in the same run is new: nobody else uses it yet, so the
rules about existing tables stay silent for it.

A file silences a rule for itself with a comment line ``-- poststack:lint-ignore rule[, rule...]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Set

from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import Statement

LEVELS = ("error", "warn", "off")

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_NAME = r"(%s(?:\s*\.\s*%s)?)" % (_IDENT, _IDENT)
# A table or a materialized view (which can have indexes too) that this run makes: what is done to it is not
# done to a table others use.
_CREATE_TABLE = re.compile(r"^create\s+(?:(?:global\s+|local\s+)?(?:temp|temporary|unlogged)\s+)?"
                           r"(?:table|materialized\s+view)\s+(?:if\s+not\s+exists\s+)?" + _NAME, re.IGNORECASE)
_ALTER_TABLE = re.compile(r"^alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?" + _NAME + r"\s+(.*)$",
                          re.IGNORECASE | re.DOTALL)
_CREATE_INDEX = re.compile(r"^create\s+(?:unique\s+)?index\s+(concurrently\s+)?(?:if\s+not\s+exists\s+)?"
                           r"(?:(%s)\s+)?on\s+(?:only\s+)?%s" % (_NAME.replace("(", "(?:", 1), _NAME), re.IGNORECASE)
_DROP_INDEX = re.compile(r"^drop\s+index\s+(concurrently\s+)?", re.IGNORECASE)
_DROP_INDEX_NAMES = re.compile(r"^drop\s+index\s+(?:concurrently\s+)?(?:if\s+exists\s+)?|\s+(?:cascade|restrict)$",
                               re.IGNORECASE)
_VACUUM_FULL = re.compile(r"^vacuum\s*(\(\s*[^)]*\bfull\b[^)]*\)|\s+full\b)", re.IGNORECASE)
_CLUSTER = re.compile(r"^cluster\b", re.IGNORECASE)
_IGNORE = re.compile(r"^[ \t]*--[ \t]*poststack:lint-ignore[ \t]+([a-z0-9_, \t-]+?)[ \t]*$", re.IGNORECASE | re.MULTILINE)
_SET_LOCK_TIMEOUT = re.compile(r"^set\s+(?:local\s+|session\s+)?lock_timeout\b", re.IGNORECASE)
_TAKES_STRONG_LOCK = re.compile(r"^(alter\s+table|drop\s+table|truncate|create\s+(unique\s+)?index\s+(?!concurrently)"
                                r"|drop\s+index\s+(?!concurrently)|lock\s+table|reindex\s+(?!.*concurrently)"
                                r"|vacuum\s+full|cluster)\b", re.IGNORECASE)

# ALTER TABLE actions, matched within the statement after the table's name.
_COLUMN = r"(?:column\s+)?(?!column\b)%s" % _IDENT  # "ALTER COLUMN type ...": the column may be called "type"
_ALTER_TYPE = re.compile(r"^alter\s+%s\s+(?:set\s+data\s+)?type\b" % _COLUMN, re.IGNORECASE)
_ADD_CONSTRAINT = re.compile(r"^add\s+(?:constraint\s+%s\s+)?(foreign\s+key|check|unique|primary\s+key)\b"
                             % _IDENT, re.IGNORECASE)
_USING_INDEX = re.compile(r"\busing\s+index\s+%s" % _IDENT, re.IGNORECASE)
_NOT_VALID = re.compile(r"\bnot\s+valid\b", re.IGNORECASE)
_SET_NOT_NULL = re.compile(r"^alter\s+%s\s+set\s+not\s+null\b" % _COLUMN, re.IGNORECASE)
_ADD_COLUMN = re.compile(r"^add\s+(?!constraint\b|foreign\b|check\b|unique\b|primary\b|exclude\b)(?:column\s+)?"
                         r"(?:if\s+not\s+exists\s+)?(%s)\s+(.*)$" % _IDENT, re.IGNORECASE | re.DOTALL)
_VOLATILE_DEFAULT = re.compile(r"\bdefault\s+\(?\s*(random|gen_random_uuid|uuid_generate_v[14]|clock_timestamp|"
                               r"timeofday|nextval|txid_current)\s*\(", re.IGNORECASE)
_SERIAL = re.compile(r"^(?:small|big)?serial\b|^serial[248]\b", re.IGNORECASE)
_STORED = re.compile(r"\bgenerated\s+always\s+as\s*\(.*\)\s*stored\b", re.IGNORECASE | re.DOTALL)
_NOT_NULL = re.compile(r"\bnot\s+null\b", re.IGNORECASE)
_DEFAULT = re.compile(r"\bdefault\b", re.IGNORECASE)
_RENAME_COLUMN = re.compile(r"^rename\s+(?!to\b|constraint\b)%s\s+to\b" % _COLUMN, re.IGNORECASE)
_RENAME_TABLE = re.compile(r"^rename\s+to\b", re.IGNORECASE)


@dataclass
class Finding:
    file: str
    line: int
    rule: str
    statement: str
    problem: str
    safer: str

    def describe(self) -> str:
        return "%s line %d: %s [%s]: %s; instead: %s" % (
            self.file, self.line, self.statement, self.rule, self.problem, self.safer)


def _actions(text: str) -> List[str]:
    """The actions of an ALTER TABLE, split at the commas outside parentheses and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _norm(name: str) -> str:
    """A table name as PostgreSQL folds it, without its schema (enough to match a CREATE with a later ALTER)."""
    last = re.split(r'\s*\.\s*(?=(?:[^"]*"[^"]*")*[^"]*$)', name.strip())[-1]
    return last[1:-1].replace('""', '"') if last.startswith('"') else last.lower()


def ignored_rules(text: str) -> Set[str]:
    return {rule.strip().lower() for match in _IGNORE.finditer(text) for rule in match.group(1).split(",")
            if rule.strip()}


def lint_file(filename: str, text: str, statements: Iterable[Statement], created: Set[str],
              lock_timeout_disabled: bool = False) -> List[Finding]:
    """Findings for one migration. ``created``: tables made earlier in this run (updated with this file's)."""
    findings: List[Finding] = []
    ignore = ignored_rules(text)
    statements = list(statements)
    sets_lock_timeout = any(_SET_LOCK_TIMEOUT.match(statement.head) for statement in statements)

    def add(statement: Statement, rule: str, problem: str, safer: str) -> None:
        if rule not in ignore:
            head = statement.head
            shown = head if len(head) <= 80 else head[:77] + "..."
            findings.append(Finding(filename, statement.line, rule, shown, problem, safer))

    for statement in statements:
        head = statement.head
        made = _CREATE_TABLE.match(head)
        if made:
            created.add(_norm(made.group(1)))
            continue
        index = _CREATE_INDEX.match(head)
        altered = _ALTER_TABLE.match(head)
        dropped = _DROP_INDEX.match(head)
        table = index.group(3) if index else altered.group(1) if altered else None
        new = table is not None and _norm(table) in created
        if dropped:  # an index made earlier in the run is new too: "index:" keeps its name apart from tables'
            names = [_norm(name) for name in re.split(r"\s*,\s*", _DROP_INDEX_NAMES.sub("", head))]
            new = all("index:" + name in created for name in names)
        if lock_timeout_disabled and not sets_lock_timeout and not new and _TAKES_STRONG_LOCK.match(head):
            add(statement, "require-timeout-settings",
                "takes a strong lock with lock_timeout disabled: it queues behind any long transaction, and "
                "every query on the table queues behind it", "SET LOCAL lock_timeout = '5s' at the top of the file "
                "(retried on 55P03), or keep the engine's lock_timeout")
        if index:
            if index.group(2):
                created.add("index:" + _norm(index.group(2)))
            if not index.group(1) and not new:
                add(statement, "require-concurrent-index-creation",
                    "blocks every write to the table while the index builds",
                    "CREATE INDEX CONCURRENTLY, alone in a file whose first line is -- poststack:no-transaction")
            continue
        if dropped:
            if not dropped.group(1) and not new:
                add(statement, "require-concurrent-index-deletion",
                    "takes an ACCESS EXCLUSIVE lock on the index's table",
                    "DROP INDEX CONCURRENTLY, alone in a file whose first line is -- poststack:no-transaction")
            continue
        if _VACUUM_FULL.match(head) or _CLUSTER.match(head):
            add(statement, "ban-vacuum-full", "rewrites the whole table under an ACCESS EXCLUSIVE lock",
                "leave it out of migrations (plain VACUUM, or pg_repack outside them)")
            continue
        if altered and not new:
            _lint_alter(statement, altered.group(2), add)
    return findings


def _lint_alter(statement: Statement, actions: str, add) -> None:
    for action in _actions(actions):
        _lint_action(statement, action, add)


def _lint_action(statement: Statement, action: str, add) -> None:
    if _ALTER_TYPE.search(action):
        add(statement, "changing-column-type", "rewrites the table and its indexes under an ACCESS EXCLUSIVE lock",
            "add a column of the new type, backfill it in batches, switch readers, drop the old one")
    constraint = _ADD_CONSTRAINT.search(action)
    if constraint:
        kind = " ".join(constraint.group(1).lower().split())
        if kind in ("foreign key", "check") and not _NOT_VALID.search(action):
            add(statement, "constraint-missing-not-valid" if kind == "check" else "adding-foreign-key-constraint",
                "checks every row while holding a lock that blocks writes%s"
                % (" to both tables" if kind == "foreign key" else ""),
                "ADD CONSTRAINT ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later migration")
        elif kind in ("unique", "primary key") and not _USING_INDEX.search(action):
            add(statement, "disallowed-unique-constraint",
                "builds its index while blocking every write to the table",
                "CREATE UNIQUE INDEX CONCURRENTLY (no-transaction file), then ADD CONSTRAINT ... %s USING INDEX"
                % kind.upper())
    if _SET_NOT_NULL.search(action):
        add(statement, "adding-not-nullable-field", "scans the whole table under an ACCESS EXCLUSIVE lock",
            "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT "
            "NULL (PostgreSQL uses the valid check instead of scanning)")
    column = _ADD_COLUMN.search(action)
    if column:
        definition = column.group(2)
        if _VOLATILE_DEFAULT.search(definition) or _SERIAL.match(definition.strip()) or _STORED.search(definition):
            add(statement, "adding-field-with-volatile-default",
                "rewrites the whole table under an ACCESS EXCLUSIVE lock (a volatile default, a serial or a stored "
                "generated column is computed for every row)",
                "add the column without it, backfill in batches, then SET DEFAULT")
        elif _NOT_NULL.search(definition) and not _DEFAULT.search(definition):
            add(statement, "adding-required-field", "fails as soon as the table has a row",
                "add it nullable (or NOT NULL with a DEFAULT), backfill, then set NOT NULL")
    if _RENAME_COLUMN.search(action):
        add(statement, "renaming-column", "breaks every running client that still uses the old name",
            "add a column of the new name, write both, move the clients, then drop the old one")
    if _RENAME_TABLE.search(action):
        add(statement, "renaming-table", "breaks every running client that still uses the old name",
            "rename, then create a view of the old name for the clients until they have moved")
