# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration files on disk: names, versions, checksums, attached rollback and verify scripts.

Three layouts are read in place, file by file (``layout`` ``auto``) or one only:

- ``poststack``: ``NNN_name.sql``, ``NNN_name.rollback.sql``, ``NNN_name.verify.sql``;
- ``golang-migrate``: ``NNN_title.up.sql``, ``NNN_title.down.sql``;
- ``dbmate``: ``NNN_name.sql`` holding ``-- migrate:up`` and ``-- migrate:down`` parts (``transaction:false``
  on a marker: that part runs without a transaction);
- ``flyway``: ``VNNN__description.sql`` with the undo ``UNNN__description.sql`` (whole-number versions); its
  repeatable ``R__description.sql`` files are read by repeatables.py, here they are left out;
- ``sqitch``: a Sqitch project (``sqitch.plan``, ``deploy/``, ``revert/``, ``verify/``): the plan's Nth change is
  version N (a plan only grows at its end), its deploy script the migration, its revert script the rollback.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.poststack.core.plugins.module_utils.migrations.checksum_cache import ChecksumCache
from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import DiscoveryError
from ansible_collections.poststack.core.plugins.module_utils.migrations import sqltext
from ansible_collections.poststack.core.plugins.module_utils.migrations.sqltext import (
    NO_TRANSACTION_MARKER, strip_sql_comments, verify_body,
)

MAX_VERSION = 2 ** 63 - 1

_FILE_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)(?P<kind>\.rollback|\.verify)?\.sql$")
_GOLANG_MIGRATE_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>[^/]+?)\.(?P<kind>up|down)\.sql$")
_FLYWAY_NAME = re.compile(r"^(?P<kind>[VU])(?P<version>[0-9]+(?:[._][0-9]+)*)__(?P<name>.+)\.sql$")
REPEATABLE_NAME = re.compile(r"^R__(?P<name>.+)\.sql$")  # Flyway's; repeatables.py reads them (auto, flyway)
# Which formats take a name of each shape (a dbmate file is named as poststack's are).
_NAME_FORMATS = {"poststack": ("auto", "poststack", "dbmate"), "golang-migrate": ("auto", "golang-migrate"),
                 "flyway": ("auto", "flyway")}
_DBMATE_MARKER = re.compile(r"^--[ \t]*migrate:(?P<part>up|down)(?=[ \t]|$)(?P<options>[^\n]*)$", re.MULTILINE)
LAYOUTS = ("auto", "poststack", "golang-migrate", "dbmate", "flyway", "sqitch")
SQITCH_PLAN = "sqitch.plan"
# A change line of sqitch.plan: the name, then dependencies in brackets, then the time it was planned.
_SQITCH_CHANGE = re.compile(r"^(?P<name>[^\s@#:%\[\]][^\s#:\[\]]*)\s*(?:\[(?P<deps>[^\]]*)\]\s*)?"
                            r"(?P<planned>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\b")
# The modules' option for it (documented once, in the doc fragment poststack.core.migration_files).
FORMAT_ARGUMENT_SPEC = {"format": {"type": "str", "default": "auto", "choices": list(LAYOUTS)}}


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
    """One migration as found on disk (rollback and verify scripts attached). Found through the checksum cache,
    its texts (sql, rollback_sql, verify_sql) are None until load(); its checksums are always there."""

    version: int
    name: str
    path: str
    sql: Optional[str]
    checksum: str
    no_transaction: bool = False
    rollback_path: Optional[str] = None
    rollback_sql: Optional[str] = None
    rollback_checksum: Optional[str] = None
    rollback_no_transaction: bool = False
    verify_path: Optional[str] = None
    verify_sql: Optional[str] = None
    loader: Optional[Callable[[], "MigrationFile"]] = field(default=None, repr=False, compare=False)

    def load(self) -> "MigrationFile":
        """Read the texts of a migration found through the cache (a no-op otherwise)."""
        if self.loader is not None:
            read = self.loader()
            if _kept(read) != _kept(self):
                raise DiscoveryError("%s changed while this run read it: run again" % self.filename)
            self.sql, self.rollback_sql, self.verify_sql = read.sql, read.rollback_sql, read.verify_sql
            self.loader = None
        return self

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)

    @property
    def rollback_filename(self) -> Optional[str]:
        if self.rollback_path is None:
            return None
        if self.rollback_path == self.path:
            return "%s (its -- migrate:down part)" % self.filename
        return os.path.basename(self.rollback_path)


def read_sql(path: str) -> str:
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


def is_blank_sql(text: str) -> bool:
    """Only whitespace and comments? (cheap line test first: the lexer only for files that look blank)."""
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(("--", "/*")):
            return False
    return not strip_sql_comments(text).strip()


def discover(directory: str, layout: str = "auto", cache: Optional[ChecksumCache] = None) -> List[MigrationFile]:
    """All migrations in ``directory`` ordered by integer version. With ``cache``, a migration whose files are
    unchanged since a run read them is not read again (its texts are read by MigrationFile.load when needed).

    Errors (all of them in one exception, each naming its file): unparsable ``*.sql`` names, an upper-case
    extension, directories, broken links and other non-files named ``*.sql``, two files for one version, a rollback
    or verify script without its migration, version 0 or above bigint, empty files, non-UTF-8 text, and with a
    ``layout`` other than ``auto`` every file of another layout.
    """
    if layout not in LAYOUTS:
        raise DiscoveryError("format %r is not one of %s" % (layout, ", ".join(LAYOUTS)))
    if not os.path.isdir(directory):
        raise DiscoveryError("migrations directory %s does not exist or is not a directory" % directory)
    if layout == "sqitch" or (layout == "auto" and os.path.isfile(os.path.join(directory, SQITCH_PLAN))):
        return discover_sqitch(directory)
    migrations: Dict[int, Dict[str, str]] = {}
    rollbacks: Dict[int, Tuple[str, str]] = {}
    verifies: Dict[int, Tuple[str, str]] = {}
    problems: List[str] = []
    stats: Dict[str, os.stat_result] = {}  # one stat per file: the checksum cache's signature takes it too
    with os.scandir(directory) as listing:
        found = sorted(listing, key=lambda item: item.name)
    for item in found:
        entry = item.name
        if entry.startswith(".") or not entry.lower().endswith(".sql"):
            continue
        if not entry.endswith(".sql"):
            problems.append("%s: the extension must be .sql in lower case; rename it" % entry)
            continue
        try:
            info = item.stat()  # the link's target for a symbolic link
        except OSError:
            if item.is_symlink():
                problems.append("%s: is a symbolic link to %s, which does not exist; fix or remove the link"
                                % (entry, os.readlink(item.path)))
            else:
                problems.append("%s: is not a regular file; replace it with one" % entry)
            continue
        if stat.S_ISDIR(info.st_mode):
            problems.append("%s: is a directory, not a migration file; rename or move it" % entry)
            continue
        if not stat.S_ISREG(info.st_mode):
            problems.append("%s: is not a regular file; replace it with one" % entry)
            continue
        stats[entry] = info
        parsed = _parse_name(entry)
        if REPEATABLE_NAME.match(entry):
            if layout not in ("auto", "flyway"):
                problems.append("%s: is Flyway's repeatable migration, not a %s name (format %s); set the format to "
                                "flyway or auto, or move it" % (entry, layout, layout))
            continue
        if parsed is None:
            problems.append(
                "%s: cannot parse the name; use NNN_name.sql, NNN_name.rollback.sql or NNN_name.verify.sql "
                "(NNN digits, name of letters, digits, _ and -), or golang-migrate's NNN_title.up.sql and "
                "NNN_title.down.sql, or Flyway's VNNN__description.sql and UNNN__description.sql" % entry
            )
            continue
        shape, version_text, name, kind = parsed
        if layout not in _NAME_FORMATS[shape]:
            problems.append("%s: is not a %s name (format %s); rename it or set the format to auto"
                            % (entry, layout, layout))
            continue
        if not version_text.isdigit():
            problems.append("%s: version %s is not a whole number; poststack versions are integers: rename the file"
                            % (entry, version_text))
            continue
        version = int(version_text)
        if version < 1 or version > MAX_VERSION:
            problems.append("%s: version %d is out of range 1..%d" % (entry, version, MAX_VERSION))
            continue
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
                problems.append("%s: %s script without its migration %s" % (entry, label, _migration_name(entry, name)))
            elif owner["name"] != name:
                problems.append("%s: %s script name does not match its migration %s" % (entry, label, owner["file"]))
    # The contents of every file that has a usable name are read even when other files have problems, so that one
    # run names every bad file.
    result = []
    for version in sorted(migrations):
        load = functools.partial(_load, directory, version, migrations[version], rollbacks.get(version),
                                 verifies.get(version), layout)
        try:
            result.append(_cached(cache, load, directory, version, migrations[version], rollbacks.get(version),
                                  verifies.get(version), stats) if cache is not None else load())
        except DiscoveryError as exc:
            problems.append(str(exc))
    if problems:
        raise DiscoveryError("invalid migration files in %s: %s" % (directory, "; ".join(problems)), {"problems": problems})
    return result


def _cached(cache: ChecksumCache, load: Callable[[], MigrationFile], directory: str, version: int,
            migration: Dict[str, str], rollback: Optional[Tuple[str, str]],
            verify: Optional[Tuple[str, str]], stats: Dict[str, os.stat_result]) -> MigrationFile:
    """The migration from the cache when its files are unchanged, else read (and put into the cache)."""
    names = [migration["file"]] + [attached[1] for attached in (rollback, verify) if attached]
    signature = cache.signature([(name, stats[name]) for name in names])
    kept = cache.get(signature) if signature else None
    if not _usable(kept, rollback is not None):
        item = load()
        if signature:
            cache.put(signature, _kept(item))
        return item
    path = os.path.join(directory, migration["file"])
    return MigrationFile(
        version=version, name=migration["name"], path=path, sql=None, checksum=kept["checksum"],
        no_transaction=kept["no_transaction"],
        rollback_path=None if kept["rollback"] is None else path if kept["rollback"] == "self" else
        os.path.join(directory, rollback[1] if rollback else ""),
        rollback_checksum=kept["rollback_checksum"], rollback_no_transaction=kept["rollback_no_transaction"],
        verify_path=os.path.join(directory, verify[1]) if verify else None, loader=load)


def _kept(item: MigrationFile) -> Dict[str, Any]:
    """What the cache keeps of a migration: what reading it gave besides its texts."""
    return {"checksum": item.checksum, "no_transaction": item.no_transaction,
            "rollback": None if item.rollback_path is None else "self" if item.rollback_path == item.path else "file",
            "rollback_checksum": item.rollback_checksum, "rollback_no_transaction": item.rollback_no_transaction}


def _usable(kept: Any, rollback_file: bool) -> bool:
    """A cache entry of the right shape for a migration with (or without) a rollback file."""
    if not isinstance(kept, dict) or set(kept) != set(_KEPT_TYPES):
        return False
    if not all(isinstance(kept[key], types) for key, types in _KEPT_TYPES.items()):
        return False
    if kept["rollback"] not in (None, "self", "file") or (kept["rollback"] == "file") != rollback_file:
        return False
    return (kept["rollback"] is None) == (kept["rollback_checksum"] is None)


_KEPT_TYPES = {"checksum": str, "no_transaction": bool, "rollback": (str, type(None)),
               "rollback_checksum": (str, type(None)), "rollback_no_transaction": bool}


def _code_version() -> str:
    """A hash of the code that reads migration files (this file and the SQL lexer): a cache written by another
    version of it is not used."""
    digest = hashlib.sha256()
    for module in (sys.modules[__name__], sqltext):
        try:
            digest.update(module.__loader__.get_data(module.__file__))  # type: ignore[union-attr]
        except Exception:  # pylint: disable=broad-except  # no source to hash: no cache either
            return ""
    return digest.hexdigest()[:16]


def _parse_name(entry: str) -> Optional[Tuple[str, str, str, Optional[str]]]:
    """(the layout the name belongs to, the version as written, the name, None or .rollback or .verify)."""
    match = _FILE_NAME.match(entry)
    if match:
        return "poststack", match.group("version"), match.group("name"), match.group("kind")
    match = _GOLANG_MIGRATE_NAME.match(entry)
    if match:
        return "golang-migrate", match.group("version"), match.group("name"), \
            None if match.group("kind") == "up" else ".rollback"
    match = _FLYWAY_NAME.match(entry)
    if match:
        return "flyway", match.group("version"), match.group("name"), None if match.group("kind") == "V" else ".rollback"
    return None


def _migration_name(entry: str, name: str) -> str:
    """The migration a rollback or verify script belongs to, named in its own layout."""
    if entry.endswith(".down.sql"):
        return "%s_%s.up.sql" % (entry.split("_", 1)[0], name)
    if entry.startswith("U"):
        return "V%s" % entry[1:]
    return "%s_%s.sql" % (entry.split("_", 1)[0], name)


def _dbmate_parts(path: str, text: str) -> Optional[Tuple[str, bool, Optional[str], bool]]:
    """dbmate's one file: (up, up without transaction, down or None, down without transaction), each part
    keeping the file's line numbers (the lines before it blank); None when the file has no markers."""
    markers = list(_DBMATE_MARKER.finditer(text))
    if not markers:
        return None
    parts = [marker.group("part") for marker in markers]
    if parts not in (["up"], ["up", "down"]):
        raise DiscoveryError("%s: dbmate markers must be one '-- migrate:up' and at most one '-- migrate:down' after "
                             "it; found %s" % (path, ", ".join("migrate:" + part for part in parts)))
    if not is_blank_sql(text[:markers[0].start()]):  # comments above it are fine, as in dbmate
        raise DiscoveryError("%s: SQL before '-- migrate:up' belongs to neither part; move it below the marker" % path)
    for marker in markers:
        options = marker.group("options").split()
        if any(option not in ("transaction:false", "transaction:true") for option in options):
            raise DiscoveryError("%s: unknown option(s) on its -- migrate:%s line: %s (known: transaction:false)"
                                 % (path, marker.group("part"), " ".join(options)))
    no_transaction = ["transaction:false" in marker.group("options").split() for marker in markers]
    if len(markers) == 1:
        return text, no_transaction[0], None, False
    down_start = markers[1].start()
    up = text[:down_start]
    down = "\n" * text.count("\n", 0, down_start) + text[down_start:]
    return up, no_transaction[0], (down if not is_blank_sql(down) else None), no_transaction[1]


def _load(directory: str, version: int, migration: Dict[str, str], rollback: Optional[Tuple[str, str]],
          verify: Optional[Tuple[str, str]], layout: str = "auto") -> MigrationFile:
    path = os.path.join(directory, migration["file"])
    text = read_sql(path)
    parts = _dbmate_parts(path, text)
    if layout == "dbmate" and parts is None:
        raise DiscoveryError("%s has no '-- migrate:up' line (format dbmate): add it, or set the format to auto" % path)
    if layout not in ("auto", "dbmate") and parts is not None:
        raise DiscoveryError("%s holds dbmate's '-- migrate:' lines, which format %s would run as one migration, down "
                             "part included: set the format to auto or dbmate" % (path, layout))
    if parts is not None and rollback:
        raise DiscoveryError("%s is a dbmate file (-- migrate:up) and has %s too: put the rollback in its "
                             "'-- migrate:down' part, or remove the marker lines" % (path, rollback[1]))
    sql = parts[0] if parts else text
    if is_blank_sql(sql):
        raise DiscoveryError("%s is empty (only comments or whitespace): write its SQL or remove the file" % path)
    item = MigrationFile(
        version=version, name=migration["name"], path=path, sql=sql, checksum=checksum(sql),
        no_transaction=parts[1] if parts else has_no_transaction_marker(text),
    )
    if parts is not None and parts[2] is not None:
        item.rollback_path, item.rollback_sql = path, parts[2]
        item.rollback_checksum = checksum(parts[2])
        item.rollback_no_transaction = parts[3]
    if rollback:
        item.rollback_path = os.path.join(directory, rollback[1])
        item.rollback_sql = read_sql(item.rollback_path)
        item.rollback_checksum = checksum(item.rollback_sql)
        item.rollback_no_transaction = has_no_transaction_marker(item.rollback_sql)
    if verify:
        item.verify_path = os.path.join(directory, verify[1])
        item.verify_sql = read_sql(item.verify_path)
    return item


def _sqitch_dirs(directory: str) -> Tuple[str, str]:
    """(the plan file, the top directory of deploy/, revert/, verify/) as sqitch.conf's [core] names them."""
    settings: Dict[str, str] = {}
    conf = os.path.join(directory, "sqitch.conf")
    if os.path.isfile(conf):
        section = ""
        with open(conf, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line.startswith("["):
                    section = line.strip("[]").strip()
                elif section == "core" and "=" in line and not line.startswith(("#", ";")):
                    key, value = line.split("=", 1)
                    settings[key.strip()] = value.strip()
    top = os.path.normpath(os.path.join(directory, settings.get("top_dir", ".")))
    return os.path.normpath(os.path.join(directory, settings.get("plan_file", os.path.join(top, SQITCH_PLAN)))), top


def sqitch_project(directory: str) -> Optional[str]:
    """The project a Sqitch plan names (its ``%project=`` pragma), or None when ``directory`` is no Sqitch project
    or its plan names none."""
    plan_file, _top = _sqitch_dirs(directory)
    try:
        with open(plan_file, encoding="utf-8") as handle:
            for line in handle:
                key, equals, value = line.strip().partition("=")
                if key.strip() == "%project" and equals:
                    return value.strip() or None
    except (OSError, UnicodeDecodeError):
        return None
    return None


def discover_sqitch(directory: str) -> List[MigrationFile]:
    """A Sqitch project read in place: the plan's changes in order, version N for the Nth, each with its deploy,
    revert and verify scripts. Refused (all problems at once): a plan that cannot be read, a change line that
    cannot be parsed, a change planned twice (a rework), a missing deploy script."""
    plan_file, top = _sqitch_dirs(directory)
    try:
        with open(plan_file, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DiscoveryError("cannot read the Sqitch plan %s: %s" % (plan_file, exc))
    problems: List[str] = []
    changes: List[str] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith(("#", "%", "@")):  # blank, comment, pragma, tag
            continue
        match = _SQITCH_CHANGE.match(text)
        if match is None:
            problems.append("%s line %d: not a change line (name [dependencies] time planner <email>): %s"
                            % (SQITCH_PLAN, number, text[:80]))
            continue
        name = match.group("name")
        if name in changes:
            problems.append("%s line %d: change %s is planned again (a Sqitch rework), which poststack does not "
                            "take; give the new version a change of its own" % (SQITCH_PLAN, number, name))
            continue
        changes.append(name)
    if not changes and not problems:
        problems.append("%s has no changes" % plan_file)
    result = []
    for version, name in enumerate(changes, 1):
        script = "%s.sql" % name
        deploy = os.path.join("deploy", script)
        if not os.path.isfile(os.path.join(top, deploy)):
            problems.append("%s: change %s has no deploy script %s" % (SQITCH_PLAN, name, os.path.join(top, deploy)))
            continue
        revert, verify = os.path.join("revert", script), os.path.join("verify", script)
        try:
            item = _load(top, version, {"file": deploy, "name": name},
                         (name, revert) if os.path.isfile(os.path.join(top, revert)) else None,
                         (name, verify) if os.path.isfile(os.path.join(top, verify)) else None, "sqitch")
        except DiscoveryError as exc:
            problems.append(str(exc))
            continue
        if item.verify_sql is not None and is_blank_sql(verify_body(item.verify_sql)):
            item.verify_path = item.verify_sql = None  # Sqitch's template: BEGIN, comments, ROLLBACK
        result.append(item)
    if problems:
        raise DiscoveryError("invalid Sqitch project in %s: %s" % (directory, "; ".join(problems)), {"problems": problems})
    return result


CODE_VERSION = _code_version()
