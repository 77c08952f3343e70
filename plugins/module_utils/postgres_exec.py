# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How poststack runs PostgreSQL's client programs inside the PostgreSQL container: ``<runtime> exec`` as the
postgres user, over the server's local socket (peer authentication: no password anywhere).

Pure Python without imports of its own, so that a module needing only this (the migrations' schema baseline) does
not pull the backup package into its payload.
"""

from __future__ import annotations

from typing import List, Sequence

# The login options of pg_dump, pg_restore and psql inside the container.
LOCAL_SOCKET_LOGIN = ("--host", "/var/run/postgresql", "--username", "postgres", "--no-password")


def exec_argv(runtime: str, container: str, argv: Sequence[str], interactive: bool = False) -> List[str]:
    """`<runtime> exec [-i] --user postgres <container> argv...` (peer authentication on the local socket)."""
    return [runtime, "exec"] + (["-i"] if interactive else []) + ["--user", "postgres", container] + list(argv)
