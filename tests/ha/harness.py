"""A real two-node Pacemaker cluster in podman containers running the pgtwin agent, plus the load and the
observers the HA tests and benchmarks/failover use. Nothing is mocked: corosync (knet + crypto), pacemaker,
fence_dummy stonith, PostgreSQL 15 on each node: from the node's packages (host mode) or in a container that
the agent runs with the node's own podman, on a Btrfs filesystem of the node (container mode, seed 004). The
nodes' podman reads the images from this host's image store (mounted read-only as an additional image
store), so no image is copied."""
from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import psycopg

from power_switch import PowerSwitch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "localhost/poststack/pgtwin-node:latest"
CACHE = os.environ.get("POSTSTACK_CACHE") or os.path.join(os.path.expanduser("~/.cache"), "poststack")
POSTGRES_IMAGE = "localhost/poststack/postgres-debian:15"
AGENT_DIR = os.path.join(ROOT, "roles", "pgtwin", "files")
PGDATA = "/var/lib/pgtwin/data"
PASSFILE = "/var/lib/pgtwin/pgpass"
CONTAINER_PGDATA = "/var/lib/pgtwin/@postgres-{node}/data"
CONTAINER_PASSFILE = "/var/lib/pgtwin/auth/pgpass"
# The nodes' podman (container mode): the settings this kind of host needs, and a store of its own that reads
# the host's images (both files are mounted read-only into the nodes).
NODE_CONTAINERS_CONF = os.path.join(ROOT, "scripts", "podman", "containers.conf")
NODE_STORAGE_CONF = os.path.join(ROOT, "containers", "pgtwin-node", "nested-storage.conf")
AGENT_LOG = "/var/lib/pgtwin/agent.log"
FENCE_CERT_DIR = "/etc/pgtwin-lab/fencing"
RESOURCE = "pgtwin"
CLONE = "pgtwin-clone"
APP_USER = "app"
# Ansible reaches the nodes through podman exec, pipelined (tests/ansible_plugins/connection/podman_pipelined.py:
# one podman command per task where containers.podman.podman runs six). Every ansible and ansible-playbook the
# tests start, the poststack command's included, inherits the plugin path.
CONNECTION = "podman_pipelined"
os.environ["ANSIBLE_CONNECTION_PLUGINS"] = os.pathsep.join(
    [os.path.join(ROOT, "tests", "ansible_plugins", "connection")]
    + [path for path in os.environ.get("ANSIBLE_CONNECTION_PLUGINS", "").split(os.pathsep) if path])


def postgres_image(pg_major: int) -> str:
    return "localhost/poststack/postgres-debian:%d" % pg_major


def podman(*args: str, stdin: Optional[bytes] = None, check: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("podman %s failed (rc=%d): %s" % (" ".join(args[:3]), proc.returncode,
                                                             proc.stderr.decode(errors="replace")[-2000:]))
    return proc


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One image build at a time on this host: the two pytest workers (one per mode) both ask for the images
    at their start; the second one waits, then finds them built (both builds are no-ops when current)."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "pgtwin-ha-build.lock"), "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_image() -> None:
    base = os.environ.get("POSTSTACK_BASE_IMAGE", "docker.io/library/debian:bookworm-slim")
    with _build_lock():
        podman("build", "--pull=never", "-q", "--build-arg", "BASE_IMAGE=" + base, "-t", IMAGE,
               os.path.join(ROOT, "containers", "pgtwin-node"), timeout=1800)


def build_postgres_image(pg_major: int = 15) -> str:
    """poststack's PostgreSQL image for container mode, through playbooks/images.yml (a no-op when built)."""
    argv = ["ansible-playbook", "-i", os.path.join(ROOT, "inventories", "local"),
            os.path.join(ROOT, "playbooks", "images.yml")]
    if pg_major != 15:
        debian = subprocess.run([os.path.join(ROOT, "scripts", "debian-image.sh"), "trixie"], check=True,
                                capture_output=True, text=True).stdout.strip()
        argv += ["-e", json.dumps({"base_image_from": debian, "base_image_tag": "trixie",
                                   "postgres_image_pg_major": pg_major, "postgres_image_tag": str(pg_major),
                                   "postgres_image_from": "localhost/poststack/base-debian:trixie"})]
    with _build_lock():  # inventories/local is the demo project's
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=3600, check=False,
                              env=dict(os.environ, POSTSTACK_PROJECT_DIR=os.path.join(ROOT, "examples", "project")))
    if proc.returncode != 0:
        raise RuntimeError("playbooks/images.yml failed: %s" % proc.stdout[-3000:])
    return postgres_image(pg_major)


def wait_for(what: str, check: Callable[[], object], timeout: float, interval: float = 0.2) -> object:
    end = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
        except (RuntimeError, OSError, subprocess.SubprocessError, ET.ParseError, psycopg.Error) as exc:
            last_error = exc  # the cluster is changing under us: try again
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last error: %r)" % (timeout, what, last_error))


@dataclass
class Node:
    name: str
    container: str
    ip: str

    def sh(self, script: str, stdin: Optional[bytes] = None, check: bool = True, user: str = "root",
           timeout: float = 120) -> str:
        proc = podman("exec", "-i" if stdin is not None else "-t=false", "-u", user, self.container,
                      "/bin/bash", "-c", script, stdin=stdin, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError("on %s: %r failed (rc=%d): %s%s%s" % (
                self.name, script[:200], proc.returncode, proc.stdout.decode(errors="replace")[-1500:],
                proc.stderr.decode(errors="replace")[-1500:], "\n" + self.down() if proc.returncode == 255 else ""))
        return proc.stdout.decode(errors="replace")

    def down(self) -> str:
        """Empty while the node's container runs; else when and how it ended, and the end of its log (the
        entrypoint's, corosync's and pacemakerd's own lines: why the node stopped)."""
        proc = podman("inspect", "--format", "{{.State.Status}}|{{.State.ExitCode}}|{{.State.FinishedAt}}|"
                      "{{.State.OOMKilled}}", self.container, check=False)
        state = proc.stdout.decode(errors="replace").strip()
        if proc.returncode == 0 and state.startswith("running|"):
            return ""
        status, code, finished, oom = (state.split("|") + ["?"] * 4)[:4] if proc.returncode == 0 else (
            "gone", "?", "?", "?")
        log = podman("logs", "--tail", "40", self.container, check=False)
        return "node %s (container %s) is %s: exit code %s at %s, OOM-killed %s; the end of its log:\n%s" % (
            self.name, self.container, status, code, finished, oom,
            (log.stdout + log.stderr).decode(errors="replace").strip()[-4000:])


def failed_tasks(output: dict) -> str:
    """Each failed task of a json-callback report, one line per host: the task, its msg, the end of its stderr and
    stdout (the report's tail alone rarely shows which task failed, in a long run)."""
    lines = []
    for play in output.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("failed") or result.get("unreachable"):
                    detail = "; ".join(part for part in (
                        str(result.get("msg", "")).strip()[-1500:],
                        "stderr: " + str(result.get("stderr", "")).strip()[-1500:] if result.get("stderr") else "",
                        "stdout: " + str(result.get("stdout", "")).strip()[-800:] if result.get("stdout") else "",
                    ) if part)
                    lines.append("%s: %s: %s" % (host, task.get("task", {}).get("name", "?"), detail))
    return "\n".join(lines)


@dataclass
class Cluster:
    prefix: str = field(default_factory=lambda: "pgtwin-ha-" + uuid.uuid4().hex[:6])
    subnet_octet: int = field(default_factory=lambda: 100 + secrets.randbelow(150))
    rep_mode: str = "sync"
    sync_strict: bool = False
    # Corosync's own default, not the role's 1000 ms: with both modes' clusters on this 2-core machine, a
    # 1000 ms token timed out in whole HA runs (in the runbook's image shipping in session 11, in a planned
    # switchover in session 12), the membership re-formed, node1 fenced node2 (fence_dummy), and node2's
    # pacemakerd exited with 100. What the tests check does not depend on a node loss being noticed in 2.3 s.
    token_ms: int = 3000
    nodes: List[Node] = field(default_factory=list)
    app_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    workdir: str = ""
    cluster_playbook_recap: Dict[str, object] = field(default_factory=dict)
    rep_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    with_vip: bool = True
    container_mode: bool = False
    btrfs: bool = False  # host mode on the Btrfs layout of container mode (container mode always has it)
    pg_major: int = 15  # container mode: the image's PostgreSQL (15 on Debian 12, 17 on Debian 13)
    # "dummy": fence_dummy (fencing always "succeeds"); "switch": fence_docker against the lab power switch,
    # which really kills and starts the node, with priority fencing (the primary's node wins a fencing race).
    fencing: str = "dummy"
    nested_podman: bool = False  # host mode on nodes that can run containers (the migration to container mode)
    # The nodes' podman reads this host's images (False: an empty store of its own; the images are shipped).
    shared_images: bool = True
    priority_fencing_delay: str = "5s"
    switch: Optional[PowerSwitch] = None
    # Container mode's runtime on the nodes. "docker": each node's own Docker engine (started by the node's
    # entrypoint, its store a volume of the node) runs PostgreSQL; cluster.yml ships the image from this host.
    container_runtime: str = "podman"

    @property
    def mode(self) -> str:
        return ("container-%d" % self.pg_major if self.pg_major != 15 else "container") if self.container_mode \
            else "host"

    @property
    def postgres_image(self) -> str:
        return postgres_image(self.pg_major)

    @property
    def passfile(self) -> str:
        return CONTAINER_PASSFILE if self.container_mode else PASSFILE

    @property
    def on_btrfs(self) -> bool:
        return self.container_mode or self.btrfs

    def pgdata(self, node: "Node") -> str:
        return CONTAINER_PGDATA.replace("{node}", node.name) if self.on_btrfs else PGDATA

    @staticmethod
    def container_name(node: "Node") -> str:
        return "pgtwin-postgres-" + node.name

    def postmaster_pid(self, node: "Node") -> str:
        """The postmaster's pid as the node sees it (in container mode the container's main process)."""
        if self.container_mode:
            return node.sh("%s inspect -f '{{.State.Pid}}' %s" % (self.container_runtime,
                                                                  self.container_name(node))).strip()
        return node.sh("head -1 %s/postmaster.pid" % self.pgdata(node)).strip()

    def kill_postgres(self, node: "Node") -> None:
        node.sh("kill -9 %s" % self.postmaster_pid(node))

    @property
    def vip(self) -> str:
        """The virtual IP (IPaddr2) that follows the primary; empty without one."""
        return self.subnet + ".200" if self.with_vip else ""

    @property
    def network(self) -> str:
        return self.prefix + "-net"

    @property
    def subnet(self) -> str:
        return "10.213.%d" % self.subnet_octet

    # ---- lifecycle ---------------------------------------------------------------------------------
    def create(self) -> None:
        """Node containers, then playbooks/cluster.yml (roles pacemaker and pgtwin) over Ansible's podman
        connection, then the test application's role and table on the primary."""
        for _attempt in range(10):  # a subnet another network of this host (another cluster) already has
            if podman("network", "create", "--subnet", self.subnet + ".0/24", self.network,
                      check=False).returncode == 0:
                break
            self.subnet_octet = 100 + secrets.randbelow(150)
        else:
            podman("network", "create", "--subnet", self.subnet + ".0/24", self.network)
        self.nodes = [Node(name, "%s-%s" % (self.prefix, name), "%s.%d" % (self.subnet, 10 + index))
                      for index, name in enumerate(("node1", "node2"), start=1)]
        self.workdir = tempfile.mkdtemp(prefix=self.prefix + "-")
        for node in self.nodes:
            # --shm-size: corosync's and pacemaker's IPC ring buffers (a set per client connection: the agent's and
            # the tests' crm_* calls) and, in host mode, PostgreSQL's dynamic shared memory share /dev/shm; podman's
            # 64 MB ran out in a make test run (corosync: "No space left on device", then pacemakerd exited).
            podman("run", "-d", "--init", "--name", node.container, "--hostname", node.name, "--network",
                   self.network, "--ip", node.ip, "--tmpfs", "/run", "--tmpfs", "/tmp", "--shm-size", "256m",
                   *self.node_options(node), "--label", "poststack.test=pgtwin-ha", IMAGE)
        if self.fencing == "switch":
            self.start_switch()
        self.write_inventory()
        self.cluster_playbook_recap = self.playbook("cluster.yml")
        primary = wait_for("a primary", self.primary_by_pacemaker, 180, 1)
        sql = ("SET password_encryption = 'scram-sha-256';\n"
               "CREATE ROLE %s LOGIN PASSWORD '%s';\n"
               "CREATE TABLE ledger (n bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());\n"
               "GRANT SELECT, INSERT ON ledger TO %s;\n" % (APP_USER, self.app_password, APP_USER))
        primary.sh("psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -d postgres", stdin=sql.encode(),
                   user="postgres")

    def node_options(self, node: Node) -> List[str]:
        if not (self.on_btrfs or self.nested_podman):
            # IPaddr2 adds the VIP to eth0 and announces it with gratuitous ARP (send_arp).
            return ["--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW"]
        # Privileged: podman inside the node, and the loop device of its Btrfs.
        options = ["--privileged", "--volume", "%s-%s-containers:/var/lib/containers" % (self.prefix, node.name),
                   "--volume", "%s-%s-storage:/srv/storage" % (self.prefix, node.name),
                   "--volume", "%s:/etc/containers/containers.conf:ro" % NODE_CONTAINERS_CONF]
        if self.container_runtime == "docker":
            options += ["--volume", "%s-%s-docker:/var/lib/docker" % (self.prefix, node.name),
                        "--env", "PGTWIN_NODE_DOCKERD=1"]
        if not self.shared_images:
            own = os.path.join(self.workdir, "storage.conf")
            with open(NODE_STORAGE_CONF, encoding="utf-8") as source, open(own, "w", encoding="utf-8") as target:
                target.writelines(line for line in source if not line.startswith("additionalimagestores"))
            return options + ["--volume", "%s:/etc/containers/storage.conf:ro" % own]
        store = podman("info", "--format", "{{.Store.GraphRoot}}").stdout.decode().strip()
        return options + ["--volume", "%s:/var/lib/shared-images:ro" % store,
                          "--volume", "%s:/etc/containers/storage.conf:ro" % NODE_STORAGE_CONF]

    def start_switch(self) -> None:
        """The lab power switch on this host's address in the cluster network, and its client certificate
        on each node (root only), where fence_docker reads it."""
        self.switch = PowerSwitch(self.subnet + ".1", [n.container for n in self.nodes],
                                  tempfile.mkdtemp(prefix="switch-", dir=self.workdir)).start()
        for node in self.nodes:
            node.sh("install -d -m 0700 %s" % FENCE_CERT_DIR)
            for name in ("ca.pem", "client.pem", "client.key"):
                with open(self.switch.certs[name], "rb") as handle:
                    node.sh("umask 077 && cat > %s/%s" % (FENCE_CERT_DIR, name), stdin=handle.read())

    def fencing_vars(self) -> Dict[str, object]:
        if self.fencing != "switch":
            return {}
        assert self.switch is not None
        return {
            "pacemaker_fencing_agent": "fence_docker",
            "pacemaker_fencing_params": {
                "ip": self.switch.address, "ipport": str(self.switch.port), "ssl_secure": "1",
                "tlscacert": FENCE_CERT_DIR + "/ca.pem", "tlscert": FENCE_CERT_DIR + "/client.pem",
                "tlskey": FENCE_CERT_DIR + "/client.key",
                "pcmk_host_map": ";".join("%s:%s" % (n.name, n.container) for n in self.nodes)},
            # A partition of two nodes ends in a fencing race: the node with the promoted instance (priority
            # 10 + 1) fences first, the other waits priority-fencing-delay.
            "pacemaker_properties": {"load-threshold": "1000%", "stonith-enabled": "true", "stonith-timeout": "20s",
                                     "cluster-recheck-interval": "30s",
                                     "priority-fencing-delay": self.priority_fencing_delay},
            "pgtwin_resource_meta": {"migration-threshold": "1", "failure-timeout": "60s", "priority": "10"},
        }

    def cut(self, node: Node, isolate: bool = False) -> None:
        """A network partition, with nftables in the node's network namespace: the link to its peer (both
        directions), or with ``isolate`` every interface but loopback (clients and the power switch too).
        Gone when the node restarts (a new namespace)."""
        peer = next(n for n in self.nodes if n is not node)
        rules = ('iifname != "lo" drop', 'oifname != "lo" drop') if isolate else (
            "ip saddr %s drop" % peer.ip, "ip daddr %s drop" % peer.ip)
        node.sh("nft -f -", stdin=("table inet pgtwin_lab_cut {\n"
                                   " chain in { type filter hook input priority -10; %s; }\n"
                                   " chain out { type filter hook output priority -10; %s; }\n}\n"
                                   % rules).encode())

    def destroy(self) -> None:
        if self.switch is not None:
            self.switch.stop()
        for node in self.nodes:
            podman("rm", "-f", "-t", "0", node.container, check=False)
            if self.on_btrfs or self.nested_podman:
                for volume in ("containers", "storage", "docker"):
                    podman("volume", "rm", "-f", "%s-%s-%s" % (self.prefix, node.name, volume), check=False)
        podman("network", "rm", "-f", self.network, check=False)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def write_inventory(self) -> None:
        """Inventory for the node containers; the replication password goes to a 0600 vars file, never argv."""
        nodes = [{"name": n.name, "address": n.ip} for n in self.nodes]
        inventory = {"pgtwin": {
            "hosts": {n.container: {"pacemaker_node_name": n.name} for n in self.nodes},
            "vars": {
                "ansible_connection": CONNECTION,
                "ansible_python_interpreter": "/usr/bin/python3",
                "pacemaker_nodes": nodes,
                "pacemaker_cluster_name": self.prefix[:15],
                "pacemaker_token_ms": self.token_ms,
                "pacemaker_service_manager": "none",
                "pacemaker_install_packages": False,
                "pgtwin_install_packages": False,
                **self.mode_vars(),
                **self.fencing_vars(),
                "pgtwin_replication_networks": [self.subnet + ".0/24"],
                "pgtwin_hba_extra": ["host all %s %s.0/24 scram-sha-256" % (APP_USER, self.subnet)],
                "pgtwin_rep_mode": self.rep_mode,
                "pgtwin_sync_strict": self.sync_strict,
                "pgtwin_resource_params": {"agent_log": AGENT_LOG},
                "pgtwin_vip": {"ip": self.vip, "cidr_netmask": "24"} if self.vip else {},
            }}}
        with open(os.path.join(self.workdir, "inventory.json"), "w", encoding="utf-8") as handle:
            json.dump(inventory, handle)
        secrets_file = os.path.join(self.workdir, "secrets.json")
        with open(os.open(secrets_file, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as handle:
            json.dump({"pgtwin_replication_password": self.rep_password}, handle)

    def mode_vars(self) -> Dict[str, object]:
        storage = {"btrfs_storage_loop_file": "/srv/storage/pgtwin-btrfs.img", "btrfs_storage_loop_size": "3G",
                   "btrfs_storage_fstab": True, "btrfs_storage_install_packages": False}
        if not self.container_mode:
            if self.btrfs:
                return {"pgtwin_pgdata": CONTAINER_PGDATA, "pgtwin_passfile": PASSFILE, "pgtwin_btrfs_storage": True,
                        **storage}
            return {"pgtwin_pgdata": PGDATA, "pgtwin_passfile": PASSFILE}
        # The role's defaults: @postgres-<node>/{data,config,archive} on a Btrfs loop file of the node,
        # mounted again by the node's "boot" (fstab) after a restart.
        runtime = {} if self.container_runtime == "podman" else {
            "pgtwin_container_runtime": self.container_runtime, "pgtwin_image_from_controller": True,
            "pgtwin_controller_runtime": "podman"}
        return {"pgtwin_container_mode": True, "pgtwin_pg_major": self.pg_major, **storage, **runtime}

    def set_replication_password(self, password: str) -> None:
        """The password the next playbook runs give the roles (a rotation)."""
        self.rep_password = password
        with open(os.path.join(self.workdir, "secrets.json"), "w", encoding="utf-8") as handle:
            json.dump({"pgtwin_replication_password": password}, handle)

    def run_playbook(self, name: str, *extra: str, timeout: float = 900) -> Tuple[subprocess.CompletedProcess, dict]:
        """Run playbooks/<name> against the nodes with the json callback; (the process, its parsed output or
        {} when it printed none)."""
        argv = ["ansible-playbook", "-i", os.path.join(self.workdir, "inventory.json"),
                "-e", "@" + os.path.join(self.workdir, "secrets.json"), os.path.join(ROOT, "playbooks", name),
                *extra]
        # -v output to stderr, so that stdout stays the json callback's document at any verbosity
        env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                   ANSIBLE_VERBOSE_TO_STDERR="1")
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout,
                              check=False, cwd=ROOT)
        try:
            output = json.loads(proc.stdout.decode())
        except ValueError:
            output = {}
        return proc, output

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """The ``poststack`` command of this checkout against the nodes (``--inventory``), the replication password
        from the 0600 secrets file (``--config-file``); run in the cluster's work directory, its log there."""
        argv = [os.path.join(ROOT, "bin", "poststack"), "--inventory", os.path.join(self.workdir, "inventory.json"),
                "--config-file", os.path.join(self.workdir, "secrets.json"), *args]
        return subprocess.run(argv, cwd=self.workdir, capture_output=True, text=True, timeout=timeout, check=False)

    def playbook(self, name: str, *extra: str) -> Dict[str, object]:
        """Run playbooks/<name> against the nodes; returns the recap counters summed over the hosts, and the
        names of the tasks that changed something (``changed_tasks``)."""
        proc, output = self.run_playbook(name, *extra)
        stats = output.get("stats", {})
        totals: Dict[str, object] = {key: sum(host.get(key, 0) for host in stats.values())
                                     for key in ("ok", "changed", "failures", "unreachable")}
        totals["changed_tasks"] = sorted({task["task"]["name"] for play in output.get("plays", [])
                                          for task in play["tasks"]
                                          if any(r.get("changed") for r in task["hosts"].values())})
        # everything the run printed (with -vvv: module arguments, results, connection commands)
        totals["printed"] = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        if proc.returncode != 0 or not stats:
            raise RuntimeError("ansible-playbook %s failed (rc=%d): %s\n%s" % (
                name, proc.returncode, failed_tasks(output) or proc.stdout.decode()[-4000:],
                proc.stderr.decode()[-2000:]))
        return totals

    def playbook_messages(self, name: str, task: str) -> Dict[str, object]:
        """The ``msg`` of the debug task ``task`` (without its role prefix) of playbooks/<name>, per host."""
        proc, output = self.run_playbook(name, timeout=600)
        if proc.returncode != 0 or not output:
            raise RuntimeError("ansible-playbook %s failed: %s" % (name, proc.stdout.decode()[-3000:]))
        return {host: result["msg"] for play in output["plays"] for entry in play["tasks"]
                if entry["task"]["name"].split(" : ")[-1] == task for host, result in entry["hosts"].items()}

    def primary_by_pacemaker(self) -> Optional[Node]:
        """The promoted node once PostgreSQL there runs as primary (local socket: no client role needed)."""
        promoted = [name for name, role in self.roles().items() if role == "Promoted"]
        if len(promoted) != 1:
            return None
        node = self.node(promoted[0])
        return node if self.local_role(node, timeout=120) == "primary" else None

    def node_list(self) -> str:
        return " ".join("%s=%s" % (n.name, n.ip) for n in self.nodes)

    def resource_params(self) -> Dict[str, str]:
        """The agent parameters the pgtwin role gives the resource with this inventory."""
        values = {"pgdata": CONTAINER_PGDATA if self.on_btrfs else PGDATA,
                  "bindir": "/usr/lib/postgresql/%d/bin" % self.pg_major, "port": "5432",
                  "socket_dir": "/run/postgresql", "state_dir": "/var/lib/pgtwin", "rep_user": "replicator",
                  "rep_passfile": self.passfile, "rep_mode": self.rep_mode,
                  "sync_strict": "true" if self.sync_strict else "false", "node_list": self.node_list(),
                  "agent_log": AGENT_LOG}
        if self.container_mode:
            values.update({"container_mode": "true", "container_runtime": self.container_runtime,
                           "container_image": self.postgres_image,
                           "container_name": "pgtwin-postgres-{node}", "container_pull": "false",
                           "container_mounts": "/var/lib/pgtwin/@postgres-{node}/archive:"
                                               "/var/lib/pgtwin/@postgres-{node}/archive:Z",
                           "config_dir": "/var/lib/pgtwin/@postgres-{node}/config", "user": "999:999"})
        return values

    def resource_module(self, check: bool = False, diff: bool = False, **args: object) -> dict:
        """Run poststack.core.pgtwin_resource on a live node through Ansible's podman connection."""
        module_args: Dict[str, object] = {"params": self.resource_params()}
        if self.vip:
            module_args["vip"] = {"ip": self.vip, "cidr_netmask": "24"}
        module_args.update(args)
        argv = ["ansible", "all", "-i", self.live_node().container + ",", "-c", CONNECTION,
                "-e", "ansible_python_interpreter=/usr/bin/python3", "-m", "poststack.core.pgtwin_resource",
                "-a", json.dumps(module_args)]
        argv += ["--check"] if check else []
        argv += ["--diff"] if diff else []
        # -v output to stderr, so that stdout stays the json callback's document at any verbosity
        env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                   ANSIBLE_VERBOSE_TO_STDERR="1")
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=600,
                              check=False, cwd=ROOT)
        try:
            output = json.loads(proc.stdout.decode())
            host_result = next(iter(output["plays"][0]["tasks"][0]["hosts"].values()))
        except (ValueError, KeyError, IndexError, StopIteration):
            raise RuntimeError("ansible failed (rc=%d): %s %s" % (
                proc.returncode, proc.stdout.decode()[-3000:], proc.stderr.decode()[-3000:])) from None
        if host_result.get("failed"):
            raise RuntimeError("pgtwin_resource failed: %s" % host_result.get("msg"))
        return host_result

    def live_node(self) -> Node:
        """A node whose container runs (cluster commands work from either node)."""
        for node in self.nodes:
            proc = podman("inspect", "-f", "{{.State.Running}}", node.container, check=False)
            if proc.stdout.strip() == b"true":
                return node
        raise RuntimeError("no node container is running")

    # ---- observation -------------------------------------------------------------------------------
    def crm_status(self, node: Optional[Node] = None) -> ET.Element:
        out = (node or self.live_node()).sh("crm_mon --one-shot --output-as=xml", timeout=30)
        return ET.fromstring(out)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def roles(self) -> Dict[str, str]:
        """Pacemaker's view: node name -> Promoted/Unpromoted for the pgtwin clone instances."""
        result = {}
        for rsc in self.crm_status().iter("resource"):
            if rsc.get("resource_agent") == "ocf:poststack:pgtwin" and rsc.get("active") == "true":
                for placed in rsc.iter("node"):
                    result[placed.get("name")] = rsc.get("role")
        return result

    def dsn(self, node: Node, user: str = APP_USER) -> str:
        return self.address_dsn(node.ip, user)

    def address_dsn(self, address: str, user: str = APP_USER) -> str:
        return "host=%s port=5432 dbname=postgres user=%s password=%s connect_timeout=2" % (
            address, user, self.app_password)

    def vip_node(self) -> Optional[str]:
        """The node where Pacemaker runs the VIP resource, or None."""
        for rsc in self.crm_status().iter("resource"):
            if rsc.get("id") == RESOURCE + "-vip" and rsc.get("active") == "true":
                placed = [n.get("name") for n in rsc.iter("node")]
                return placed[0] if len(placed) == 1 else None
        return None

    def pg_role(self, node: Node) -> Optional[str]:
        return self.address_role(node.ip)

    def local_role(self, node: Node, timeout: float = 5) -> Optional[str]:
        """The role as the node itself sees it (local socket: no network needed), None when it cannot say."""
        try:
            out = node.sh("psql -XAt -h /run/postgresql -d postgres -c 'SELECT pg_is_in_recovery()'", user="postgres",
                          check=False, timeout=timeout).strip()
        except subprocess.TimeoutExpired:
            return None
        return {"t": "standby", "f": "primary"}.get(out)

    def address_role(self, address: str) -> Optional[str]:
        try:
            with psycopg.connect(self.address_dsn(address), autocommit=True) as conn:
                return "standby" if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] else "primary"
        except psycopg.Error:
            return None

    def primary(self) -> Optional[Node]:
        found = [n for n in self.nodes if self.pg_role(n) == "primary"]
        return found[0] if len(found) == 1 else None

    def replication(self, primary: Node) -> List[Tuple[str, str, str]]:
        out = primary.sh("psql -XAt -F '|' -h /run/postgresql -d postgres -c \"SELECT application_name, "
                         "state, sync_state FROM pg_stat_replication\"", user="postgres")
        return [tuple(line.split("|")) for line in out.splitlines() if line]  # type: ignore[misc]

    def healthy(self, sync: bool = True) -> Optional[Tuple[Node, Node]]:
        """(primary, standby) once Pacemaker agrees with PostgreSQL and the standby streams (in sync)."""
        roles = self.roles()
        promoted = [name for name, role in roles.items() if role == "Promoted"]
        if len(promoted) != 1 or len(roles) != 2:
            return None
        primary = self.node(promoted[0])
        standby = next(n for n in self.nodes if n is not primary)
        if self.pg_role(primary) != "primary" or self.pg_role(standby) != "standby":
            return None
        if self.vip and (self.vip_node() != primary.name or self.address_role(self.vip) != "primary"):
            return None
        rows = self.replication(primary)
        want = "sync" if sync else None
        if not any(r[0] == standby.name and r[1] == "streaming" and (want is None or r[2] == want) for r in rows):
            return None
        # Ready for the next failure only once the primary has recorded the standby as promotable.
        own = self.record(primary.name)
        if not own.startswith("PRIMARY:") or self.record(standby.name) != "SYNC:" + own.split(":")[1]:
            return None
        return primary, standby

    def record(self, name: str) -> str:
        return self.live_node().sh("crm_attribute --node %s --name %s-data --lifetime forever --query --quiet"
                                   % (name, RESOURCE), check=False).strip()

    def agent_log(self, node: Node) -> str:
        return node.sh("cat %s 2>/dev/null || true" % AGENT_LOG)

    def cleanup(self) -> None:
        self.live_node().sh("crm_resource --cleanup --resource %s >/dev/null" % CLONE)

    def summary(self) -> str:
        """One line for a failed test's report: for each node whether it is online, the pgtwin instance's role,
        fail count and failed operations as Pacemaker has them, PostgreSQL's own answer, the data record and the
        agent log's last line. (The short summary of a CI run shows only a failure's first line.)"""
        try:
            status = self.crm_status()
        except (RuntimeError, OSError, subprocess.SubprocessError, ET.ParseError) as exc:
            return "crm_mon failed: %s" % " ".join(str(exc).split())[:300]
        parts = []
        for node in self.nodes:
            seen = status.find(".//nodes/node[@name='%s']" % node.name)
            online = "online" if seen is not None and seen.get("online") == "true" else "OFFLINE"
            role = next((rsc.get("role") for rsc in status.iter("resource")
                         if rsc.get("resource_agent") == "ocf:poststack:pgtwin" and rsc.get("active") == "true"
                         and any(placed.get("name") == node.name for placed in rsc.iter("node"))), "not running")
            history = status.find(".//node_history/node[@name='%s']/resource_history[@id='%s']"
                                  % (node.name, RESOURCE))
            fails = history.get("fail-count", "0") if history is not None else "0"
            failed = ["%s %s%s" % (failure.get("task"), failure.get("exitstatus"),
                                   ": " + failure.get("exitreason") if failure.get("exitreason") else "")
                      for failure in status.iter("failure") if failure.get("node") == node.name]
            if node.down():
                postgres, last = "node container stopped", ""
            else:
                postgres = self.local_role(node) or "no answer"
                last = node.sh("tail -n 1 %s 2>/dev/null || true" % AGENT_LOG, check=False).strip()
            parts.append("%s %s, pgtwin %s, fail-count %s%s, postgres %s, record %s, agent: %s" % (
                node.name, online, role, fails, " (%s)" % "; ".join(failed) if failed else "", postgres,
                self.record(node.name) or "none", last[-240:] or "-"))
        return " | ".join(parts)

    def rejoin(self, timeout: float = 180, cleanup: bool = True) -> Tuple[Node, Node]:
        """Wait for a healthy pair. With ``cleanup``, clear failed actions as they appear, as an operator
        would (migration-threshold=1 keeps a failed node out until failure-timeout, 60 s; the failure may be
        recorded after the new primary is up); without it, the cluster must get there by itself."""
        def check() -> Optional[Tuple[Node, Node]]:
            pair = self.healthy()
            if cleanup and pair is None and self.crm_status().find(".//failures/failure") is not None:
                self.cleanup()
            return pair
        return wait_for("the old primary back as sync standby", check, timeout, 1)  # type: ignore[return-value]


class Writer:
    """Commits numbered rows, each loop pausing ``pause`` seconds after each commit (0: as fast as it can, the
    benchmarks' setting), and records every acknowledged commit (the commit returned without error). The tests'
    5 ms keeps a commit in flight at any moment a test kills something, and leaves the CPU to the clusters: as
    fast as it could, two clusters' writers and their servers took most of this 2-core machine's time (top, in
    session 15), and every Pacemaker operation and playbook waited for it. One connection loop per node, each with a single-host read-write DSN: the loop of the
    node that is not primary is refused at once (read-only) and retries every 50 ms, so the first commit a
    new primary acknowledges is seen within about 50 ms of its promotion; a dead node only costs its own
    loop a connect timeout. (A single multi-host DSN would try the dead address first on every reconnect,
    and libpq's connect_timeout is at least 2 s.) Rows get numbers from one shared counter."""

    def __init__(self, cluster: Cluster, pause: float = 0.005) -> None:
        self.cluster = cluster
        self.pause = pause
        # (n, when, address, when its connection was opened)
        self.acked: List[Tuple[int, float, str, float]] = []
        self.errors = 0
        self.next_n = 0  # 0: read the first free number from the primary on the first connection
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        # Every acknowledged number, one per line, for the independent checker (checker.py).
        self.ack_path = os.path.join(cluster.workdir, "acks-%s.log" % uuid.uuid4().hex[:8])
        self.ack_file = open(self.ack_path, "a", buffering=1, encoding="ascii")  # pylint: disable=consider-using-with
        # One loop per node address, and one through the VIP when the cluster has one.
        self.addresses = [node.ip for node in cluster.nodes] + ([cluster.vip] if cluster.vip else [])
        self.threads = [threading.Thread(target=self.loop, args=(address,), daemon=True)
                        for address in self.addresses]

    def dsn(self, address: str) -> str:
        # tcp_user_timeout and keepalives: a commit in flight to a node that vanished fails within about 2 s
        # instead of waiting for TCP's retransmission timeout.
        return ("host=%s port=5432 dbname=postgres user=%s password=%s connect_timeout=2 tcp_user_timeout=2000 "
                "keepalives_idle=1 keepalives_interval=1 keepalives_count=2 target_session_attrs=read-write"
                % (address, APP_USER, self.cluster.app_password))

    def number(self, conn: psycopg.Connection) -> int:
        with self.lock:
            if self.next_n == 0:  # continue after the rows of earlier writers on this cluster
                self.next_n = conn.execute("SELECT COALESCE(max(n), 0) + 1 FROM ledger").fetchone()[0]
            n = self.next_n
            self.next_n += 1
            return n

    def loop(self, address: str) -> None:
        conn = None
        connected_at = 0.0
        while not self.stop_event.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn(address), autocommit=True)
                    connected_at = time.monotonic()
                    conn.execute("SET statement_timeout = '5s'")
                n = self.number(conn)
                conn.execute("INSERT INTO ledger (n) VALUES (%s)", (n,))
                with self.lock:
                    self.acked.append((n, time.monotonic(), address, connected_at))
                    self.ack_file.write("%d\n" % n)
                if self.pause:
                    self.stop_event.wait(self.pause)
            except psycopg.Error:
                with self.lock:
                    self.errors += 1
                if conn is not None:
                    try:
                        conn.close()
                    except psycopg.Error:
                        pass
                conn = None
                self.stop_event.wait(0.05)
        if conn is not None:
            conn.close()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def first_ack_after(self, moment: float, node: Optional[Node] = None,
                        address: Optional[str] = None) -> Optional[float]:
        """When the first commit after ``moment`` (on ``node``, or through ``address``, if given) was
        acknowledged. Through an address, only commits on connections opened after ``moment`` count: a
        commit in flight to the old primary can be acknowledged just after the kill command started."""
        wanted = node.ip if node is not None else address
        # The times are taken under the lock, so the list is sorted by them: skip to ``moment`` by bisection
        # and scan only the commits after it, without the lock (entries below ``count`` never change). The
        # writers never wait for this scan, so their recorded times stay exact (a benchmark's list holds
        # millions of commits and is polled every 50 ms).
        with self.lock:
            count = len(self.acked)
        for index in range(bisect.bisect_right(self.acked, moment, hi=count, key=lambda entry: entry[1]), count):
            _n, at, host, connected_at = self.acked[index]
            if (wanted is None or host == wanted) and (address is None or connected_at > moment):
                return at
        return None

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(15)
        with self.lock:
            self.ack_file.close()

    def acked_numbers(self) -> List[int]:
        with self.lock:
            return [entry[0] for entry in self.acked]


class Sampler(threading.Thread):
    """Asks both nodes (in parallel) every ``interval`` seconds whether they are primary and writes down, one
    JSON list per round, the nodes that answered so (for the independent checker). A node that does not answer
    over the network (cut off, or down) is asked on the node itself through its local socket, so that an
    isolated primary is still seen."""

    def __init__(self, cluster: Cluster, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.interval = interval
        self.rounds = 0
        self.path = os.path.join(cluster.workdir, "samples-%s.log" % uuid.uuid4().hex[:8])
        self.file = open(self.path, "a", buffering=1, encoding="ascii")  # pylint: disable=consider-using-with
        self.stop_event = threading.Event()

    def role(self, node: Node) -> Optional[str]:
        return self.cluster.pg_role(node) or self.cluster.local_role(node)

    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=len(self.cluster.nodes)) as pool:
            while not self.stop_event.is_set():
                roles = list(pool.map(self.role, self.cluster.nodes))
                primaries = [n.name for n, role in zip(self.cluster.nodes, roles) if role == "primary"]
                self.file.write(json.dumps(primaries) + "\n")
                self.rounds += 1
                self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(15)
        self.file.close()


PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
BENCH_DB = "bench"


@contextlib.contextmanager
def created(lab: Cluster, tag: str) -> Iterator[Cluster]:
    """``lab`` created and healthy (a primary and a streaming sync standby) while the block runs; its nodes'
    logs are saved under ``tag`` and it is destroyed afterwards. ``lab.bring_up_seconds``: how long it took."""
    began = time.monotonic()
    try:
        lab.create()
        wait_for("a primary and a streaming sync standby", lab.healthy, 120, 1)
        lab.bring_up_seconds = time.monotonic() - began
        yield lab
    finally:
        save_logs(lab, tag)
        lab.destroy()


@contextlib.contextmanager
def running_load(cluster: Cluster) -> Iterator[Tuple["Writer", "Sampler"]]:
    """A writer committing numbered rows and a sampler watching for two primaries, while the block runs."""
    writer, sampler = Writer(cluster), Sampler(cluster)
    writer.start()
    sampler.start()
    try:
        wait_for("the writer's first commit", lambda: writer.acked, 60, 0.1)
        yield writer, sampler
    finally:
        writer.stop()
        sampler.stop()


def kill9_failovers(cluster: Cluster, writer: "Writer", cycles: int) -> List[float]:
    """``cycles`` times: kill -9 of the primary's postmaster, the seconds until the first commit on the standby
    that takes over, and the old primary back as the sync standby through pg_rewind."""
    times = []
    for _cycle in range(cycles):
        old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
        rewinds = cluster.agent_log(old).count("start: pg_rewind from the primary")
        began = time.monotonic()
        cluster.kill_postgres(old)
        wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), 30, 0.05)
        times.append(writer.first_ack_after(began, standby) - began)
        assert cluster.rejoin() == (standby, old)
        assert cluster.agent_log(old).count("start: pg_rewind from the primary") == rewinds + 1
    return times


def planned_switchover(cluster: Cluster) -> None:
    """The standby promoted through pgtwin_resource (promoted_node), the old primary back as its sync standby."""
    old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    result = cluster.resource_module(promoted_node=standby.name)
    assert result["changed"] and result["promoted"] == [standby.name], result
    assert wait_for("the old primary back as sync standby", cluster.healthy, 120, 0.5) == (standby, old)


def prepare_pgbench(cluster: Cluster, scale: int = 10) -> None:
    """A database for pgbench owned by the app role on the primary, initialised by pgbench -i."""
    primary = wait_for("a primary", cluster.primary, 120, 0.5)
    primary.sh("psql -X -q -h /run/postgresql -d postgres -c 'CREATE DATABASE %s OWNER %s'" % (BENCH_DB, APP_USER),
               user="postgres")
    pgbench(cluster, primary.ip, ["-i", "-q", "-s", str(scale)])
    wait_for("a sync standby", cluster.healthy, 120, 0.5)


def pgbench(cluster: Cluster, address: str, args: List[str], timeout: float = 900) -> str:
    """This host's pgbench against ``address`` as the app role (the password in the environment only)."""
    env = dict(os.environ, PGPASSWORD=cluster.app_password)
    proc = subprocess.run([PGBENCH, "-h", address, "-U", APP_USER, "-n" if args[0] != "-i" else "-q", *args,
                           BENCH_DB], capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError("pgbench %s failed: %s" % (" ".join(args), proc.stderr[-1500:]))
    return proc.stdout


CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checker.py")


def check(cluster: Cluster, writer: Writer, sampler: Sampler) -> Dict[str, object]:
    """The verdict of the independent checker (checker.py, a process of its own, reading only the writer's
    and the sampler's files and the databases): acknowledged, rows, lost, duplicates, double_primary_samples,
    primaries, problems (empty when every check holds)."""
    request = {"dsns": {n.name: cluster.dsn(n) for n in cluster.nodes}, "acks": writer.ack_path,
               "samples": sampler.path}
    proc = subprocess.run([sys.executable, CHECKER], input=json.dumps(request), capture_output=True, text=True,
                          timeout=600, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError("the checker failed (rc=%d): %s" % (proc.returncode, proc.stderr[-2000:])) from None


def assert_no_loss(cluster: Cluster, writer: Writer, sampler: Sampler) -> Dict[str, object]:
    """Once there is a single primary, the checker's verdict must hold no problem: no acknowledged row lost,
    never two primaries."""
    wait_for("a single primary", cluster.primary, 60, 0.2)
    verdict = check(cluster, writer, sampler)
    assert verdict["problems"] == [], verdict
    return verdict


LOG_DIR = os.environ.get("PGTWIN_HA_LOG_DIR") or os.path.join(ROOT, "logs", "pgtwin-ha")


def save_logs(lab: Cluster, tag: str, log_dir: str = LOG_DIR) -> None:
    """Agent, PostgreSQL and Pacemaker logs of every node for the post-mortem of a failed run, named
    <mode>-<tag>-<node>-<log> (the tag: which test module's cluster). `make test` points PGTWIN_HA_LOG_DIR
    outside the clone, which CI removes."""
    os.makedirs(log_dir, exist_ok=True)
    for node in lab.nodes:
        sources = ((AGENT_LOG, "agent.log"), ("/var/lib/pgtwin/pgtwin-postgresql.log", "postgresql.log"),
                   ("/var/log/pacemaker/pacemaker.log", "pacemaker.log"))
        for source, name in sources:
            target = os.path.join(log_dir, "%s-%s-%s-%s" % (lab.mode, tag, node.name, name))
            podman("cp", "%s:%s" % (node.container, source), target, check=False)
        # the node's own output (entrypoint, corosync, pacemakerd): why a node stopped, if it did
        log = podman("logs", node.container, check=False)
        with open(os.path.join(log_dir, "%s-%s-%s-node.log" % (lab.mode, tag, node.name)), "wb") as handle:
            handle.write(log.stdout + log.stderr)
