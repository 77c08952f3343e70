"""The OCF actions: observe, ask the rules, act."""
from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import replace
from typing import Optional

from . import ocf, rules
from .cluster import Cluster
from .ocf import AgentError, Logger
from .params import Params
from .postgres import Postgres, Runner
from .rules import Instance, PeerState, Record
from .runner import HostRunner, identity

PEER_WAIT = 20.0  # seconds an empty node waits for its peer in start


class Agent:
    def __init__(self, params: Params, log: Logger, host: HostRunner, runner: Runner, node: str) -> None:
        self.p = params
        self.log = log
        self.node = node
        self.peer = params.peer_of(node)
        self.pg = Postgres(params, runner, log, node, self.peer)
        self.cluster = Cluster(host, log, os.environ.get("OCF_RESOURCE_INSTANCE", "pgtwin"))
        self.pg.logfile = os.path.join(params.state_dir, "%s-postgresql.log" % self.cluster.resource)
        self.timeout = ocf.operation_timeout()
        self.started = time.monotonic()

    def deadline(self, margin: float = 5.0) -> float:
        return self.started + max(5.0, self.timeout - margin)

    # ---- observation -------------------------------------------------------------------------------
    def instance(self) -> Instance:
        state = self.pg.process()
        if not state.running:
            if state.stale_pidfile or self.pg.orphans():
                return Instance.CRASHED_PRIMARY if self._was_primary() else Instance.CRASHED_STANDBY
            return Instance.STOPPED
        in_recovery = self.pg.in_recovery(timeout=8)
        if in_recovery is None:
            return Instance.UNRESPONSIVE
        return Instance.STANDBY if in_recovery else Instance.PRIMARY

    def _was_primary(self) -> bool:
        try:
            return self.pg.controldata().get("Database cluster state") == "in production"
        except AgentError:
            return False

    def peer_state(self) -> PeerState:
        rows = self.pg.peer_view()
        if not rows:
            return PeerState(False)
        in_recovery, tl_text = rows[0][0], rows[0][1]
        if in_recovery != "t":
            return PeerState(True, False, rules.timeline_of_walfile(tl_text))
        # A standby's newest history file is its timeline; reading pg_wal needs the pg_ls_dir grant that
        # pg_rewind needs too. Without it, fall back to the received or checkpoint timeline.
        return PeerState(True, True, max(int(tl_text), rules.newest_history(self.pg.peer_history_files())))

    def peer_history(self, peer: PeerState) -> PeerState:
        """The running primary's timeline history (read like pg_rewind does, with the pg_read_binary_file
        grant), for the start's check whether this node's data lies on it."""
        if not peer.reachable or peer.in_recovery or peer.timeline < 2:
            return peer
        return replace(peer, history=rules.parse_history(self.pg.peer_timeline_history(peer.timeline)))

    def local_timeline(self, known: int) -> int:
        try:
            names = os.listdir(os.path.join(self.p.pgdata, "pg_wal"))
        except OSError:
            names = []
        return max(known, rules.newest_history(names))

    def peer_lsn(self) -> Optional[int]:
        rows = self.pg.peer_view()
        return rules.parse_lsn(rows[0][2]) if rows and rows[0][2] else None

    def record(self, node: str) -> Optional[Record]:
        return Record.parse(self.cluster.get_record(node))

    # ---- local state file (counter of stuck standby monitors) --------------------------------------------
    def _state_path(self) -> str:
        return os.path.join(self.p.state_dir, "%s.state.json" % self.cluster.resource)

    def _load_state(self) -> dict:
        try:
            with open(self._state_path(), encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict) -> None:
        os.makedirs(self.p.state_dir, exist_ok=True)
        tmp = self._state_path() + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        os.replace(tmp, self._state_path())

    # ---- actions -----------------------------------------------------------------------------------
    def validate(self) -> int:
        self.pg.check_installed()
        uid = identity(self.p.user)[0]
        try:
            info = os.stat(self.p.rep_passfile)
        except OSError:
            raise AgentError("rep_passfile=%s does not exist: create it (mode 0600, owner %s) with the "
                             "replication password" % (self.p.rep_passfile, self.p.user),
                             ocf.OCF_ERR_CONFIGURED) from None
        if info.st_uid != uid or stat.S_IMODE(info.st_mode) & 0o077:
            raise AgentError("rep_passfile=%s must be owned by %s with mode 0600"
                             % (self.p.rep_passfile, self.p.user), ocf.OCF_ERR_PERM)
        if self.p.container_mode and not os.path.isdir(self.p.pgdata):
            # The layout (a Btrfs subvolume per node) is prepared by the roles: a missing directory means the
            # filesystem is not mounted, and a base backup into the node's root filesystem would hide that.
            raise AgentError("pgdata=%s does not exist: is its filesystem mounted?" % self.p.pgdata,
                             ocf.OCF_ERR_INSTALLED)
        if os.path.isdir(self.p.pgdata) and os.stat(self.p.pgdata).st_uid != uid:
            raise AgentError("pgdata=%s is not owned by %s" % (self.p.pgdata, self.p.user), ocf.OCF_ERR_PERM)
        return ocf.OCF_SUCCESS

    def monitor(self) -> int:
        instance = self.instance()
        probe = os.environ.get("OCF_RESKEY_CRM_meta_interval", "0") in ("0", "")
        rc = rules.monitor_rc(instance, self._was_primary() if instance is Instance.UNRESPONSIVE else False)
        if probe and instance in (Instance.CRASHED_PRIMARY, Instance.CRASHED_STANDBY) and not self.pg.orphans():
            # A probe after a node restart finds the previous boot's pid file: nothing runs, so report
            # "not running" and let the start decide (rewind, base backup) instead of recording a failure.
            self.log.info("probe: stale pid file of a %s and no server process" % instance.value)
            return ocf.OCF_NOT_RUNNING
        if rc in (ocf.OCF_FAILED_PROMOTED, ocf.OCF_ERR_GENERIC):
            self.log.error("monitor: %s" % instance.value)
            self.cluster.set_score(self.node, rules.NOT_PROMOTABLE_SCORE)
            return rc
        if probe:
            return rc
        # PostgreSQL answers in the role Pacemaker expects: a failing housekeeping step (the CIB briefly
        # unavailable, the peer not answering) is logged, not turned into a failover. It is safe to retry: a
        # standby that cannot be recorded STALE keeps the primary's writes waiting.
        try:
            if instance is Instance.PRIMARY:
                self.primary_housekeeping()
            elif instance is Instance.STANDBY:
                return self.standby_housekeeping()
        except (AgentError, ValueError) as exc:  # ValueError: a value PostgreSQL gave that did not parse
            self.log.error("monitor housekeeping of the %s: %s" % (instance.value, exc))
        return rc

    def primary_housekeeping(self) -> None:
        # A second pass when the standby was just named synchronous: it is usually confirmed at once, and
        # recording SYNC now rather than one monitor later shortens the window without a promotable standby.
        if self._primary_pass():
            self._primary_pass()
        if self.p.use_slots:
            self.ensure_slot(self.p.slot_name(self.peer.name))
        self.cluster.set_score(self.node, rules.PRIMARY_SCORE)

    def _primary_pass(self) -> bool:
        """One observe-plan-act round; True when it named the standby in synchronous_standby_names."""
        walfile, flush, ssn, state, sync_state, peer_flush = self.pg.primary_view(self.peer.name)
        replica = rules.replica_of(state, sync_state, peer_flush)
        peer_record = self.record(self.peer.name)
        streaming = replica is not None and replica.state == "streaming"
        need_membership = not streaming and self.p.rep_mode == "sync" and not self.p.sync_strict
        view = rules.PrimaryView(
            timeline=rules.timeline_of_walfile(walfile), flush_lsn=rules.parse_lsn(flush), current_ssn=ssn,
            replica=replica, peer_record=peer_record, own_record=self.record(self.node),
            peer_in_partition=need_membership and self.cluster.peer_in_partition(self.peer.name),
            peer_cleanly_down=need_membership and self.cluster.peer_cleanly_down(self.peer.name))
        if rules.waits_for_fencing(view, self.p.rep_mode, self.p.sync_strict):
            self.log.warning("no standby streams and %s is neither in this partition nor known down: commits wait "
                             "until fencing decides (synchronous_standby_names kept)" % self.peer.name)
        named = False
        for step in rules.plan_primary(view, self.peer.name, self.p.rep_mode, self.p.sync_strict,
                                       self.p.max_promotion_lag):
            if step.what == "own_record":
                self.cluster.set_record(self.node, step.value)
            elif step.what == "peer_record":
                self.cluster.set_record(self.peer.name, step.value)
            else:
                self.set_ssn(step.value)
                named = bool(step.value) and replica is not None
        return named

    def set_ssn(self, value: str) -> None:
        if self.pg.ssn_is(value):
            return
        self.pg.set_ssn(value)
        # The reload is asynchronous: wait until a new session sees the value.
        end = time.monotonic() + 5
        while not self.pg.ssn_is(value):
            if time.monotonic() > end:
                raise AgentError("synchronous_standby_names did not change to %r after a reload" % value)
            time.sleep(0.05)
        self.log.info("synchronous_standby_names set to %r" % value)

    def ensure_slot(self, slot: str) -> None:
        if self.pg.create_slot(slot):
            self.log.info("created replication slot %s" % slot)

    def standby_housekeeping(self) -> int:
        own = self.record(self.node)
        peer_record = self.record(self.peer.name)
        peer = self.peer_state()
        rows = self.pg.standby_view()
        own_lsn = rules.parse_lsn(rows[0][0]) if rows[0][0] else 0
        # The score says whether this node's data may be promoted; that the peer still runs as primary is
        # checked by promote itself (a switchover demotes it first).
        decision = rules.promotable(own, peer_record, False, self.local_timeline(int(rows[0][1])),
                                    peer.timeline if peer.reachable else 0)
        peer_lsn = self.peer_lsn() if peer.reachable and peer.in_recovery else None
        score = rules.standby_score(decision, own_lsn, peer_lsn, self.node, self.peer.name)
        self.cluster.set_score(self.node, score)
        self.log.debug("standby: %s, score %d" % (decision.reason, score))
        state = self._load_state()
        count, fail = rules.standby_stuck(rows[0][2] == "t", peer, int(state.get("stuck", 0)),
                                          self.p.diverged_after)
        if count != state.get("stuck", 0):
            state["stuck"] = count
            self._save_state(state)
        if fail:
            self.log.error("standby has not streamed from primary %s for %d monitors (diverged?): failing so "
                           "that a restart rewinds it" % (self.peer.name, count))
            return ocf.OCF_ERR_GENERIC
        return ocf.OCF_SUCCESS

    def start(self) -> int:
        instance = self.instance()
        if instance is Instance.STANDBY:
            return self.standby_housekeeping()
        if instance is Instance.PRIMARY:
            raise AgentError("postgres already runs as a primary outside Pacemaker's control; stop it first")
        if instance in (Instance.CRASHED_PRIMARY, Instance.CRASHED_STANDBY, Instance.UNRESPONSIVE):
            self.pg.stop(10)
        deadline = self.deadline()
        # An empty node waits a little for its peer (both usually start together), but not for the whole
        # start timeout: Pacemaker may run one action at a time (load throttling, batch-limit), and then the
        # peer's start would queue behind this one. Failing lets the peer start; failure-timeout retries.
        wait_until = min(deadline, time.monotonic() + PEER_WAIT)
        while True:
            local = self.local_data()
            peer = self.peer_history(self.peer_state())
            kind, reason = rules.plan_start(local, peer, self.p.rewind, self.p.basebackup)
            if kind is not rules.StartKind.WAIT or time.monotonic() > wait_until:
                break
            time.sleep(1)
        self.log.info("start: %s (%s)" % (kind.value, reason))
        if kind is rules.StartKind.WAIT:
            raise AgentError("start: " + reason)
        if kind is rules.StartKind.REFUSE:
            raise AgentError("start refused: " + reason)
        if kind is rules.StartKind.REWIND:
            if local.cluster_state not in ("shut down", "shut down in recovery"):
                self.pg.crash_recovery(max(10.0, deadline - time.monotonic()))
            result = self.pg.rewind(max(10.0, deadline - time.monotonic()))
            if result.ok:
                self.log.info("pg_rewind: %s" % (result.stdout.strip().splitlines() or ["done"])[-1])
            elif self.p.basebackup:
                self.log.warning("pg_rewind failed (%s); falling back to a base backup" % result.summary())
                kind = rules.StartKind.BASEBACKUP
            else:
                raise AgentError("pg_rewind failed and basebackup=false: " + result.summary())
        if kind is rules.StartKind.BASEBACKUP:
            began = time.monotonic()
            self.pg.basebackup(max(10.0, deadline - time.monotonic()))
            self.log.info("base backup from %s took %.1f s" % (self.peer.name, time.monotonic() - began))
        self._save_state({"stuck": 0})
        self.pg.start_standby(self.deadline(1.0))
        return self.standby_housekeeping()

    def local_data(self) -> rules.LocalData:
        if not self.pg.has_data():
            return rules.LocalData(False)
        data = self.pg.controldata()
        position_tli, position_lsn = rules.control_position(data)
        return rules.LocalData(True, data.get("Database cluster state", ""),
                               self.local_timeline(int(data.get("Latest checkpoint's TimeLineID", "0") or 0)),
                               position_tli, position_lsn)

    def stop(self) -> int:
        self.pg.stop(max(5.0, self.timeout - 10))
        return ocf.OCF_SUCCESS

    def promote(self) -> int:
        instance = self.instance()
        if instance is Instance.PRIMARY:
            self.primary_housekeeping()
            return ocf.OCF_SUCCESS
        if instance is not Instance.STANDBY:
            raise AgentError("cannot promote: postgres is %s" % instance.value)
        own, peer_record = self.record(self.node), self.record(self.peer.name)
        # A peer Pacemaker reports cleanly down (fenced, or shut down) runs nothing: do not spend the
        # connect timeout on its address, which no longer answers after a node failure.
        peer = PeerState(False) if self.cluster.peer_cleanly_down(self.peer.name) else self.peer_state()
        local_tl = self.local_timeline(self.pg.timeline())
        decision = rules.promotable(own, peer_record, peer.reachable and not peer.in_recovery, local_tl,
                                    peer.timeline if peer.reachable else 0)
        if not decision.ok:
            self.cluster.set_score(self.node, rules.NOT_PROMOTABLE_SCORE)
            raise AgentError("promotion refused: " + decision.reason)
        self.log.info("promoting: %s" % decision.reason)
        # Records first: the peer no longer counts as in sync, and this node claims the next timeline before
        # it can acknowledge a single commit.
        self.cluster.set_record(self.peer.name, "STALE")
        # A STALE peer is not promotable: tell Pacemaker now rather than at the peer's next monitor. A planned
        # switchover clears its location constraint as soon as this node is promoted; with the peer's standby
        # score still standing (and this node's primary score not yet through attrd) Pacemaker moved the role
        # straight back to the peer, which then could not be promoted: no primary until failure-timeout.
        self.cluster.set_score(self.peer.name, rules.NOT_PROMOTABLE_SCORE)
        self.cluster.set_record(self.node, str(Record("PRIMARY", local_tl + 1)))
        if self.p.rep_mode == "sync" and self.p.sync_strict:
            self.set_ssn(rules.wanted_ssn(self.peer.name))
        else:
            self.set_ssn("")
        began = time.monotonic()
        self.pg.promote(max(5, int(self.deadline() - time.monotonic())))
        self.log.info("promoted in %.2f s" % (time.monotonic() - began))
        # A checkpoint on the new timeline lets pg_rewind see the fork at once.
        self.pg.query("CHECKPOINT", timeout=max(5.0, self.deadline() - time.monotonic()))
        self.primary_housekeeping()
        return ocf.OCF_SUCCESS

    def demote(self) -> int:
        instance = self.instance()
        if instance is Instance.STANDBY:
            return ocf.OCF_SUCCESS
        self.pg.stop(max(5.0, self.timeout / 2))
        if instance in (Instance.CRASHED_PRIMARY, Instance.CRASHED_STANDBY, Instance.UNRESPONSIVE,
                        Instance.STOPPED):
            # A failed instance is always stopped next; restarting it here would only delay the failover.
            self.log.info("demote: postgres was %s; left stopped" % instance.value)
            return ocf.OCF_SUCCESS
        self._save_state({"stuck": 0})
        self.pg.start_standby(self.deadline(1.0))
        return self.standby_housekeeping()

    def notify(self) -> int:
        kind = os.environ.get("OCF_RESKEY_CRM_meta_notify_type", "")
        operation = os.environ.get("OCF_RESKEY_CRM_meta_notify_operation", "")
        promoted = os.environ.get("OCF_RESKEY_CRM_meta_notify_promote_uname", "").split()
        self.log.info("notify %s-%s (promote: %s)" % (kind, operation, " ".join(promoted) or "-"))
        if kind == "post" and operation == "promote" and self.node not in promoted:
            self._save_state({"stuck": 0})  # a new primary: give the walreceiver a fresh chance
        return ocf.OCF_SUCCESS
