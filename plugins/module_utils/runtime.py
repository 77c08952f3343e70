# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container runtime (podman or docker) command layer: detection, a runner that returns what it ran, inspect.

Pure Python (no Ansible imports) so that modules, roles' helper scripts and tests share it.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import re
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Dict, List, Optional, Sequence, Union

from ansible_collections.poststack.core.plugins.module_utils.command import CommandResult, run_command

RUNTIMES = ("podman", "docker")


class RuntimeNotFound(Exception):
    """Neither podman nor docker (or not the one asked for) is installed."""


class RuntimeCommandError(Exception):
    """A runtime command failed; carries what ran and what it said."""

    def __init__(self, message: str, result: "CommandResult") -> None:
        super().__init__(message)
        self.result = result


def detect_runtime(preference: str = "auto", which=shutil.which) -> str:
    """Return the path of the runtime binary. `auto` prefers podman, then docker; an absolute path of a podman or
    docker executable is taken as it is (the backup role writes one into the settings of scheduled backups)."""
    if os.path.isabs(preference):
        if os.path.basename(preference) in RUNTIMES and os.access(preference, os.X_OK):
            return preference
        raise RuntimeNotFound(f"container runtime '{preference}' is not an executable podman or docker")
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

    def run(self, args: Sequence[str], check: bool = True, stdout=None, timeout: Optional[float] = None,
            stdin: Union[None, str, IO[bytes]] = None) -> CommandResult:
        """Run `<runtime> args...`. With `stdout` (a file object) output goes there instead of being captured;
        `stdin` is text fed to the command, or a binary file it reads."""
        argv = [self.binary] + list(args)
        result = run_command(argv, stdin=stdin, env=self._env(), timeout=timeout, stdout=stdout)
        self.history.append(result)
        if check and result.rc != 0:
            said = (result.stderr or result.stdout).strip()
            raise RuntimeCommandError(
                engine_unreachable(self.name, said, self._env())
                or f"'{' '.join(argv[:3])} ...' failed with rc={result.rc}: {said[-2000:]}",
                result)
        return result

    def image_inspect(self, ref: str) -> Optional[dict]:
        """The inspect document of a local image, or None when it does not exist locally."""
        return self._inspect_one("image", ref)

    def container_inspect(self, ref: str) -> Optional[dict]:
        """The inspect document of a container, or None when it does not exist."""
        return self._inspect_one("container", ref)

    def _inspect_one(self, kind: str, ref: str) -> Optional[dict]:
        result = self.run([kind, "inspect", ref], check=False)
        if result.rc != 0:
            unreachable = engine_unreachable(self.name, result.stderr or result.stdout, self._env())
            if unreachable:  # not "no such image": nothing could be asked
                raise RuntimeCommandError(unreachable, result)
            return None
        try:
            data = json.loads(result.stdout or "[]")
        except ValueError:
            return None
        return data[0] if data else None


def engine_unreachable(runtime_name: str, said: str, env: Dict[str, str]) -> Optional[str]:
    """What to tell the user when the runtime's client cannot reach its engine (Docker's daemon), else None."""
    if runtime_name != "docker" or "Cannot connect to the Docker daemon" not in said:
        return None
    where = env.get("DOCKER_HOST")
    return (f"the Docker engine does not answer at {'DOCKER_HOST=' + where if where else 'its default socket'} "
            f"({said.splitlines()[0].strip()}). Start it (systemctl start docker, or a private engine as "
            "docs/runtime.md shows), point DOCKER_HOST at an engine that answers, or run with podman "
            "(POSTSTACK_CONTAINER_RUNTIME=podman).")


def pull_never(runtime_name: str) -> List[str]:
    """The `run` option that forbids pulling the image, as podman and docker spell it."""
    return ["--pull=never"] if runtime_name == "podman" else ["--pull", "never"]


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


def seconds_since(started_at: str, now: Optional[datetime] = None) -> Optional[int]:
    """Seconds from `2026-11-25T12:31:45.528263181Z` (runtimes print up to nanoseconds and various offsets) to now;
    None when it cannot be read or lies in the future."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?", started_at or "")
    if not match:
        return None
    offset = match.group(2) or "Z"
    started = datetime.fromisoformat(match.group(1) + ("+00:00" if offset == "Z" else offset))
    seconds = int(((now or datetime.now(timezone.utc)) - started).total_seconds())
    return seconds if seconds >= 0 else None


def _uptime(started_at: str, now: Optional[datetime] = None) -> str:
    """`2026-11-25T12:31:45.528263181Z` -> `1h 02m`."""
    seconds = seconds_since(started_at, now)
    if seconds is None:
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
        # The ID of the image it was created from (podman and docker both call it Image).
        "image_id": inspect.get("Image") or "",
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


# One psql session per container: the size, then the schema versions only when the tracking table exists
# (\if keeps the second query from failing on a database poststack never migrated).
POSTGRES_DETAILS_SCRIPT = r"""
SELECT pg_size_pretty(pg_database_size(current_database())) AS size,
       to_regclass('poststack.schema_migrations') IS NOT NULL AS tracked \gset
\if :tracked
SELECT :'size', coalesce(string_agg(stream || ' ' || version, ', ' ORDER BY stream), '')
FROM (SELECT stream, max(version) AS version FROM poststack.schema_migrations GROUP BY stream) AS s;
\else
SELECT :'size', '';
\endif
"""


def postgres_details_command(summary: dict) -> List[str]:
    """The `exec` arguments that read the database size and schema versions of a running poststack PostgreSQL
    container, inside it over the local socket as the postgres user (peer authentication: no password involved).
    The script (POSTGRES_DETAILS_SCRIPT) goes to stdin."""
    return ["exec", "-i", summary["name"], "psql", "-XAtq", "-F", "|", "-v", "ON_ERROR_STOP=1",
            "-h", "/var/run/postgresql", "-U", "postgres", "-d", summary["database"] or "postgres"]


def parse_postgres_details(result: CommandResult) -> Dict[str, str]:
    """`7951 kB|core 3, project 2` -> database_size and schema_version (both empty when psql failed)."""
    if result.rc != 0 or not result.stdout.strip():
        return {"database_size": "", "schema_version": ""}
    size, versions = (result.stdout.strip().splitlines()[-1].split("|", 1) + [""])[:2]
    return {"database_size": size, "schema_version": versions}


def _inspect_containers(runtime: ContainerRuntime, names: Sequence[str]) -> List[dict]:
    """The summaries of those of ``names`` that still exist: a container removed between the listing and the
    inspect (another project's, another run's) is left out, any other failure is an error."""
    result = runtime.run(["container", "inspect"] + list(names), check=False)
    if result.rc != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        vanished = [line for line in lines if re.search(r"no such (container|object)", line, re.IGNORECASE)]
        if not vanished or len(vanished) != len(lines):
            raise RuntimeCommandError(f"'{' '.join(result.argv[:3])} ...' failed with rc={result.rc}: "
                                      f"{(result.stderr or result.stdout).strip()[-2000:]}", result)
    data = json.loads(result.stdout or "[]")
    return sorted((container_summary(item) for item in data), key=lambda c: c["name"])


def list_containers(runtime: ContainerRuntime, label_filters: Sequence[str], refresh_health: bool = False,
                    database_details: bool = True) -> List[dict]:
    """Containers (running or not) carrying all the given labels, sorted by name.

    The health checks (refresh_health, podman only: docker runs its own) and the database queries of running
    PostgreSQL containers are independent, so they run side by side; the containers are inspected again afterwards
    only to read the refreshed health."""
    args = ["ps", "-a", "--format", "{{.Names}}"]
    for label in label_filters:
        args += ["--filter", f"label={label}"]
    names = sorted({n.strip() for line in runtime.run(args).stdout.splitlines() for n in line.split(",") if n.strip()})
    if not names:
        return []
    summaries = _inspect_containers(runtime, names)
    databases = [s for s in summaries
                 if database_details and s["component"] == "postgres" and s["state"] == "running"]
    health_checks = ([["healthcheck", "run", s["name"]] for s in summaries if s["state"] == "running"]
                     if refresh_health and runtime.name == "podman" else [])
    details = _run_details_and_checks(runtime, databases, health_checks)
    if health_checks:
        summaries = _inspect_containers(runtime, names)
    elif refresh_health:
        _docker_health_now(runtime, summaries)
    for summary in summaries:
        if summary["name"] in details:
            summary.update(details[summary["name"]])
    return summaries


def _docker_health_now(runtime: ContainerRuntime, summaries: Sequence[dict]) -> None:
    """Docker has no `healthcheck run`: its daemon runs the check on the image's interval, so a container that
    has just started shows `starting` for up to that long. For those, run the check once now (`exec` of its
    health command, as podman's `healthcheck run` does) and report `healthy` when it passes."""
    starting = [s for s in summaries if s["state"] == "running" and s["health"] == "starting"]
    for summary in starting:
        test = runtime.run(["inspect", "--format", "{{json .Config.Healthcheck.Test}}", summary["name"]], check=False)
        try:
            command = json.loads(test.stdout or "null") if test.rc == 0 else None
        except ValueError:
            command = None
        if not command or command[0] not in ("CMD", "CMD-SHELL") or len(command) < 2:
            continue
        argv = command[1:] if command[0] == "CMD" else ["/bin/sh", "-c", command[1]]
        if runtime.run(["exec", summary["name"]] + argv, check=False, timeout=30).rc == 0:
            summary["health"] = "healthy"


def _run_details_and_checks(runtime: ContainerRuntime, databases: Sequence[dict],
                            health_checks: Sequence[Sequence[str]]) -> Dict[str, Dict[str, str]]:
    """Run the database queries and health checks at the same time; the queries' results by container name."""
    jobs = [(postgres_details_command(db), POSTGRES_DETAILS_SCRIPT) for db in databases]
    jobs += [(list(check), None) for check in health_checks]
    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(jobs), 8)) as pool:
        results = list(pool.map(lambda job: runtime.run(job[0], check=False, stdin=job[1]), jobs))
    return {db["name"]: parse_postgres_details(result) for db, result in zip(databases, results)}


def _resource_summary(inspect: dict, kind: str) -> dict:
    """Name, driver, labels and options of a volume or network, from podman's or docker's inspect document; for a
    network also whether it resolves container names."""
    def pick(*keys):
        for key in keys:
            if inspect.get(key) is not None:
                return inspect[key]
        return None

    labels = dict(pick("Labels", "labels") or {})
    summary = {
        "name": pick("Name", "name") or "",
        "driver": pick("Driver", "driver") or "",
        "labels": labels,
        "options": {k: str(v) for k, v in (pick("Options", "options") or {}).items()},
        # Who made it (as for containers): roles refuse to change or remove what poststack did not make.
        "project": labels.get("io.poststack.project", ""),
        "component": labels.get("io.poststack.component", ""),
    }
    if kind == "network":
        # Podman says whether its DNS server answers container names there (netavark and CNI with the
        # dnsname plugin do; CNI without it, the default `podman` network and --disable-dns do not). Docker's
        # user-defined networks always resolve names and have no such key.
        summary["dns_enabled"] = bool(inspect.get("dns_enabled", True))
    return summary


def find_resources(runtime: ContainerRuntime, kind: str, names: Sequence[str]) -> Dict[str, dict]:
    """Those of the named volumes (kind `volume`) or networks (kind `network`) that exist, by name, with their
    driver, labels and options: one `ls` and one `inspect`, so that roles skip creating what is already there."""
    wanted = set(names)
    if not wanted:
        return {}
    existing = {line.strip() for line in runtime.run([kind, "ls", "--format", "{{.Name}}"]).stdout.splitlines()}
    present = sorted(wanted & existing)
    if not present:
        return {}
    data = json.loads(runtime.run([kind, "inspect"] + present).stdout or "[]")
    found = {item["name"]: item for item in (_resource_summary(doc, kind) for doc in data) if item["name"] in wanted}
    if kind == "network":
        # A network without poststack's labels was made by someone else (or by poststack before it labelled its
        # networks): the containers on it tell whether a role may use it.
        for summary in found.values():
            if not summary["project"]:
                summary["containers"] = network_containers(runtime, summary["name"])
    return found


def network_containers(runtime: ContainerRuntime, network: str) -> List[dict]:
    """The containers attached to a network (running or not), each with its name and poststack labels (project,
    component; empty for containers poststack did not make)."""
    names = sorted(_container_names(runtime, ["--filter", "network=" + network]))
    return [{"name": c["name"], "project": c["project"], "component": c["component"]}
            for c in _inspect_containers(runtime, names)] if names else []


def _container_names(runtime: ContainerRuntime, filters: Sequence[str] = ()) -> set:
    """The names of the containers `ps -a` lists with these filters (a container may list several names)."""
    listed = runtime.run(["ps", "-a", *filters, "--format", "{{.Names}}"]).stdout
    return {n.strip() for line in listed.splitlines() for n in line.split(",") if n.strip()}


def find_containers(runtime: ContainerRuntime, names: Sequence[str]) -> Dict[str, dict]:
    """Those of the named containers that exist, whoever made them, by name (their summaries: labels tell whether
    poststack did). One `ps` and one `inspect`."""
    wanted = set(names)
    if not wanted:
        return {}
    present = sorted(wanted & _container_names(runtime))
    return {c["name"]: c for c in _inspect_containers(runtime, present)} if present else {}


def describe(runtime: ContainerRuntime, label_filters: Optional[Sequence[str]], volumes: Sequence[str] = (),
             networks: Sequence[str] = (), refresh_health: bool = False, database_details: bool = True,
             containers_named: Sequence[str] = ()) -> dict:
    """The runtime version, the containers with label_filters (not listed when None), which of the named volumes
    and networks exist, and which of the named containers exist. The lookups are independent `podman` calls, so
    they run side by side."""
    with ThreadPoolExecutor(max_workers=5) as pool:
        version = pool.submit(runtime.run, ["--version"])
        found_volumes = pool.submit(find_resources, runtime, "volume", volumes)
        found_networks = pool.submit(find_resources, runtime, "network", networks)
        named = pool.submit(find_containers, runtime, containers_named)
        containers = (pool.submit(list_containers, runtime, label_filters, refresh_health, database_details)
                      if label_filters is not None else None)
        result = {"version": version.result().stdout.strip(), "volumes": found_volumes.result(),
                  "networks": found_networks.result(), "named_containers": named.result()}
        if containers is not None:
            result["containers"] = containers.result()
    return result


def ports_in_use(ports: Sequence[int], bind_address: str = "0.0.0.0") -> List[int]:
    """Ports that cannot be bound on bind_address right now because another process or container holds them. An
    address that is not one of this host's is no reason to call a port busy (address_problem() names it).
    The test bind takes SO_REUSEADDR as servers do (podman's port reservation, Docker's proxy, PostgreSQL): the
    connections a stopped server closed, in TIME_WAIT on its port for a minute, do not hold it; a listener does."""
    busy = []
    for port in ports:
        family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((bind_address, int(port)))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    busy.append(int(port))
    return busy


def binds_unavailable(binds: Sequence[str]) -> List[Dict[str, str]]:
    """Of `address:port` strings (`[::1]:8080` for IPv6), those that cannot be published now, each with the reason:
    an address that is not one of this host's, or a port that another process or container holds."""
    unavailable = []
    for bind in binds:
        address, port = bind.rsplit(":", 1) if ":" in bind else ("", bind)
        address = address.strip("[]")
        problem = address_problem(address) if port.isdigit() else "'%s' is not address:port" % bind
        if problem:
            unavailable.append({"bind": bind, "reason": problem})
        elif ports_in_use([int(port)], address):
            unavailable.append({"bind": bind, "reason": "in use by another process or container"})
    return unavailable


def address_problem(address: str) -> Optional[str]:
    """Why `address` cannot be published on (not an IP address, or not one of this host's), or None."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError:
        return "'%s' is not an IP address (for example 127.0.0.1, 0.0.0.0 or ::1)" % address
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return "%s is not an address of this host (ip -br addr lists them)" % address
    return None
