# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog of a backup directory: which backups are there and good (checked against their manifests), and
retention."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

from ansible_collections.poststack.core.plugins.module_utils.backup.manifest import (
    BackupError, MANIFEST_SUFFIX, Manifest, NAME_RE, iso, parse_time, sha256_file, tree_digest, tree_files,
)


@dataclass
class BackupEntry:
    """A backup found in a directory: its manifest (None when missing or unreadable) and the result of checks."""

    name: str
    path: str
    manifest_path: str
    manifest: Optional[Manifest]
    created_at: str
    problems: List[str] = field(default_factory=list)
    checked: bool = False

    @property
    def good(self) -> bool:
        return self.manifest is not None and not self.problems

    def summary(self) -> Dict[str, object]:
        data: Dict[str, object] = {"name": self.name, "path": self.path, "created_at": self.created_at,
                                   "good": self.good, "checked": self.checked, "problems": list(self.problems)}
        if self.manifest:
            data.update(database=self.manifest.database, format=self.manifest.format, size=self.manifest.size,
                        sha256=self.manifest.sha256, encryption=self.manifest.encryption,
                        pg_version=self.manifest.pg_version)
        return data


def _stamp_time(name: str) -> Optional[str]:
    match = NAME_RE.match(name.split(".", 1)[0])
    if not match:
        return None
    return iso(dt.datetime.strptime(match.group("stamp"), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc))


def scan(directory: str, database: Optional[str] = None) -> List[BackupEntry]:
    """Backups in `directory` (newest first), with manifests read but contents not yet hashed.

    Files that look like backups but have no manifest are listed with a problem, so that they are visible (and
    removable by age) but never trusted.
    """
    if not os.path.isdir(directory):
        return []
    entries: Dict[str, BackupEntry] = {}
    names = sorted(os.listdir(directory))
    for filename in names:
        if not filename.endswith(MANIFEST_SUFFIX):
            continue
        manifest_path = os.path.join(directory, filename)
        name = filename[: -len(MANIFEST_SUFFIX)]
        try:
            with open(manifest_path, encoding="utf-8") as handle:
                manifest: Optional[Manifest] = Manifest.from_dict(json.load(handle))
            problems: List[str] = []
        except (OSError, ValueError, TypeError, BackupError) as exc:
            manifest, problems = None, [f"manifest {manifest_path} is unreadable: {exc}"]
        path = os.path.join(directory, manifest.path) if manifest else manifest_path
        created = manifest.created_at if manifest else (_stamp_time(name) or iso(_mtime(manifest_path)))
        entries[name] = BackupEntry(name, path, manifest_path, manifest, created, problems)
    for filename in names:
        base = filename.split(".", 1)[0]
        full = os.path.join(directory, filename)
        if filename.endswith(MANIFEST_SUFFIX) or base in entries or filename.startswith("."):
            continue
        if not re.search(r"\.(dump|dump\.age|dump\.enc|dir)(\.partial)?$", filename):
            continue
        problem = ("unfinished backup (a .partial leftover of an interrupted run)" if filename.endswith(".partial")
                   else "no manifest: the backup was not completed or its manifest was deleted")
        entries[filename] = BackupEntry(filename, full, "", None, _stamp_time(base) or iso(_mtime(full)), [problem])
    found = [entry for entry in entries.values()
             if database is None or (entry.manifest is not None and entry.manifest.database == database)
             or (entry.manifest is None and entry.name.split(".", 1)[0].rsplit("_", 1)[0].endswith(database))]
    return sorted(found, key=lambda entry: (entry.created_at, entry.name), reverse=True)


def _mtime(path: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(os.path.getmtime(path), dt.timezone.utc).replace(microsecond=0)


def check_entry(entry: BackupEntry) -> BackupEntry:
    """Compare the backup on disk with its manifest (existence, size, sha256). Adds problems; returns entry."""
    entry.checked = True
    manifest = entry.manifest
    if manifest is None:
        return entry
    if not os.path.exists(entry.path):
        entry.problems.append(f"{entry.path} is missing (the manifest names it)")
        return entry
    if manifest.format == "directory":
        files = tree_files(entry.path)
        size, digest = tree_digest(files)
        expected = {str(item["path"]): item["sha256"] for item in manifest.files}
        actual = {str(item["path"]): item["sha256"] for item in files}
        for path in sorted(set(expected) | set(actual)):
            if expected.get(path) != actual.get(path):
                state = "missing" if path not in actual else ("unexpected" if path not in expected else "changed")
                entry.problems.append(f"{os.path.join(entry.path, path)}: {state}")
    else:
        size = os.path.getsize(entry.path)
        digest = sha256_file(entry.path) if size == manifest.size else ""
    if size != manifest.size:
        entry.problems.insert(0, f"{entry.path} is {size} bytes, the manifest says {manifest.size}: truncated or "
                                 "overwritten")
    elif digest != manifest.sha256:
        entry.problems.insert(0, f"{entry.path} has sha256 {digest}, the manifest says {manifest.sha256}: corrupt")
    return entry


def newest_good(entries: Iterable[BackupEntry], check: bool = True) -> Optional[BackupEntry]:
    """The newest backup whose contents match its manifest (entries newest first)."""
    for entry in entries:
        if entry.manifest is None or entry.problems:
            continue
        if check and not entry.checked:
            check_entry(entry)
        if entry.good:
            return entry
    return None


# --- retention ---------------------------------------------------------------------------------------------------


@dataclass
class RetentionDecision:
    name: str
    path: str
    created_at: str
    keep: bool
    reason: str


@dataclass
class RetentionPlan:
    decisions: List[RetentionDecision]

    @property
    def delete(self) -> List[RetentionDecision]:
        return [decision for decision in self.decisions if not decision.keep]

    @property
    def keep(self) -> List[RetentionDecision]:
        return [decision for decision in self.decisions if decision.keep]


def plan_retention(entries: Sequence[BackupEntry], now: dt.datetime, keep_count: int = 0, keep_days: float = 0,
                   protect: Optional[str] = None) -> RetentionPlan:
    """Decide which backups to delete. `entries` newest first (as scan returns them).

    - The newest good backup is always kept (whatever the limits say), and so is `protect` (the backup just made).
    - keep_count > 0: good backups beyond the newest keep_count are deleted.
    - keep_days > 0: backups (good or not) created more than keep_days ago are deleted.
    - Backups that are not good do not count towards keep_count; only age removes them, so that evidence of a
      failure stays until it is old.
    With both limits 0 nothing is deleted.
    """
    if keep_count < 0 or keep_days < 0:
        raise BackupError("retention limits must be >= 0 (0 disables a limit)")
    best = newest_good(entries, check=False)
    cutoff = now - dt.timedelta(days=keep_days) if keep_days else None
    decisions: List[RetentionDecision] = []
    good_seen = 0
    for entry in entries:
        created = parse_time(entry.created_at)
        if entry.good:
            good_seen += 1
        if best is not None and entry.name == best.name:
            decisions.append(RetentionDecision(entry.name, entry.path, entry.created_at, True, "newest good backup"))
            continue
        if protect is not None and entry.name == protect:
            decisions.append(RetentionDecision(entry.name, entry.path, entry.created_at, True, "just created"))
            continue
        if cutoff is not None and created < cutoff:
            decisions.append(RetentionDecision(entry.name, entry.path, entry.created_at, False,
                                               f"older than {keep_days:g} days"))
            continue
        if entry.good and keep_count and good_seen > keep_count:
            decisions.append(RetentionDecision(entry.name, entry.path, entry.created_at, False,
                                               f"beyond the newest {keep_count} good backups"))
            continue
        decisions.append(RetentionDecision(entry.name, entry.path, entry.created_at, True,
                                           "within limits" if entry.good else "not good; kept until it is old"))
    return RetentionPlan(decisions)


def retention_paths(plan: RetentionPlan, directory: str) -> List[str]:
    """The paths the plan removes: each backup to delete and its manifest, those that exist."""
    paths = []
    for decision in plan.delete:
        for path in (decision.path, os.path.join(directory, decision.name + MANIFEST_SUFFIX)):
            if os.path.lexists(path):
                paths.append(path)
    return paths


def apply_retention(plan: RetentionPlan, directory: str) -> List[str]:
    """Delete what the plan says; returns the removed paths."""
    removed = []
    for path in retention_paths(plan, directory):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        removed.append(path)
    return removed
