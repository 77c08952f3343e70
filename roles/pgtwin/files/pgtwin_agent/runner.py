"""The one seam between the agent and PostgreSQL's programs and processes.

Host mode (``HostRunner``) runs PostgreSQL's programs on this node as the PostgreSQL user and the server as a
child process. Container mode (``ContainerRunner``, seed 004) runs the same argument lists in a container of
the PostgreSQL image: ``exec`` into the server container while it runs, a short-lived task container of the
same image and mounts while it does not, and the server as the main process of a container on the host
network. Paths are mounted at the same path inside the container, so the data directory, the passfile and the
socket directory have one name in both modes and nothing else in the agent knows which mode it runs in.
Cluster commands (crm_attribute, crm_mon) always run on the host (``HostRunner``)."""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .ocf import OCF_ERR_INSTALLED, AgentError, Logger

# Environment the container runtime's command line needs from Pacemaker's (or the caller's) environment.
RUNTIME_ENV = ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF", "CONTAINER_HOST",
               "DOCKER_HOST", "DOCKER_CONFIG", "XDG_RUNTIME_DIR")
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLI_TIMEOUT = 20.0  # seconds for one inspect/rm call at most; never more than half the operation's timeout


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


@dataclass(frozen=True)
class ProcessState:
    running: bool
    pid: int
    stale_pidfile: bool


def identity(user: str) -> Tuple[int, int]:
    """(uid, gid) of ``user``: a name on this node, or a numeric UID:GID (container mode: the image's user,
    for which the node needs no account)."""
    uid, sep, gid = user.partition(":")
    if sep and uid.isdigit() and gid.isdigit():
        return int(uid), int(gid)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise AgentError("user=%s does not exist on this node%s" % (
            user, "" if sep else " (in container mode a numeric UID:GID such as 999:999 also works)"),
            OCF_ERR_INSTALLED) from None
    return entry.pw_uid, entry.pw_gid


def read_pidfile(pgdata: str) -> Tuple[bool, int]:
    """(the pid file exists, the postmaster pid it names or 0)."""
    try:
        with open(os.path.join(pgdata, "postmaster.pid"), encoding="utf-8") as handle:
            return True, int(handle.readline().strip() or "0")
    except ValueError:
        return True, 0
    except OSError:
        return False, 0


class HostRunner:
    """Runs commands on this node, as root or as ``user`` (uid/gid switch in the child, no shell)."""

    def __init__(self, user: str) -> None:
        self.user = user

    def _identity(self, as_user: bool) -> Dict[str, object]:
        if not as_user or os.geteuid() != 0:
            return {}
        uid, gid = identity(self.user)
        return {"user": uid, "group": gid, "extra_groups": []}

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

    # ---- the server process -------------------------------------------------------------------------
    def check_installed(self, programs: Sequence[str]) -> None:
        for path in programs:
            if not os.access(path, os.X_OK):
                raise AgentError("%s not found: install PostgreSQL or fix bindir" % path, OCF_ERR_INSTALLED)

    def start_server(self, argv: Sequence[str], logfile: str) -> Callable[[], bool]:
        """Start the server as ``user`` in its own session, output appended to ``logfile``; returns a check
        that is true while the started process lives."""
        with open(logfile, "ab") as log:
            proc = subprocess.Popen(  # pylint: disable=consider-using-with
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                env=self._env(True, None), start_new_session=True, close_fds=True,
                **self._identity(True))
        return lambda: _is_postgres(proc.pid)

    def server_state(self, pgdata: str) -> ProcessState:
        exists, pid = read_pidfile(pgdata)
        if not exists:
            return ProcessState(False, 0, False)
        if pid > 0 and _is_postgres(pid):
            return ProcessState(True, pid, False)
        return ProcessState(False, pid, True)

    def leftovers(self, pgdata: str) -> List[int]:
        """Server processes still attached to this data directory (backends outlive a killed postmaster
        for a moment and keep its shared memory)."""
        pids = []
        datadir = os.path.realpath(pgdata)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.readlink("/proc/%s/cwd" % entry) == datadir and _is_postgres(int(entry)):
                    pids.append(int(entry))
            except OSError:
                continue
        return pids

    def stop_server(self, pg_ctl: str, pgdata: str, timeout: float, log: Logger) -> None:
        if self.server_state(pgdata).running:
            result = self.run([pg_ctl, "stop", "-D", pgdata, "-m", "fast", "-w", "-t", str(max(1, int(timeout)))],
                              as_user=True, timeout=timeout + 5)
            if not result.ok:
                log.warning("fast shutdown failed (%s); immediate shutdown" % result.summary())
                self.run([pg_ctl, "stop", "-D", pgdata, "-m", "immediate", "-w", "-t", "10"], as_user=True,
                         timeout=15)
        for pid in self.leftovers(pgdata):
            log.warning("killing leftover server process %d" % pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        end = time.monotonic() + 10
        while self.leftovers(pgdata) and time.monotonic() < end:
            time.sleep(0.1)


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    options: str  # "Z" or "ro,Z" and the like

    def argument(self) -> str:
        return "%s:%s:%s" % (self.source, self.target, self.options)


@dataclass(frozen=True)
class ContainerSpec:
    runtime: str  # absolute path of podman or docker
    image: str
    name: str
    pull: bool
    mounts: Tuple[Mount, ...]
    socket_dir: str
    shm_size: str = "256m"

    @property
    def task_name(self) -> str:
        return self.name + "-task"


def find_runtime(wanted: str) -> str:
    """The container runtime's program: ``auto`` is podman, then docker. OCF_ERR_INSTALLED when missing."""
    candidates = ("podman", "docker") if wanted == "auto" else (wanted,)
    for name in candidates:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name, path=SEARCH_PATH)
        if path:
            return path
    raise AgentError("container_runtime=%s: %s not found on this node; install podman (or docker) or set "
                     "container_mode=false" % (wanted, " or ".join(candidates)), OCF_ERR_INSTALLED)


def container_run_options(spec: ContainerSpec, uid: int, gid: int) -> List[str]:
    """Options every container of the agent gets: host network, the user of the data directory (the same
    UID/GID inside and outside), no capabilities, no privilege gain, the mounts, never a pull unless allowed."""
    options = ["--network", "host", "--user", "%d:%d" % (uid, gid), "--cap-drop", "ALL", "--security-opt",
               "no-new-privileges", "--pull", "missing" if spec.pull else "never", "--label",
               "poststack.pgtwin=" + spec.name]
    for mount in spec.mounts:
        options += ["--volume", mount.argument()]
    return options


class ContainerRunner:
    """PostgreSQL's programs and server in containers of ``spec.image``, through the podman or docker CLI."""

    def __init__(self, host: HostRunner, spec: ContainerSpec, log: Logger,
                 operation_timeout: Optional[float] = None) -> None:
        self.host = host
        self.spec = spec
        self.log = log
        # A hung runtime call must fail before Pacemaker's timeout of the whole operation does.
        self.call_timeout = CLI_TIMEOUT
        if operation_timeout is not None:
            self.call_timeout = max(2.0, min(CLI_TIMEOUT, operation_timeout / 2))
        self.uid, self.gid = identity(host.user)

    def cli(self, args: Sequence[str], timeout: float) -> Result:
        env = {key: os.environ[key] for key in RUNTIME_ENV if key in os.environ}
        return self.host.run([self.spec.runtime, *args], timeout=timeout, env=env)

    def container_state(self, name: Optional[str] = None) -> Optional[str]:
        """running, exited, created, ... or None when no container has the name."""
        result = self.cli(["inspect", "--type", "container", "--format", "{{.State.Status}}",
                           name or self.spec.name], timeout=self.call_timeout)
        if result.ok:
            return result.stdout.strip() or "unknown"
        if "no such" in (result.stderr + result.stdout).lower():
            return None
        raise AgentError("cannot inspect container %s: %s" % (name or self.spec.name, result.summary()))

    def _env_options(self, env: Optional[Dict[str, str]]) -> List[str]:
        options: List[str] = []
        for key, value in sorted(dict({"LC_ALL": "C", "LANG": "C"}, **(env or {})).items()):
            options += ["--env", "%s=%s" % (key, value)]
        return options

    def run(self, argv: Sequence[str], as_user: bool = True, timeout: Optional[float] = None,
            env: Optional[Dict[str, str]] = None) -> Result:
        """A PostgreSQL program: inside the running server container, else in a task container."""
        del as_user  # always the data directory's owner
        limit = timeout if timeout is not None else 60.0
        if self.container_state() == "running":
            return self._exec(argv, limit, env)
        self._remove_task()  # one left by a timed-out call
        result = self.cli(["run", "--rm", "--name", self.spec.task_name, "--entrypoint", argv[0],
                           *container_run_options(self.spec, self.uid, self.gid), *self._env_options(env),
                           self.spec.image, *argv[1:]], timeout=limit)
        if result.rc == 124:
            self._remove_task()
        return Result(tuple(argv), result.rc, result.stdout, result.stderr)

    def _exec(self, argv: Sequence[str], timeout: float, env: Optional[Dict[str, str]] = None) -> Result:
        """A program in the running server container."""
        result = self.cli(["exec", "--user", "%d:%d" % (self.uid, self.gid), "--workdir", "/",
                           *self._env_options(env), self.spec.name, *argv], timeout=timeout)
        return Result(tuple(argv), result.rc, result.stdout, result.stderr)

    # Containers are removed with their anonymous volumes (the image declares VOLUME /data/postgres, which the
    # agent does not use: its data directory is mounted elsewhere); each start would leave one behind otherwise.
    def _remove_task(self) -> None:
        self.cli(["rm", "--force", "--volumes", self.spec.task_name], timeout=30)

    # ---- the server container ---------------------------------------------------------------------
    def check_installed(self, programs: Sequence[str]) -> None:
        del programs  # they are in the image; a missing one fails the command that needs it, with its name
        result = self.cli(["image", "inspect", "--format", "{{.Id}}", self.spec.image], timeout=self.call_timeout)
        if result.rc == 124:
            raise AgentError("%s did not answer within %.0f s (image inspect)" % (self.spec.runtime,
                                                                                  self.call_timeout))
        if not result.ok and not self.spec.pull:
            raise AgentError("container_image=%s is not on this node: load or build it there (the poststack "
                             "images playbook), or set container_pull=true to let %s pull it"
                             % (self.spec.image, os.path.basename(self.spec.runtime)), OCF_ERR_INSTALLED)

    def start_server(self, argv: Sequence[str], logfile: str) -> Callable[[], bool]:
        state = self.container_state()
        if state == "running":
            raise AgentError("container %s already runs" % self.spec.name)
        if state is not None:
            # Left by a crash, a node reboot or a stop outside Pacemaker: the data directory holds the state.
            self.log.info("removing the %s container %s left from an earlier run" % (state, self.spec.name))
            removed = self.cli(["rm", "--force", "--volumes", self.spec.name], timeout=60)
            if not removed.ok:
                raise AgentError("cannot remove the old container: " + removed.summary())
        self._prepare_host_paths(logfile)
        mounts = container_run_options(self.spec, self.uid, self.gid)
        mounts += ["--volume", Mount(logfile, logfile, "Z").argument()]
        result = self.cli(["run", "--detach", "--name", self.spec.name, "--no-healthcheck", "--stop-signal",
                           "SIGINT", "--shm-size", self.spec.shm_size, "--entrypoint", "/bin/sh", *mounts,
                           *self._env_options(None), self.spec.image,
                           "-c", 'exec "$@" >>"$0" 2>&1', logfile, *argv], timeout=120)
        if not result.ok:
            raise AgentError("cannot start the PostgreSQL container %s: %s" % (self.spec.name, result.summary()))
        self.log.info("container %s started from %s" % (self.spec.name, self.spec.image))
        return lambda: self.container_state() == "running"

    def _prepare_host_paths(self, logfile: str) -> None:
        """The socket directory (on a tmpfs after a reboot) and the server log exist and belong to the user."""
        if not os.path.isdir(self.spec.socket_dir):
            os.makedirs(self.spec.socket_dir, mode=0o2775)
            os.chown(self.spec.socket_dir, self.uid, self.gid)
        if not os.path.exists(logfile):
            with open(logfile, "a", encoding="utf-8"):
                pass
            os.chown(logfile, self.uid, self.gid)

    def server_state(self, pgdata: str) -> ProcessState:
        running = self.container_state() == "running"
        exists, pid = read_pidfile(pgdata)
        return ProcessState(running, pid, exists and not running)

    def leftovers(self, pgdata: str) -> List[int]:
        del pgdata  # a container that does not run holds no process
        return []

    def stop_server(self, pg_ctl: str, pgdata: str, timeout: float, log: Logger) -> None:
        """pg_ctl stop -m fast inside, then the container stop (SIGINT, SIGKILL after the timeout) and its
        removal: a stop leaves no container behind."""
        state = self.container_state()
        if state == "running":
            result = self._exec([pg_ctl, "stop", "-D", pgdata, "-m", "fast", "-W"], 20)
            if not result.ok and self.container_state() == "running":
                log.warning("fast shutdown request failed (%s)" % result.summary())
            stopped = self.cli(["stop", "--time", str(max(1, int(timeout))), self.spec.name], timeout=timeout + 20)
            if not stopped.ok:
                log.warning("container stop failed (%s); removing it by force" % stopped.summary())
        if state is not None:
            removed = self.cli(["rm", "--force", "--volumes", self.spec.name], timeout=60)
            if not removed.ok and self.container_state() is not None:
                raise AgentError("cannot remove container %s: %s" % (self.spec.name, removed.summary()))
        self._remove_task()


def _is_postgres(pid: int) -> bool:
    try:
        with open("/proc/%d/comm" % pid, encoding="utf-8") as handle:
            comm = handle.read().strip()
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return comm in ("postgres", "postmaster") and state != "Z"
