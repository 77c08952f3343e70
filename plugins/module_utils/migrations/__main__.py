# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m ansible_collections.poststack.core.plugins.module_utils.migrations``: the engine's command line."""

from __future__ import annotations

from ansible_collections.poststack.core.plugins.module_utils.migrations.cli import cli_main

if __name__ == "__main__":
    raise SystemExit(cli_main())
