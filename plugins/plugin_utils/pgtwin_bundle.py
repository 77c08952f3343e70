# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgtwin agent as one executable file: the sh entry (marked bundled) followed by a zip of the
pgtwin_agent package with a __main__.py at its root. Python runs such a file (zipimport skips the text before
the archive), so the OCF directory holds a single file that an update replaces atomically.

The bytes depend only on the sources: entries sorted, stored (not compressed), with fixed timestamps and
modes, so that the role's copy reports a change only when the agent changed."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from typing import Tuple

MARK_SOURCE = "\nbundled=no\n"
MARK_BUNDLE = "\nbundled=yes\n"
MAIN = b'import sys\n\nfrom pgtwin_agent.main import main\n\nsys.exit(main(sys.argv[1:]))\n'
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class BundleError(Exception):
    pass


def build(files_dir: str) -> bytes:
    """The bundle of ``files_dir`` (roles/pgtwin/files: the ``pgtwin`` entry and ``pgtwin_agent/``)."""
    entry_path = os.path.join(files_dir, "pgtwin")
    package = os.path.join(files_dir, "pgtwin_agent")
    try:
        with open(entry_path, encoding="utf-8") as handle:
            entry = handle.read()
    except OSError as exc:
        raise BundleError("cannot read the pgtwin entry script %s: %s" % (entry_path, exc)) from exc
    if entry.count(MARK_SOURCE) != 1:
        raise BundleError("%s has no single 'bundled=no' line to mark" % entry_path)
    names = sorted(name for name in os.listdir(package) if name.endswith(".py")) if os.path.isdir(package) else []
    if "main.py" not in names:
        raise BundleError("%s is not the pgtwin_agent package (no main.py)" % package)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
        members = [("__main__.py", MAIN)]
        for name in names:
            with open(os.path.join(package, name), "rb") as handle:
                members.append(("pgtwin_agent/" + name, handle.read()))
        for arcname, data in members:
            info = zipfile.ZipInfo(arcname, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            bundle.writestr(info, data)
    return entry.replace(MARK_SOURCE, MARK_BUNDLE).encode("utf-8") + archive.getvalue()


def write(files_dir: str, cache_dir: str) -> Tuple[str, bool]:
    """Write the bundle to ``cache_dir/pgtwin-<sha256 prefix>`` (atomically; identical content is left as is)
    and return (path, written)."""
    data = build(files_dir)
    path = os.path.join(cache_dir, "pgtwin-%s" % hashlib.sha256(data).hexdigest()[:16])
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
