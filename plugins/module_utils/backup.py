# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logical backups of a containerised PostgreSQL: manifest, catalog, checksum validation, retention planner,
pg_dump/pg_restore through ``<runtime> exec``, restore by swap, and table comparison.

Standard library only, no Ansible imports: the modules poststack_backup, poststack_backup_info and
poststack_backup_restore use it, and the backup role installs this very file on the host next to
roles/backup/files/poststack_backup_cli.py, the command its cron job or systemd timer runs, so that scheduled and
on-demand backups are the same code.

Layout of a backup directory (host side)::

    <name>.dump | <name>.dump.age | <name>.dump.enc | <name>.dir/     the backup (custom or directory format)
    <name>.manifest.json                                            what it is, its size and sha256

A backup without a manifest, or whose size or sha256 differs from it, is not "good": it is never restored, never
counts as the newest good backup, and retention only removes it by age.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, IO, Iterable, List, Optional, Sequence, Tuple

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
FORMATS = ("custom", "directory")
ENCRYPTIONS = ("none", "age", "openssl")
PASSPHRASE_ENV = "POSTSTACK_BACKUP_PASSPHRASE"
CONTAINER_BACKUP_ROOT = "/data/postgres/backups"
CONTAINER_CONF_DIR = "/etc/postgresql/conf.d"
CHUNK = 1024 * 1024
SEP = "\x1f"  # psql field separator: cannot appear in identifiers or in the numbers we read
NAME_RE = re.compile(r"^(?P<prefix>.*?)(?P<stamp>\d{8}T\d{6}Z)$")
PREFIX_RE = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*)?$")
RESERVED_DATABASES = ("postgres", "template0", "template1")
NOTHING_CHANGED = "nothing was changed"
MAX_IDENTIFIER = 63
POSTGRES_UID = 999
OPENSSL_ITERATIONS = 200000


class BackupError(Exception):
    """A backup or restore step failed; the message says what and how to fix it."""


# --- manifest ---------------------------------------------------------------------------------------------------


@dataclass
class Manifest:
    """What a backup is. Written last, after the backup file is complete and hashed."""

    name: str
    database: str
    format: str
    path: str
    created_at: str
    finished_at: str
    duration_seconds: float
    size: int
    sha256: str
    pg_version: str
    pg_dump_version: str
    encryption: str = "none"
    compression: int = 6
    owner: str = "postgres"
    files: List[Dict[str, object]] = field(default_factory=list)
    tool: str = "pg_dump"
    manifest_version: int = MANIFEST_VERSION
    key_check: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Dict[str, object]) -> "Manifest":
        known = set(cls.__dataclass_fields__)  # pylint: disable=no-member
        missing = [key for key in ("name", "database", "format", "path", "created_at", "size", "sha256")
                   if key not in data]
        if missing:
            raise BackupError(f"manifest lacks {', '.join(missing)}")
        values = {key: value for key, value in data.items() if key in known}
        values.setdefault("finished_at", values["created_at"])
        values.setdefault("duration_seconds", 0.0)
        values.setdefault("pg_version", "")
        values.setdefault("pg_dump_version", "")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def created(self) -> dt.datetime:
        return parse_time(self.created_at)


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 time; naive values are UTC."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def backup_name(prefix: str, database: str, moment: dt.datetime) -> str:
    return f"{prefix}{database}_{moment.astimezone(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"


def backup_filename(name: str, fmt: str, encryption: str) -> str:
    if fmt == "directory":
        return name + ".dir"
    return name + ".dump" + {"none": "", "age": ".age", "openssl": ".enc"}[encryption]


def write_atomic(path: str, text: str, mode: int = 0o600) -> None:
    directory = os.path.dirname(path) or "."
    handle, tmp = tempfile.mkstemp(prefix=".manifest.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- checksums --------------------------------------------------------------------------------------------------


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_files(root: str) -> List[Dict[str, object]]:
    """Every regular file under root (a directory-format dump): relative path, size, sha256, sorted by path."""
    files = []
    for base, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(base, name)
            files.append({"path": os.path.relpath(full, root), "size": os.path.getsize(full), "sha256": sha256_file(full)})
    return sorted(files, key=lambda item: str(item["path"]))


def tree_digest(files: Sequence[Dict[str, object]]) -> Tuple[int, str]:
    """Total size and one sha256 over the sorted "sha256  path" lines (like a sha256sum listing)."""
    digest = hashlib.sha256()
    total = 0
    for item in files:
        digest.update(f"{item['sha256']}  {item['path']}\n".encode("utf-8"))
        total += int(item["size"])  # type: ignore[call-overload]
    return total, digest.hexdigest()


# --- catalog and validation --------------------------------------------------------------------------------------


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


# --- commands ----------------------------------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def exec_argv(runtime: str, container: str, argv: Sequence[str], interactive: bool = False) -> List[str]:
    """`<runtime> exec [-i] --user postgres <container> argv...` (peer authentication on the local socket)."""
    return [runtime, "exec"] + (["-i"] if interactive else []) + ["--user", "postgres", container] + list(argv)


def pg_dump_argv(database: str, fmt: str, compression: int, jobs: int, output: Optional[str]) -> List[str]:
    argv = ["pg_dump", "--host", "/var/run/postgresql", "--username", "postgres", "--no-password",
            f"--format={'c' if fmt == 'custom' else 'd'}", f"--compress={compression}"]
    if fmt == "directory":
        argv += [f"--jobs={jobs}", "--file", output or ""]
    argv += ["--dbname", database]
    return argv


def pg_restore_argv(database: str, jobs: int, path: Optional[str]) -> List[str]:
    """pg_restore into an existing database; from `path` inside the container, or stdin when None."""
    argv = ["pg_restore", "--host", "/var/run/postgresql", "--username", "postgres", "--no-password",
            "--exit-on-error", "--dbname", database]
    if path is not None:
        argv += [f"--jobs={max(1, jobs)}", path]
    return argv


def encrypt_argv(encryption: str, recipients: Sequence[str]) -> Optional[List[str]]:
    if encryption == "age":
        if not recipients:
            raise BackupError("encryption=age needs at least one recipient (an age public key, age1...)")
        argv = ["age"]
        for recipient in recipients:
            argv += ["-r", recipient]
        return argv
    if encryption == "openssl":
        return ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", str(OPENSSL_ITERATIONS), "-salt", "-pass",
                f"env:{PASSPHRASE_ENV}"]
    return None


def decrypt_argv(encryption: str, identity_file: Optional[str]) -> Optional[List[str]]:
    if encryption == "age":
        if not identity_file:
            raise BackupError("the backup is encrypted with age: give the identity (the secret key) to decrypt it")
        return ["age", "--decrypt", "-i", identity_file]
    if encryption == "openssl":
        return ["openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", str(OPENSSL_ITERATIONS), "-pass",
                f"env:{PASSPHRASE_ENV}"]
    return None


KEY_CHECK_CONTEXT = b"poststack backup key check:"


def key_check(passphrase: str, salt: Optional[bytes] = None) -> str:
    """A verifier of the passphrase, kept in the manifest: openssl's AES-CBC cannot tell a wrong passphrase (about
    one wrong key in 256 yields valid padding and decrypts to garbage with exit code 0), so a restore checks the
    passphrase against this before it touches anything. PBKDF2 with as many iterations as openssl's own key
    derivation, with its own salt: guessing the passphrase from it costs as much as guessing it from the file."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), KEY_CHECK_CONTEXT + salt, OPENSSL_ITERATIONS)
    return f"pbkdf2-sha256${OPENSSL_ITERATIONS}${salt.hex()}${digest.hex()}"


def key_matches(passphrase: str, check: str) -> Optional[bool]:
    """True or False when `check` is a verifier written by key_check; None when it is empty or unreadable."""
    parts = check.split("$")
    if len(parts) != 4 or parts[0] != "pbkdf2-sha256" or not parts[1].isdigit():
        return None
    try:
        salt, expected = bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        return None
    digest = hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), KEY_CHECK_CONTEXT + salt, int(parts[1]))
    return hmac.compare_digest(digest, expected)


@dataclass
class Step:
    """One command that ran (argv never holds a secret)."""

    argv: List[str]
    rc: int
    seconds: float
    stderr: str = ""


class Executor:
    """Runs argument lists (never a shell) and pipelines; keeps what ran in `steps`."""

    def __init__(self, env: Optional[Dict[str, str]] = None) -> None:
        self.env = dict(os.environ, LC_ALL="C")
        self.env.update(env or {})
        self.steps: List[Step] = []

    def run(self, argv: Sequence[str], input_text: Optional[str] = None, check: bool = True) -> str:
        start = time.monotonic()
        try:
            proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, env=self.env,
                                  check=False)
        except OSError as exc:
            raise BackupError(f"cannot run {argv[0]}: {exc}") from exc
        self.steps.append(Step(list(argv), proc.returncode, round(time.monotonic() - start, 3),
                               proc.stderr.strip()[-2000:]))
        if check and proc.returncode != 0:
            raise BackupError(f"{' '.join(argv[:2])} ... {argv[-1]} failed (rc={proc.returncode}): "
                              f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc.stdout

    def pipeline_to_file(self, stages: Sequence[Sequence[str]], path: str) -> Tuple[int, str]:
        """Run stages connected by pipes, write the last one's stdout to `path`; returns (size, sha256)."""
        digest = hashlib.sha256()
        size = 0
        start = time.monotonic()
        procs, errs = self._spawn(stages, stdin=None)
        try:
            with open(path, "wb") as out:
                os.chmod(path, 0o600)
                for block in iter(lambda: procs[-1].stdout.read(CHUNK), b""):  # type: ignore[union-attr]
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
        finally:
            self._finish(procs, errs, start, stages)
        return size, digest.hexdigest()

    def pipeline_from_file(self, path: str, stages: Sequence[Sequence[str]]) -> str:
        """Feed `path` into stages connected by pipes; returns the last stage's stdout (text)."""
        start = time.monotonic()
        with open(path, "rb") as source:
            procs, errs = self._spawn(stages, stdin=source)
            try:
                output = procs[-1].stdout.read()  # type: ignore[union-attr]
            finally:
                self._finish(procs, errs, start, stages)
        return output.decode("utf-8", "replace")

    def _spawn(self, stages, stdin) -> Tuple[List[subprocess.Popen], List[IO[bytes]]]:
        procs: List[subprocess.Popen] = []
        errs: List[IO[bytes]] = []
        upstream = stdin
        for argv in stages:
            err = tempfile.TemporaryFile()
            try:
                proc = subprocess.Popen(list(argv), stdin=upstream, stdout=subprocess.PIPE, stderr=err, env=self.env)
            except OSError as exc:
                for started in procs:
                    started.kill()
                raise BackupError(f"cannot run {argv[0]}: {exc}") from exc
            if procs:
                procs[-1].stdout.close()  # type: ignore[union-attr]  # the next stage owns the pipe now
            procs.append(proc)
            errs.append(err)
            upstream = proc.stdout
        return procs, errs

    def _finish(self, procs, errs, start, stages) -> None:
        failures = []
        for proc, err, argv in zip(procs, errs, stages):
            rc = proc.wait()
            err.seek(0)
            text = err.read().decode("utf-8", "replace").strip()[-2000:]
            err.close()
            self.steps.append(Step(list(argv), rc, round(time.monotonic() - start, 3), text))
            if rc != 0:
                failures.append(f"{argv[0]} {' '.join(argv[1:3])} ... failed (rc={rc}): {text}")
        if failures:
            raise BackupError("; ".join(failures))


def resolve_runtime(preference: str = "auto", which: Callable[[str], Optional[str]] = shutil.which) -> str:
    """Like runtime.detect_runtime (kept here so that this file runs alone on a host); also takes the absolute path
    of a runtime binary, as the backup role writes it into the settings of scheduled backups."""
    if os.path.isabs(preference):
        if os.path.basename(preference) in ("podman", "docker") and os.access(preference, os.X_OK):
            return preference
        raise BackupError(f"container runtime '{preference}' is not an executable podman or docker")
    if preference not in ("auto", "podman", "docker"):
        raise BackupError(f"unknown container runtime '{preference}': use auto, podman or docker")
    for name in (("podman", "docker") if preference == "auto" else (preference,)):
        path = which(name)
        if path:
            return path
    raise BackupError(f"container runtime '{preference}' not found on PATH: install podman (preferred) or docker")


def container_mount_source(executor: Executor, runtime: str, container: str, destination: str) -> Optional[str]:
    """The host path mounted at `destination` in the container (bind mount or named volume), or None."""
    out = executor.run([runtime, "inspect", "--format", "{{json .Mounts}}", container], check=False)
    if executor.steps[-1].rc != 0:
        raise BackupError(f"container '{container}' not found or not inspectable with {runtime}: "
                          f"{executor.steps[-1].stderr} — start PostgreSQL first (role poststack.core.postgres) or "
                          f"correct the container name; {NOTHING_CHANGED}")
    try:
        mounts = json.loads(out or "[]") or []
    except ValueError:
        mounts = []
    for mount in mounts:
        if mount.get("Destination", "").rstrip("/") == destination.rstrip("/"):
            return mount.get("Source") or None
    return None


def container_path(host_path: str, host_root: Optional[str], container_root: str = CONTAINER_BACKUP_ROOT) -> Optional[str]:
    """Where host_path is seen inside the container when it lies under the mounted host_root, else None."""
    if not host_root:
        return None
    relative = os.path.relpath(os.path.realpath(host_path), os.path.realpath(host_root))
    if relative == ".":
        return container_root
    if relative.startswith(".."):
        return None
    return container_root.rstrip("/") + "/" + relative


# --- logical backup ----------------------------------------------------------------------------------------------


@dataclass
class DumpSettings:
    container: str
    database: str
    backup_dir: str = ""
    runtime: str = "auto"
    format: str = "custom"
    jobs: int = 2
    compression: int = 6
    prefix: str = ""
    encryption: str = "none"
    age_recipients: List[str] = field(default_factory=list)
    passphrase: Optional[str] = field(default=None, repr=False)
    keep_count: int = 7
    keep_days: float = 0
    create: bool = True
    prune: bool = True

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise BackupError(f"format must be one of {', '.join(FORMATS)}, not '{self.format}'")
        if self.encryption not in ENCRYPTIONS:
            raise BackupError(f"encryption must be one of {', '.join(ENCRYPTIONS)}, not '{self.encryption}'")
        if self.format == "directory" and self.encryption != "none":
            raise BackupError("encryption needs format=custom (a directory-format dump is written by pg_dump inside the "
                              "container, so it cannot be encrypted on its way to disk)")
        if self.encryption == "openssl" and not self.passphrase:
            raise BackupError("encryption=openssl needs a passphrase (backup_encryption_passphrase)")
        if self.encryption == "age" and not self.age_recipients:
            raise BackupError("encryption=age needs age_recipients (public keys age1...; the secret key is only "
                              "needed to restore)")
        if not 0 <= self.compression <= 9:
            raise BackupError(f"compression must be between 0 and 9, not {self.compression}; {NOTHING_CHANGED}")
        if self.jobs < 1:
            raise BackupError("jobs must be at least 1")
        if not self.database:
            raise BackupError("database is empty: name the database to back up")
        for name, value in (("keep_count", self.keep_count), ("keep_days", self.keep_days)):
            if value < 0:
                raise BackupError(f"{name} {value:g} is negative: give 0 (no limit) or more; {NOTHING_CHANGED}")
        if not PREFIX_RE.match(self.prefix):
            raise BackupError(f"prefix {self.prefix!r} is not usable in a file name: use letters, digits, '_', '-' and "
                              f"'.' (not first); {NOTHING_CHANGED}")
        if "/" in self.database or "\0" in self.database:
            raise BackupError(f"database {self.database!r} holds a '/', which cannot be part of a backup file name: "
                              f"rename the database to back it up with this module; {NOTHING_CHANGED}")
        if self.encryption == "age":
            for index, recipient in enumerate(self.age_recipients):
                if recipient.strip().upper().startswith("AGE-SECRET-KEY-"):
                    # Never echo it: it is the key that decrypts every backup.
                    raise BackupError(f"age_recipients[{index}] is an age secret key, not a public key: give the "
                                      "public key (age-keygen -y prints it for a key file); the secret key was not "
                                      f"used or written anywhere; {NOTHING_CHANGED}")
                if not re.match(r"^(age1[0-9a-z]{20,}|ssh-(ed25519|rsa) [A-Za-z0-9+/=]+( .*)?)$", recipient.strip()):
                    raise BackupError(f"age_recipients[{index}] {recipient!r} is not an age public key (age1...) nor an "
                                      f"SSH public key (ssh-ed25519 ..., ssh-rsa ...); {NOTHING_CHANGED}")


def source_facts(executor: Executor, runtime: str, container: str, database: str) -> Tuple[Optional[str], str, str]:
    """Owner of `database` (None when it does not exist), server version, pg_dump version: one exec."""
    sql = ("SELECT coalesce((SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = "
           f"{quote_literal(database)}), '') || chr(31) || current_setting('server_version')")
    out = executor.run(exec_argv(runtime, container, ["sh", "-c", 'pg_dump --version && psql -XAtq -d postgres -c "$1"',
                                                      "sh", sql])).strip().splitlines()
    if len(out) != 2 or SEP not in out[1]:
        raise BackupError(f"unexpected answer from container '{container}': {out!r}")
    # "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    dump = out[0].split(")", 1)[-1].strip() if ")" in out[0] else out[0]
    owner, server = out[1].split(SEP, 1)
    return owner or None, server, dump


def check_source(settings: DumpSettings, executor: Executor, runtime: str,
                 mount_source: Optional[str]) -> Tuple[str, str, str]:
    """What must hold before anything is written: the database exists, and a directory-format dump can be
    written by pg_dump inside the container. Returns source_facts (owner, server version, pg_dump version)."""
    owner, pg_version, dump_version = source_facts(executor, runtime, settings.container, settings.database)
    if owner is None:
        raise BackupError(f"database '{settings.database}' does not exist in container '{settings.container}': "
                          f"check the name (psql -l lists the databases); {NOTHING_CHANGED}")
    if settings.format == "directory" and container_path(os.path.join(settings.backup_dir, "x"), mount_source) is None:
        raise BackupError(f"format=directory needs backup_dir inside the container's backups mount ({mount_source} "
                          f"on the host, {CONTAINER_BACKUP_ROOT} inside); {settings.backup_dir} is not: choose a "
                          f"directory below {mount_source} or format=custom; {NOTHING_CHANGED}")
    return owner, pg_version, dump_version


def create_backup(settings: DumpSettings, executor: Executor, runtime: str, mount_source: Optional[str],
                  now: Optional[dt.datetime] = None, facts: Optional[Tuple[str, str, str]] = None) -> Manifest:
    """Dump the database, hash it, write the manifest last."""
    start = now or utc_now()
    owner, pg_version, dump_version = facts or check_source(settings, executor, runtime, mount_source)
    # Names have a resolution of one second: a second backup within the same second waits for the next one.
    for attempt in range(3):
        name = backup_name(settings.prefix, settings.database, start)
        filename = backup_filename(name, settings.format, settings.encryption)
        final = os.path.join(settings.backup_dir, filename)
        taken = [path for path in (final, final + ".partial", os.path.join(settings.backup_dir, name + MANIFEST_SUFFIX))
                 if os.path.lexists(path)]
        if not taken:
            break
        if attempt == 2:
            raise BackupError(f"{taken[0]} already exists: another backup is running or the clock went back")
        time.sleep(1.01 - time.time() % 1)
        start = utc_now()
    partial = final + ".partial"
    clock = time.monotonic()
    files: List[Dict[str, object]] = []
    try:
        if settings.format == "custom":
            stages = [exec_argv(runtime, settings.container,
                                pg_dump_argv(settings.database, "custom", settings.compression, 1, None))]
            encrypt = encrypt_argv(settings.encryption, settings.age_recipients)
            if encrypt:
                stages.append(encrypt)
            size, digest = executor.pipeline_to_file(stages, partial)
            os.replace(partial, final)
        else:
            inside = container_path(partial, mount_source)
            if inside is None:
                raise BackupError(f"format=directory needs backup_dir inside the container's backups mount ({mount_source} "
                                  f"on the host, {CONTAINER_BACKUP_ROOT} inside); {settings.backup_dir} is not")
            executor.run(exec_argv(runtime, settings.container,
                                   pg_dump_argv(settings.database, "directory", settings.compression, settings.jobs, inside)))
            os.replace(partial, final)
            files = tree_files(final)
            size, digest = tree_digest(files)
    except BaseException:
        if os.path.isdir(partial):
            shutil.rmtree(partial, ignore_errors=True)
        elif os.path.lexists(partial):
            os.unlink(partial)
        raise
    finished = utc_now()
    manifest = Manifest(name=name, database=settings.database, format=settings.format, path=filename,
                        created_at=iso(start), finished_at=iso(finished),
                        duration_seconds=round(time.monotonic() - clock, 3), size=size, sha256=digest,
                        pg_version=pg_version, pg_dump_version=dump_version, encryption=settings.encryption,
                        compression=settings.compression, owner=owner, files=files,
                        key_check=key_check(settings.passphrase) if settings.encryption == "openssl" else "")
    if settings.format == "custom" and container_path(final, mount_source) is not None and os.geteuid() == 0:
        # Readable by pg_restore inside the container, which then reads it directly (parallel restore).
        os.chown(final, POSTGRES_UID, POSTGRES_UID)
    write_atomic(os.path.join(settings.backup_dir, name + MANIFEST_SUFFIX), manifest.to_json())
    return manifest


def default_backup_dir(backup_dir: Optional[str], mount_source: Optional[str], container: str) -> str:
    """backup_dir, or `logical/` in the host directory mounted at /data/postgres/backups in the container."""
    if backup_dir:
        return backup_dir
    if not mount_source:
        raise BackupError(f"container '{container}' has no mount at {CONTAINER_BACKUP_ROOT} and no backup_dir was "
                          "given: mount a backups volume there (role poststack.core.postgres does) or set backup_dir")
    return os.path.join(mount_source, "logical")


def ensure_backup_dir(path: str, mount_source: Optional[str]) -> bool:
    """Create the backup directory (0700). Inside the container's mount it belongs to postgres (UID 999), so that
    pg_dump/pg_restore in the container can write and read directory-format dumps. Returns True when created."""
    if os.path.isdir(path):
        return False
    os.makedirs(path, mode=0o700)
    if container_path(path, mount_source) is not None and os.geteuid() == 0:
        os.chown(path, POSTGRES_UID, POSTGRES_UID)
    return True


def target_argument_spec(container_required: bool) -> Dict[str, Dict[str, object]]:
    """The argument spec of where the backups are (the poststack.core.backup_target doc fragment)."""
    return {
        "container": {"type": "str", "required": container_required},
        "backup_dir": {"type": "path"},
        "runtime": {"type": "str", "default": "auto", "choices": ["auto", "podman", "docker"]},
    }


def run_backup(settings: DumpSettings, check_mode: bool = False, executor: Optional[Executor] = None,
               now: Optional[dt.datetime] = None) -> Dict[str, object]:
    """The whole logical backup: (create) then (prune). In check mode nothing is written or deleted."""
    settings.validate()
    extra_env = {PASSPHRASE_ENV: settings.passphrase} if settings.passphrase else {}
    executor = executor or Executor(extra_env)
    runtime = resolve_runtime(settings.runtime)
    mount_source = container_mount_source(executor, runtime, settings.container, CONTAINER_BACKUP_ROOT)
    settings.backup_dir = default_backup_dir(settings.backup_dir, mount_source, settings.container)
    result: Dict[str, object] = {"runtime": runtime, "backup_dir": settings.backup_dir, "backup": None,
                                 "deleted": [], "retention": [], "created_dir": False}
    moment = now or utc_now()
    # Checked before the directory is created, in check mode too: bad input changes nothing.
    facts = check_source(settings, executor, runtime, mount_source) if settings.create else None
    if check_mode:
        # what a real run would do: create the directory when missing, and a backup only with create
        result["created_dir"] = not os.path.isdir(settings.backup_dir)
        if settings.create:
            name = backup_name(settings.prefix, settings.database, moment)
            filename = backup_filename(name, settings.format, settings.encryption)
            result["backup"] = {"name": name, "path": os.path.join(settings.backup_dir, filename)}
    else:
        result["created_dir"] = ensure_backup_dir(settings.backup_dir, mount_source)
        if settings.create:
            manifest = create_backup(settings, executor, runtime, mount_source, moment, facts)
            described = {key: value for key, value in asdict(manifest).items() if key != "key_check"}
            result["backup"] = dict(described, path=os.path.join(settings.backup_dir, manifest.path),
                                    manifest=os.path.join(settings.backup_dir, manifest.name + MANIFEST_SUFFIX))
    if settings.prune:
        entries = scan(settings.backup_dir, settings.database)
        protect = None
        if isinstance(result["backup"], dict) and not check_mode:
            protect = str(result["backup"]["name"])
            for entry in entries:
                if entry.name == protect:
                    entry.checked = True  # just written and hashed on its way to disk
        # Retention trusts manifests, except for the newest good backup it protects: that one is hashed.
        newest_good(entries, check=True)
        plan = plan_retention(entries, moment, settings.keep_count, settings.keep_days, protect)
        result["retention"] = [asdict(decision) for decision in plan.decisions]
        if not check_mode:
            result["deleted"] = apply_retention(plan, settings.backup_dir)
        else:
            result["deleted"] = retention_paths(plan, settings.backup_dir)
    result["steps"] = [asdict(step) for step in executor.steps]
    result["changed"] = bool(settings.create) or bool(result["deleted"]) or bool(result["created_dir"])
    return result


def backup_inventory(backup_dir: str = "", database: Optional[str] = None, verify: str = "newest",
                     container: Optional[str] = None, runtime: str = "auto") -> Dict[str, object]:
    """What the info module returns: the backups (newest first) and which are good.

    verify: `none` trusts manifests, `newest` hashes backups from the newest until a good one is found, `all`
    hashes every backup.
    """
    if verify not in ("none", "newest", "all"):
        raise BackupError(f"verify must be none, newest or all, not '{verify}'")
    result: Dict[str, object] = {"runtime": None, "mount_source": None, "conf_dir": None}
    if container:
        executor = Executor()
        binary = resolve_runtime(runtime)
        result["runtime"] = binary
        result["mount_source"] = container_mount_source(executor, binary, container, CONTAINER_BACKUP_ROOT)
        result["conf_dir"] = container_mount_source(executor, binary, container, CONTAINER_CONF_DIR)
        backup_dir = default_backup_dir(backup_dir, result["mount_source"], container)  # type: ignore[arg-type]
    elif not backup_dir:
        raise BackupError("give backup_dir, or container to use its backups mount")
    entries = scan(backup_dir, database)
    if verify == "all":
        for entry in entries:
            check_entry(entry)
    best = newest_good(entries, check=verify != "none")
    result.update(backup_dir=backup_dir, backups=[entry.summary() for entry in entries],
                  newest_good=best.summary() if best else None,
                  good=sum(1 for entry in entries if entry.good), bad=sum(1 for entry in entries if not entry.good))
    return result


# --- restore -----------------------------------------------------------------------------------------------------


@dataclass
class RestoreSettings:
    container: str
    target: str
    backup_dir: str = ""
    backup: Optional[str] = None          # a name, file or manifest path; None: the newest good one of `database`
    database: Optional[str] = None        # whose newest backup to take when `backup` is None
    runtime: str = "auto"
    replace: bool = False
    jobs: int = 2
    age_identity: Optional[str] = field(default=None, repr=False)
    passphrase: Optional[str] = field(default=None, repr=False)
    compare_with: Optional[str] = None
    drop_after: bool = False


def find_backup(settings: RestoreSettings) -> BackupEntry:
    """The backup to restore, checked against its manifest; raises with a clear message when it is not good."""
    entries = scan(settings.backup_dir)
    if settings.backup:
        wanted = os.path.basename(settings.backup.rstrip("/"))
        if wanted.endswith(MANIFEST_SUFFIX):
            wanted = wanted[: -len(MANIFEST_SUFFIX)]
        matches = [entry for entry in entries
                   if wanted in (entry.name, os.path.basename(entry.path.rstrip("/")))]
        if not matches:
            raise BackupError(f"backup '{settings.backup}' not found in {settings.backup_dir}: give the name of one "
                              f"there (poststack_backup_info lists them). Nothing was changed; database "
                              f"'{settings.target}' is untouched.")
        entry = check_entry(matches[0])
        if not entry.good:
            raise BackupError(f"refusing to restore backup {entry.name}: {'; '.join(entry.problems)}. Nothing was "
                              f"changed; database '{settings.target}' is untouched. Restore another backup "
                              "(poststack_backup_info lists the good ones).")
        return entry
    if not settings.database:
        raise BackupError("give either backup (a name or path) or database (to restore its newest good backup)")
    candidates = [entry for entry in entries if entry.manifest and entry.manifest.database == settings.database]
    if not candidates:
        raise BackupError(f"no backup of database '{settings.database}' in {settings.backup_dir}: check database and "
                          f"backup_dir (poststack_backup_info lists the backups). Nothing was changed; database "
                          f"'{settings.target}' is untouched.")
    entry = newest_good(candidates)
    if entry is None:
        bad = "; ".join(f"{item.name}: {', '.join(item.problems)}" for item in candidates[:3])
        raise BackupError(f"no good backup of database '{settings.database}' in {settings.backup_dir} ({bad}). "
                          f"Nothing was changed; database '{settings.target}' is untouched.")
    return entry


def check_restore_names(settings: "RestoreSettings") -> None:
    """Names refused before anything runs: PostgreSQL would truncate a long one (and rename the wrong database),
    the maintenance databases cannot be swapped, and comparing the target with itself proves nothing."""
    target = settings.target
    if not target:
        raise BackupError("target is empty: name the database to restore into")
    if len(target.encode("utf-8")) > MAX_IDENTIFIER:
        raise BackupError(f"target '{target}' is {len(target.encode('utf-8'))} bytes long; PostgreSQL names have at most "
                          f"{MAX_IDENTIFIER} bytes (a longer one is truncated): choose a shorter name; {NOTHING_CHANGED}")
    if target in RESERVED_DATABASES:
        raise BackupError(f"target '{target}' is a maintenance database of PostgreSQL and cannot be replaced by a "
                          f"restore: restore into another database; {NOTHING_CHANGED}")
    if settings.compare_with is not None and settings.compare_with == target:
        raise BackupError(f"compare_with '{target}' is the target itself, so the comparison would always be equal: "
                          f"compare with the live database the backup was taken from; {NOTHING_CHANGED}")


def scratch_name(target: str, suffix: str) -> str:
    token = secrets.token_hex(3)
    base = target[: MAX_IDENTIFIER - len(suffix) - len(token) - 3]
    return f"{base}__{suffix}{token}"


def table_stats_sql(tables: Sequence[str]) -> str:
    """One query: per table, the row count and an order-independent checksum (sum of 64-bit row hashes)."""
    parts = [
        f"SELECT {quote_literal(table)}, count(*), "
        f"coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0) FROM {table} AS t"
        for table in tables
    ]
    return "\nUNION ALL\n".join(parts) + ";" if parts else ""


TABLES_SQL = (
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1;"
)


def parse_rows(text: str, columns: int) -> List[List[str]]:
    rows = []
    for line in text.splitlines():
        if not line:
            continue
        values = line.split(SEP)
        if len(values) != columns:
            raise BackupError(f"unexpected psql output line: {line!r}")
        rows.append(values)
    return rows


def psql(executor: Executor, runtime: str, container: str, database: str, sql: str) -> str:
    return executor.run(exec_argv(runtime, container, ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", SEP,
                                                       "-d", database, "-f", "-"], interactive=True), input_text=sql)


def table_stats(executor: Executor, runtime: str, container: str, database: str) -> Dict[str, Dict[str, str]]:
    tables = [row[0] for row in parse_rows(psql(executor, runtime, container, database, TABLES_SQL), 1)]
    if not tables:
        return {}
    rows = parse_rows(psql(executor, runtime, container, database, table_stats_sql(tables)), 3)
    return {row[0]: {"rows": row[1], "checksum": row[2]} for row in rows}


@dataclass
class TableDifference:
    table: str
    source: Optional[Dict[str, str]]
    restored: Optional[Dict[str, str]]


def compare_stats(source: Dict[str, Dict[str, str]], restored: Dict[str, Dict[str, str]]) -> List[TableDifference]:
    return [TableDifference(table, source.get(table), restored.get(table))
            for table in sorted(set(source) | set(restored)) if source.get(table) != restored.get(table)]


def target_facts(executor: Executor, runtime: str, container: str, target: str, owner: str) -> Tuple[bool, bool]:
    """Whether the target database exists and whether the backup's owner role exists: one query."""
    out = psql(executor, runtime, container, "postgres",
               f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {quote_literal(target)}), "
               f"EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(owner)});")
    rows = parse_rows(out, 2)
    return rows[0][0] == "t", rows[0][1] == "t"


def create_incoming(executor: Executor, runtime: str, container: str, target: str, incoming: str, owner: str) -> bool:
    """Create the database to restore into (owned by `owner` when that role exists, else postgres) and tell
    whether the target exists: one exec."""
    out = psql(executor, runtime, container, "postgres", "\n".join([
        f"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(owner)}) AS owner_exists \\gset",
        "\\if :owner_exists",
        f"CREATE DATABASE {quote_ident(incoming)} TEMPLATE template0 OWNER {quote_ident(owner)};",
        "\\else",
        f"CREATE DATABASE {quote_ident(incoming)} TEMPLATE template0 OWNER postgres;",
        "\\endif",
        f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {quote_literal(target)});",
    ]))
    return out.strip().splitlines()[-1] == "t"


def refuse_existing(settings: "RestoreSettings", entry: BackupEntry, exists: bool) -> None:
    if exists and not settings.replace:
        raise BackupError(f"database '{settings.target}' exists: set replace=true to replace it with backup "
                          f"{entry.name} (nothing was changed)")


def swap_sql(target: str, incoming: str, outgoing: Optional[str]) -> List[str]:
    """Statements (run one by one, in the postgres database) that put `incoming` in place of `target`."""
    if outgoing is None:
        return [f"ALTER DATABASE {quote_ident(incoming)} RENAME TO {quote_ident(target)};"]
    return [
        f"ALTER DATABASE {quote_ident(target)} ALLOW_CONNECTIONS false;",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
        f"{quote_literal(target)} AND pid <> pg_backend_pid();",
        f"BEGIN; ALTER DATABASE {quote_ident(target)} RENAME TO {quote_ident(outgoing)}; "
        f"ALTER DATABASE {quote_ident(incoming)} RENAME TO {quote_ident(target)}; COMMIT;",
        f"DROP DATABASE {quote_ident(outgoing)} WITH (FORCE);",
        f"ALTER DATABASE {quote_ident(target)} ALLOW_CONNECTIONS true;",
    ]


def run_restore(settings: RestoreSettings, check_mode: bool = False,
                executor: Optional[Executor] = None) -> Dict[str, object]:
    """Validate the backup, restore it into a new database, then swap it in place of the target.

    The target is touched only after the backup matched its manifest and pg_restore finished without error;
    until the swap, the restore lives in a separate database that is dropped when anything fails.
    """
    check_restore_names(settings)
    extra_env = {PASSPHRASE_ENV: settings.passphrase} if settings.passphrase else {}
    executor = executor or Executor(extra_env)
    runtime = resolve_runtime(settings.runtime)
    mount_source = container_mount_source(executor, runtime, settings.container, CONTAINER_BACKUP_ROOT)
    settings.backup_dir = default_backup_dir(settings.backup_dir, mount_source, settings.container)
    entry = find_backup(settings)
    manifest = entry.manifest
    if manifest is None:  # find_backup returns good entries only
        raise BackupError(f"backup {entry.name} has no manifest")
    if manifest.encryption == "openssl" and not settings.passphrase:
        raise BackupError(f"backup {entry.name} is encrypted with openssl: give passphrase to decrypt it. Nothing was "
                          f"changed; database '{settings.target}' is untouched.")
    if manifest.encryption == "openssl" and key_matches(settings.passphrase, manifest.key_check) is False:
        raise BackupError(f"the passphrase does not decrypt backup {entry.name}: it is not the one the backup was made "
                          f"with. Nothing was changed; database '{settings.target}' is untouched.")
    if manifest.encryption == "age" and not settings.age_identity:
        raise BackupError(f"backup {entry.name} is encrypted with age: give age_identity (the secret key) to decrypt "
                          f"it. Nothing was changed; database '{settings.target}' is untouched.")
    if settings.compare_with:
        out = psql(executor, runtime, settings.container, "postgres",
                   f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {quote_literal(settings.compare_with)});")
        if out.strip() != "t":
            raise BackupError(f"compare_with database '{settings.compare_with}' does not exist in container "
                              f"'{settings.container}': name the database to compare the restore with. Nothing was "
                              f"changed; database '{settings.target}' is untouched.")
    result: Dict[str, object] = {"runtime": runtime, "backup_dir": settings.backup_dir,
                                 "backup": entry.summary(), "target": settings.target,
                                 "replaced": False, "changed": True, "comparison": None}
    if check_mode:
        exists = target_facts(executor, runtime, settings.container, settings.target, manifest.owner)[0]
        refuse_existing(settings, entry, exists)
        result["replaced"] = exists
        result["steps"] = [asdict(step) for step in executor.steps]
        return result
    with tempfile.TemporaryDirectory(prefix="poststack-restore-") as tmp:
        identity_file = None
        if settings.age_identity:
            identity_file = os.path.join(tmp, "identity")
            with open(identity_file, "w", encoding="utf-8") as handle:
                os.chmod(identity_file, 0o600)
                handle.write(settings.age_identity.strip() + "\n")
        decrypt = decrypt_argv(manifest.encryption, identity_file)
        inside = container_path(entry.path, mount_source) if decrypt is None else None
        if manifest.format == "directory" and inside is None:
            raise BackupError(f"{entry.path} is a directory-format dump outside the container's backups mount "
                              f"({mount_source}): copy it below that directory to restore it")
        incoming = scratch_name(settings.target, "restore_")
        # Everything goes into a new database first; an unreadable archive, a wrong key or a failing statement
        # stops pg_restore there, and the target is only touched by the swap after a complete restore.
        exists = create_incoming(executor, runtime, settings.container, settings.target, incoming, manifest.owner)
        result["replaced"] = exists
        if exists and not settings.replace:
            psql(executor, runtime, settings.container, "postgres", f"DROP DATABASE {quote_ident(incoming)};")
            refuse_existing(settings, entry, exists)
        try:
            restore = exec_argv(runtime, settings.container, pg_restore_argv(incoming, settings.jobs, inside),
                                interactive=inside is None)
            clock = time.monotonic()
            if inside:
                executor.run(restore)
            else:
                try:
                    executor.pipeline_from_file(entry.path, ([decrypt] if decrypt else []) + [restore])
                except BackupError as exc:
                    if manifest.encryption == "openssl" and not manifest.key_check:
                        raise BackupError(f"{exc} (this backup's manifest has no passphrase check, and openssl does "
                                          "not always notice a wrong passphrase: check it)") from exc
                    raise
            result["restore_seconds"] = round(time.monotonic() - clock, 3)
        except BaseException:
            psql(executor, runtime, settings.container, "postgres",
                 f"DROP DATABASE IF EXISTS {quote_ident(incoming)} WITH (FORCE);")
            raise
        outgoing = scratch_name(settings.target, "replaced_") if exists else None
        try:
            psql(executor, runtime, settings.container, "postgres", "\n".join(swap_sql(settings.target, incoming, outgoing)))
        except BackupError:
            # The renames are one transaction: either both happened or none. Clean up whichever is left over.
            psql(executor, runtime, settings.container, "postgres",
                 f"DROP DATABASE IF EXISTS {quote_ident(incoming)} WITH (FORCE);\n"
                 f"ALTER DATABASE {quote_ident(settings.target)} ALLOW_CONNECTIONS true;")
            raise
    if settings.compare_with:
        source = table_stats(executor, runtime, settings.container, settings.compare_with)
        restored = table_stats(executor, runtime, settings.container, settings.target)
        differences = compare_stats(source, restored)
        result["comparison"] = {"source": settings.compare_with, "tables": len(source),
                                "rows": sum(int(item["rows"]) for item in source.values()),
                                "differences": [asdict(item) for item in differences], "equal": not differences}
    if settings.drop_after:
        psql(executor, runtime, settings.container, "postgres",
             f"DROP DATABASE IF EXISTS {quote_ident(settings.target)} WITH (FORCE);")
        result["dropped"] = True
    result["steps"] = [asdict(step) for step in executor.steps]
    return result


# --- command line (what the cron job / systemd timer runs) ---------------------------------------------------------


def settings_from_config(config: Dict[str, object]) -> DumpSettings:
    """DumpSettings from the JSON file the backup role writes; the passphrase comes from passphrase_file."""
    values = dict(config)
    passphrase_file = values.pop("passphrase_file", None)
    known = set(DumpSettings.__dataclass_fields__)  # pylint: disable=no-member
    unknown = sorted(set(values) - known)
    if unknown:
        raise BackupError(f"unknown settings in the backup configuration: {', '.join(unknown)}")
    settings = DumpSettings(**values)  # type: ignore[arg-type]
    if passphrase_file:
        with open(str(passphrase_file), encoding="utf-8") as handle:
            settings.passphrase = handle.read().rstrip("\n")
    return settings


def cli(argv: Sequence[str]) -> Tuple[int, str, str]:
    """The scheduled command (roles/backup/files/poststack_backup_cli.py): returns (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="poststack_backup_cli.py",
                                     description="poststack logical backup (pg_dump in the PostgreSQL container)")
    parser.add_argument("--config", required=True, help="JSON settings written by the poststack.core.backup role")
    parser.add_argument("--check", action="store_true", help="show what would be done, change nothing")
    args = parser.parse_args(list(argv))
    try:
        with open(args.config, encoding="utf-8") as handle:
            settings = settings_from_config(json.load(handle))
        result = run_backup(settings, check_mode=args.check)
    except (BackupError, OSError, ValueError) as exc:
        return 1, "", f"poststack backup failed: {exc}\n"
    backup = result.get("backup") if isinstance(result.get("backup"), dict) else {}
    summary = {"backup": backup.get("path"), "size": backup.get("size"), "sha256": backup.get("sha256"),
               "deleted": result["deleted"]}
    return 0, json.dumps(summary) + "\n", ""
