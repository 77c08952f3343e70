# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stat before read: what reading a migration's files gave (its checksums and no-transaction flags), kept by the
files' names, sizes, modification and change times and inodes. A run whose files did not change reads none of
them; their texts are read when a step needs them (MigrationFile.load), and checked against the kept checksums.

A file changed within the last RACY_SECONDS is neither taken from nor put into the cache: a change within the file
system's time granularity after it was read could otherwise keep its old checksum (git's "racy clean" problem).
The cache is a JSON file per migrations directory and layout under ``$XDG_CACHE_HOME/poststack/migrations`` (else
``~/.cache``), mode 0600, used only when this user owns it and nobody else can write it, and only when the code that
reads the files is the one that made it (``code``: a hash of that code). Entries of files no longer there are
dropped when it is written; cache files not written for MAX_AGE_DAYS go then too. A cache that cannot be read or
written, or holds what this code did not write, is only a cache: the files are read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from typing import Any, Dict, Optional, Sequence, Set, Tuple

FORMAT = 1
RACY_SECONDS = 2.0
MAX_AGE_DAYS = 30


def default_path(directory: str, layout: str) -> Optional[str]:
    """The cache file of a directory and layout; None without an absolute cache directory (no HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    key = hashlib.sha256(("%s\0%s" % (os.path.realpath(directory), layout)).encode("utf-8")).hexdigest()[:32]
    return os.path.join(base, "poststack", "migrations", key + ".json")


class ChecksumCache:
    """Entries by the signature of a migration's files (see signature())."""

    def __init__(self, path: Optional[str], code: str = "", now: Optional[float] = None) -> None:
        self.path = path
        self.code = code
        self.now = time.time() if now is None else now
        self.entries: Dict[str, Dict[str, Any]] = {}
        self.used: Set[str] = set()
        self.changed = False
        if path:
            try:
                with open(path, encoding="utf-8") as handle:
                    info = os.fstat(handle.fileno())
                    if info.st_uid != os.getuid() or info.st_mode & 0o022:
                        return  # another user's, or others can write it: not trusted
                    data = json.load(handle)
                if isinstance(data, dict) and data.get("format") == FORMAT and data.get("code") == code \
                        and isinstance(data.get("entries"), dict):
                    self.entries = data["entries"]
            except (OSError, ValueError):
                pass

    def signature(self, stats: Sequence[Tuple[str, os.stat_result]]) -> Optional[str]:
        """The files' stats (by file name) as one key; None when one of them changed too recently to be trusted."""
        parts = []
        for name, info in stats:
            if self.now - info.st_mtime < RACY_SECONDS or self.now - info.st_ctime < RACY_SECONDS:
                return None
            parts.append("%s:%d:%d:%d:%d" % (name, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino))
        return "|".join(parts)

    def get(self, signature: str) -> Optional[Dict[str, Any]]:
        self.used.add(signature)
        return self.entries.get(signature)

    def put(self, signature: str, value: Dict[str, Any]) -> None:
        self.used.add(signature)
        self.entries[signature] = value
        self.changed = True

    def save(self) -> None:
        """Write the entries of this run's files (when something changed or went), atomically; errors are ignored."""
        if not self.path or not (self.changed or set(self.entries) - self.used):
            return
        kept = {key: value for key, value in self.entries.items() if key in self.used}
        try:
            directory = os.path.dirname(self.path)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".checksums-", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"format": FORMAT, "code": self.code, "entries": kept}, handle)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
            self._prune(directory)
        except OSError:
            return
        self.entries, self.changed = kept, False

    def _prune(self, directory: str) -> None:
        """The cache files of directories no run has read for MAX_AGE_DAYS, and temporary files of killed runs."""
        for entry in os.scandir(directory):
            try:
                age = self.now - entry.stat().st_mtime
                if (entry.name.endswith(".json") and age > MAX_AGE_DAYS * 86400) or \
                        (entry.name.startswith(".checksums-") and age > 86400):
                    os.unlink(entry.path)
            except OSError:
                continue
