"""The pgtwin agent's container mode against the real podman of this host, and a real Docker engine (the private one
of scripts/docker-engine.sh), with poststack's PostgreSQL image:
initdb, the standby server and crash recovery all through the one runner seam, a server container on the host
network with the data directory, the configuration and the passfile mounted at their own paths, and the
lifecycle cases of seed 004 (a stale container, a vanished one, a killed postmaster, a missing image, a missing
or hung runtime), each with container_runtime=podman and =docker. Pacemaker is not involved here: tests/ha runs
the agent in container mode in a cluster."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import docker_engine
from ansible_run import run_playbook
from lab import free_port
from pgtwin_agent import ocf, params, runner
from pgtwin_agent.ocf import AgentError, Logger
from pgtwin_agent.postgres import Postgres, make_runner
from pgtwin_agent.runner import HostRunner

IMAGE = "localhost/poststack/postgres-debian:15"
BINDIR = "/usr/lib/postgresql/15/bin"


@pytest.fixture(scope="module", autouse=True)
def image():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


class Engine:
    """The runtime the agent is given, as the tests drive it themselves (the same CLI the agent calls)."""

    def __init__(self, name, env=None):
        self.name, self.env = name, dict(os.environ, **(env or {}))

    def __call__(self, *args, check=True):
        return subprocess.run([self.name, *args], capture_output=True, text=True, check=check, env=self.env)

    def remove(self, container, check=True):
        return self(*(["rm", "-f"] + (["-t", "0"] if self.name == "podman" else []) + [container]), check=check)

    def image_exists(self, ref):
        return self("image", "inspect", ref, check=False).returncode == 0


@pytest.fixture(scope="module", params=["podman", "docker"])
def engine(request, image):  # pylint: disable=unused-argument,redefined-outer-name
    if request.param == "podman":
        yield Engine("podman")
        return
    # The agent's runtime calls inherit DOCKER_HOST, as on a node with a Docker engine; the image podman built is
    # moved into Docker's store (a node gets its image the same way: pgtwin_image_from_controller).
    with docker_engine.running([IMAGE]) as host:
        yield Engine("docker", {"DOCKER_HOST": host})


def load(base, runtime, **extra):
    values = {"OCF_RESKEY_container_runtime": runtime,
              "OCF_RESKEY_pgdata": base + "/@postgres-{node}/data", "OCF_RESKEY_bindir": BINDIR,
              "OCF_RESKEY_port": str(free_port()), "OCF_RESKEY_socket_dir": base + "/run",
              "OCF_RESKEY_state_dir": base, "OCF_RESKEY_node_list": "a=127.0.0.1 b=127.0.0.2",
              "OCF_RESKEY_user": "999:999", "OCF_RESKEY_rep_passfile": base + "/auth/pgpass",
              "OCF_RESKEY_config_dir": base + "/@postgres-{node}/config", "OCF_RESKEY_container_mode": "true",
              "OCF_RESKEY_container_image": IMAGE, "OCF_RESKEY_container_name": "pgtwin-cm-{node}-%d" % os.getpid()}
    values.update({"OCF_RESKEY_" + k: v for k, v in extra.items()})
    return params.load(values).for_node("a")


@pytest.fixture()
def lab(engine):
    base = tempfile.mkdtemp(prefix="pgtwin-cm-")
    os.chmod(base, 0o755)
    for sub, mode in (("@postgres-a/data", 0o700), ("@postgres-a/config", 0o750), ("auth", 0o700), ("run", 0o755)):
        os.makedirs(os.path.join(base, sub), mode=mode)
    for root, dirs, _files in os.walk(base):
        for name in dirs:
            os.chown(os.path.join(root, name), 999, 999)
    with open(os.path.join(base, "auth", "pgpass"), "w", encoding="utf-8") as handle:
        handle.write("*:*:*:replicator:unused\n")
    os.chown(os.path.join(base, "auth", "pgpass"), 999, 999)
    os.chmod(os.path.join(base, "auth", "pgpass"), 0o600)
    config = os.path.join(base, "@postgres-a", "config")
    with open(os.path.join(config, "postgresql.conf"), "w", encoding="utf-8") as handle:
        handle.write("hba_file = '%s/pg_hba.conf'\nshared_buffers = '16MB'\nlisten_addresses = '127.0.0.1'\n"
                     % config)
    with open(os.path.join(config, "pg_hba.conf"), "w", encoding="utf-8") as handle:
        handle.write("local all all peer\n")
    loaded = load(base, engine.name)
    log = Logger("test", os.path.join(base, "agent.log"))
    pg = Postgres(loaded, make_runner(loaded, HostRunner(loaded.user), log), log, "a", loaded.peer_of("a"))
    pg.logfile = os.path.join(base, "postgresql.log")
    pg.engine = engine
    yield pg
    for name in (loaded.container_name, loaded.container_name + "-task"):
        engine.remove(name, check=False)
    shutil.rmtree(base, ignore_errors=True)


def initdb(pg):
    result = pg.run.run([pg.bin("initdb"), "-D", pg.p.pgdata, "-U", "postgres", "--auth-local=peer"], timeout=120)
    assert result.ok, result.summary() + result.stdout[-500:]


def inspect(pg, name):
    proc = pg.engine("inspect", "--type", "container", name, check=False)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def anonymous_volumes(pg, info):
    """The volumes of a container that the runtime made for it (no name given: the image's VOLUME)."""
    return [m["Name"] for m in info["Mounts"] if m.get("Type") == "volume" and m.get("Name")]


def volume_exists(pg, name):
    return pg.engine("volume", "inspect", name, check=False).returncode == 0


def test_server_lifecycle_in_a_container(lab):
    pg = lab
    initdb(pg)  # in a task container: the node needs no PostgreSQL of its own
    assert pg.has_data() and os.stat(pg.p.pgdata).st_uid == 999
    assert inspect(pg, pg.run.spec.task_name) is None, "the task container is gone after initdb"
    assert not pg.process().running and pg.orphans() == []

    pg.start_standby(time.monotonic() + 90)
    state = pg.process()
    assert state.running and not state.stale_pidfile
    rows = pg.query("SELECT pg_is_in_recovery(), current_setting('shared_buffers'), "
                    "current_setting('restart_after_crash'), current_setting('config_file')")
    assert rows[0] == ["t", "16MB", "off", pg.p.config_dir + "/postgresql.conf"]
    info = inspect(pg, pg.p.container_name)
    leftovers = anonymous_volumes(pg, info)
    assert leftovers, "the image declares VOLUME /data/postgres: the runtime gives the container a volume for it"
    assert info["Config"]["Image"].endswith("postgres-debian:15")
    assert info["HostConfig"]["NetworkMode"] == "host"
    assert info["Config"]["User"] == "999:999"
    assert info["Config"]["Labels"]["poststack.pgtwin"] == pg.p.container_name
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts[pg.p.pgdata]["Source"] == pg.p.pgdata and mounts[pg.p.pgdata]["RW"]
    assert not mounts[pg.p.config_dir]["RW"] and not mounts[os.path.dirname(pg.p.rep_passfile)]["RW"]
    with open(pg.logfile, encoding="utf-8") as handle:
        assert "database system is ready to accept read-only connections" in handle.read()
    # The socket directory is the host's: a client on the node reaches the server through it.
    assert any(name.startswith(".s.PGSQL.") for name in os.listdir(pg.p.socket_dir))

    # kill -9 of the postmaster (the container's main process, seen from the node): the container exits and
    # the pid file it leaves is what the agent reads as a crash.
    os.kill(int(info["State"]["Pid"]), 9)
    deadline = time.monotonic() + 20
    while pg.process().running and time.monotonic() < deadline:
        time.sleep(0.1)
    crashed = pg.process()
    assert not crashed.running and crashed.stale_pidfile
    assert pg.controldata()["Database cluster state"] == "in archive recovery"

    pg.stop(20)
    assert inspect(pg, pg.p.container_name) is None, "stop leaves no container behind"
    assert not [v for v in leftovers if volume_exists(pg, v)], "nor its anonymous volume (VOLUME /data/postgres)"
    assert pg.process() == runner.ProcessState(False, 0, False), "and no stale pid file"
    pg.crash_recovery(90)
    assert pg.controldata()["Database cluster state"] == "shut down"


def test_graceful_stop_and_a_stale_container(lab):
    pg = lab
    initdb(pg)
    # A container of that name left from before a node reboot (exited): start replaces it.
    pg.engine("create", "--name", pg.p.container_name, "--pull=never", IMAGE, "true")
    pg.start_standby(time.monotonic() + 90)
    assert inspect(pg, pg.p.container_name)["State"]["Status"] == "running"
    pg.stop(30)
    assert inspect(pg, pg.p.container_name) is None
    assert pg.controldata()["Database cluster state"] == "shut down in recovery", "a fast shutdown, not a kill"


def test_a_vanished_container_is_a_crash(lab):
    pg = lab
    initdb(pg)
    pg.start_standby(time.monotonic() + 90)
    pg.engine.remove(pg.p.container_name)
    state = pg.process()
    assert not state.running and state.stale_pidfile
    pg.stop(10)  # nothing to stop: still no error, and the stale pid file is gone
    assert pg.process() == runner.ProcessState(False, 0, False)


def test_missing_image_is_an_installation_error_and_nothing_is_pulled(lab):
    loaded = load(os.path.dirname(os.path.dirname(lab.p.pgdata)), lab.engine.name,
                  container_image="localhost/poststack/nope:1")
    layer = Postgres(loaded, make_runner(loaded, HostRunner(loaded.user), lab.log), lab.log, "a",
                     loaded.peer_of("a"))
    with pytest.raises(AgentError, match="container_image=localhost/poststack/nope:1 is not on this node.*"
                                         "container_pull=true") as caught:
        layer.check_installed()
    assert caught.value.rc == ocf.OCF_ERR_INSTALLED
    assert not lab.engine.image_exists("localhost/poststack/nope:1")


def test_missing_runtime_is_an_installation_error(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "SEARCH_PATH", str(tmp_path))
    with pytest.raises(AgentError, match="podman or docker not found") as caught:
        runner.find_runtime("auto")
    assert caught.value.rc == ocf.OCF_ERR_INSTALLED
    with pytest.raises(AgentError, match="/opt/none/docker not found"):
        runner.find_runtime("/opt/none/docker")


def test_a_hung_runtime_call_fails_within_half_the_operation_timeout(lab, tmp_path):
    """A runtime that does not answer: the call gives up after half the operation's timeout (a monitor of
    4 s here), so the agent reports the failure itself before Pacemaker's timeout of the whole operation."""
    hung = tmp_path / "podman"
    hung.write_text("#!/bin/sh\nsleep 60\n")
    hung.chmod(0o755)
    spec = lab.run.spec.__class__(**dict(lab.run.spec.__dict__, runtime=str(hung)))
    stuck = runner.ContainerRunner(HostRunner("999:999"), spec, lab.log, operation_timeout=4.0)
    assert stuck.call_timeout == 2.0
    began = time.monotonic()
    with pytest.raises(AgentError, match="cannot inspect container .*timed out after 2.0s"):
        stuck.server_state(lab.p.pgdata)
    assert time.monotonic() - began < 4
    assert runner.ContainerRunner(HostRunner("999:999"), spec, lab.log, 120.0).call_timeout == runner.CLI_TIMEOUT
