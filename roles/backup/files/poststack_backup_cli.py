#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command that scheduled backups run (installed by the poststack.core.backup role):

    python3 poststack_backup_cli.py --config /etc/poststack/backup/<name>.json [--check]

It imports poststack_backup.py, which the role installs beside it: a copy of plugins/module_utils/backup.py, so
that a scheduled backup runs the same code as the poststack_backup module. Prints a JSON summary, or the error on
stderr with exit status 1.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import poststack_backup  # noqa: E402  pylint: disable=wrong-import-position,import-error


def main() -> int:
    rc, out, err = poststack_backup.cli(sys.argv[1:])
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main())
