# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adopting a database another tool migrated: which versions its history table says are applied.

golang-migrate keeps one row (the version, and ``dirty`` when a migration failed half-way): every version up
to it is applied. dbmate keeps one row per applied version. Flyway keeps one row per migration run, undo runs
included, with ``success``. A history that says a migration failed, or that holds versions poststack cannot
name (Flyway's dotted ones), is refused: adopting it would record a state nobody knows.
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Set, Tuple

from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import PlanError

TOOLS = ("golang-migrate", "dbmate", "flyway")
DEFAULT_TABLES = {"golang-migrate": "public.schema_migrations", "dbmate": "public.schema_migrations",
                  "flyway": "public.flyway_schema_history"}
QUERIES = {
    "golang-migrate": "SELECT version, dirty FROM {table}",
    "dbmate": "SELECT version FROM {table}",
    "flyway": "SELECT installed_rank, version, type, success, script FROM {table} ORDER BY installed_rank",
}
_TABLE = re.compile(r"^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?$")


def check_table(table: str) -> str:
    if not _TABLE.match(table or ""):
        raise PlanError("baseline_table %r must be [schema.]table in lower case" % (table,))
    return table


def _version(tool: str, value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise PlanError("%s's history holds version %r, which is not a whole number >= 1: poststack versions are "
                        "integers (rename the files and the history, or leave this one out)" % (tool, value))
    return int(text)


def applied_versions(tool: str, rows: Sequence[Tuple[Any, ...]], file_versions: Sequence[int]) -> Set[int]:
    """The versions the tool's history says are applied, from its table's rows."""
    if tool == "golang-migrate":
        if not rows:  # after a full "migrate down"
            return set()
        if len(rows) != 1:
            raise PlanError("golang-migrate's history holds %d rows; it keeps exactly one (the version)" % len(rows))
        version, dirty = rows[0]
        if dirty:
            raise PlanError("golang-migrate's history is dirty at version %s: that migration failed half-way. Repair "
                            "the schema by hand and clear the flag (migrate force %s) first" % (version, version))
        highest = _version(tool, version)
        return {v for v in file_versions if v <= highest} | {highest}
    if tool == "dbmate":
        return {_version(tool, row[0]) for row in rows}
    applied: Set[int] = set()
    for rank, version, kind, success, script in rows:
        if not success:
            raise PlanError("flyway's history records a failed run (installed_rank %s, %s): repair it with flyway "
                            "first" % (rank, script))
        if version is None or kind in ("SCHEMA", "DELETE"):  # repeatable migrations, the schema-creation marker
            continue
        number = _version(tool, version)
        if str(kind).startswith("UNDO"):  # UNDO_SQL, UNDO_JDBC, UNDO_SCRIPT...
            applied.discard(number)
        elif str(kind).endswith("BASELINE"):  # BASELINE, SQL_BASELINE...: everything up to it was there
            applied |= {v for v in file_versions if v <= number} | {number}
        else:  # SQL, JDBC, SCRIPT...
            applied.add(number)
    return applied


COLUMNS = {"golang-migrate": ({"version", "dirty"}, set()), "dbmate": ({"version"}, {"dirty"}),
           "flyway": ({"installed_rank", "version", "type", "success", "script"}, set())}


def read_history(conn: Any, tool: str, table: Optional[str], own_table: str) -> List[Tuple[Any, ...]]:
    """The rows of the other tool's history table: never poststack's own (compared by object, not by name), and
    only a table with that tool's columns (golang-migrate and dbmate both default to public.schema_migrations)."""
    table = check_table(table or DEFAULT_TABLES[tool])
    found, own = conn.execute("SELECT to_regclass(%s)::oid, to_regclass(%s)::oid", (table, own_table)).fetchone()
    if found is None:
        raise PlanError("%s's history table %s does not exist in this database: name it with baseline_table" % (tool, table))
    if found == own:
        raise PlanError("%s is poststack's own history table, not %s's: name the other tool's with baseline_table"
                        % (table, tool))
    columns = {row[0] for row in conn.execute(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped", (found,))}
    needed, absent = COLUMNS[tool]
    if not needed <= columns or absent & columns:
        raise PlanError("%s does not look like %s's history table (columns %s; it has %s)" % (
            table, tool, ", ".join(sorted(needed)) + ("" if not absent else ", without " + ", ".join(sorted(absent))),
            ", ".join(sorted(columns))))
    return [tuple(row) for row in conn.execute(QUERIES[tool].format(table=table)).fetchall()]
