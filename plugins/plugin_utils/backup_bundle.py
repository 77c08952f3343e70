# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduled backup command as one executable file (plugin_utils/bundle.py): the collection's backup package
and what it imports (runtime.py, command.py, postgres_exec.py), at their import paths, with a __main__.py that runs backup/cli.py.
The cron job or systemd timer runs the same code as the poststack_backup module."""

from __future__ import annotations

import os
from typing import List, Tuple

from ansible_collections.poststack.core.plugins.plugin_utils.bundle import BundleError, read, write_cached, zipapp

MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
PREFIX = "ansible_collections/poststack/core/plugins/module_utils/"
HEAD = b"#!/usr/bin/env python3\n"
# What the backup package imports from module_utils besides itself.
DEPENDENCIES = ("command.py", "postgres_exec.py", "runtime.py")
MAIN = (b"import sys\n\nfrom ansible_collections.poststack.core.plugins.module_utils.backup.cli import main\n\n"
        b"sys.exit(main(sys.argv[1:]))\n")
# Regular packages in the zip (with an __init__.py each), so that nothing else on the host's path can stand in.
PACKAGES = ("ansible_collections", "ansible_collections/poststack", "ansible_collections/poststack/core",
            "ansible_collections/poststack/core/plugins", "ansible_collections/poststack/core/plugins/module_utils")

__all__ = ["BundleError", "build", "write"]


def build(module_utils: str = MODULE_UTILS) -> bytes:
    package = os.path.join(module_utils, "backup")
    names = sorted(name for name in os.listdir(package) if name.endswith(".py")) if os.path.isdir(package) else []
    if "cli.py" not in names:
        raise BundleError("%s is not poststack's backup package (no cli.py)" % package)
    members: List[Tuple[str, bytes]] = [("__main__.py", MAIN)]
    members += [(path + "/__init__.py", b"") for path in PACKAGES]
    members += [(PREFIX + "backup/" + name, read(os.path.join(package, name))) for name in names]
    members += [(PREFIX + name, read(os.path.join(module_utils, name))) for name in DEPENDENCIES]
    return zipapp(HEAD, members)


def write(cache_dir: str, module_utils: str = MODULE_UTILS) -> Tuple[str, bool]:
    """Write the bundle to ``cache_dir/poststack-backup-<sha256 prefix>`` and return (path, written)."""
    return write_cached(build(module_utils), cache_dir, "poststack-backup")
