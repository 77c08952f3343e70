"""PostgreSQL operations on this node and read-only queries to the peer."""
from __future__ import annotations

import os
import shutil
import time
from typing import Dict, List, Optional, Union

from .ocf import AgentError, Logger
from .params import Node, Params
from .runner import ContainerRunner, ContainerSpec, HostRunner, Mount, ProcessState, Result, find_runtime

Runner = Union[HostRunner, ContainerRunner]

# Settings the agent enforces on the server command line (they win over every configuration file):
# no automatic restart after a backend crash (Pacemaker decides), readable standbys, and hint bits in WAL so
# that pg_rewind works without data checksums.
ENFORCED = (("restart_after_crash", "off"), ("hot_standby", "on"), ("wal_log_hints", "on"),
            ("recovery_target_timeline", "latest"))
PROGRAMS = ("postgres", "pg_ctl", "pg_controldata", "psql", "pg_basebackup", "pg_rewind")

# The SQL the agent sends, in one place. The newest timeline a server knows: its checkpoint's, or on a standby
# the one it receives (ahead of the checkpoint until the next restartpoint).
TIMELINE_SQL = ("GREATEST((SELECT timeline_id FROM pg_control_checkpoint()), "
                "(SELECT received_tli FROM pg_stat_wal_receiver))")
PRIMARY_VIEW_SQL = (
    "SELECT pg_walfile_name(pg_current_wal_lsn()), pg_current_wal_flush_lsn(), "
    "current_setting('synchronous_standby_names'), r.state, r.sync_state, r.flush_lsn "
    "FROM (SELECT 1) AS one LEFT JOIN pg_stat_replication AS r ON r.application_name = %s")
STANDBY_VIEW_SQL = ("SELECT COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), " + TIMELINE_SQL + ", "
                    "EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')")
PEER_VIEW_SQL = ("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN " + TIMELINE_SQL + "::text "
                 "ELSE pg_walfile_name(pg_current_wal_lsn()) END, "
                 "COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), pg_current_wal_lsn())")
PEER_HISTORY_FILES_SQL = "SELECT name FROM pg_ls_dir('pg_wal', true, false) AS name WHERE name LIKE '%.history'"
PEER_TIMELINE_HISTORY_SQL = "SELECT convert_from(pg_read_binary_file('pg_wal/%08X.history'), 'UTF8')"


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'%s'" % value.replace("'", "''")


def parse_controldata(text: str) -> Dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values


def conninfo(parts: Dict[str, str]) -> str:
    """libpq keyword/value string with proper quoting."""
    out = []
    for key, value in parts.items():
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        out.append("%s='%s'" % (key, escaped))
    return " ".join(out)


def make_runner(params: Params, host: HostRunner, log: Logger, operation_timeout: Optional[float] = None) -> Runner:
    """The runner of PostgreSQL's programs: the host itself, or containers of container_image (params for one
    node: see Params.for_node); its runtime calls fail within half of ``operation_timeout``."""
    if not params.container_mode:
        return host
    mounts = [Mount(params.pgdata, params.pgdata, "Z"),
              Mount(os.path.dirname(params.rep_passfile), os.path.dirname(params.rep_passfile), "ro,Z"),
              Mount(params.socket_dir, params.socket_dir, "Z")]
    if params.config_dir:
        mounts.append(Mount(params.config_dir, params.config_dir, "ro,Z"))
    mounts += [Mount(*entry) for entry in params.container_mounts]
    spec = ContainerSpec(runtime=find_runtime(params.container_runtime), image=params.container_image,
                         name=params.container_name, pull=params.container_pull, mounts=tuple(mounts),
                         socket_dir=params.socket_dir)
    return ContainerRunner(host, spec, log, operation_timeout)


class Postgres:
    def __init__(self, params: Params, runner: Runner, log: Logger, node: str, peer: Node) -> None:
        self.p = params
        self.run = runner
        self.log = log
        self.node = node
        self.peer = peer
        self.logfile = os.path.join(params.state_dir, "postgresql.log")

    def bin(self, name: str) -> str:
        return os.path.join(self.p.bindir, name)

    # ---- local state -------------------------------------------------------------------------------
    def has_data(self) -> bool:
        return os.path.isfile(os.path.join(self.p.pgdata, "PG_VERSION"))

    def controldata(self) -> Dict[str, str]:
        result = self.run.run([self.bin("pg_controldata"), "-D", self.p.pgdata], as_user=True, timeout=30)
        if not result.ok:
            raise AgentError("pg_controldata failed: " + result.summary())
        return parse_controldata(result.stdout)

    def process(self) -> ProcessState:
        return self.run.server_state(self.p.pgdata)

    def orphans(self) -> List[int]:
        return self.run.leftovers(self.p.pgdata)

    def check_installed(self) -> None:
        self.run.check_installed([self.bin(name) for name in PROGRAMS])

    # ---- queries -----------------------------------------------------------------------------------
    def query(self, sql: str, timeout: float = 10) -> List[List[str]]:
        result = self.run.run(
            [self.bin("psql"), "-X", "-A", "-t", "-q", "-F", "|", "-v", "ON_ERROR_STOP=1", "-h",
             self.p.socket_dir, "-p", str(self.p.port), "-U", self.p.superuser, "-d", "postgres", "-c", sql],
            as_user=True, timeout=timeout, env={"PGCONNECT_TIMEOUT": "3"})
        if not result.ok:
            raise AgentError("local query failed: " + result.summary())
        return [line.split("|") for line in result.stdout.splitlines() if line]

    def try_query(self, sql: str, timeout: float = 10) -> Optional[List[List[str]]]:
        try:
            return self.query(sql, timeout)
        except AgentError:
            return None

    # ---- the agent's queries -------------------------------------------------------------------------
    def in_recovery(self, timeout: float = 10) -> Optional[bool]:
        """Whether the local server is a standby; None when it does not answer."""
        rows = self.try_query("SELECT pg_is_in_recovery()", timeout=timeout)
        return None if rows is None else rows[0][0] == "t"

    def timeline(self) -> int:
        return int(self.query("SELECT " + TIMELINE_SQL)[0][0])

    def primary_view(self, standby: str) -> List[str]:
        """Own WAL file and flush position, synchronous_standby_names, and the standby's replication state
        (state, sync_state, flush_lsn; empty when it is not connected)."""
        return self.query(PRIMARY_VIEW_SQL % literal(standby))[0]

    def standby_view(self) -> List[List[str]]:
        """Received (or replayed) position, timeline, and whether the WAL receiver streams."""
        return self.query(STANDBY_VIEW_SQL)

    def ssn_is(self, value: str) -> bool:
        return self.query("SELECT current_setting('synchronous_standby_names') = " + literal(value))[0][0] == "t"

    def set_ssn(self, value: str) -> None:
        self.query("ALTER SYSTEM SET synchronous_standby_names = " + literal(value))
        self.query("SELECT pg_reload_conf()")

    def create_slot(self, slot: str) -> bool:
        """Create the physical replication slot unless it exists; True when it was created."""
        if self.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = " + literal(slot)):
            return False
        self.query("SELECT pg_create_physical_replication_slot(%s)" % literal(slot))
        return True

    def peer_view(self) -> Optional[List[List[str]]]:
        """The peer: in recovery, its timeline (a standby) or WAL file name (a primary), its WAL position."""
        return self.peer_query(PEER_VIEW_SQL)

    def peer_history_files(self) -> List[str]:
        return [row[0] for row in self.peer_query(PEER_HISTORY_FILES_SQL) or []]

    def peer_timeline_history(self, timeline: int) -> List[str]:
        """The lines of the peer's history file of ``timeline`` (read like pg_rewind does)."""
        return ["|".join(row) for row in self.peer_query(PEER_TIMELINE_HISTORY_SQL % timeline) or []]

    def peer_conninfo(self, extra: Optional[Dict[str, str]] = None) -> str:
        parts = {"host": self.peer.address, "port": str(self.p.port), "user": self.p.rep_user,
                 "passfile": self.p.rep_passfile, "connect_timeout": "2", "application_name": self.node}
        parts.update(extra or {})
        return conninfo(parts)

    def peer_query(self, sql: str) -> Optional[List[List[str]]]:
        result = self.run.run(
            [self.bin("psql"), "-X", "-A", "-t", "-q", "-F", "|", "-w", "-v", "ON_ERROR_STOP=1",
             "-d", self.peer_conninfo({"dbname": "postgres"}), "-c", sql], as_user=True, timeout=8)
        if not result.ok:
            self.log.debug("peer query failed: " + result.summary())
            return None
        return [line.split("|") for line in result.stdout.splitlines() if line]

    # ---- server lifecycle --------------------------------------------------------------------------
    def server_options(self) -> List[str]:
        options: List[str] = ["-p", str(self.p.port), "-k", self.p.socket_dir] + self.config_options()
        settings = list(ENFORCED)
        keepalives = {"keepalives_idle": "2", "keepalives_interval": "1", "keepalives_count": "3"}
        settings.append(("primary_conninfo", self.peer_conninfo(keepalives)))
        settings.append(("primary_slot_name", self.p.slot_name(self.node) if self.p.use_slots else ""))
        for key, value in settings:
            options.extend(["-c", "%s=%s" % (key, value)])
        return options

    def config_options(self) -> List[str]:
        if not self.p.config_dir:
            return []
        return ["-c", "config_file=%s" % os.path.join(self.p.config_dir, "postgresql.conf")]

    def start_standby(self, deadline: float) -> None:
        signal_file = os.path.join(self.p.pgdata, "standby.signal")
        if not os.path.exists(signal_file):
            with open(signal_file, "w", encoding="utf-8"):
                pass
            _chown_like(signal_file, self.p.pgdata)
        os.makedirs(self.p.state_dir, exist_ok=True)
        logfile = self.logfile
        alive = self.run.start_server([self.bin("postgres"), "-D", self.p.pgdata] + self.server_options(), logfile)
        self.log.info("started postgres as a standby of %s" % self.peer.name)
        while time.monotonic() < deadline:
            if self.try_query("SELECT 1", timeout=5) is not None:
                return
            if not alive() and not self.process().running:
                raise AgentError("postgres exited during start; see " + logfile)
            time.sleep(0.2)
        raise AgentError("postgres did not accept connections before the start timeout; see " + logfile)

    def stop(self, timeout: float) -> None:
        self.run.stop_server(self.bin("pg_ctl"), self.p.pgdata, timeout, self.log)
        state = self.process()
        if state.running or self.orphans():
            raise AgentError("postgres is still running after stop")
        if state.stale_pidfile:
            # Nothing runs any more: a stale pid file would make the next monitor report a crash again.
            os.unlink(os.path.join(self.p.pgdata, "postmaster.pid"))

    def promote(self, timeout: int) -> None:
        """Ask for the promotion, then wait for its end in short queries. pg_promote(true) waits inside one
        statement, whose snapshot holds back the replay of cleanup records that a lagging standby still has to
        apply before it ends recovery: recovery then waits max_standby_streaming_delay (30 s) and cancels that very
        statement (a make test run of session 15: the promotion of a standby with paused replay took 30 s and the
        agent, its query cancelled, took it for failed)."""
        rows = self.query("SELECT pg_promote(false)", timeout=10)
        if not rows or rows[0][0] != "t":
            raise AgentError("pg_promote did not signal the promotion")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.in_recovery(timeout=5) is False:
                return
            time.sleep(0.2)
        raise AgentError("the promotion did not complete within %d s" % timeout)

    # ---- rebuilding ----------------------------------------------------------------------------------
    def wipe(self) -> None:
        """Empty the data directory (kept itself: it may be a mount point or a Btrfs subvolume)."""
        if not os.path.isdir(self.p.pgdata):
            os.makedirs(self.p.pgdata, mode=0o700)
            shutil.chown(self.p.pgdata, self.p.user, self.p.user)
            return
        for name in os.listdir(self.p.pgdata):
            path = os.path.join(self.p.pgdata, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    def basebackup(self, timeout: float) -> Result:
        self.wipe()
        argv: List[str] = [self.bin("pg_basebackup"), "-D", self.p.pgdata, "-d", self.peer_conninfo(),
                           "-X", "stream", "-c", "fast", "-w"]
        if self.p.use_slots:
            slot = self.p.slot_name(self.node)
            rows = self.peer_query("SELECT 1 FROM pg_replication_slots WHERE slot_name = '%s'" % slot)
            argv += ["-S", slot] + ([] if rows else ["-C"])
        result = self.run.run(argv, as_user=True, timeout=timeout)
        if not result.ok:
            raise AgentError("pg_basebackup from %s failed: %s" % (self.peer.name, result.summary()))
        return result

    def crash_recovery(self, timeout: float) -> None:
        """Finish crash recovery in single-user mode with the enforced settings (pg_rewind needs a cleanly
        shut down target, and its own single-user run would record wal_log_hints from the files only)."""
        signal_file = os.path.join(self.p.pgdata, "standby.signal")
        if os.path.exists(signal_file):
            os.unlink(signal_file)  # single-user mode refuses standby mode; start writes it again
        argv = [self.bin("postgres"), "--single", "-D", self.p.pgdata] + self.config_options()
        for key, value in ENFORCED:
            argv += ["-c", "%s=%s" % (key, value)]
        result = self.run.run(argv + ["template1"], as_user=True, timeout=timeout)
        if not result.ok:
            raise AgentError("crash recovery in single-user mode failed: " + result.summary())

    def rewind(self, timeout: float) -> Result:
        return self.run.run([self.bin("pg_rewind"), "-D", self.p.pgdata, "--no-ensure-shutdown",
                             "--source-server", self.peer_conninfo({"dbname": "postgres"})],
                            as_user=True, timeout=timeout)


def _chown_like(path: str, reference: str) -> None:
    info = os.stat(reference)
    os.chown(path, info.st_uid, info.st_gid)
