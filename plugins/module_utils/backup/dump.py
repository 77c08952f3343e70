# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logical backup: pg_dump in the PostgreSQL container, streamed (or written) into the backup directory with its
manifest, then retention; and the inventory the info module reports."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.poststack.core.plugins.module_utils.backup.catalog import (
    apply_retention, check_entry, newest_good, plan_retention, retention_paths, scan,
)
from ansible_collections.poststack.core.plugins.module_utils.postgres_exec import exec_argv
from ansible_collections.poststack.core.plugins.module_utils.backup.commands import (
    Executor, container_mount_source, container_path, encrypt_argv, pg_dump_argv, quote_literal,
    resolve_runtime,
)
from ansible_collections.poststack.core.plugins.module_utils.backup.manifest import (
    BackupError, CONTAINER_BACKUP_ROOT, CONTAINER_CONF_DIR, ENCRYPTIONS, FORMATS, MANIFEST_SUFFIX, Manifest,
    NOTHING_CHANGED, PASSPHRASE_ENV, POSTGRES_UID, PREFIX_RE, SEP, backup_filename, backup_name, iso, key_check,
    tree_digest, tree_files, utc_now, write_atomic,
)


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
    result["commands"] = [command.record() for command in executor.commands]
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
