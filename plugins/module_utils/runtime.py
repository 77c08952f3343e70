# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container runtime (podman or docker) command layer: detection, a runner that returns what it ran, inspect.

Pure Python (no Ansible imports) so that modules, roles' helper scripts and tests share it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

RUNTIMES = ("podman", "docker")


class RuntimeNotFound(Exception):
    """Neither podman nor docker (or not the one asked for) is installed."""


class RuntimeCommandError(Exception):
    """A runtime command failed; carries what ran and what it said."""

    def __init__(self, message: str, result: "CommandResult") -> None:
        super().__init__(message)
        self.result = result


@dataclass
class CommandResult:
    argv: List[str]
    rc: int
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0


def detect_runtime(preference: str = "auto", which=shutil.which) -> str:
    """Return the path of the runtime binary. `auto` prefers podman, then docker."""
    if preference not in ("auto",) + RUNTIMES:
        raise RuntimeNotFound(f"unknown container runtime '{preference}': use auto, podman or docker")
    candidates = RUNTIMES if preference == "auto" else (preference,)
    for name in candidates:
        path = which(name)
        if path:
            return path
    if preference == "auto":
        raise RuntimeNotFound(
            "no container runtime found: install podman (preferred) or docker, or put it on PATH"
        )
    raise RuntimeNotFound(f"container runtime '{preference}' not found on PATH: install it or use runtime=auto")


@dataclass
class ContainerRuntime:
    """Runs a container runtime CLI with argument lists (never a shell)."""

    binary: str
    env: Optional[Dict[str, str]] = None
    history: List[CommandResult] = field(default_factory=list)

    @property
    def name(self) -> str:
        base = os.path.basename(self.binary)
        return "docker" if base.startswith("docker") else "podman"

    def _env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["LC_ALL"] = "C"
        if self.env:
            env.update(self.env)
        return env

    def run(self, args: Sequence[str], check: bool = True, stdout=None, timeout: Optional[float] = None) -> CommandResult:
        """Run `<runtime> args...`. With `stdout` (a file object) output goes there instead of being captured."""
        argv = [self.binary] + list(args)
        start = time.monotonic()
        if stdout is None:
            proc = subprocess.run(argv, capture_output=True, text=True, env=self._env(), timeout=timeout, check=False)
            out, err = proc.stdout, proc.stderr
        else:
            proc = subprocess.run(argv, stdout=stdout, stderr=subprocess.STDOUT, env=self._env(), timeout=timeout,
                                  check=False)
            out, err = "", ""
        result = CommandResult(argv=argv, rc=proc.returncode, stdout=out, stderr=err,
                               seconds=round(time.monotonic() - start, 3))
        self.history.append(result)
        if check and proc.returncode != 0:
            raise RuntimeCommandError(
                f"'{' '.join(argv[:3])} ...' failed with rc={proc.returncode}: {(err or out).strip()[-2000:]}", result
            )
        return result

    def image_inspect(self, ref: str) -> Optional[dict]:
        """The inspect document of a local image, or None when it does not exist locally."""
        result = self.run(["image", "inspect", ref], check=False)
        if result.rc != 0:
            return None
        try:
            data = json.loads(result.stdout or "[]")
        except ValueError:
            return None
        return data[0] if data else None


def image_labels(inspect: Optional[dict]) -> Dict[str, str]:
    """Labels of an image inspect document, for podman and docker alike."""
    if not inspect:
        return {}
    labels = inspect.get("Labels")
    if labels is None:
        labels = (inspect.get("Config") or {}).get("Labels")
    return dict(labels or {})


def image_tags(inspect: Optional[dict]) -> List[str]:
    if not inspect:
        return []
    return list(inspect.get("RepoTags") or [])


def normalize_ref(ref: str) -> str:
    """`name` -> `name:latest`, leaving digests and explicit tags alone (for comparing RepoTags)."""
    last = ref.rsplit("/", 1)[-1]
    if "@" in last or ":" in last:
        return ref
    return ref + ":latest"
