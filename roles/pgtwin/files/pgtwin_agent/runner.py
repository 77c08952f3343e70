"""Command execution. Host mode runs programs directly (switching to the PostgreSQL user where needed);
container mode (seed 004) will run the same argument lists through ``podman exec`` and is reserved."""
from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from typing import Dict, Optional, Sequence


@dataclass(frozen=True)
class Result:
    argv: Sequence[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def summary(self) -> str:
        """One line for logs: the command (never holds a secret: passwords live in passfiles) and its rc."""
        err = self.stderr.strip().splitlines()
        return "%s: rc=%d%s" % (" ".join(self.argv), self.rc, (" (" + err[-1] + ")") if err else "")


class HostRunner:
    """Runs commands on this node, as root or as ``user`` (uid/gid switch in the child, no shell)."""

    def __init__(self, user: str) -> None:
        self.user = user

    def _identity(self, as_user: bool) -> Dict[str, object]:
        if not as_user or os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(self.user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _env(self, as_user: bool, extra: Optional[Dict[str, str]]) -> Dict[str, str]:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}
        if as_user:
            try:
                env["HOME"] = pwd.getpwnam(self.user).pw_dir
            except KeyError:
                pass
        for key in ("OCF_RESOURCE_INSTANCE", "OCF_ROOT", "HA_debug"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(extra or {})
        return env

    def run(self, argv: Sequence[str], as_user: bool = False, timeout: Optional[float] = None,
            env: Optional[Dict[str, str]] = None) -> Result:
        try:
            proc = subprocess.run(  # pylint: disable=subprocess-run-check
                list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                timeout=timeout, env=self._env(as_user, env), cwd="/", universal_newlines=True,
                **self._identity(as_user))
        except subprocess.TimeoutExpired:
            return Result(tuple(argv), 124, "", "timed out after %ss" % timeout)
        except OSError as exc:
            return Result(tuple(argv), 127, "", str(exc))
        return Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    def spawn(self, argv: Sequence[str], logfile: str) -> int:
        """Start a daemon as ``user`` in its own session, output appended to ``logfile``; returns its pid."""
        with open(logfile, "ab") as log:
            proc = subprocess.Popen(  # pylint: disable=consider-using-with
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                env=self._env(True, None), start_new_session=True, close_fds=True,
                **self._identity(True))
        return proc.pid


def make_runner(user: str, container_mode: bool) -> HostRunner:
    if container_mode:
        raise NotImplementedError("container mode is reserved for the container mode release")
    return HostRunner(user)
