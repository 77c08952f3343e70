# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the controller that started this module still there? A long module (migrations) asks between its steps.

When ansible-playbook is killed with SIGKILL (a CI timeout, the OOM killer, ``kill -9``), its worker process and
the module it started go on: nothing tells the module. On the host where ansible-playbook runs (the local
connection), its processes are the module's ancestors: the watch remembers them (pid and start time, so a reused
pid does not count) from the module's parent up to the topmost consecutive process whose command line names
Ansible, and reports the first that ended. Elsewhere (over SSH, in a container) it watches the module's parent
only. Without /proc it never reports anything.
"""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

PROC = "/proc"


def _stat(pid: int, proc: str = PROC) -> Optional[Tuple[int, str, str]]:
    """(parent pid, start time, command name) of a process, None when it ended (a zombie has too)."""
    try:
        with open(os.path.join(proc, str(pid), "stat"), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid ... starttime(22nd field)"; comm may hold spaces and parentheses.
    name = text[text.find("(") + 1:text.rfind(")")]
    fields = text[text.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] in ("Z", "X", "x"):
        return None
    return int(fields[1]), fields[19], name


def _is_ansible(pid: int, proc: str = PROC) -> bool:
    try:
        with open(os.path.join(proc, str(pid), "cmdline"), "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return any(os.path.basename(arg).startswith(b"ansible") for arg in argv[:2])


class ControllerWatch:
    """``gone()``: None while every watched process runs, else which one ended."""

    def __init__(self, proc: str = PROC) -> None:
        self.proc = proc
        self.watched: List[Tuple[int, str, str]] = []  # (pid, start time, what it is)
        pid, found_ansible = os.getppid(), False
        while pid > 1:
            stat = _stat(pid, proc)
            if stat is None:
                break
            ansible = _is_ansible(pid, proc)
            if found_ansible and not ansible:
                break
            self.watched.append((pid, stat[1], "ansible process %s" % stat[2] if ansible else "parent process %s"
                                 % stat[2]))
            found_ansible = found_ansible or ansible
            pid = stat[0]
        if not found_ansible:
            self.watched = self.watched[:1]

    def gone(self) -> Optional[str]:
        for pid, started, what in self.watched:
            stat = _stat(pid, self.proc)
            if stat is None or stat[1] != started:
                return "%s (pid %d), which started this module, ended" % (what, pid)
        return None
