# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup manifest: what a backup is, its size and sha256 (files and directory trees), the passphrase verifier."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple


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
