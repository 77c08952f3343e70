# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way poststack's module_utils run a program: an argument list (never a shell), its result, and the
record of what ran that modules return as ``commands``. Standard library only."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

TAIL = 2000  # characters of stderr a record keeps


@dataclass
class CommandResult:
    """One program that ran: its argument list (never a secret in it), exit status, output and duration."""

    argv: List[str]
    rc: int
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    def record(self) -> Dict[str, Any]:
        """What a module returns about it (in ``commands``): argv, rc, seconds and the end of stderr."""
        return {"argv": list(self.argv), "rc": self.rc, "seconds": self.seconds, "stderr": self.stderr.strip()[-TAIL:]}


def timed(argv: Sequence[str], call: Callable[[], Tuple[int, str, str]]) -> CommandResult:
    """The CommandResult of ``call``, an injected executor's run of ``argv`` that returns (rc, stdout, stderr):
    the modules that run on cluster nodes and file systems (pgtwin_resource, btrfs_subvolume) inject
    AnsibleModule.run_command, whose no_log masking then covers the output too."""
    start = time.monotonic()
    rc, out, err = call()
    return CommandResult(list(argv), rc, out, err, round(time.monotonic() - start, 3))


def run_command(argv: Sequence[str], stdin: Union[None, str, IO[bytes]] = None,
                env: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
                stdout: Optional[IO[Any]] = None) -> CommandResult:
    """Run ``argv`` and wait. Output is captured as text, or with ``stdout`` (a file object) written there with
    stderr. ``stdin`` is text fed to the program, or a binary file it reads. OSError (no such program) and
    subprocess.TimeoutExpired are the caller's to report."""
    argv = [str(arg) for arg in argv]
    feed: Dict[str, Any] = {"input": stdin} if stdin is None or isinstance(stdin, str) else {"stdin": stdin}

    def call() -> Tuple[int, str, str]:
        if stdout is None:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False, **feed)
            return proc.returncode, proc.stdout, proc.stderr
        proc = subprocess.run(argv, stdout=stdout, stderr=subprocess.STDOUT, env=env, timeout=timeout,
                              check=False, text=isinstance(stdin, str), **feed)
        return proc.returncode, "", ""

    return timed(argv, call)
