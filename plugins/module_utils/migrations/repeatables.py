# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flyway's repeatable migrations (``R__description.sql``), read in place: files without a version that are
applied after the versioned migrations of a run, in the order of their descriptions, whenever one is new or its
checksum changed (views, functions, grants: SQL that is written to be run again). Their history is a row per
stream and name (the tracking schema's ``schema_repeatables``); they have no rollback, and a rollback of the
versioned migrations leaves them as they are. Discovery, planning and status here are pure; the engine runs them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import DiscoveryError
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import (
    REPEATABLE_NAME, checksum, has_no_transaction_marker, is_blank_sql, read_sql,
)

TABLE = "schema_repeatables"
LAYOUTS = ("auto", "flyway")  # the layouts whose directories may hold them


@dataclass
class Repeatable:
    """One R__ file as found on disk."""

    name: str  # the description: what follows R__
    path: str
    sql: str
    checksum: str
    no_transaction: bool = False

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)


@dataclass
class RepeatableStep:
    """A repeatable migration a run applies: ``new`` (never applied) or ``changed`` (its checksum differs)."""

    name: str
    file: str
    reason: str
    no_transaction: bool = False

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def discover_repeatables(directory: str, layout: str = "auto") -> List[Repeatable]:
    """The R__ files of ``directory`` by name; none for layouts without them. Every unreadable or empty one is
    named in one error."""
    if layout not in LAYOUTS or not os.path.isdir(directory):
        return []
    found: List[Repeatable] = []
    problems: List[str] = []
    for entry in sorted(os.listdir(directory)):
        match = REPEATABLE_NAME.match(entry)
        path = os.path.join(directory, entry)
        if match is None or not os.path.isfile(path):
            continue  # discover() names what else is wrong with the directory
        try:
            text = read_sql(path)
        except DiscoveryError as exc:
            problems.append(str(exc))
            continue
        if is_blank_sql(text):
            problems.append("%s is empty (only comments or whitespace): write its SQL or remove the file" % path)
            continue
        found.append(Repeatable(match.group("name"), path, text, checksum(text), has_no_transaction_marker(text)))
    if problems:
        raise DiscoveryError("invalid repeatable migrations in %s: %s" % (directory, "; ".join(problems)),
                             {"problems": problems})
    return sorted(found, key=lambda item: item.name)


def plan_repeatables(repeatables: Sequence[Repeatable], recorded: Dict[str, str]) -> List[RepeatableStep]:
    """What a run applies after its versioned migrations: each repeatable never applied (``recorded``: name ->
    checksum of the stream's history) or changed since, in name order."""
    steps = []
    for item in repeatables:
        applied = recorded.get(item.name)
        if applied != item.checksum:
            steps.append(RepeatableStep(item.name, item.filename, "new" if applied is None else "changed",
                                        item.no_transaction))
    return steps


def repeatable_states(repeatables: Sequence[Repeatable], recorded: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """For a status: every repeatable file and every recorded one, with its state: ``applied`` (as recorded),
    ``pending`` (never applied), ``changed`` (applied, since edited: the next run applies it again) or ``missing``
    (recorded, its file gone)."""
    states = []
    for item in repeatables:
        row: Optional[Dict[str, Any]] = recorded.get(item.name)
        state = "pending" if row is None else ("applied" if row["checksum"] == item.checksum else "changed")
        states.append({"name": item.name, "file": item.filename, "state": state,
                       "applied_at": row["applied_at"] if row else None})
    on_disk = {item.name for item in repeatables}
    for name in sorted(set(recorded) - on_disk):
        states.append({"name": name, "file": None, "state": "missing", "applied_at": recorded[name]["applied_at"]})
    return states
