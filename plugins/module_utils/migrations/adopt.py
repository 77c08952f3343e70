# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adopting a database another tool migrated: which versions its history table says are applied.

golang-migrate keeps one row (the version, and ``dirty`` when a migration failed half-way): every version up
to it is applied. dbmate keeps one row per applied version. Flyway keeps one row per migration run, undo runs
included, with ``success``. Sqitch keeps one row per deployed change in its registry's ``changes`` (a reverted
change is deleted, a failed deploy is reverted), named, not numbered: the change is the migration of that name, and
a registry shared by several projects is read for the plan's project. A history that says a migration failed, or
that holds versions poststack cannot name (Flyway's dotted ones, a change the files do not have), is refused:
adopting it would record a state nobody knows.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import PlanError

TOOLS = ("golang-migrate", "dbmate", "flyway", "sqitch")
SCHEMA = "schema"  # baseline_from's other source: the live schema (schema_baseline.py), not a tool's history
DEFAULT_TABLES = {"golang-migrate": "public.schema_migrations", "dbmate": "public.schema_migrations",
                  "flyway": "public.flyway_schema_history", "sqitch": "sqitch.changes"}
QUERIES = {
    "golang-migrate": "SELECT version, dirty FROM {table}",
    "dbmate": "SELECT version FROM {table}",
    "flyway": "SELECT installed_rank, version, type, success, script FROM {table} ORDER BY installed_rank",
    "sqitch": "SELECT change, project FROM {table} ORDER BY committed_at, change",
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


def _sqitch_versions(rows: Sequence[Tuple[Any, ...]], names: Dict[str, int], project: Optional[str]) -> Set[int]:
    """Sqitch's deployed changes of the project, as the versions of the migrations of those names."""
    projects = sorted({str(row[1]) for row in rows})
    if project is None and len(projects) > 1:
        raise PlanError("sqitch's registry holds the changes of %d projects (%s) and the migrations name none (a "
                        "sqitch.plan with %%project=NAME): adopt from a Sqitch project directory"
                        % (len(projects), ", ".join(projects)))
    if project is not None and projects and project not in projects:
        raise PlanError("sqitch's registry holds no change of project %s, the one sqitch.plan names (it holds %s): "
                        "name the registry's changes table of this project with baseline_table"
                        % (project, ", ".join(projects)))
    deployed = [str(row[0]) for row in rows if project is None or str(row[1]) == project]
    unknown = [change for change in deployed if change not in names]
    if unknown:
        raise PlanError("sqitch's registry holds deployed change%s %s, which the migrations do not have: poststack "
                        "would record a state nobody knows (add the change%s, or revert %s with sqitch first)"
                        % ("s" if len(unknown) > 1 else "", ", ".join(unknown), "s" if len(unknown) > 1 else "",
                           "them" if len(unknown) > 1 else "it"))
    return {names[change] for change in deployed}


def applied_versions(tool: str, rows: Sequence[Tuple[Any, ...]], file_versions: Sequence[int],
                     names: Optional[Dict[str, int]] = None, project: Optional[str] = None) -> Set[int]:
    """The versions the tool's history says are applied, from its table's rows. ``names`` (a migration's name ->
    its version) and ``project`` (the Sqitch plan's) are Sqitch's: its history names changes."""
    if tool == "sqitch":
        return _sqitch_versions(rows, names or {}, project)
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
           "flyway": ({"installed_rank", "version", "type", "success", "script"}, set()),
           "sqitch": ({"change_id", "change", "project", "script_hash", "committed_at"}, set())}


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
