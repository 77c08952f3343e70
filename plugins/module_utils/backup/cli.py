# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command scheduled backups run: ``poststack-backup --config FILE [--check]``. The backup role installs it
as one file built by the poststack.core.backup_bundle lookup (plugins/plugin_utils/backup_bundle.py). Prints a
JSON summary, or the error on stderr with exit status 1."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, Sequence, Tuple

from ansible_collections.poststack.core.plugins.module_utils.backup.dump import DumpSettings, run_backup
from ansible_collections.poststack.core.plugins.module_utils.backup.manifest import BackupError


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
    """The scheduled command: returns (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="poststack-backup",
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


def main(argv: Sequence[str]) -> int:
    rc, out, err = cli(argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc
