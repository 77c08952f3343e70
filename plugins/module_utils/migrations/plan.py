# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""History and planning (pure): files and the recorded history in, the steps to take (or a PlanError) out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Union

from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import PlanError
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import MAX_VERSION, MigrationFile
from ansible_collections.poststack.core.plugins.module_utils.migrations.repeatables import RepeatableStep


@dataclass
class AppliedMigration:
    """One row of the tracking table."""

    version: int
    name: str
    checksum: str
    rollback_checksum: Optional[str]
    rollback_sql: Optional[str]
    rollback_no_transaction: bool
    no_transaction: bool
    baselined: bool
    applied_at: str
    applied_by: str
    execution_ms: int


@dataclass
class Step:
    """One planned action."""

    action: str  # apply | rollback | baseline | repair
    version: int
    name: str
    no_transaction: bool = False
    file: Optional[str] = None
    reason: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class Plan:
    action: str
    current_version: int
    target_version: Optional[int]
    steps: List[Step] = field(default_factory=list)
    pending: List[int] = field(default_factory=list)
    repeatables: List[RepeatableStep] = field(default_factory=list)  # after the steps (repeatables.py)

    @property
    def versions(self) -> List[int]:
        return [step.version for step in self.steps]

    def as_dicts(self) -> List[Dict[str, Any]]:
        return [step.as_dict() for step in self.steps]

    def applied_after(self, applied: Sequence[int]) -> List[int]:
        """The applied versions once every step has run, from the ``applied`` ones before."""
        after = set(applied)
        for step in self.steps:
            if step.action in ("apply", "baseline"):
                after.add(step.version)
            elif step.action == "rollback":
                after.discard(step.version)
        return sorted(after)


@dataclass
class Drift:
    version: int
    file: str
    kind: str  # changed | rollback_changed | missing
    recorded: Optional[str]
    found: Optional[str]

    def describe(self) -> str:
        if self.kind == "missing":
            return "version %d (%s) is applied but its file is missing" % (self.version, self.file)
        what = "migration" if self.kind == "changed" else "rollback"
        return "%s %s changed after it was applied: recorded sha256 %s, file sha256 %s" % (
            what, self.file, self.recorded, self.found)


def current_version(history: Union[Dict[int, AppliedMigration], Sequence[int]]) -> int:
    """The highest applied version (0 when none), from the history or the applied versions alone."""
    return max(history) if history else 0


def find_drift(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration]) -> List[Drift]:
    by_version = {item.version: item for item in files}
    drift: List[Drift] = []
    for version in sorted(history):
        row = history[version]
        item = by_version.get(version)
        if item is None:
            drift.append(Drift(version, "%03d_%s.sql" % (version, row.name), "missing", row.checksum, None))
            continue
        if item.checksum != row.checksum:
            drift.append(Drift(version, item.filename, "changed", row.checksum, item.checksum))
        elif item.rollback_checksum is not None and row.rollback_checksum is not None \
                and item.rollback_checksum != row.rollback_checksum:
            drift.append(Drift(version, item.rollback_filename or "", "rollback_changed",
                               row.rollback_checksum, item.rollback_checksum))
    return drift


def _refuse_drift(drift: List[Drift], allow_missing: bool = False) -> None:
    blocking = [item for item in drift if not (allow_missing and item.kind == "missing")]
    if blocking:
        raise PlanError(
            "drift: %s; restore the files, or accept the new checksums with state=repaired"
            % "; ".join(item.describe() for item in blocking),
            {"drift": [asdict(item) for item in blocking]},
        )


def plan_migrate(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration],
                 target_version: Optional[int] = None, allow_out_of_order: bool = False) -> Plan:
    """Pending migrations to apply (up to ``target_version``), or a PlanError explaining why not."""
    _refuse_drift(find_drift(files, history))
    current = current_version(history)
    known = {item.version for item in files}
    if target_version is not None:
        if target_version < 0:
            raise PlanError("target_version %d is negative" % target_version)
        if target_version not in known and target_version != 0:
            raise PlanError("target_version %d matches no migration file (known: %s)"
                            % (target_version, _short_list(sorted(known))))
        if target_version < current:
            raise PlanError("target_version %d is below the current version %d: use state=rolled_back to go down"
                            % (target_version, current))
    pending = [item for item in files if item.version not in history]
    out_of_order = [item for item in pending if item.version < current]
    if out_of_order and not allow_out_of_order:
        raise PlanError(
            "%s %s lower than the highest applied version %d; renumber them above %d or set allow_out_of_order"
            % (", ".join(item.filename for item in out_of_order), "is" if len(out_of_order) == 1 else "are", current, current),
            {"out_of_order": [item.version for item in out_of_order]},
        )
    limit = MAX_VERSION if target_version is None else target_version
    steps = [Step("apply", item.version, item.name, item.no_transaction, item.filename)
             for item in pending if item.version <= limit]
    return Plan("apply", current, target_version, steps, [item.version for item in pending])


def plan_rollback(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration], target_version: int) -> Plan:
    """Rollbacks newest first down to ``target_version`` (exclusive); nothing when any rollback is missing."""
    if target_version is None:
        raise PlanError("target_version is required to roll back: the version to end at (0 removes everything)")
    if target_version < 0:
        raise PlanError("target_version %d is negative" % target_version)
    current = current_version(history)
    if target_version != 0 and target_version not in history:
        raise PlanError("target_version %d is not an applied version (applied: %s)"
                        % (target_version, _short_list(sorted(history)) or "none"))
    drift = [item for item in find_drift(files, history) if item.version > target_version]
    _refuse_drift(drift, allow_missing=True)
    by_version = {item.version: item for item in files}
    to_undo = sorted((version for version in history if version > target_version), reverse=True)
    missing = [version for version in to_undo if history[version].rollback_sql is None
               and (by_version.get(version) is None or by_version[version].rollback_checksum is None)]
    if missing:
        raise PlanError(
            "no rollback for version%s %s (neither recorded nor a NNN_name.rollback.sql file); nothing was rolled back"
            % ("s" if len(missing) > 1 else "", ", ".join(str(v) for v in missing)),
            {"missing_rollbacks": missing},
        )
    steps = []
    for version in to_undo:
        row = history[version]
        item = by_version.get(version)
        no_tx = row.rollback_no_transaction if row.rollback_sql is not None else bool(item and item.rollback_no_transaction)
        steps.append(Step("rollback", version, row.name, no_tx, item.filename if item else None))
    pending = [item.version for item in files if item.version not in history]
    return Plan("rollback", current, target_version, steps, pending)


def plan_baseline(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration], baseline_version: Optional[int],
                  versions: Optional[Set[int]] = None, source: str = "") -> Plan:
    """Record versions as applied without running them: every file up to ``baseline_version``, or exactly
    ``versions`` (what another tool's history says is applied, read by adopt.py; ``source`` names it)."""
    known = {item.version for item in files}
    if versions is not None:
        missing = sorted(versions - known)
        if missing:
            raise PlanError("%s records version(s) %s that no migration file has: add their files (or rename the "
                            "files to those versions) before adopting it" % (source, _short_list(missing)))
        baseline_version = max(versions) if versions else 0
        if not versions:
            return Plan("baseline", current_version(history), 0, [], [v for v in sorted(known) if v not in history])
    else:
        if baseline_version is None or baseline_version < 1:
            raise PlanError("baseline needs target_version >= 1: the highest version the database already contains")
        if baseline_version not in known:
            raise PlanError("baseline version %d matches no migration file (known: %s)"
                            % (baseline_version, _short_list(sorted(known))))
        versions = {version for version in known if version <= baseline_version}
    _refuse_drift([item for item in find_drift(files, history) if item.version in versions])
    steps = [Step("baseline", item.version, item.name, item.no_transaction, item.filename)
             for item in files if item.version in versions and item.version not in history]
    above = [version for version in history if version > baseline_version]
    if steps and above:
        raise PlanError("cannot baseline to %d: versions %s are already applied above it" % (baseline_version, _short_list(above)))
    return Plan("baseline", current_version(history), baseline_version, steps,
                [item.version for item in files if item.version not in history])


def plan_repair(files: Sequence[MigrationFile], history: Dict[int, AppliedMigration]) -> Plan:
    steps = []
    for item in find_drift(files, history):
        if item.kind != "missing":
            steps.append(Step("repair", item.version, history[item.version].name, file=item.file,
                              reason="%s: %s -> %s" % (item.kind, item.recorded, item.found)))
    by_version = {item.version: item for item in files}
    for version in sorted(history):
        row, item = history[version], by_version.get(version)
        if item is not None and row.rollback_sql is None and item.rollback_checksum is not None \
                and not any(step.version == version for step in steps):
            steps.append(Step("repair", version, row.name, file=item.filename, reason="record rollback SQL"))
    steps.sort(key=lambda step: step.version)
    return Plan("repair", current_version(history), None, steps, [item.version for item in files if item.version not in history])


def _short_list(values: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ... (%d in all)" % len(values) if len(values) > limit else "")
