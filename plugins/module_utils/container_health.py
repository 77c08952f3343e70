# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether started containers really work: their health checks pass, and the database they were given answers
from their network. Used after project containers start, so that a run never reports success for a stack that
does not work.

Pure Python (no Ansible imports). The runtime is a `runtime.ContainerRuntime` (or anything with its `run`,
`container_inspect`, `name` and `binary`); the clock and sleep are parameters so that the waiting rules have unit
tests.
"""

from __future__ import annotations

import time
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence

from ansible_collections.poststack.core.plugins.module_utils.runtime import pull_never, seconds_since

NANOSECONDS = 1_000_000_000
# Docker's defaults for a HEALTHCHECK that does not set them (podman's are the same).
DEFAULT_INTERVAL = 30.0
DEFAULT_RETRIES = 3
# How often podman's check is run by us: podman schedules checks with systemd timers, which a host without systemd
# (a container, a CI runner) does not have. Docker's daemon runs them itself; then we only read the status.
POLL_SECONDS = 1.0


def health_settings(inspect: dict) -> Optional[dict]:
    """The container's health check (command, start period, interval, retries in seconds), or None without one."""
    check = (inspect.get("Config") or {}).get("Healthcheck") or {}
    test = check.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    command = test[1:] if test[0] in ("CMD", "CMD-SHELL") else test
    return {
        "command": " ".join(command),
        "start_period": (check.get("StartPeriod") or 0) / NANOSECONDS,
        "interval": (check.get("Interval") or 0) / NANOSECONDS or DEFAULT_INTERVAL,
        "retries": check.get("Retries") or DEFAULT_RETRIES,
    }


def health_state(inspect: dict) -> dict:
    """Status (healthy, unhealthy, starting, or empty) and the output of the last check."""
    state = inspect.get("State") or {}
    health = state.get("Health") or state.get("Healthcheck") or {}
    log = health.get("Log") or []
    last = log[-1] if log else {}
    return {"status": health.get("Status", "") or "", "output": (last.get("Output") or "").strip(),
            "exit_code": last.get("ExitCode")}


def _mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def log_tail(runtime, name: str, lines: int, secrets: Sequence[str] = ()) -> str:
    """The last `lines` lines the container printed (both streams), secrets masked; empty when `lines` is 0 or the
    runtime cannot say."""
    if lines <= 0:
        return ""
    ran = runtime.run(["logs", "--tail", str(lines), name], check=False, timeout=30)
    if ran.rc != 0:
        return ""
    text = "\n".join(part.strip("\n") for part in (ran.stdout, ran.stderr) if part.strip())
    return _mask(text, secrets)


def _log_said(tail: str) -> str:
    return "; the end of its log: %s" % tail[-2000:] if tail else ""


def wait_healthy(runtime, name: str, timeout: float, secrets: Sequence[str] = (),
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], Optional[datetime]] = lambda: None, log_lines: int = 0) -> dict:
    """Wait until container `name` runs and, when it has a health check, reports healthy.

    A container fails when it is missing or stopped, when its check reports unhealthy once the runtime itself could
    have decided so (start period plus retries times the interval since the container started), or when it is not
    healthy within `timeout` seconds. Returns a dict with `ok`, `name`, `state`, `health`, `seconds`, `output` (the
    last check's output, secrets masked) and `problem` (a sentence, when not ok; with `log_lines`, it ends with
    that many of the container's last log lines, secrets masked, and `log` holds them)."""
    report = _wait_healthy(runtime, name, timeout, secrets, clock, sleep, now)
    if not report["ok"] and report["state"] and log_lines > 0:
        report["log"] = log_tail(runtime, name, log_lines, secrets)
        report["problem"] += _log_said(report["log"])
    return report


def _wait_healthy(runtime, name: str, timeout: float, secrets: Sequence[str],
                  clock: Callable[[], float], sleep: Callable[[float], None],
                  now: Callable[[], Optional[datetime]]) -> dict:
    began = clock()
    streak = 0  # consecutive failures of the checks run here (podman)
    while True:
        inspect = runtime.container_inspect(name)
        elapsed = clock() - began
        report = {"name": name, "ok": False, "state": "", "health": "", "output": "", "seconds": round(elapsed, 1)}
        if inspect is None:
            return dict(report, problem="container %s does not exist" % name)
        state = inspect.get("State") or {}
        report["state"] = state.get("Status", "")
        if report["state"] != "running":
            return dict(report, problem="container %s is %s (exit code %s; `%s logs %s` shows its log)" % (
                name, report["state"] or "not running", state.get("ExitCode"), runtime.name, name))
        settings = health_settings(inspect)
        if settings is None:
            return dict(report, ok=True, health="none")
        if runtime.name == "podman":
            ran = runtime.run(["healthcheck", "run", name], check=False)
            streak = streak + 1 if ran.rc != 0 else 0
            inspect = runtime.container_inspect(name) or inspect
        health = health_state(inspect)
        report.update(health=health["status"], output=_mask(health["output"], secrets))
        if health["status"] == "healthy":
            return dict(report, ok=True)
        decided = settings["start_period"] + settings["interval"] * settings["retries"]
        running_for = seconds_since(state.get("StartedAt", ""), now())
        # Podman calls a container unhealthy after `Retries` failures, and at the first one when the image leaves
        # Retries at 0 (Docker counts 3 then): one slow check on a busy host is not a verdict, as many failures in
        # a row as the runtime allows (at least Docker's 3) are. Docker's daemon applies its own count.
        confirmed = runtime.name != "podman" or streak >= settings["retries"]
        if health["status"] == "unhealthy" and confirmed and (running_for is None or running_for >= decided):
            return dict(report, problem="container %s is unhealthy (health check: %s)%s" % (
                name, settings["command"], _said(report["output"])))
        if elapsed >= timeout:
            return dict(report, problem="container %s is not healthy after %.0f s (status %s; health check: %s)%s" % (
                name, elapsed, health["status"] or "unknown", settings["command"], _said(report["output"])))
        sleep(min(POLL_SECONDS, settings["interval"]))


def _said(output: str) -> str:
    return "; it said: %s" % output[-1000:] if output else "; it printed nothing"


# getent first, so that a name the network does not resolve is told apart from a server that does not answer.
PROBE_SCRIPT = ('getent hosts "$0" >/dev/null || { echo "the name $0 does not resolve on this network"; exit 3; }; '
                'exec pg_isready -h "$0" -p "$1" -t "$2"')


def probe_command(runtime_name: str, network: str, host: str, port: int, image: str, timeout: int = 5) -> List[str]:
    """`run` arguments for a throwaway container on `network` that checks that `host:port` answers PostgreSQL's
    protocol (pg_isready from the PostgreSQL image; no credentials involved)."""
    return (["run", "--rm", "--no-healthcheck", "--network", network, "--entrypoint", "/bin/sh"]
            + pull_never(runtime_name) + [image, "-c", PROBE_SCRIPT, host, str(port), str(timeout)])


def probe_database(runtime, network: str, host: str, port: int, image: str, timeout: int = 5) -> dict:
    """Whether a container on `network` reaches PostgreSQL at host:port. pg_isready exits 0 (accepting) or 1
    (rejecting, e.g. still starting) when a server answered, 2 when none did."""
    command = probe_command(runtime.name, network, host, port, image, timeout)
    result = runtime.run(command, check=False, timeout=timeout + 60)
    output = result.stdout.strip() or result.stderr.strip()
    report = {"network": network, "host": host, "port": port, "rc": result.rc, "output": output,
              "command": [runtime.binary] + command, "ok": result.rc in (0, 1)}
    if not report["ok"]:
        report["problem"] = "a container on network %s cannot reach the database at %s:%s (%s)" % (
            network, host, port, output[-500:] or "rc=%d" % result.rc)
    return report


def check_containers(runtime, names: Sequence[str], timeout: float, database: Optional[Dict] = None,
                     secrets: Sequence[str] = (), log_lines: int = 0) -> dict:
    """Wait for every container's health and probe the database (when given: network, host, port, image) side by
    side. Returns `containers` (one report each), `database` (or None) and `problems` (sentences, empty when all
    is well; with `log_lines`, a failing container's sentence ends with its last log lines)."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(names) + 1, 8))) as pool:
        probe = pool.submit(probe_database, runtime, **database) if database else None
        reports = list(pool.map(lambda name: wait_healthy(runtime, name, timeout, secrets, log_lines=log_lines), names))
        probed = probe.result() if probe else None
    problems = [r["problem"] for r in reports if not r["ok"]]
    if probed and not probed["ok"]:
        problems.append(probed["problem"])
    return {"containers": reports, "database": probed, "problems": problems}
