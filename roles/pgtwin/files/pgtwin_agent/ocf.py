"""OCF return codes and logging."""
from __future__ import annotations

import os
import sys
import time

OCF_SUCCESS = 0
OCF_ERR_GENERIC = 1
OCF_ERR_ARGS = 2
OCF_ERR_UNIMPLEMENTED = 3
OCF_ERR_PERM = 4
OCF_ERR_INSTALLED = 5
OCF_ERR_CONFIGURED = 6
OCF_NOT_RUNNING = 7
OCF_RUNNING_PROMOTED = 8
OCF_FAILED_PROMOTED = 9

RC_NAMES = {
    OCF_SUCCESS: "success",
    OCF_ERR_GENERIC: "generic error",
    OCF_ERR_ARGS: "invalid arguments",
    OCF_ERR_UNIMPLEMENTED: "unimplemented",
    OCF_ERR_PERM: "insufficient privileges",
    OCF_ERR_INSTALLED: "not installed",
    OCF_ERR_CONFIGURED: "not configured",
    OCF_NOT_RUNNING: "not running",
    OCF_RUNNING_PROMOTED: "running promoted",
    OCF_FAILED_PROMOTED: "failed promoted",
}


def operation_timeout() -> float:
    """Pacemaker's timeout of the running operation, in seconds (60 when run by hand)."""
    return int(os.environ.get("OCF_RESKEY_CRM_meta_timeout", "60000")) / 1000.0


class AgentError(Exception):
    """An action cannot continue; ``rc`` is the OCF code to return."""

    def __init__(self, message: str, rc: int = OCF_ERR_GENERIC) -> None:
        super().__init__(message)
        self.rc = rc


class Logger:
    """Writes to stderr (Pacemaker's executor records it) and optionally to a file."""

    def __init__(self, tag: str, path: str = "") -> None:
        self.tag = tag
        self.path = path

    def _emit(self, level: str, message: str) -> None:
        line = "%s %s[%d] %s: %s\n" % (
            time.strftime("%Y-%m-%dT%H:%M:%S"), self.tag, os.getpid(), level, message)
        sys.stderr.write(line)
        if self.path:
            try:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(line)
            except OSError:
                pass

    def debug(self, message: str) -> None:
        if os.environ.get("HA_debug") == "1":
            self._emit("DEBUG", message)

    def info(self, message: str) -> None:
        self._emit("INFO", message)

    def warning(self, message: str) -> None:
        self._emit("WARNING", message)

    def error(self, message: str) -> None:
        self._emit("ERROR", message)
