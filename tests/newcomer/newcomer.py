"""A new Debian system in a container, for the newcomer test: a clean clone there, then only `make run`.

The system is a bare `mmdebstrap --variant=apt` image (Debian's essential packages and apt, plus git and make: less
than a freshly installed server has, so that a package the project forgets to install shows), run privileged so
that podman works inside it. Everything the project needs must be installed by the project itself.

Isolation: the system has its own network namespace on a podman network of its own (subnet NEWCOMER_SUBNET, which
must not overlap podman's default 10.88.0.0/16, or the inner podman's default network could not route), so its
bridges, published ports and firewall rules stay inside it. Its container storage is a fresh directory on the
host's disk (overlay on overlay is avoided), removed afterwards.

What is reused from the host, without hiding a missing install step:
  - the downloaded .deb files (a per-release apt archive cache): apt still has to be told to install each package;
  - pip's download cache: the venv is still created and every requirement installed;
  - the host's CA bundle, mounted read-only and named by PIP_CERT/SSL_CERT_FILE/REQUESTS_CA_BUNDLE (this
    machine reaches PyPI through a proxy whose certificate only the host trusts; a real new machine needs nothing).
Neither poststack's own cache (~/.cache/poststack: venv, collections, base image) nor the host's images are shared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(os.environ.get("POSTSTACK_CACHE", os.path.expanduser("~/.cache/poststack")), "newcomer")
OUTPUT = os.path.join(ROOT, "tests", "output", "newcomer")
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
INNER_CA = "/etc/poststack-newcomer-host-ca.crt"
NETWORK = os.environ.get("POSTSTACK_NEWCOMER_NETWORK", "poststack-newcomer")
NEWCOMER_SUBNET = os.environ.get("POSTSTACK_NEWCOMER_SUBNET", "10.213.0.0/24")
MIRROR = "http://deb.debian.org/debian"
# What a new server has beyond Debian's required and important packages: a way to get the code and run make.
INCLUDE = ("git", "make")
# A bare system is rebuilt after this long, so that it does not drift far behind the mirror.
IMAGE_MAX_AGE = 7 * 86400


def podman(*args: str, check: bool = True, timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("podman %s failed (rc=%d): %s" % (" ".join(args[:3]), proc.returncode,
                                                             (proc.stderr or proc.stdout).strip()[-3000:]))
    return proc


def bare_image(suite: str) -> str:
    """localhost/poststack-newcomer/debian:<suite>, imported from a cached mmdebstrap tarball."""
    ref = "localhost/poststack-newcomer/debian:%s" % suite
    os.makedirs(CACHE, exist_ok=True)
    tar = os.path.join(CACHE, "debian-%s-apt-%s.tar" % (suite, "-".join(INCLUDE)))
    fresh = os.path.exists(tar) and time.time() - os.path.getmtime(tar) < IMAGE_MAX_AGE
    if not fresh:
        subprocess.run(
            ["mmdebstrap", "--quiet", "--variant=apt", "--format=tar", "--include=" + ",".join(INCLUDE), suite,
             tar + ".partial", "deb %s %s main" % (MIRROR, suite), "deb %s %s-updates main" % (MIRROR, suite),
             "deb http://deb.debian.org/debian-security %s-security main" % suite],
            check=True, capture_output=True, text=True)
        os.replace(tar + ".partial", tar)
    stamp = str(int(os.path.getmtime(tar)))
    inspect = podman("image", "inspect", "--format", "{{index .Labels \"io.poststack.newcomer.stamp\"}}", ref,
                     check=False)
    if inspect.returncode != 0 or inspect.stdout.strip() != stamp:
        podman("import", "--change", "LABEL io.poststack.newcomer.stamp=%s" % stamp, tar, ref)
    return ref


def ensure_network() -> None:
    """The systems' network (one per release run side by side: the other process may create it first)."""
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        created = podman("network", "create", "--subnet", NEWCOMER_SUBNET, "--label", "io.poststack.test=newcomer",
                         NETWORK, check=False)
        if created.returncode != 0 and podman("network", "exists", NETWORK, check=False).returncode != 0:
            raise RuntimeError("podman network create %s failed: %s" % (NETWORK, created.stderr.strip()))


@dataclass
class Newcomer:
    """One new Debian system. `start()`, then `sh(...)` inside it, then `destroy()`."""

    suite: str
    name: str = ""
    log_dir: str = ""
    env: dict = field(default_factory=dict)
    started: bool = False

    def __post_init__(self) -> None:
        self.name = self.name or "poststack-newcomer-%s" % self.suite
        self.log_dir = self.log_dir or os.path.join(OUTPUT, self.suite)
        self.work = os.path.join(CACHE, "work-%s" % self.suite)
        self.env = {"PIP_CERT": INNER_CA, "SSL_CERT_FILE": INNER_CA, "REQUESTS_CA_BUNDLE": INNER_CA,
                    "DEBIAN_FRONTEND": "noninteractive", **self.env}

    def start(self, image: str) -> None:
        self.destroy()
        shutil.rmtree(self.log_dir, ignore_errors=True)
        os.makedirs(self.log_dir)
        storage = os.path.join(self.work, "storage")
        shutil.rmtree(storage, ignore_errors=True)
        for sub in ("storage", "apt-archives-" + self.suite, "pip-cache"):
            os.makedirs(os.path.join(CACHE if sub != "storage" else self.work, sub), exist_ok=True)
        ensure_network()
        podman("run", "-d", "--name", self.name, "--hostname", self.name, "--privileged", "--network", NETWORK,
               "--tmpfs", "/run", "--tmpfs", "/tmp", "--label", "io.poststack.test=newcomer",
               "-v", "%s:/src:ro" % ROOT,
               "-v", "%s:%s:ro" % (HOST_CA, INNER_CA),
               "-v", "%s:/var/lib/containers" % storage,
               "-v", "%s:/var/cache/apt/archives" % os.path.join(CACHE, "apt-archives-" + self.suite),
               "-v", "%s:/root/.cache/pip" % os.path.join(CACHE, "pip-cache"),
               image, "sleep", "infinity")
        self.started = True
        # Keep the .deb files apt downloads (the archive cache above); a bare image may carry a rule that
        # deletes them after each install.
        self.sh("rm -f /etc/apt/apt.conf.d/docker-clean; "
                "echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' >/etc/apt/apt.conf.d/10keep-debs",
                log="setup")

    def sh(self, script: str, log: str, cwd: str = "/root", timeout: float = 1800) -> subprocess.CompletedProcess:
        """Run a bash script inside as root (a login as a new user would have); output goes to <log>.log."""
        argv = ["podman", "exec", "-w", cwd]
        for key, value in self.env.items():
            argv += ["-e", "%s=%s" % (key, value)]
        argv += [self.name, "bash", "-lc", script]
        began = time.monotonic()
        with open(os.path.join(self.log_dir, log + ".log"), "w", encoding="utf-8") as out:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        proc.seconds = time.monotonic() - began  # type: ignore[attr-defined]
        return proc

    def log(self, name: str) -> str:
        with open(os.path.join(self.log_dir, name + ".log"), encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def destroy(self) -> None:
        """Remove what the inner podman runs first (its containers hold mounts in the storage directory), then the
        system; the storage directory goes with it."""
        if podman("container", "exists", self.name, check=False).returncode == 0:
            if self.started:
                self.sh("podman rm -af -t 0; podman volume prune -f; podman network prune -f", log="teardown",
                        timeout=300)
            podman("rm", "-f", "-t", "0", self.name, check=False)
        self.started = False
        shutil.rmtree(os.path.join(self.work, "storage"), ignore_errors=True)


def recap(output: str) -> List[dict]:
    """The PLAY RECAP lines of ansible-playbook output: [{'host': ..., 'ok': n, 'changed': n, 'failed': n}, ...]."""
    rows = []
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("PLAY RECAP"):
            rows = []
            for row in lines[index + 1:]:
                if ":" not in row or "=" not in row:
                    break
                host, counts = row.split(":", 1)
                values = dict(item.split("=", 1) for item in counts.split())
                rows.append({"host": host.strip(), **{key: int(value) for key, value in values.items()}})
    return rows


def http_json(newcomer: Newcomer, port: int, path: str = "/") -> dict:
    """GET http://127.0.0.1:<port><path> inside the system (its published ports live in its own network)."""
    proc = subprocess.run(
        ["podman", "exec", newcomer.name, "python3", "-c",
         "import sys, urllib.request\n"
         "try:\n"
         "    r = urllib.request.urlopen('http://127.0.0.1:%d%s', timeout=10); print(r.status); print(r.read().decode())\n"
         "except urllib.error.HTTPError as e:\n"
         "    print(e.code); print(e.read().decode())\n" % (port, path)],
        capture_output=True, text=True, check=False, timeout=60)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not lines:
        return {"status": None, "error": (proc.stderr or proc.stdout).strip()}
    try:
        body = json.loads("\n".join(lines[1:]))
    except ValueError:
        body = {"raw": "\n".join(lines[1:])}
    return {"status": int(lines[0]), "body": body}
