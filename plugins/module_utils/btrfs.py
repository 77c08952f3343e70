# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Btrfs subvolumes, snapshots with retention, qgroup quotas, compression, ownership and SELinux type.

Layers, each usable on its own and free of Ansible imports:

- runner:  ``Runner`` runs argument lists through an injected executor (the module passes
           ``module.run_command`` with ``LC_ALL=C``), checks the return code and raises
           ``BtrfsCommandError`` naming the path and the failing command with its stderr.
- parsers: ``parse_*`` turn the text output of btrfs-progs (6.2's JSON output is unusable) and findmnt
           into dataclasses.
- model:   ``inspect`` reads the current state of a path (read-only commands and ``os`` calls only).
- planner: ``plan_present``/``plan_absent``/``plan_snapshot`` compare wanted and current state and return a
           list of ``Operation``; ``changed = bool(plan)``; ``apply`` runs a plan.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Pattern, Sequence, Tuple

from ansible_collections.poststack.core.plugins.module_utils.command import CommandResult, timed

Executor = Callable[[Sequence[str]], Tuple[int, str, str]]

SUBVOLUME_ROOT_INODE = 256  # every subvolume's root directory has this inode number (btrfs-progs tests the same)
COMPRESSION_CHOICES = ("zstd", "lzo", "zlib", "none", "default")
QUOTAS_DISABLED_MARKERS = ("quotas not enabled", "not enabled")
DEFAULT_SNAPSHOT_NAME = "{name}.%Y%m%dT%H%M%SZ"

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:I?B)?\s*$", re.IGNORECASE)


class BtrfsError(Exception):
    """Bad input or a state the module refuses to touch. Raised before anything is changed."""


class BtrfsCommandError(BtrfsError):
    """A command failed; the message names the path, the command and what it printed on stderr."""

    def __init__(self, path: str, argv: Sequence[str], rc: int, stdout: str, stderr: str) -> None:
        self.path = path
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        said = (stderr or stdout).strip() or "no output"
        super().__init__("%s: `%s` failed with rc=%d: %s" % (path, " ".join(self.argv), rc, said))


# --------------------------------------------------------------------------------------------------- runner


class Runner:
    """Runs argument lists; ``commands`` collects the changing commands that ran, in order."""

    def __init__(self, executor: Executor, binaries: Optional[Dict[str, str]] = None) -> None:
        self._executor = executor
        self._binaries = dict(binaries or {})
        self.commands: List[List[str]] = []

    def resolve(self, argv: Sequence[str]) -> List[str]:
        """Replace the program name by the path the caller resolved (``get_bin_path``), if any."""
        return [self._binaries.get(argv[0], argv[0])] + list(argv[1:])

    def run(self, path: str, argv: Sequence[str], ok_rcs: Sequence[int] = (0,), changes: bool = False) -> CommandResult:
        full = self.resolve(argv)
        result = timed(argv, lambda: self._executor(full))
        if changes:
            self.commands.append(list(argv))
        if result.rc not in ok_rcs:
            raise BtrfsCommandError(path, argv, result.rc, result.stdout, result.stderr)
        return result


# -------------------------------------------------------------------------------------------------- parsers


@dataclass
class MountInfo:
    target: str
    source: str
    fstype: str
    options: Dict[str, str]
    uuid: str

    @property
    def is_btrfs(self) -> bool:
        return self.fstype == "btrfs"


@dataclass
class SubvolumeInfo:
    """What ``btrfs subvolume show`` says about one subvolume."""

    path: str
    name: str
    uuid: str
    parent_uuid: Optional[str]
    id: int
    generation: int
    parent_id: int
    top_level_id: int
    readonly: bool
    creation_time: str
    snapshots: List[str] = field(default_factory=list)


@dataclass
class Qgroup:
    """One row of ``btrfs qgroup show --raw -re``; limits are None when unlimited."""

    qgroupid: str
    referenced: int
    exclusive: int
    max_referenced: Optional[int]
    max_exclusive: Optional[int]
    path: str


_PAIR_RE = re.compile(r'([A-Z%_:-]+)="((?:[^"\\]|\\.)*)"')


def parse_findmnt(output: str) -> MountInfo:
    """Parse ``findmnt -n -P -o TARGET,SOURCE,FSTYPE,OPTIONS,UUID -T <path>`` (one line of KEY="value" pairs)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise BtrfsError("findmnt printed nothing: cannot tell which filesystem holds the path")
    pairs = dict(_PAIR_RE.findall(lines[0]))
    missing = [key for key in ("TARGET", "SOURCE", "FSTYPE") if key not in pairs]
    if missing:
        raise BtrfsError("cannot parse findmnt output (no %s): %r" % (", ".join(missing), lines[0]))
    options: Dict[str, str] = {}
    for option in pairs.get("OPTIONS", "").split(","):
        if option:
            key, _sep, value = option.partition("=")
            options[key] = value
    return MountInfo(pairs["TARGET"], pairs["SOURCE"], pairs["FSTYPE"], options, pairs.get("UUID", ""))


def _dash_none(value: str) -> Optional[str]:
    return None if value in ("-", "") else value


def parse_subvolume_show(output: str) -> SubvolumeInfo:
    """Parse ``btrfs subvolume show <path>`` (btrfs-progs 6.2 text output)."""
    lines = output.splitlines()
    if not lines:
        raise BtrfsError("btrfs subvolume show printed nothing")
    fields: Dict[str, str] = {}
    snapshots: List[str] = []
    in_snapshots = False
    for line in lines[1:]:
        key, sep, value = line.strip().partition(":")
        if in_snapshots and line.startswith("\t\t\t"):
            snapshots.append(line.strip())
            continue
        in_snapshots = False
        if not sep:
            continue
        key = key.strip()
        if key == "Snapshot(s)":
            in_snapshots = True
            continue
        fields.setdefault(key, value.strip())
    try:
        return SubvolumeInfo(
            path=lines[0].strip(),
            name=fields["Name"],
            uuid=fields["UUID"],
            parent_uuid=_dash_none(fields["Parent UUID"]),
            id=int(fields["Subvolume ID"]),
            generation=int(fields["Generation"]),
            parent_id=int(fields["Parent ID"]),
            top_level_id=int(fields["Top level ID"]),
            readonly="readonly" in fields.get("Flags", "").split(),
            creation_time=fields.get("Creation time", ""),
            snapshots=snapshots,
        )
    except (KeyError, ValueError) as exc:
        raise BtrfsError("cannot parse btrfs subvolume show output (%s): %r" % (exc, output[:300]))


def _limit(value: str) -> Optional[int]:
    return None if value == "none" else int(value)


def parse_qgroup_show(output: str) -> List[Qgroup]:
    """Parse ``btrfs qgroup show --raw -re [-f] <path>``: a header, a dashes line, then one row per qgroup."""
    rows: List[Qgroup] = []
    for line in output.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5 or "/" not in parts[0] or not parts[1].isdigit():
            continue
        rows.append(Qgroup(parts[0], int(parts[1]), int(parts[2]), _limit(parts[3]), _limit(parts[4]),
                           parts[5].strip() if len(parts) > 5 else ""))
    return rows


def parse_property(output: str, name: str) -> Optional[str]:
    """Parse ``btrfs property get <path> <name>``: ``name=value``, or nothing when the property is not set."""
    prefix = name + "="
    for line in output.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip() or None
    return None


def parse_filesystem_du(output: str) -> int:
    """Total bytes from ``btrfs filesystem du -s --raw <path>`` (header line, then Total Exclusive Shared Name)."""
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit():
            return int(parts[0])
    raise BtrfsError("cannot parse btrfs filesystem du output: %r" % output[:300])


def parse_size(text: str) -> Optional[int]:
    """'10G', '512MiB', '1.5g', '1048576' -> bytes (binary units); 'none' -> None (no limit)."""
    if str(text).strip().lower() == "none":
        return None
    match = _SIZE_RE.match(str(text))
    if not match:
        raise BtrfsError("quota %r is not a size: use bytes or a number with K, M, G, T or P (binary units, e.g. 10G), "
                         "or 'none' to remove the limit" % (text,))
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])
    if size <= 0:
        raise BtrfsError("quota %r must be larger than 0 (or 'none' to remove the limit)" % (text,))
    return size


def format_size(size: Optional[int]) -> str:
    if size is None:
        return "none"
    if size < 1024:
        return "%dB" % size
    value = float(size)
    unit = "B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            break
    return "%.2f%s" % (value, unit)


def resolve_id(value: str, kind: str) -> int:
    """A numeric ID ('999') is used as is, so the host needs no such user; a name is looked up on the host."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        if kind == "owner":
            return pwd.getpwnam(text).pw_uid
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise BtrfsError("%s %r does not exist on this host: create it or give the numeric ID (e.g. '999')"
                         % (kind, text))


def parse_mode(mode: object) -> int:
    """Octal mode string ('0700', '750') -> int. An int is the mode's value already (an unquoted YAML 0700 is
    448), as in ansible.builtin.file. Symbolic modes are refused: the subvolume root has one mode."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        if not 0 <= mode <= 0o7777:
            raise BtrfsError("mode %r is out of range: write it quoted, like '0750'" % (mode,))
        return mode
    text = str(mode).strip()
    if not re.match(r"^0?[0-7]{3,4}$", text):
        raise BtrfsError("mode %r is not an octal mode: write it quoted, like '0750'" % (mode,))
    return int(text, 8)


# ----------------------------------------------------------------------------------------- snapshot names


@dataclass
class SnapshotNaming:
    """A snapshot name pattern: ``{name}`` is the subvolume's name, strftime-style %Y %y %m %d %H %M %S %j %s %%."""

    pattern: str

    _TOKEN = re.compile(r"%(.)|\{name\}", re.DOTALL)
    _REGEX = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}",
              "S": r"\d{2}", "j": r"\d{3}", "s": r"\d+", "%": "%"}

    def _walk(self, name: str, now: Optional[datetime]) -> Tuple[str, str]:
        rendered: List[str] = []
        regex: List[str] = []
        position = 0
        for match in self._TOKEN.finditer(self.pattern):
            literal = self.pattern[position:match.start()]
            rendered.append(literal)
            regex.append(re.escape(literal))
            position = match.end()
            directive = match.group(1)
            if directive is None:
                rendered.append(name)
                regex.append(re.escape(name))
                continue
            if directive not in self._REGEX:
                raise BtrfsError("snapshot_name %r: unsupported directive %%%s (use %s or {name})"
                                 % (self.pattern, directive, " ".join("%" + d for d in self._REGEX)))
            regex.append(self._REGEX[directive])
            if now is not None:
                if directive == "%":
                    rendered.append("%")
                elif directive == "s":
                    rendered.append(str(int(now.timestamp())))
                else:
                    rendered.append(now.strftime("%" + directive))
        tail = self.pattern[position:]
        rendered.append(tail)
        regex.append(re.escape(tail))
        return "".join(rendered), "".join(regex)

    def render(self, name: str, now: datetime) -> str:
        rendered, _regex = self._walk(name, now)
        if not rendered or "/" in rendered or rendered in (".", ".."):
            raise BtrfsError("snapshot_name %r gives %r, which is not a file name" % (self.pattern, rendered))
        return rendered

    def regex(self, name: str) -> Pattern[str]:
        return re.compile("^" + self._walk(name, None)[1] + "$")


# ---------------------------------------------------------------------------------------------------- model


@dataclass
class PathState:
    """The current state of one path: a subvolume, something else, or nothing."""

    path: str
    exists: bool = False
    is_dir: bool = False
    is_subvolume: bool = False
    info: Optional[SubvolumeInfo] = None
    uid: Optional[int] = None
    gid: Optional[int] = None
    mode: Optional[int] = None
    compression: Optional[str] = None  # the property value; None when unset ('default')
    selinux_type: Optional[str] = None
    quota_enabled: bool = False
    qgroup: Optional[Qgroup] = None
    usage_estimate: Optional[int] = None  # `btrfs filesystem du` total when quotas are off
    nested: List[str] = field(default_factory=list)  # nested subvolumes, deepest first

    @property
    def usage(self) -> Optional[int]:
        return self.qgroup.referenced if self.qgroup is not None else self.usage_estimate


@dataclass
class Snapshot:
    path: str
    info: SubvolumeInfo


@dataclass
class Observed:
    """Everything the planner needs, read before any change."""

    target: PathState
    mount: Optional[MountInfo] = None
    missing_parents: List[str] = field(default_factory=list)  # shallowest first
    selinux_enabled: bool = False
    snapshot_dir_mount: Optional[MountInfo] = None
    snapshot_dir_missing: List[str] = field(default_factory=list)  # shallowest first
    snapshots: List[Snapshot] = field(default_factory=list)  # snapshots of target in snapshot_dir, oldest first
    snapshot_name: Optional[str] = None  # the rendered name for this run
    snapshot_existing: Optional[PathState] = None


@dataclass
class Wanted:
    path: str
    state: str = "present"
    parents: bool = True
    parents_as_subvolumes: bool = False
    owner: Optional[int] = None
    group: Optional[int] = None
    mode: Optional[int] = None
    compression: Optional[str] = None
    quota: Optional[str] = None  # as given; parse_size() decides
    setype: Optional[str] = None
    recursive: bool = False
    snapshot_dir: Optional[str] = None
    snapshot_name: str = DEFAULT_SNAPSHOT_NAME
    snapshot_keep: Optional[int] = None
    snapshot_readonly: bool = True

    @property
    def quota_limit(self) -> Optional[int]:
        return parse_size(self.quota) if self.quota is not None else None

    @property
    def manages_quota(self) -> bool:
        return self.quota is not None

    def effective_snapshot_dir(self) -> str:
        return self.snapshot_dir or os.path.join(os.path.dirname(self.path), ".snapshots")


def normalize_path(path: str) -> str:
    if not path or not os.path.isabs(path):
        raise BtrfsError("path %r must be absolute" % (path,))
    normalized = os.path.normpath(path)
    if normalized == "/":
        raise BtrfsError("path '/' cannot be managed as a subvolume")
    return normalized


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def read_selinux_type(path: str) -> Optional[str]:
    try:
        label = os.getxattr(path, "security.selinux").decode("utf-8", "replace").rstrip("\x00")
    except OSError:
        return None
    parts = label.split(":")
    return parts[2] if len(parts) >= 3 else None


def _missing_ancestors(path: str) -> Tuple[str, List[str]]:
    """(nearest existing ancestor, missing directories from shallowest to deepest, excluding path itself)."""
    missing: List[str] = []
    current = os.path.dirname(path)
    while not os.path.lexists(current):
        missing.insert(0, current)
        current = os.path.dirname(current)
    return current, missing


def _find_mount(runner: Runner, path: str, existing: str) -> MountInfo:
    result = runner.run(path, ["findmnt", "-n", "-P", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS,UUID", "-T", existing])
    return parse_findmnt(result.stdout)


def _require_btrfs(path: str, mount: MountInfo) -> None:
    if not mount.is_btrfs:
        raise BtrfsError("%s is not on a Btrfs filesystem: it is on %s (%s, mounted at %s). Mount a Btrfs filesystem "
                         "there first (the poststack.core.btrfs_storage role can create one)"
                         % (path, mount.fstype, mount.source, mount.target))


def _mount_points() -> set:
    """Mount points from /proc/self/mountinfo. os.path.ismount() cannot tell: every subvolume has its own st_dev."""
    points = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
            for line in mountinfo:
                fields = line.split()
                if len(fields) > 4:
                    points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    except OSError:
        pass
    return points


def _nested_subvolumes(path: str) -> List[str]:
    """Subvolumes below path (not crossing into other mounts), deepest first, so they can be deleted in order."""
    found: List[str] = []
    mounts = _mount_points()
    for root, dirs, _files in os.walk(path):
        keep = []
        for name in dirs:
            child = os.path.join(root, name)
            if child in mounts:
                continue
            try:
                if os.lstat(child).st_ino == SUBVOLUME_ROOT_INODE:
                    found.append(child)
            except OSError:
                continue
            keep.append(name)
        dirs[:] = keep
    return sorted(found, key=lambda p: (-p.count("/"), p))


def inspect_path(runner: Runner, path: str, quota: bool = False, selinux: bool = False,
                 nested: bool = False) -> PathState:
    """Read one path's state with read-only commands. quota/selinux/nested: read those parts too."""
    state = PathState(path=path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return state
    state.exists = True
    state.is_dir = stat.S_ISDIR(st.st_mode)
    state.uid, state.gid, state.mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
    state.is_subvolume = state.is_dir and st.st_ino == SUBVOLUME_ROOT_INODE
    if not state.is_subvolume:
        return state
    state.info = parse_subvolume_show(runner.run(path, ["btrfs", "subvolume", "show", path]).stdout)
    state.compression = parse_property(runner.run(path, ["btrfs", "property", "get", path, "compression"]).stdout,
                                       "compression")
    if selinux:
        state.selinux_type = read_selinux_type(path)
    if quota:
        result = runner.run(path, ["btrfs", "qgroup", "show", "--raw", "-re", "-f", path], ok_rcs=(0, 1))
        if result.rc == 0:
            state.quota_enabled = True
            wanted_id = "0/%d" % state.info.id
            state.qgroup = next((row for row in parse_qgroup_show(result.stdout) if row.qgroupid == wanted_id), None)
        elif any(marker in result.stderr for marker in QUOTAS_DISABLED_MARKERS):
            du = runner.run(path, ["btrfs", "filesystem", "du", "-s", "--raw", path])
            state.usage_estimate = parse_filesystem_du(du.stdout)
        else:
            raise BtrfsCommandError(path, result.argv, result.rc, result.stdout, result.stderr)
    if nested:
        state.nested = _nested_subvolumes(path)
    return state


def _quota_enabled(runner: Runner, path: str, existing: str) -> bool:
    """Whether quotas are on for the filesystem holding existing (used when path itself does not exist yet)."""
    result = runner.run(path, ["btrfs", "qgroup", "show", "--raw", "-re", "-f", existing], ok_rcs=(0, 1))
    if result.rc == 0:
        return True
    if any(marker in result.stderr for marker in QUOTAS_DISABLED_MARKERS):
        return False
    raise BtrfsCommandError(path, result.argv, result.rc, result.stdout, result.stderr)


def inspect(runner: Runner, wanted: Wanted, now: Optional[datetime] = None) -> Observed:
    """Build the model for wanted.path; raises BtrfsError when the path is not on Btrfs."""
    path = wanted.path
    existing, missing = _missing_ancestors(path)
    target_exists = os.path.lexists(path)
    mount = _find_mount(runner, path, path if target_exists else existing)
    if wanted.state == "absent" and not target_exists:
        return Observed(target=PathState(path=path), mount=mount)
    _require_btrfs(path, mount)
    if wanted.manages_quota:
        runner.run(path, ["btrfs", "filesystem", "sync", path if target_exists else existing])
    observed = Observed(
        target=inspect_path(runner, path, quota=wanted.manages_quota, selinux=bool(wanted.setype),
                            nested=wanted.state == "absent"),
        mount=mount,
        missing_parents=missing,
        selinux_enabled=selinux_enabled() if wanted.setype else False,
    )
    if wanted.manages_quota and not target_exists:
        observed.target.quota_enabled = _quota_enabled(runner, path, existing)
    if wanted.state == "snapshot" and observed.target.is_subvolume:
        _inspect_snapshots(runner, wanted, observed, now or datetime.now(timezone.utc))
    return observed


def _inspect_snapshots(runner: Runner, wanted: Wanted, observed: Observed, now: datetime) -> None:
    source = observed.target
    if source.info is None:
        raise BtrfsError("%s: cannot read the subvolume's UUID" % wanted.path)
    snapshot_dir = wanted.effective_snapshot_dir()
    naming = SnapshotNaming(wanted.snapshot_name)
    name = os.path.basename(wanted.path)
    observed.snapshot_name = naming.render(name, now)
    regex = naming.regex(name)
    existing = snapshot_dir
    while not os.path.lexists(existing):
        observed.snapshot_dir_missing.insert(0, existing)
        existing = os.path.dirname(existing)
    observed.snapshot_dir_mount = _find_mount(runner, snapshot_dir, existing)
    _require_btrfs(snapshot_dir, observed.snapshot_dir_mount)
    if observed.mount is not None and observed.snapshot_dir_mount.uuid != observed.mount.uuid:
        raise BtrfsError("snapshot_dir %s is on another filesystem (%s) than %s (%s): snapshots must stay on the "
                         "same Btrfs filesystem" % (snapshot_dir, observed.snapshot_dir_mount.source, wanted.path,
                                                    observed.mount.source))
    if observed.snapshot_dir_missing:
        return
    if not os.path.isdir(snapshot_dir):
        raise BtrfsError("snapshot_dir %s exists and is not a directory" % snapshot_dir)
    snapshots: List[Snapshot] = []
    for entry in sorted(os.listdir(snapshot_dir)):
        candidate = os.path.join(snapshot_dir, entry)
        if entry == observed.snapshot_name:
            observed.snapshot_existing = inspect_path(runner, candidate)
        if not regex.match(entry):
            continue
        state = inspect_path(runner, candidate) if entry != observed.snapshot_name else observed.snapshot_existing
        if state is not None and state.info is not None and state.info.parent_uuid == source.info.uuid:
            snapshots.append(Snapshot(candidate, state.info))
    observed.snapshots = sorted(snapshots, key=lambda snap: snap.info.id)


# -------------------------------------------------------------------------------------------------- planner


@dataclass
class Operation:
    """One change: what it does (action, path, detail) and the command that does it (argv)."""

    action: str
    path: str
    argv: List[str]
    detail: str
    limit: Optional[int] = None  # for quota limits: re-checked against usage right before running

    def as_dict(self) -> Dict[str, object]:
        return {"action": self.action, "path": self.path, "command": list(self.argv), "detail": self.detail}


def _check_state_options(wanted: Wanted) -> None:
    attributes = {"owner": wanted.owner, "group": wanted.group, "mode": wanted.mode, "compression": wanted.compression,
                  "quota": wanted.quota, "setype": wanted.setype}
    given = sorted(name for name, value in attributes.items() if value is not None)
    if wanted.state != "present" and given:
        raise BtrfsError("options %s only apply to state=present, not state=%s" % (", ".join(given), wanted.state))
    snapshot_options = sorted(name for name, value in (("snapshot_dir", wanted.snapshot_dir),
                                                       ("snapshot_keep", wanted.snapshot_keep)) if value is not None)
    if wanted.state != "snapshot" and snapshot_options:
        raise BtrfsError("options %s only apply to state=snapshot, not state=%s"
                         % (", ".join(snapshot_options), wanted.state))
    if wanted.recursive and wanted.state != "absent":
        raise BtrfsError("option recursive only applies to state=absent, not state=%s" % wanted.state)
    if wanted.compression is not None and wanted.compression not in COMPRESSION_CHOICES:
        raise BtrfsError("compression %r is unknown: use one of %s" % (wanted.compression, ", ".join(COMPRESSION_CHOICES)))
    if wanted.snapshot_keep is not None and wanted.snapshot_keep < 1:
        raise BtrfsError("snapshot_keep must be 1 or more (omit it to keep every snapshot)")


def _parent_operations(missing: List[str], as_subvolumes: bool) -> List[Operation]:
    if as_subvolumes:
        return [Operation("create_subvolume", d, ["btrfs", "subvolume", "create", d], "create parent subvolume")
                for d in missing]
    return [Operation("mkdir", d, ["mkdir", d], "create parent directory") for d in missing]


def plan_present(observed: Observed, wanted: Wanted) -> List[Operation]:
    _check_state_options(wanted)
    target = observed.target
    path = wanted.path
    plan: List[Operation] = []
    if target.exists and not target.is_subvolume:
        raise BtrfsError("%s exists and is not a Btrfs subvolume (it is a %s): move it away or choose another path"
                         % (path, "directory" if target.is_dir else "file"))
    if not target.exists:
        if observed.missing_parents and not wanted.parents:
            raise BtrfsError("%s: parent directory %s does not exist (set parents=true to create it)"
                             % (path, observed.missing_parents[0]))
        plan += _parent_operations(observed.missing_parents, wanted.parents_as_subvolumes)
        plan.append(Operation("create_subvolume", path, ["btrfs", "subvolume", "create", path], "create subvolume"))

    if wanted.manages_quota:
        limit = wanted.quota_limit
        usage = target.usage
        if limit is not None and usage is not None and limit < usage:
            raise BtrfsError("%s: quota %s (%d bytes) is below the current usage %s (%d bytes): raise the quota or "
                             "free space first; nothing was changed" % (path, format_size(limit), limit,
                                                                        format_size(usage), usage))
        if not target.quota_enabled and limit is None:
            pass  # with quotas off there is no limit to remove
        elif not target.quota_enabled:
            mount_point = observed.mount.target if observed.mount else path
            plan.append(Operation("enable_quota", mount_point, ["btrfs", "quota", "enable", mount_point],
                                  "enable quotas on the filesystem"))
            plan.append(Operation("rescan_quota", mount_point, ["btrfs", "quota", "rescan", "-w", mount_point],
                                  "wait for the quota rescan"))
        current = target.qgroup.max_referenced if target.qgroup is not None else None
        if (target.exists and current != limit and (target.quota_enabled or limit is not None)) or \
                (not target.exists and limit is not None):
            plan.append(Operation("limit_quota", path,
                                  ["btrfs", "qgroup", "limit", "none" if limit is None else str(limit), path],
                                  "set quota limit (referenced) %s, was %s" % (format_size(limit), format_size(current)),
                                  limit=limit))

    if wanted.compression is not None:
        current_compression = target.compression or "default"
        if not target.exists or current_compression != wanted.compression:
            value = "" if wanted.compression == "default" else wanted.compression
            plan.append(Operation("set_compression", path, ["btrfs", "property", "set", path, "compression", value],
                                  "set compression %s, was %s" % (wanted.compression,
                                                                  current_compression if target.exists else "-")))

    owner_changes = (wanted.owner is not None and (not target.exists or target.uid != wanted.owner)) or \
                    (wanted.group is not None and (not target.exists or target.gid != wanted.group))
    if owner_changes:
        spec = "%s:%s" % ("" if wanted.owner is None else wanted.owner, "" if wanted.group is None else wanted.group)
        was = "%s:%s" % (target.uid, target.gid) if target.exists else "-"
        plan.append(Operation("chown", path, ["chown", spec.rstrip(":"), path], "owner %s, was %s" % (spec, was)))
    if wanted.mode is not None and (not target.exists or target.mode != wanted.mode):
        plan.append(Operation("chmod", path, ["chmod", "%04o" % wanted.mode, path],
                              "mode %04o, was %s" % (wanted.mode, "-" if target.mode is None else "%04o" % target.mode)))
    selinux_differs = not target.exists or target.selinux_type != wanted.setype
    if wanted.setype is not None and observed.selinux_enabled and selinux_differs:
        plan.append(Operation("chcon", path, ["chcon", "-t", wanted.setype, path],
                              "SELinux type %s, was %s" % (wanted.setype, target.selinux_type)))
    if plan and target.info is not None and target.info.readonly:
        raise BtrfsError("%s is a read-only subvolume (a snapshot?) and cannot be changed (%s)"
                         % (path, "; ".join(op.detail for op in plan)))
    return plan


def plan_absent(observed: Observed, wanted: Wanted) -> List[Operation]:
    _check_state_options(wanted)
    target = observed.target
    if not target.exists:
        return []
    if not target.is_subvolume:
        raise BtrfsError("%s is not a Btrfs subvolume (it is a %s): refusing to delete it"
                         % (wanted.path, "directory" if target.is_dir else "file"))
    if target.nested and not wanted.recursive:
        raise BtrfsError("%s contains nested subvolumes (%s): set recursive=true to delete them too"
                         % (wanted.path, ", ".join(target.nested)))
    return [Operation("delete_subvolume", p, ["btrfs", "subvolume", "delete", p],
                      "delete nested subvolume" if p != wanted.path else "delete subvolume")
            for p in target.nested + [wanted.path]]


def plan_snapshot(observed: Observed, wanted: Wanted) -> List[Operation]:
    _check_state_options(wanted)
    source = observed.target
    if not source.exists:
        raise BtrfsError("%s does not exist: nothing to snapshot" % wanted.path)
    if not source.is_subvolume or source.info is None:
        raise BtrfsError("%s is not a Btrfs subvolume: only subvolumes can be snapshotted" % wanted.path)
    snapshot_dir = wanted.effective_snapshot_dir()
    destination = os.path.join(snapshot_dir, observed.snapshot_name or "")
    plan: List[Operation] = [Operation("mkdir", d, ["mkdir", d], "create snapshot directory")
                             for d in observed.snapshot_dir_missing]
    existing = observed.snapshot_existing
    kept = list(observed.snapshots)
    if existing is not None and existing.exists:
        if existing.info is None or existing.info.parent_uuid != source.info.uuid:
            raise BtrfsError("%s exists and is not a snapshot of %s: choose another snapshot_name or snapshot_dir"
                             % (destination, wanted.path))
    else:
        argv = ["btrfs", "subvolume", "snapshot"] + (["-r"] if wanted.snapshot_readonly else []) + \
            [wanted.path, destination]
        plan.append(Operation("snapshot", destination, argv,
                              "create %ssnapshot of %s" % ("read-only " if wanted.snapshot_readonly else "",
                                                           wanted.path)))
        kept.append(Snapshot(destination, source.info))  # the newest; its info is a stand-in until it exists
    if wanted.snapshot_keep is not None and len(kept) > wanted.snapshot_keep:
        for snap in kept[:len(kept) - wanted.snapshot_keep]:
            plan.append(Operation("delete_snapshot", snap.path, ["btrfs", "subvolume", "delete", snap.path],
                                  "retention: keep the %d newest" % wanted.snapshot_keep))
    return plan


def plan(observed: Observed, wanted: Wanted) -> List[Operation]:
    planners = {"present": plan_present, "absent": plan_absent, "snapshot": plan_snapshot}
    if wanted.state not in planners:
        raise BtrfsError("state %r is unknown: use present, absent or snapshot" % wanted.state)
    return planners[wanted.state](observed, wanted)


def snapshots_after(observed: Observed, operations: List[Operation], wanted: Wanted) -> List[str]:
    """The snapshot paths that exist once the plan ran (oldest first)."""
    deleted = {op.path for op in operations if op.action == "delete_snapshot"}
    paths = [snap.path for snap in observed.snapshots]
    destination = os.path.join(wanted.effective_snapshot_dir(), observed.snapshot_name or "")
    if any(op.action == "snapshot" for op in operations):
        paths.append(destination)
    return [p for p in paths if p not in deleted]


def describe(observed: Observed, wanted: Wanted) -> Dict[str, object]:
    """The managed properties as they are now (the 'before' side of the diff)."""
    target = observed.target
    if wanted.state == "snapshot":
        return {"path": wanted.path, "snapshots": [snap.path for snap in observed.snapshots]}
    before: Dict[str, object] = {"path": wanted.path, "state": "present" if target.is_subvolume else "absent"}
    if target.is_subvolume:
        before.update(owner=target.uid, group=target.gid, mode="%04o" % target.mode if target.mode is not None else None,
                      compression=target.compression or "default")
        if wanted.manages_quota:
            before["quota"] = format_size(target.qgroup.max_referenced) if target.qgroup else "none"
        if wanted.setype and observed.selinux_enabled:
            before["setype"] = target.selinux_type
        if wanted.state == "absent":
            before["nested"] = list(target.nested)
    return before


def describe_after(observed: Observed, wanted: Wanted, operations: List[Operation]) -> Dict[str, object]:
    """The managed properties once the plan ran (the 'after' side of the diff), from the same comparison."""
    if wanted.state == "snapshot":
        return {"path": wanted.path, "snapshots": snapshots_after(observed, operations, wanted)}
    after = describe(observed, wanted)
    if wanted.state == "absent":
        return {"path": wanted.path, "state": "absent"}
    after["state"] = "present"
    target = observed.target
    if not target.is_subvolume:
        after.update(owner=0, group=0, compression="default")
    if wanted.owner is not None:
        after["owner"] = wanted.owner
    if wanted.group is not None:
        after["group"] = wanted.group
    if wanted.mode is not None:
        after["mode"] = "%04o" % wanted.mode
    if wanted.compression is not None:
        after["compression"] = wanted.compression
    if wanted.manages_quota:
        after["quota"] = format_size(wanted.quota_limit)
    if wanted.setype and observed.selinux_enabled:
        after["setype"] = wanted.setype
    return after


# ---------------------------------------------------------------------------------------------------- apply


def apply(runner: Runner, operations: List[Operation]) -> None:
    """Run a plan in order. A quota limit is re-checked against the real usage right before it is set: if quotas
    were off at planning time the usage was an estimate; when it fails, quotas enabled by this plan are disabled
    again so that nothing is left half-done."""
    enabled_here: Optional[str] = None
    for op in operations:
        if op.action == "limit_quota" and op.limit is not None:
            result = runner.run(op.path, ["btrfs", "qgroup", "show", "--raw", "-re", "-f", op.path])
            rows = parse_qgroup_show(result.stdout)
            usage = rows[0].referenced if rows else 0
            if op.limit < usage:
                if enabled_here is not None:
                    runner.run(enabled_here, ["btrfs", "quota", "disable", enabled_here], changes=True)
                raise BtrfsError("%s: quota %s (%d bytes) is below the current usage %s (%d bytes): raise the quota "
                                 "or free space first%s" % (op.path, format_size(op.limit), op.limit,
                                                            format_size(usage), usage,
                                                            "; quotas were disabled again" if enabled_here else ""))
        runner.run(op.path, op.argv, changes=True)
        if op.action == "enable_quota":
            enabled_here = op.path


def quota_report(runner: Runner, path: str) -> Dict[str, object]:
    """Limit and usage of the subvolume's qgroup, read after a filesystem sync (usage lags until a commit)."""
    runner.run(path, ["btrfs", "filesystem", "sync", path])
    state = inspect_path(runner, path, quota=True)
    if not state.quota_enabled or state.qgroup is None:
        return {"enabled": state.quota_enabled, "qgroup": None, "limit": None, "limit_human": "none",
                "referenced": state.usage_estimate, "exclusive": None}
    row = state.qgroup
    return {"enabled": True, "qgroup": row.qgroupid, "limit": row.max_referenced,
            "limit_human": format_size(row.max_referenced), "referenced": row.referenced,
            "referenced_human": format_size(row.referenced), "exclusive": row.exclusive}
