# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration files on disk: names, versions, checksums, attached rollback and verify scripts."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import DiscoveryError
from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import (
    NO_TRANSACTION_MARKER, strip_sql_comments,
)

MAX_VERSION = 2 ** 63 - 1

_FILE_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)(?P<kind>\.rollback|\.verify)?\.sql$")


def normalise_text(text: str) -> str:
    """Line endings normalised to LF, so a checkout with CRLF has the same checksum."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def has_no_transaction_marker(text: str) -> bool:
    for line in normalise_text(text).split("\n"):
        stripped = line.strip()
        if stripped:
            return stripped == NO_TRANSACTION_MARKER
    return False


@dataclass
class MigrationFile:
    """One migration as found on disk (rollback and verify scripts attached)."""

    version: int
    name: str
    path: str
    sql: str
    checksum: str
    no_transaction: bool = False
    rollback_path: Optional[str] = None
    rollback_sql: Optional[str] = None
    rollback_checksum: Optional[str] = None
    rollback_no_transaction: bool = False
    verify_path: Optional[str] = None
    verify_sql: Optional[str] = None

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)


def _read_sql(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise DiscoveryError("cannot read migration file %s: %s" % (path, exc.strerror))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiscoveryError("%s is not valid UTF-8 (byte %d): save it as UTF-8" % (path, exc.start))
    if text.startswith("\ufeff"):
        text = text[1:]
    return normalise_text(text)


def _is_blank_sql(text: str) -> bool:
    """Only whitespace and comments? (cheap line test first: the lexer only for files that look blank)."""
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(("--", "/*")):
            return False
    return not strip_sql_comments(text).strip()


def discover(directory: str) -> List[MigrationFile]:
    """All migrations in ``directory`` ordered by integer version.

    Errors (all of them in one exception, each naming its file): unparsable ``*.sql`` names, an upper-case
    extension, directories, broken links and other non-files named ``*.sql``, two files for one version, a rollback
    or verify script without its migration, version 0 or above bigint, empty files, non-UTF-8 text.
    """
    if not os.path.isdir(directory):
        raise DiscoveryError("migrations directory %s does not exist or is not a directory" % directory)
    migrations: Dict[int, Dict[str, str]] = {}
    rollbacks: Dict[int, Tuple[str, str]] = {}
    verifies: Dict[int, Tuple[str, str]] = {}
    problems: List[str] = []
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if entry.startswith(".") or not entry.lower().endswith(".sql"):
            continue
        if not entry.endswith(".sql"):
            problems.append("%s: the extension must be .sql in lower case; rename it" % entry)
            continue
        if os.path.isdir(path):
            problems.append("%s: is a directory, not a migration file; rename or move it" % entry)
            continue
        if os.path.islink(path) and not os.path.exists(path):
            problems.append("%s: is a symbolic link to %s, which does not exist; fix or remove the link"
                            % (entry, os.readlink(path)))
            continue
        if not os.path.isfile(path):
            problems.append("%s: is not a regular file; replace it with one" % entry)
            continue
        match = _FILE_NAME.match(entry)
        if not match:
            problems.append(
                "%s: cannot parse the name; use NNN_name.sql, NNN_name.rollback.sql or NNN_name.verify.sql "
                "(NNN digits, name of letters, digits, _ and -)" % entry
            )
            continue
        version = int(match.group("version"))
        if version < 1 or version > MAX_VERSION:
            problems.append("%s: version %d is out of range 1..%d" % (entry, version, MAX_VERSION))
            continue
        name = match.group("name")
        kind = match.group("kind")
        target = migrations if kind is None else (rollbacks if kind == ".rollback" else verifies)
        if version in target:
            existing = target[version]
            other = existing["file"] if kind is None else existing[1]
            problems.append("duplicate version %d: %s and %s; give one of them another number" % (version, other, entry))
            continue
        if kind is None:
            migrations[version] = {"file": entry, "name": name}
        else:
            target[version] = (name, entry)
    for label, attached in (("rollback", rollbacks), ("verify", verifies)):
        for version, (name, entry) in sorted(attached.items()):
            owner = migrations.get(version)
            if owner is None:
                problems.append("%s: %s script without its migration %03d_%s.sql" % (entry, label, version, name))
            elif owner["name"] != name:
                problems.append("%s: %s script name does not match its migration %s" % (entry, label, owner["file"]))
    # The contents of every file that has a usable name are read even when other files have problems, so that one
    # run names every bad file.
    result = []
    for version in sorted(migrations):
        try:
            result.append(_load(directory, version, migrations[version], rollbacks.get(version), verifies.get(version)))
        except DiscoveryError as exc:
            problems.append(str(exc))
    if problems:
        raise DiscoveryError("invalid migration files in %s: %s" % (directory, "; ".join(problems)), {"problems": problems})
    return result


def _load(directory: str, version: int, migration: Dict[str, str], rollback: Optional[Tuple[str, str]],
          verify: Optional[Tuple[str, str]]) -> MigrationFile:
    path = os.path.join(directory, migration["file"])
    text = _read_sql(path)
    if _is_blank_sql(text):
        raise DiscoveryError("%s is empty (only comments or whitespace): write its SQL or remove the file" % path)
    item = MigrationFile(
        version=version, name=migration["name"], path=path, sql=text, checksum=checksum(text),
        no_transaction=has_no_transaction_marker(text),
    )
    if rollback:
        item.rollback_path = os.path.join(directory, rollback[1])
        item.rollback_sql = _read_sql(item.rollback_path)
        item.rollback_checksum = checksum(item.rollback_sql)
        item.rollback_no_transaction = has_no_transaction_marker(item.rollback_sql)
    if verify:
        item.verify_path = os.path.join(directory, verify[1])
        item.verify_sql = _read_sql(item.verify_path)
    return item
