# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a PostgreSQL container's configuration before anything is changed: the server settings by PostgreSQL
itself (`postgres -C` with the new values, in the image that will run them), the pg_hba networks and the memory
limit by their syntax. A bad value is refused with the setting's name and PostgreSQL's own message, while the
running server keeps running.

Pure Python (no Ansible imports); the runtime is a `runtime.ContainerRuntime`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Dict, List, Mapping, Optional, Sequence

from ansible_collections.poststack.core.plugins.module_utils.runtime import pull_never

# podman and docker: <number>[<unit>], unit b, k, m or g (case-insensitive); both refuse less than 6 MiB.
_MEMORY_RE = re.compile(r"^([0-9]+)([bkmg]?)$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
MIN_MEMORY = 6 * 1024 ** 2
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def render(value) -> str:
    """A setting's value as postgres -c takes it (booleans as on/off, like the conf.d template's numbers)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def memory_problem(memory: str) -> Optional[str]:
    if not memory:
        return None
    match = _MEMORY_RE.match(str(memory).strip())
    if not match:
        return ("postgres_memory '%s' is not a size: write a number with an optional unit b, k, m or g "
                "(for example 512m or 2g)" % memory)
    if int(match.group(1)) * _UNITS[match.group(2).lower()] < MIN_MEMORY:
        return "postgres_memory '%s' is below the 6m that podman and docker accept" % memory
    return None


def cidr_problems(cidrs: Sequence[str], variable: str = "postgres_hba_cidrs") -> List[str]:
    problems = []
    for cidr in cidrs:
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            problems.append("%s entry '%s' is not a network address (for example 10.0.0.0/8, "
                            "192.168.1.0/24 or ::/0)" % (variable, cidr))
    return problems


def name_problems(settings: Mapping[str, object]) -> List[str]:
    return ["setting name '%s' is not a PostgreSQL parameter name" % name for name in settings
            if not _NAME_RE.match(str(name))]


def check_argv(settings: Mapping[str, object]) -> List[str]:
    """`postgres` arguments that parse every setting and exit: -C prints one parameter and stops before any data
    directory is touched (empty files and /tmp stand in for the real ones)."""
    argv = ["--config-file=/dev/null", "-c", "data_directory=/tmp", "-c", "hba_file=/dev/null",
            "-c", "ident_file=/dev/null", "-C", "server_version"]
    for name, value in sorted(settings.items()):
        argv += ["-c", "%s=%s" % (name, render(value))]
    return argv


def _fatal(output: str) -> str:
    """PostgreSQL's own reason: the FATAL line without its timestamp prefix, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "FATAL:" in line:
            return line.split("FATAL:", 1)[1].strip()
    return lines[-1] if lines else "no output"


def postgres_command(runtime, image: str, running_container: Optional[str]) -> List[str]:
    """Where postgres runs the check: in the running container when it runs this image (no new container, ~0.1 s),
    else in a throwaway container of the image (no network, no volumes)."""
    if running_container:
        return ["exec", running_container, "postgres"]
    return ["run", "--rm", "--network", "none", "--no-healthcheck", *pull_never(runtime.name), "--user", "postgres",
            "--entrypoint", "postgres", image]


# Settings naming libraries that the server loads at start (or at each connection): PostgreSQL's -C does not
# load them, so a missing one would pass the check and stop the next start ("could not access file").
PRELOAD_SETTINGS = ("shared_preload_libraries", "session_preload_libraries", "local_preload_libraries")

# Prints each library (argument) that is not in the image: $libdir is the lib directory beside the postgres binary;
# a name without a directory is looked up there; ".so" may be left out.
LIBRARY_SCRIPT = ('libdir=$(dirname "$(dirname "$(readlink -f "$(command -v postgres)")")")/lib; '
                  'for l do case "$l" in */*) f=$(printf %s "$l" | sed "s|^[$]libdir|$libdir|");; '
                  '*) f=$libdir/$l;; esac; [ -e "$f" ] || [ -e "$f.so" ] || echo "$l"; done')


def preload_libraries(settings: Mapping[str, object]) -> Dict[str, List[str]]:
    """The libraries each preload setting names (comma-separated, optionally quoted), by setting."""
    found = {}
    for name in PRELOAD_SETTINGS:
        value = settings.get(name)
        if value is None:
            continue
        names = [part.strip().strip('"').strip() for part in render(value).split(",")]
        if [n for n in names if n]:
            found[name] = [n for n in names if n]
    return found


def library_command(runtime, image: str, running_container: Optional[str], libraries: Sequence[str]) -> List[str]:
    """`exec`/`run` arguments that print the libraries of `libraries` that the image does not have."""
    if running_container:
        base = ["exec", running_container, "sh"]
    else:
        base = ["run", "--rm", "--network", "none", "--no-healthcheck", *pull_never(runtime.name), "--user",
                "postgres", "--entrypoint", "sh", image]
    return base + ["-c", LIBRARY_SCRIPT, "sh", *libraries]


def check_libraries(runtime, image: str, settings: Mapping[str, object],
                    running_container: Optional[str] = None) -> List[str]:
    """One problem per preload library that the image does not have (PostgreSQL would not start with it)."""
    wanted = preload_libraries(settings)
    if not wanted:
        return []
    every = sorted({lib for libs in wanted.values() for lib in libs})
    result = runtime.run(library_command(runtime, image, running_container, every), check=False, timeout=120)
    if result.rc != 0:
        return ["the preload libraries could not be checked with %s (rc=%d): %s"
                % (image, result.rc, (result.stderr.strip() or result.stdout.strip())[-500:])]
    missing = set(result.stdout.split())
    return ["%s = %s: library %s is not in image %s, and PostgreSQL would not start without it; install it in the "
            "image or leave it out" % (name, render(settings[name]), lib, image)
            for name, libs in wanted.items() for lib in libs if lib in missing]


def running_with_image(runtime, container: Optional[str], image: str) -> Optional[str]:
    """`container` when it runs `image` (the check can run there, with no new container), else None."""
    doc = runtime.container_inspect(container) if container else None
    if not doc:
        return None
    running = (doc.get("State") or {}).get("Status") == "running"
    return container if running and image in {doc.get("ImageName"), (doc.get("Config") or {}).get("Image")} else None


def check_settings(runtime, image: str, settings: Mapping[str, object],
                   running_container: Optional[str] = None) -> Dict[str, object]:
    """Let PostgreSQL parse `settings`. Returns `ok`, `version`, `problems` (one per refused setting, with
    PostgreSQL's message) and `commands`. One run checks them all; only when it fails does each setting get a run
    of its own, so that every bad one is named at once."""
    base = postgres_command(runtime, image, running_container)
    result = runtime.run(base + check_argv(settings), check=False, timeout=120)
    if result.rc == 0:
        return {"ok": True, "version": result.stdout.strip(), "problems": []}
    output = result.stdout + result.stderr
    if result.rc not in (1, 2) or "FATAL:" not in output:
        # Not PostgreSQL's verdict: the image is missing, the runtime failed, ...
        return {"ok": False, "version": "", "problems": [
            "the settings could not be checked with %s (rc=%d): %s" % (image, result.rc, _fatal(output)[-500:])]}
    problems = []
    for name, value in sorted(settings.items()):
        single = runtime.run(base + check_argv({name: value}), check=False, timeout=120)
        if single.rc != 0:
            problems.append("%s = %s: %s" % (name, render(value), _fatal(single.stdout + single.stderr)))
    if not problems:  # only a combination fails (each value alone is fine)
        problems.append("these settings together: %s" % _fatal(output))
    return {"ok": False, "version": "", "problems": problems}
