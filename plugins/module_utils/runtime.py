# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container runtime (podman or docker) command layer: detection, a runner that returns what it ran, inspect.

Pure Python (no Ansible imports) so that modules, roles' helper scripts and tests share it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
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


def _health(state: dict) -> str:
    health = state.get("Health") or state.get("Healthcheck") or {}
    return health.get("Status", "") if isinstance(health, dict) else ""


def _ports(inspect: dict) -> List[str]:
    ports = []
    for container_port, bindings in sorted(((inspect.get("NetworkSettings") or {}).get("Ports") or {}).items()):
        for binding in bindings or []:
            host_ip = binding.get("HostIp") or "0.0.0.0"
            ports.append(f"{host_ip}:{binding.get('HostPort')}->{container_port}")
    return ports


def _uptime(started_at: str, now: Optional[datetime] = None) -> str:
    """`2026-11-25T12:31:45.528263181Z` -> `1h 02m` (runtimes print up to nanoseconds and various offsets)."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?", started_at or "")
    if not match:
        return ""
    offset = match.group(2) or "Z"
    started = datetime.fromisoformat(match.group(1) + ("+00:00" if offset == "Z" else offset))
    seconds = int(((now or datetime.now(timezone.utc)) - started).total_seconds())
    if seconds < 0:
        return ""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s"


def container_summary(inspect: dict) -> dict:
    """The fields a status report needs, from a podman or docker container inspect document."""
    config = inspect.get("Config") or {}
    state = inspect.get("State") or {}
    running = state.get("Status") == "running" or state.get("Running") is True
    env = dict(item.split("=", 1) for item in (config.get("Env") or []) if "=" in item)
    return {
        "name": (inspect.get("Name") or "").lstrip("/"),
        "image": inspect.get("ImageName") or config.get("Image") or "",
        "state": state.get("Status", ""),
        "health": _health(state),
        "ports": _ports(inspect),
        "started_at": state.get("StartedAt", ""),
        "uptime": _uptime(state.get("StartedAt", "")) if running else "",
        "labels": dict(config.get("Labels") or {}),
        "project": (config.get("Labels") or {}).get("io.poststack.project", ""),
        "component": (config.get("Labels") or {}).get("io.poststack.component", ""),
        # Only what identifies the database; never the environment as a whole (it may hold secrets).
        "database": env.get("POSTGRES_DB", ""),
    }


POSTGRES_DETAILS_SQL = """
SELECT pg_size_pretty(pg_database_size(current_database())),
       CASE WHEN to_regclass('poststack.schema_migrations') IS NULL THEN '' ELSE 'tracked' END
"""
SCHEMA_VERSION_SQL = """
SELECT coalesce(string_agg(stream || ' ' || version, ', ' ORDER BY stream), '')
FROM (SELECT stream, max(version) AS version FROM poststack.schema_migrations GROUP BY stream) AS s
"""


def postgres_details(runtime: "ContainerRuntime", summary: dict) -> Dict[str, str]:
    """Database size and schema versions of a running poststack PostgreSQL container, read inside it over the
    local socket as the postgres user (peer authentication: no password involved)."""
    def query(sql: str) -> Optional[str]:
        result = runtime.run(["exec", summary["name"], "psql", "-XAtq", "-F", "|", "-h", "/var/run/postgresql",
                              "-U", "postgres", "-d", summary["database"] or "postgres", "-c", sql], check=False)
        return result.stdout.strip() if result.rc == 0 else None

    details = {"database_size": "", "schema_version": ""}
    first = query(POSTGRES_DETAILS_SQL)
    if first is None:
        return details
    size, tracked = (first.split("|") + [""])[:2]
    details["database_size"] = size
    if tracked:
        details["schema_version"] = query(SCHEMA_VERSION_SQL) or ""
    return details


def list_containers(runtime: ContainerRuntime, label_filters: Sequence[str], refresh_health: bool = False) -> List[dict]:
    """Containers (running or not) carrying all the given labels, sorted by name."""
    args = ["ps", "-a", "--format", "{{.Names}}"]
    for label in label_filters:
        args += ["--filter", f"label={label}"]
    names = sorted({n.strip() for line in runtime.run(args).stdout.splitlines() for n in line.split(",") if n.strip()})
    if not names:
        return []
    if refresh_health:
        for name in names:
            runtime.run(["healthcheck", "run", name] if runtime.name == "podman" else ["inspect", name], check=False)
    data = json.loads(runtime.run(["container", "inspect"] + names).stdout or "[]")
    summaries = sorted((container_summary(item) for item in data), key=lambda c: c["name"])
    for summary in summaries:
        if summary["component"] == "postgres" and summary["state"] == "running":
            summary.update(postgres_details(runtime, summary))
    return summaries


def ports_in_use(ports: Sequence[int], bind_address: str = "0.0.0.0") -> List[int]:
    """Ports that cannot be bound on bind_address right now (held by another process or container)."""
    busy = []
    for port in ports:
        family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((bind_address, int(port)))
            except OSError:
                busy.append(int(port))
    return busy
