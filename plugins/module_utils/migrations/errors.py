# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration engine's errors: each message says what is wrong and what to do."""

from __future__ import annotations

from typing import Any, Dict, Optional


class MigrationError(Exception):
    """Base class: the message says what is wrong and what to do."""

    def __init__(self, message: str, details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.details = details or {}


class DiscoveryError(MigrationError):
    """Migration files that cannot be used (names, duplicates, orphans, encoding, SQL lexing)."""


class PlanError(MigrationError):
    """The request cannot be planned (drift, out of order, unknown target, missing rollback...)."""


class LockTimeout(MigrationError):
    """Another run holds the migration lock for longer than the wait timeout."""


class ExecutionError(MigrationError):
    """SQL failed while running a step; the step was rolled back (or cleaned up for no-transaction files)."""


# What the server said, for messages: psycopg's errors carry the SQLSTATE and the diagnostic fields.
def sqlstate(exc: Exception) -> Optional[str]:
    return getattr(exc, "sqlstate", None)


def pg_message(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc).strip().split("\n", maxsplit=1)[0]
    extra = []
    for attr in ("message_detail", "message_hint"):
        value = getattr(diag, attr, None) if diag is not None else None
        if value:
            extra.append(value)
    state = sqlstate(exc)
    return "%s%s%s" % (text, " (%s)" % "; ".join(extra) if extra else "", " [SQLSTATE %s]" % state if state else "")
