# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Python programs shipped to hosts as one executable file: a head (a shebang or a sh entry) followed by a zip
with a __main__.py at its root. Python runs such a file (zipimport skips the text before the archive), so the host
holds one file that an update replaces atomically.

The bytes depend only on the sources: entries sorted, stored (not compressed), with fixed timestamps and modes,
so that a role's copy reports a change only when the program changed. Used by the pgtwin agent and the scheduled
backup command."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from typing import Iterable, Tuple

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class BundleError(Exception):
    pass


def zipapp(head: bytes, members: Iterable[Tuple[str, bytes]]) -> bytes:
    """``head`` followed by a deterministic zip of ``members`` (archive name, content)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
        for arcname, data in sorted(members):
            info = zipfile.ZipInfo(arcname, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            bundle.writestr(info, data)
    return head + archive.getvalue()


def read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise BundleError("cannot read %s: %s" % (path, exc.strerror)) from exc


def write_cached(data: bytes, cache_dir: str, stem: str) -> Tuple[str, bool]:
    """Write ``data`` to ``cache_dir/<stem>-<sha256 prefix>`` (atomically, mode 0755; identical content is left
    as is) and return (path, written)."""
    path = os.path.join(cache_dir, "%s-%s" % (stem, hashlib.sha256(data).hexdigest()[:16]))
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            if handle.read() == data:
                return path, False
    os.makedirs(cache_dir, exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path, True


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "poststack")
