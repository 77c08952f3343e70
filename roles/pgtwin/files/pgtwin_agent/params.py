"""The agent's parameters: one table feeds the meta-data, the defaults and the validation."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Tuple

from .ocf import OCF_ERR_CONFIGURED, AgentError


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str  # string | integer | boolean
    default: str
    shortdesc: str
    longdesc: str
    required: bool = False
    unique: bool = False


SPECS: Tuple[ParamSpec, ...] = (
    ParamSpec("pgdata", "string", "", "Data directory",
              "PostgreSQL data directory (PGDATA) on this node. Created by pg_basebackup when it is empty. "
              "{node} stands for this node's name (e.g. /var/lib/pgtwin/@postgres-{node}/data).",
              required=True, unique=True),
    ParamSpec("bindir", "string", "/usr/lib/postgresql/15/bin", "PostgreSQL binaries",
              "Directory holding postgres, pg_ctl, pg_controldata, psql, pg_basebackup and pg_rewind."),
    ParamSpec("port", "integer", "5432", "Port", "TCP port of PostgreSQL, the same on both nodes."),
    ParamSpec("socket_dir", "string", "/run/postgresql", "Unix socket directory",
              "Directory of the Unix socket the agent uses for local queries (peer authentication)."),
    ParamSpec("user", "string", "postgres", "Operating system user",
              "Operating system user that owns the data directory and runs the server. In container mode "
              "also a numeric UID:GID, the image's postgres user (999:999 in poststack's images), for which "
              "the node needs no account."),
    ParamSpec("superuser", "string", "postgres", "Local database superuser",
              "Database role the agent connects as over the Unix socket (peer or trust authentication)."),
    ParamSpec("rep_user", "string", "replicator", "Replication user",
              "Database role used for streaming replication, pg_basebackup, pg_rewind and peer queries. It "
              "needs REPLICATION and EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file (pg_rewind)."),
    ParamSpec("rep_passfile", "string", "/var/lib/pgtwin/pgpass", "Replication passfile",
              "libpq password file (mode 0600, owned by the operating system user) holding the replication "
              "password. The password never appears in a command line, an environment variable or a log."),
    ParamSpec("node_list", "string", "", "Cluster nodes",
              "The two Pacemaker node names, separated by spaces. Each may carry the address PostgreSQL "
              "listens on, as name=address; without it the node name must resolve.", required=True),
    ParamSpec("rep_mode", "string", "sync", "Replication mode",
              "sync: the primary names the standby in synchronous_standby_names while it streams, so that "
              "a promotion loses no acknowledged commit. async: asynchronous streaming."),
    ParamSpec("sync_strict", "boolean", "false", "Never fall back to asynchronous",
              "With rep_mode=sync: true keeps synchronous_standby_names set even when the standby is gone, "
              "so writes wait instead of being acknowledged without a copy (RPO 0). false lets the primary "
              "go on alone after it has recorded that the standby is no longer promotable."),
    ParamSpec("use_slots", "boolean", "true", "Use replication slots",
              "Create one physical replication slot per node (slot_prefix + node name) before base backups "
              "and on promotion, so that the primary keeps the WAL its standby still needs."),
    ParamSpec("slot_prefix", "string", "pgtwin_", "Replication slot prefix",
              "Prefix of the per-node physical replication slot names."),
    ParamSpec("max_promotion_lag", "integer", "0", "Maximum promotion lag (bytes)",
              "With rep_mode=async: a standby further behind than this many bytes of WAL (as last measured by "
              "the primary) is not promotable. 0 means no limit. Ignored with rep_mode=sync, where only a "
              "standby recorded as in sync is promotable."),
    ParamSpec("rewind", "boolean", "true", "Use pg_rewind",
              "Rebuild a diverged former primary with pg_rewind (needs wal_log_hints, which the agent "
              "enforces, or data checksums) before falling back to a base backup."),
    ParamSpec("basebackup", "boolean", "true", "Allow base backups",
              "Allow the agent to (re)create this node's data directory with pg_basebackup from the peer "
              "when it is empty or when pg_rewind fails."),
    ParamSpec("state_dir", "string", "/var/lib/pgtwin", "Agent state directory",
              "Directory for the server log and the agent's small local state files."),
    ParamSpec("agent_log", "string", "", "Agent log file",
              "Also append the agent's log lines to this file (they always go to stderr, which Pacemaker "
              "records)."),
    ParamSpec("diverged_after", "integer", "3", "Monitors before a stuck standby fails",
              "A standby that is not streaming from a reachable primary for this many consecutive monitors "
              "reports a failure, so that Pacemaker restarts it and the start rewinds or rebuilds it."),
    ParamSpec("config_dir", "string", "", "Configuration directory",
              "Directory holding this node's postgresql.conf (the server runs with config_file there; the file "
              "names pg_hba.conf with hba_file). Empty: the configuration files of the data directory. In "
              "container mode it is mounted read-only. {node} stands for this node's name."),
    ParamSpec("container_mode", "boolean", "false", "Container mode",
              "Run PostgreSQL in a container of container_image on the host network (seed 004) instead of "
              "from bindir on the node. Default: the environment variable PGTWIN_CONTAINER_MODE, else false."),
    ParamSpec("container_runtime", "string", "auto", "Container runtime",
              "podman, docker, or auto (podman when installed, else docker). Container mode only."),
    ParamSpec("container_image", "string", "localhost/poststack/postgres-debian:15", "Container image",
              "The PostgreSQL image (bindir names its binaries). It must be on the node unless container_pull "
              "is true. Container mode only."),
    ParamSpec("container_name", "string", "", "Container name",
              "Name of the PostgreSQL container; empty for pgtwin-postgres-<node>. Container mode only."),
    ParamSpec("container_pull", "boolean", "false", "Pull a missing image",
              "Let the runtime pull container_image when the node does not have it. false: a missing image "
              "is an installation error (nothing is pulled behind the operator's back)."),
    ParamSpec("container_mounts", "string", "", "More container mounts",
              "More bind mounts, separated by spaces, each source:target[:options], e.g. the WAL archive "
              "/var/lib/pgtwin/@postgres-{node}/archive:/var/lib/pgtwin/@postgres-{node}/archive:Z. The data "
              "directory, config_dir, the passfile's directory and socket_dir are always mounted, at their own "
              "paths. {node} stands for this node's name."),
)

SPEC_BY_NAME: Dict[str, ParamSpec] = {spec.name: spec for spec in SPECS}
_TRUE = ("1", "true", "yes", "on", "y")
_FALSE = ("0", "false", "no", "off", "n", "")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9{][A-Za-z0-9_.{}-]*$")
_MOUNT_OPTIONS = frozenset(("ro", "rw", "z", "Z"))


@dataclass(frozen=True)
class Node:
    name: str
    address: str


@dataclass(frozen=True)
class Params:
    pgdata: str
    bindir: str
    port: int
    socket_dir: str
    user: str
    superuser: str
    rep_user: str
    rep_passfile: str
    nodes: Tuple[Node, ...]
    rep_mode: str
    sync_strict: bool
    use_slots: bool
    slot_prefix: str
    max_promotion_lag: int
    rewind: bool
    basebackup: bool
    state_dir: str
    agent_log: str
    diverged_after: int
    container_mode: bool
    config_dir: str = ""
    container_runtime: str = "auto"
    container_image: str = ""
    container_name: str = ""
    container_pull: bool = False
    container_mounts: Tuple[Tuple[str, str, str], ...] = ()
    extra: Dict[str, str] = field(default_factory=dict)

    def for_node(self, node: str) -> "Params":
        """The parameters with {node} replaced by this node's name (paths and the container name)."""
        def sub(value: str) -> str:
            return value.replace("{node}", node)
        return replace(
            self, pgdata=sub(self.pgdata), config_dir=sub(self.config_dir),
            container_name=sub(self.container_name) or "pgtwin-postgres-" + node,
            container_mounts=tuple((sub(a), sub(b), c) for a, b, c in self.container_mounts))

    def peer_of(self, local: str) -> Node:
        others = [node for node in self.nodes if node.name != local]
        if len(others) != 1 or len(others) == len(self.nodes):
            raise AgentError(
                "node_list %r must name this node (%s) and exactly one other node"
                % (" ".join(n.name for n in self.nodes), local), OCF_ERR_CONFIGURED)
        return others[0]

    def slot_name(self, node: str) -> str:
        return re.sub(r"[^a-z0-9_]", "_", (self.slot_prefix + node).lower())


def _boolean(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise AgentError("parameter %s=%r is not a boolean: use true or false" % (name, raw), OCF_ERR_CONFIGURED)


def _integer(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise AgentError("parameter %s=%r is not an integer" % (name, raw), OCF_ERR_CONFIGURED) from None
    if value < minimum:
        raise AgentError("parameter %s=%d must be >= %d" % (name, value, minimum), OCF_ERR_CONFIGURED)
    return value


def parse_nodes(raw: str) -> Tuple[Node, ...]:
    nodes: List[Node] = []
    for item in raw.split():
        name, _sep, address = item.partition("=")
        if not _NODE_NAME.match(name):
            raise AgentError("node_list entry %r: %r is not a valid node name" % (item, name), OCF_ERR_CONFIGURED)
        if "=" in item and not address:
            raise AgentError("node_list entry %r has an empty address" % item, OCF_ERR_CONFIGURED)
        nodes.append(Node(name, address or name))
    if len(nodes) != 2 or nodes[0].name == nodes[1].name:
        raise AgentError("node_list=%r must name exactly two different nodes (pgtwin is a two-node agent)"
                         % raw, OCF_ERR_CONFIGURED)
    return tuple(nodes)


def parse_mounts(raw: str) -> Tuple[Tuple[str, str, str], ...]:
    mounts = []
    for item in raw.split():
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(os.path.isabs(p) for p in parts[:2]):
            raise AgentError("container_mounts entry %r: use /source:/target or /source:/target:options" % item,
                             OCF_ERR_CONFIGURED)
        options = parts[2] if len(parts) == 3 else "Z"
        if not set(options.split(",")) <= _MOUNT_OPTIONS:
            raise AgentError("container_mounts entry %r: options may be ro, rw, z and Z" % item,
                             OCF_ERR_CONFIGURED)
        mounts.append((parts[0], parts[1], options))
    return tuple(mounts)


def raw_values(environ: Mapping[str, str]) -> Dict[str, str]:
    """OCF_RESKEY_<name> values with the table's defaults filled in."""
    values = {}
    for spec in SPECS:
        default = spec.default
        if spec.name == "container_mode":
            default = environ.get("PGTWIN_CONTAINER_MODE", default)
        values[spec.name] = environ.get("OCF_RESKEY_" + spec.name, default)
    return values


def load(environ: Optional[Mapping[str, str]] = None) -> Params:
    """Parse and check the parameters; raises AgentError(OCF_ERR_CONFIGURED) naming the bad one."""
    env = os.environ if environ is None else environ
    raw = raw_values(env)
    for spec in SPECS:
        if spec.required and not raw[spec.name].strip():
            raise AgentError("parameter %s is required: %s" % (spec.name, spec.longdesc), OCF_ERR_CONFIGURED)
    for name in ("pgdata", "bindir", "socket_dir", "rep_passfile", "state_dir"):
        if not os.path.isabs(raw[name]):
            raise AgentError("parameter %s=%r must be an absolute path" % (name, raw[name]), OCF_ERR_CONFIGURED)
    rep_mode = raw["rep_mode"].strip().lower()
    if rep_mode not in ("sync", "async"):
        raise AgentError("parameter rep_mode=%r must be sync or async" % raw["rep_mode"], OCF_ERR_CONFIGURED)
    container_mode = _boolean("container_mode", raw["container_mode"])
    runtime = raw["container_runtime"].strip() or "auto"
    if runtime not in ("auto", "podman", "docker") and not os.path.isabs(runtime):
        raise AgentError("parameter container_runtime=%r must be podman, docker, auto or an absolute path"
                         % runtime, OCF_ERR_CONFIGURED)
    if raw["container_name"] and not _CONTAINER_NAME.match(raw["container_name"]):
        raise AgentError("parameter container_name=%r: use letters, digits, '_', '.', '-' and {node}"
                         % raw["container_name"], OCF_ERR_CONFIGURED)
    if container_mode and not raw["container_image"].strip():
        raise AgentError("container_mode=true needs container_image", OCF_ERR_CONFIGURED)
    if raw["config_dir"] and not os.path.isabs(raw["config_dir"]):
        raise AgentError("parameter config_dir=%r must be an absolute path" % raw["config_dir"],
                         OCF_ERR_CONFIGURED)
    if not re.match(r"^[a-z0-9_]*$", raw["slot_prefix"]):
        raise AgentError("parameter slot_prefix=%r may only hold lower-case letters, digits and _"
                         % raw["slot_prefix"], OCF_ERR_CONFIGURED)
    return Params(
        pgdata=raw["pgdata"].rstrip("/") or "/",
        bindir=raw["bindir"],
        port=_integer("port", raw["port"], 1),
        socket_dir=raw["socket_dir"],
        user=raw["user"],
        superuser=raw["superuser"],
        rep_user=raw["rep_user"],
        rep_passfile=raw["rep_passfile"],
        nodes=parse_nodes(raw["node_list"]),
        rep_mode=rep_mode,
        sync_strict=_boolean("sync_strict", raw["sync_strict"]),
        use_slots=_boolean("use_slots", raw["use_slots"]),
        slot_prefix=raw["slot_prefix"],
        max_promotion_lag=_integer("max_promotion_lag", raw["max_promotion_lag"]),
        rewind=_boolean("rewind", raw["rewind"]),
        basebackup=_boolean("basebackup", raw["basebackup"]),
        state_dir=raw["state_dir"],
        agent_log=raw["agent_log"],
        diverged_after=_integer("diverged_after", raw["diverged_after"], 1),
        container_mode=container_mode,
        config_dir=raw["config_dir"].rstrip("/"),
        container_runtime=runtime,
        container_image=raw["container_image"].strip(),
        container_name=raw["container_name"].strip(),
        container_pull=_boolean("container_pull", raw["container_pull"]),
        container_mounts=parse_mounts(raw["container_mounts"]),
    )
