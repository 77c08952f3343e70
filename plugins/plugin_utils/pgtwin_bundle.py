# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgtwin agent as one executable file (plugin_utils/bundle.py): the sh entry, marked bundled, followed by a
zip of the pgtwin_agent package with a __main__.py at its root, so that the OCF directory holds a single file."""

from __future__ import annotations

import os
from typing import Tuple

from ansible_collections.poststack.core.plugins.plugin_utils.bundle import BundleError, write_cached, zipapp

MARK_SOURCE = "\nbundled=no\n"
MARK_BUNDLE = "\nbundled=yes\n"
MAIN = b'import sys\n\nfrom pgtwin_agent.main import main\n\nsys.exit(main(sys.argv[1:]))\n'

__all__ = ["BundleError", "build", "write"]


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
    members = [("__main__.py", MAIN)]
    for name in names:
        with open(os.path.join(package, name), "rb") as handle:
            members.append(("pgtwin_agent/" + name, handle.read()))
    return zipapp(entry.replace(MARK_SOURCE, MARK_BUNDLE).encode("utf-8"), members)


def write(files_dir: str, cache_dir: str) -> Tuple[str, bool]:
    """Write the bundle to ``cache_dir/pgtwin-<sha256 prefix>`` and return (path, written)."""
    return write_cached(build(files_dir), cache_dir, "pgtwin")
