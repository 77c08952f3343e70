# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine as a command (used by the benchmarks and the concurrency tests; the Ansible module is the main
interface): ``python -m ansible_collections.poststack.core.plugins.module_utils.migrations apply --dir DIR --dsn DSN``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from typing import Any, Optional, Sequence

from ansible_collections.poststack.core.plugins.module_utils.migrations.engine import (
    DEFAULT_SCHEMA, DEFAULT_STREAM, Engine, Settings,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations.errors import MigrationError
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import LAYOUTS


def cli_main(argv: Optional[Sequence[str]] = None) -> int:
    from ansible_collections.poststack.core.plugins.module_utils.database import ConnectionSettings, connect

    parser = argparse.ArgumentParser(description="poststack migration engine (password via PGPASSWORD or ~/.pgpass)")
    parser.add_argument("action", choices=["apply", "rollback", "baseline", "repair", "status", "verify", "plan"])
    parser.add_argument("--dsn", default=os.environ.get("POSTSTACK_DSN", ""))
    parser.add_argument("--dir", required=True)
    parser.add_argument("--target", type=int)
    parser.add_argument("--schema", default=DEFAULT_SCHEMA)
    parser.add_argument("--stream", default=DEFAULT_STREAM)
    parser.add_argument("--format", default="auto", choices=LAYOUTS, help="how the files are laid out")
    parser.add_argument("--lock-wait-timeout", type=float, default=60.0)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--log-file")
    parser.add_argument("--no-checksum-cache", action="store_true",
                        help="read every file, without the stat-before-read cache (file systems with stale stat)")
    args = parser.parse_args(argv)
    settings = Settings(args.dir, args.schema, args.stream, lock_wait_timeout=args.lock_wait_timeout, log_file=args.log_file,
                        layout=args.format, checksum_cache=not args.no_checksum_cache)
    try:
        conn = connect(ConnectionSettings(dsn=args.dsn, application_name="poststack_migrate"))
        with conn:
            engine = Engine(conn, settings)
            if args.action == "status":
                output: Any = asdict(engine.status())
            elif args.action == "verify":
                output = engine.verify()
            elif args.action == "plan":
                output = engine.plan("apply", args.target)[0].as_dicts()
            else:
                result = engine.run(args.action, args.target, args.dry_run)
                output = {"changed": result.changed, "done": result.done, "version": result.after_version,
                          "ms": result.total_ms}
    except (MigrationError, ValueError) as exc:
        sys.stderr.write(json.dumps({"failed": True, "msg": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps(output, default=str) + "\n")
    return 0
