"""A real two-node Pacemaker cluster in podman containers running the pgtwin agent, plus the load and the
observers the HA tests and benchmarks/failover use. Nothing is mocked: corosync (knet + crypto), pacemaker,
fence_dummy stonith, PostgreSQL 15 on each node."""
from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import psycopg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "localhost/poststack/pgtwin-node:latest"
AGENT_DIR = os.path.join(ROOT, "roles", "pgtwin", "files")
PGDATA = "/var/lib/pgtwin/data"
PASSFILE = "/var/lib/pgtwin/pgpass"
AGENT_LOG = "/var/lib/pgtwin/agent.log"
RESOURCE = "pgtwin"
CLONE = "pgtwin-clone"
APP_USER = "app"


def podman(*args: str, stdin: Optional[bytes] = None, check: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("podman %s failed (rc=%d): %s" % (" ".join(args[:3]), proc.returncode,
                                                             proc.stderr.decode(errors="replace")[-2000:]))
    return proc


def build_image() -> None:
    base = os.environ.get("POSTSTACK_BASE_IMAGE", "docker.io/library/debian:bookworm-slim")
    podman("build", "--pull=never", "-q", "--build-arg", "BASE_IMAGE=" + base, "-t", IMAGE,
           os.path.join(ROOT, "containers", "pgtwin-node"), timeout=1800)


def wait_for(what: str, check: Callable[[], object], timeout: float, interval: float = 0.2) -> object:
    end = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # pylint: disable=broad-except
            last_error = exc
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
            raise RuntimeError("on %s: %r failed (rc=%d): %s%s" % (
                self.name, script[:200], proc.returncode, proc.stdout.decode(errors="replace")[-1500:],
                proc.stderr.decode(errors="replace")[-1500:]))
        return proc.stdout.decode(errors="replace")

    def write_file(self, path: str, content: bytes, mode: str = "0644", owner: str = "root:root") -> None:
        # Written beside the target, then renamed: the node entrypoint must never see half a file.
        self.sh("umask 077 && cat > {p}.tmp && chown {o} {p}.tmp && chmod {m} {p}.tmp && mv -f {p}.tmp {p}"
                .format(p=path, o=owner, m=mode), stdin=content)


@dataclass
class Cluster:
    prefix: str = field(default_factory=lambda: "pgtwin-ha-" + uuid.uuid4().hex[:6])
    subnet_octet: int = field(default_factory=lambda: 100 + secrets.randbelow(150))
    rep_mode: str = "sync"
    sync_strict: bool = False
    token_ms: int = 1000
    nodes: List[Node] = field(default_factory=list)
    app_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    rep_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @property
    def network(self) -> str:
        return self.prefix + "-net"

    @property
    def subnet(self) -> str:
        return "10.213.%d" % self.subnet_octet

    # ---- lifecycle ---------------------------------------------------------------------------------
    def create(self) -> None:
        podman("network", "create", "--subnet", self.subnet + ".0/24", self.network)
        self.nodes = [Node(name, "%s-%s" % (self.prefix, name), "%s.%d" % (self.subnet, 10 + index))
                      for index, name in enumerate(("node1", "node2"), start=1)]
        authkey = os.urandom(256)
        for node in self.nodes:
            podman("run", "-d", "--init", "--name", node.container, "--hostname", node.name, "--network",
                   self.network, "--ip", node.ip, "--tmpfs", "/run", "--tmpfs", "/tmp",
                   "--label", "poststack.test=pgtwin-ha", IMAGE)
            node.write_file("/etc/corosync/authkey", authkey, "0400")
            node.write_file("/etc/corosync/corosync.conf", self.corosync_conf().encode())
            self.deploy_agent(node)
        self.setup_postgres()
        wait_for("both nodes online in pacemaker", self.both_online, 120, 1)
        self.configure_cib()

    def destroy(self) -> None:
        for node in self.nodes:
            podman("rm", "-f", "-t", "0", node.container, check=False)
        podman("network", "rm", "-f", self.network, check=False)

    def corosync_conf(self) -> str:
        nodes = "".join("    node {\n        ring0_addr: %s\n        name: %s\n        nodeid: %d\n    }\n"
                        % (n.ip, n.name, i) for i, n in enumerate(self.nodes, start=1))
        return (
            "totem {\n    version: 2\n    cluster_name: %s\n    transport: knet\n"
            "    crypto_cipher: aes256\n    crypto_hash: sha256\n    token: %d\n}\n"
            "nodelist {\n%s}\n"
            "quorum {\n    provider: corosync_votequorum\n    two_node: 1\n}\n"
            "logging {\n    to_stderr: yes\n    to_syslog: no\n    to_logfile: no\n    timestamp: on\n}\n"
            % (self.prefix[:15], self.token_ms, nodes))

    def deploy_agent(self, node: Node) -> None:
        """Copy the agent beside a staging name, then swap it in with renames (a running cluster may call it
        at any moment; a missing agent fails a stop, and a failed stop gets the node fenced)."""
        target = "/usr/lib/ocf/resource.d/poststack"
        node.sh("rm -rf /tmp/agent && mkdir /tmp/agent")
        podman("cp", os.path.join(AGENT_DIR, "pgtwin"), "%s:/tmp/agent/pgtwin" % node.container)
        podman("cp", os.path.join(AGENT_DIR, "pgtwin_agent"), "%s:/tmp/agent/pgtwin_agent" % node.container)
        node.sh("set -e; cd /tmp/agent; find . -name __pycache__ -prune -exec rm -rf {{}} +; "
                "chown -R root:root .; chmod 0755 pgtwin; rm -rf {t}/.pgtwin_agent.new; "
                "cp -a pgtwin_agent {t}/.pgtwin_agent.new; cp -a pgtwin {t}/.pgtwin.new; "
                "if [ -d {t}/pgtwin_agent ]; then rm -rf {t}/.pgtwin_agent.old; "
                "mv {t}/pgtwin_agent {t}/.pgtwin_agent.old; fi; mv {t}/.pgtwin_agent.new {t}/pgtwin_agent; "
                "mv -f {t}/.pgtwin.new {t}/pgtwin; rm -rf {t}/.pgtwin_agent.old /tmp/agent".format(t=target))

    def node_list(self) -> str:
        return " ".join("%s=%s" % (n.name, n.ip) for n in self.nodes)

    def setup_postgres(self) -> None:
        """What the pgtwin role will do: initdb on the first node, roles, hba, passfile on both."""
        passfile = ("*:*:*:replicator:%s\n" % self.rep_password).encode()
        for node in self.nodes:
            node.sh("install -d -o postgres -g postgres -m 0700 /var/lib/pgtwin %s" % PGDATA)
            node.write_file(PASSFILE, passfile, "0600", "postgres:postgres")
        first = self.nodes[0]
        first.sh("initdb -D %s -U postgres --auth-local=peer --auth-host=scram-sha-256 >/dev/null" % PGDATA,
                 user="postgres")
        conf = ("listen_addresses = '*'\nmax_wal_senders = 5\nmax_replication_slots = 5\n"
                "wal_keep_size = '256MB'\njit = off\nfsync = on\nshared_buffers = '64MB'\n"
                "wal_receiver_status_interval = '1s'\nwal_sender_timeout = '5s'\nwal_receiver_timeout = '5s'\n")
        hba = ("host replication replicator %s.0/24 scram-sha-256\n"
               "host postgres replicator %s.0/24 scram-sha-256\n"
               "host all %s %s.0/24 scram-sha-256\n" % (self.subnet, self.subnet, APP_USER, self.subnet))
        first.sh("cat >> %s/postgresql.conf" % PGDATA, stdin=conf.encode(), user="postgres")
        first.sh("cat >> %s/pg_hba.conf" % PGDATA, stdin=hba.encode(), user="postgres")
        first.sh("pg_ctl -D %s -o '-k /tmp -c listen_addresses=' -w start >/dev/null" % PGDATA, user="postgres")
        sql = (
            "SET password_encryption = 'scram-sha-256';\n"
            "CREATE ROLE replicator LOGIN REPLICATION PASSWORD '%s';\n"
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO replicator;\n"
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO replicator;\n"
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO replicator;\n"
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO replicator;\n"
            "CREATE ROLE %s LOGIN PASSWORD '%s';\n"
            "CREATE TABLE ledger (n bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());\n"
            "GRANT SELECT, INSERT ON ledger TO %s;\n"
            % (self.rep_password, APP_USER, self.app_password, APP_USER))
        first.sh("psql -X -q -v ON_ERROR_STOP=1 -h /tmp -d postgres", stdin=sql.encode(), user="postgres")
        first.sh("pg_ctl -D %s -m fast -w stop >/dev/null" % PGDATA, user="postgres")

    def both_online(self) -> bool:
        status = self.crm_status()
        online = [n.get("name") for n in status.iter("node") if n.get("online") == "true"]
        return sorted(online) == ["node1", "node2"] and status.find(".//current_dc[@present='true']") is not None

    def live_node(self) -> Node:
        for node in self.nodes:
            proc = podman("inspect", "-f", "{{.State.Running}}", node.container, check=False)
            if proc.stdout.strip() == b"true":
                return node
        raise RuntimeError("no node container is running")

    def configure_cib(self) -> None:
        node = self.live_node()
        props = {"stonith-enabled": "true", "stonith-timeout": "20s", "cluster-recheck-interval": "30s"}
        for name, value in props.items():
            node.sh("crm_attribute --type crm_config --name %s --update %s" % (name, value))
        fence = ('<primitive id="fence-dummy" class="stonith" type="fence_dummy">'
                 '<instance_attributes id="fence-dummy-ia">'
                 '<nvpair id="fence-dummy-hosts" name="pcmk_host_list" value="node1 node2"/>'
                 '<nvpair id="fence-dummy-status" name="status_file" value="/run/fence_dummy.status"/>'
                 '</instance_attributes>'
                 '<operations><op id="fence-dummy-monitor" name="monitor" interval="60s"/></operations>'
                 '</primitive>')
        node.sh("cibadmin --create -o resources -X '%s'" % fence)
        node.sh("cibadmin --create -o resources --xml-pipe", stdin=self.resource_xml().encode())

    def resource_xml(self) -> str:
        attrs = {"pgdata": PGDATA, "node_list": self.node_list(), "rep_mode": self.rep_mode,
                 "sync_strict": "true" if self.sync_strict else "false", "rep_passfile": PASSFILE,
                 "agent_log": AGENT_LOG, "socket_dir": "/run/postgresql"}
        ia = "".join('<nvpair id="pgtwin-ia-%s" name="%s" value="%s"/>' % (k, k, v) for k, v in attrs.items())
        ops = [("start", "0", "120s", None), ("stop", "0", "60s", None), ("promote", "0", "60s", None),
               ("demote", "0", "60s", None), ("notify", "0", "20s", None),
               ("monitor", "2s", "15s", "Promoted"), ("monitor", "3s", "15s", "Unpromoted")]
        op_xml = "".join('<op id="pgtwin-%s-%s" name="%s" interval="%s" timeout="%s"%s/>' % (
            name, interval, name, interval, timeout, ' role="%s"' % role if role else "")
            for name, interval, timeout, role in ops)
        meta = {"promotable": "true", "promoted-max": "1", "promoted-node-max": "1", "clone-max": "2",
                "clone-node-max": "1", "notify": "true"}
        meta_xml = "".join('<nvpair id="pgtwin-clone-%s" name="%s" value="%s"/>' % (k, k, v)
                           for k, v in meta.items())
        return ('<clone id="%s"><meta_attributes id="pgtwin-clone-meta">%s</meta_attributes>'
                '<primitive id="%s" class="ocf" provider="poststack" type="pgtwin">'
                '<instance_attributes id="pgtwin-ia">%s</instance_attributes>'
                '<meta_attributes id="pgtwin-meta"><nvpair id="pgtwin-meta-mt" name="migration-threshold" '
                'value="1"/><nvpair id="pgtwin-meta-ft" name="failure-timeout" value="60s"/></meta_attributes>'
                '<operations>%s</operations></primitive></clone>'
                % (CLONE, meta_xml, RESOURCE, ia, op_xml))

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
        return "host=%s port=5432 dbname=postgres user=%s password=%s connect_timeout=2" % (
            node.ip, user, self.app_password)

    def pg_role(self, node: Node) -> Optional[str]:
        try:
            with psycopg.connect(self.dsn(node), autocommit=True) as conn:
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


class Writer(threading.Thread):
    """Commits numbered rows as fast as it can through libpq's multi-host read-write routing and records
    every acknowledged commit (the commit returned without error)."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.acked: List[Tuple[int, float, str]] = []  # (n, when, server address)
        self.errors = 0
        self.next_n = 1
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def dsn(self) -> str:
        hosts = ",".join(n.ip for n in self.cluster.nodes)
        return ("host=%s port=5432 dbname=postgres user=%s password=%s connect_timeout=1 "
                "target_session_attrs=read-write" % (hosts, APP_USER, self.cluster.app_password))

    def run(self) -> None:
        conn = None
        host = ""
        while not self.stop_event.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn(), autocommit=True)
                    conn.execute("SET statement_timeout = '5s'")
                    host = conn.info.host
                    if self.next_n == 1:  # continue after the rows of earlier writers on this cluster
                        self.next_n = conn.execute("SELECT COALESCE(max(n), 0) + 1 FROM ledger").fetchone()[0]
                n = self.next_n
                self.next_n += 1
                conn.execute("INSERT INTO ledger (n) VALUES (%s)", (n,))
                with self.lock:
                    self.acked.append((n, time.monotonic(), host))
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    try:
                        conn.close()
                    except psycopg.Error:
                        pass
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    def first_ack_after(self, moment: float, node: Optional[Node] = None) -> Optional[float]:
        """When the first commit after ``moment`` (on ``node``, if given) was acknowledged."""
        with self.lock:
            for _n, at, host in self.acked:
                if at > moment and (node is None or host == node.ip):
                    return at
        return None

    def stop(self) -> None:
        self.stop_event.set()
        self.join(15)

    def acked_numbers(self) -> List[int]:
        with self.lock:
            return [entry[0] for entry in self.acked]


class Sampler(threading.Thread):
    """Asks both nodes every ``interval`` seconds whether they are primary; counts rounds in which both
    are."""

    def __init__(self, cluster: Cluster, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.interval = interval
        self.rounds = 0
        self.double_primary: List[float] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            roles = [self.cluster.pg_role(n) for n in self.cluster.nodes]
            self.rounds += 1
            if roles.count("primary") > 1:
                self.double_primary.append(time.monotonic())
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(15)


def missing_rows(cluster: Cluster, primary: Node, acked: List[int]) -> List[int]:
    with psycopg.connect(cluster.dsn(primary), autocommit=True) as conn:
        present = {row[0] for row in conn.execute("SELECT n FROM ledger")}
    return sorted(set(acked) - present)
