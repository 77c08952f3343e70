# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQL lexer: statements of a file (for no-transaction files) and the pre-flight checks of every file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import DiscoveryError

NO_TRANSACTION_MARKER = "-- poststack:no-transaction"

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_TRANSACTION_CONTROL = re.compile(
    r"^(begin|commit|rollback|abort|end|start\s+transaction|savepoint|release|prepare\s+transaction)\b", re.IGNORECASE
)
# A file that wraps its whole body in BEGIN ... COMMIT (as golang-migrate and dbmate sets often do, and as
# `psql -1` accepts): the wrapper is dropped and the body runs in the migration's own transaction.
_WRAP_BEGIN = re.compile(r"^(begin(\s+(work|transaction))?|start\s+transaction)$", re.IGNORECASE)
_WRAP_BEGIN_WITH_MODES = re.compile(r"^(begin|start\s+transaction)\b", re.IGNORECASE)
_WRAP_COMMIT = re.compile(r"^(commit|end)(\s+(work|transaction))?$", re.IGNORECASE)
# Savepoints work inside the migration's transaction.
_SAVEPOINT = re.compile(r"^(savepoint|release|rollback(\s+(work|transaction))?\s+to)\b", re.IGNORECASE)
_NEEDS_NO_TRANSACTION = re.compile(
    r"^(create\s+(unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|reindex\b.*\bconcurrently\b|vacuum\b"
    r"|create\s+database|drop\s+database|alter\s+system|create\s+tablespace|drop\s+tablespace"
    r"|alter\s+table\b.*\bdetach\s+partition\b.*\bconcurrently\b)",
    re.IGNORECASE | re.DOTALL,
)
_PSQL_META = re.compile(r"^\\[a-zA-Z!?]")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class SqlLexError(ValueError):
    pass


def _scan(text: str) -> Iterable[Tuple[str, int, int]]:
    """Yield ``(kind, start, end)`` spans: 'code', 'string', 'comment', 'semicolon'. Raises on unterminated."""
    i = 0
    n = len(text)
    code_start = 0

    def flush(upto: int) -> Iterable[Tuple[str, int, int]]:
        if upto > code_start:
            yield ("code", code_start, upto)

    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            yield from flush(i)
            end = text.find("\n", i)
            end = n if end == -1 else end
            yield ("comment", i, end)
            i = code_start = end
        elif ch == "/" and nxt == "*":
            yield from flush(i)
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise SqlLexError("unterminated /* comment starting at line %d" % line_of(text, i))
            yield ("comment", i, j)
            i = code_start = j
        elif ch == "'" or ch == '"':
            escapes = ch == "'" and i > 0 and text[i - 1] in "eE" and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] == "_"))
            yield from flush(i)
            j = i + 1
            while True:
                if j >= n:
                    kind = "string" if ch == "'" else "quoted identifier"
                    raise SqlLexError("unterminated %s starting at line %d" % (kind, line_of(text, i)))
                if escapes and text[j] == "\\":
                    j += 2
                    continue
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:
                        j += 2
                        continue
                    j += 1
                    break
                j += 1
            yield ("string", i, j)
            i = code_start = j
        elif ch == "$" and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
            match = _DOLLAR_TAG.match(text, i)
            if not match:
                i += 1
                continue
            tag = match.group(0)
            yield from flush(i)
            end = text.find(tag, match.end())
            if end == -1:
                raise SqlLexError("unterminated dollar-quoted string %s starting at line %d" % (tag, line_of(text, i)))
            yield ("string", i, end + len(tag))
            i = code_start = end + len(tag)
        elif ch == ";":
            yield from flush(i)
            yield ("semicolon", i, i + 1)
            i = code_start = i + 1
        else:
            i += 1
    yield from flush(n)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


@dataclass
class Statement:
    sql: str
    line: int
    start: int = 0  # offsets in the text: its first token, and just after its semicolon (or the text's end)
    end: int = 0

    @property
    def head(self) -> str:
        """The statement without comments, whitespace collapsed (for keyword checks and messages)."""
        return " ".join(strip_sql_comments(self.sql).split())


def split_sql(text: str) -> List[Statement]:
    """Split SQL into statements on top-level semicolons (strings, dollar quotes, comments respected).

    A statement's line is the line of its first token that is not a comment.
    """
    statements: List[Statement] = []
    start = 0
    first_token: Optional[int] = None
    atomic, previous = 0, ""  # inside a BEGIN ATOMIC ... END body (SQL-standard function bodies): how deep
    for kind, begin, end in list(_scan(text)) + [("semicolon", len(text), len(text))]:
        if kind == "code":
            for word in _WORD.findall(text, begin, end):
                word = word.lower()
                if previous == "begin" and word == "atomic" and not atomic:
                    atomic = 1
                elif atomic and word == "case":
                    atomic += 1
                elif atomic and word == "end":
                    atomic -= 1
                previous = word
        if kind == "semicolon" and atomic and end < len(text):
            continue  # a semicolon inside the body: the statement goes on
        if kind == "semicolon":
            atomic, previous = 0, ""
            if first_token is not None:
                statements.append(Statement(sql=text[start:begin].strip(), line=line_of(text, first_token),
                                            start=first_token, end=end))
            start, first_token = end, None
        elif kind != "comment" and first_token is None and text[begin:end].strip():
            first_token = begin + len(text[begin:end]) - len(text[begin:end].lstrip())
    return statements


def strip_sql_comments(text: str) -> str:
    try:
        spans = list(_scan(text))
    except SqlLexError:
        return text
    return "".join(text[b:e] if kind != "comment" else " " for kind, b, e in spans)


@dataclass
class CheckedSql:
    """A file that passed the pre-flight: its statements, and the text to run (a wrapping BEGIN/COMMIT blanked
    out, lines and offsets unchanged, so that an error's position still names the file's line)."""
    statements: List[Statement]
    body: str
    unwrapped: bool = False


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + "".join(ch if ch == "\n" else " " for ch in text[start:end]) + text[end:]


_VERIFY_END = re.compile(r"^(commit|end|rollback|abort)(\s+(work|transaction))?$", re.IGNORECASE)


def verify_body(text: str) -> str:
    """A verify script without a BEGIN ... ROLLBACK (or COMMIT) around it, Sqitch's template: the engine runs it
    in a transaction of its own and rolls that back. Lines are kept; any other text is returned as it is."""
    try:
        statements = split_sql(text)
    except SqlLexError:
        return text
    if (len(statements) >= 2 and _WRAP_BEGIN.match(statements[0].head)
            and _VERIFY_END.match(statements[-1].head)):
        return _blank(_blank(text, statements[-1].start, statements[-1].end), statements[0].start, statements[0].end)
    return text


def check_sql(filename: str, text: str, no_transaction: bool) -> CheckedSql:
    """Pre-flight checks of one file before anything runs. Every problem of the file is named (one
    DiscoveryError, its details holding the list); a BEGIN/COMMIT pair around the whole body is taken off."""
    try:
        statements = split_sql(text)
    except SqlLexError as exc:
        raise DiscoveryError("%s: %s" % (filename, exc), {"problems": ["%s: %s" % (filename, exc)]})
    heads = [statement.head for statement in statements]
    shape = (not no_transaction and len(statements) >= 2 and bool(_WRAP_BEGIN_WITH_MODES.match(heads[0]))
             and bool(_WRAP_COMMIT.match(heads[-1])))
    wrapped = shape and bool(_WRAP_BEGIN.match(heads[0]))
    problems = []
    for index, (statement, head) in enumerate(zip(statements, heads)):
        where = "%s line %d: %r" % (filename, statement.line, head[:60])
        if _PSQL_META.match(head):
            problems.append("%s line %d: psql meta-command %r is not SQL; migrations run through the server, not psql"
                            % (filename, statement.line, head.split()[0]))
        elif shape and index in (0, len(statements) - 1):
            if not wrapped and index == 0:
                problems.append("%s sets transaction modes, which a migration cannot choose: remove them, or the "
                                "BEGIN/COMMIT around the file (each migration runs in its own transaction)" % where)
        elif _SAVEPOINT.match(head) and not no_transaction:
            continue
        elif _TRANSACTION_CONTROL.match(head):
            if no_transaction:
                problems.append("%s controls the transaction; a %s file runs statement by statement, each in "
                                "its own transaction: remove it" % (where, NO_TRANSACTION_MARKER))
            else:
                problems.append("%s controls the transaction; a migration is one transaction: a BEGIN ... "
                                "COMMIT around the whole file is taken off, anything else must go (split the "
                                "file in two, or remove it)" % where)
        elif not no_transaction and _NEEDS_NO_TRANSACTION.match(head):
            problems.append("%s cannot run inside a transaction; put it in its own file whose first line is %s"
                            % (where, NO_TRANSACTION_MARKER))
    if problems:
        raise DiscoveryError("; ".join(problems), {"problems": problems})
    if not wrapped:
        return CheckedSql(statements, text)
    body = _blank(_blank(text, statements[-1].start, statements[-1].end), statements[0].start, statements[0].end)
    return CheckedSql(statements[1:-1], body, unwrapped=True)
