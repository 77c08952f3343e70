"""Pure decision logic: given what was observed, what should the agent do? No I/O here, so every rule is
unit-tested without a cluster (tests/unit/roles/pgtwin/files/pgtwin_agent).

The data record: a permanent node attribute per node, written by the primary, that says whether that node's
data may be promoted:

* ``PRIMARY:<tl>``  the node was promoted and runs (or ran) timeline ``tl``; written by itself, before it
  accepts writes.
* ``SYNC:<tl>``     the node is a standby holding every commit the primary of timeline ``tl`` acknowledged
  (sync mode), or lags it by at most max_promotion_lag (async mode).
* ``STALE``         the node may miss acknowledged commits: written by the primary *before* it acknowledges a
  commit without that node, and by a node about its peer when it is promoted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Dict, Iterable, List, Optional, Tuple

from . import ocf

PRIMARY_SCORE = 1001
BEST_STANDBY_SCORE = 1000
SECOND_STANDBY_SCORE = 990
NOT_PROMOTABLE_SCORE = -1
_HISTORY = re.compile(r"^[0-9A-F]{8}\.history$")


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> integer byte position."""
    high, slash, low = text.strip().partition("/")
    if not slash or not low:
        raise ValueError("not an LSN: %r" % text)
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(value: int) -> str:
    return "%X/%X" % (value >> 32, value & 0xFFFFFFFF)


def newest_history(names: Iterable[str]) -> int:
    """Highest timeline with a history file among pg_wal entries ('00000003.history' -> 3), 0 if none.
    A standby following recovery_target_timeline=latest runs the newest timeline it has a history for,
    while its checkpoint timeline lags until the next restartpoint."""
    found = [int(name[:8], 16) for name in names if _HISTORY.match(name)]
    return max(found, default=0)


def timeline_of_walfile(name: str) -> int:
    """'000000020000000000000003' -> 2."""
    return int(name.strip()[:8], 16)


@dataclass(frozen=True)
class Record:
    kind: str  # PRIMARY | SYNC | STALE
    timeline: int = 0

    @staticmethod
    def parse(text: Optional[str]) -> Optional["Record"]:
        if text is None or not text.strip():
            return None
        kind, _sep, tl = text.strip().partition(":")
        if kind == "STALE":
            return Record("STALE")
        if kind in ("PRIMARY", "SYNC") and tl.isdigit():
            return Record(kind, int(tl))
        return Record("STALE")  # unknown content is never trusted

    def __str__(self) -> str:
        return self.kind if self.kind == "STALE" else "%s:%d" % (self.kind, self.timeline)


class Instance(Enum):
    STOPPED = "stopped"
    STANDBY = "standby"
    PRIMARY = "primary"
    CRASHED_PRIMARY = "crashed primary"
    CRASHED_STANDBY = "crashed standby"
    UNRESPONSIVE = "unresponsive"


def monitor_rc(instance: Instance, was_primary: bool = False) -> int:
    """OCF code for an observed instance; ``was_primary`` comes from pg_controldata when it cannot answer."""
    if instance is Instance.STOPPED:
        return ocf.OCF_NOT_RUNNING
    if instance is Instance.STANDBY:
        return ocf.OCF_SUCCESS
    if instance is Instance.PRIMARY:
        return ocf.OCF_RUNNING_PROMOTED
    if instance is Instance.CRASHED_PRIMARY:
        return ocf.OCF_FAILED_PROMOTED
    if instance is Instance.UNRESPONSIVE and was_primary:
        return ocf.OCF_FAILED_PROMOTED
    return ocf.OCF_ERR_GENERIC


@dataclass(frozen=True)
class Decision:
    ok: bool
    reason: str


def promotable(own: Optional[Record], peer: Optional[Record], peer_is_primary: bool = False,
               local_timeline: int = 0, peer_timeline: int = 0) -> Decision:
    """May this (standby) node be promoted? ``peer_is_primary``/``peer_timeline`` describe a peer that
    answered just now (0 when it did not)."""
    if peer_is_primary:
        return Decision(False, "the peer is a running primary")
    if peer_timeline and local_timeline and peer_timeline > local_timeline:
        return Decision(False, "the peer is on a newer timeline (%d > %d)" % (peer_timeline, local_timeline))
    if own is None and peer is None:
        return Decision(True, "no data record on either node yet (new cluster)")
    if own is None:
        return Decision(False, "this node has no data record while the peer has %s" % peer)
    if own.kind == "SYNC":
        if peer is not None and peer.kind == "PRIMARY" and peer.timeline == own.timeline:
            return Decision(True, "recorded in sync with the primary of timeline %d" % own.timeline)
        return Decision(False, "recorded %s but the peer's record is %s" % (own, peer))
    if own.kind == "PRIMARY":
        if peer is not None and peer.kind == "PRIMARY" and peer.timeline > own.timeline:
            return Decision(False, "the peer was primary on a newer timeline (%s)" % peer)
        return Decision(True, "this node was the last primary (%s)" % own)
    return Decision(False, "this node's data is recorded STALE: it may miss acknowledged commits")


def standby_score(decision: Decision, own_lsn: int, peer_lsn: Optional[int], own_name: str,
                  peer_name: str) -> int:
    """Promotion score of a standby: the most advanced promotable standby scores highest; ties go to the
    node name sorting first, so that both nodes agree."""
    if not decision.ok:
        return NOT_PROMOTABLE_SCORE
    if peer_lsn is None or own_lsn > peer_lsn:
        return BEST_STANDBY_SCORE
    if own_lsn == peer_lsn:
        return BEST_STANDBY_SCORE if own_name < peer_name else BEST_STANDBY_SCORE - 1
    return SECOND_STANDBY_SCORE


@dataclass(frozen=True)
class Replica:
    """The peer's row in pg_stat_replication on the primary."""
    state: str  # startup | catchup | streaming | backup | stopping
    sync_state: str  # async | potential | sync | quorum
    flush_lsn: int


def replica_of(state: str, sync_state: str, flush_lsn: str) -> Optional[Replica]:
    """The peer's pg_stat_replication row as read by the primary: None when it is not connected. A walsender
    the standby has not yet answered (state startup, right after a promotion or a restart) has no flush position:
    that is 0, nothing confirmed, so it is neither caught up nor within any lag."""
    if not state:
        return None
    return Replica(state, sync_state, parse_lsn(flush_lsn) if flush_lsn else 0)


@dataclass(frozen=True)
class PrimaryView:
    timeline: int
    flush_lsn: int  # pg_current_wal_flush_lsn() read in the same statement as ``replica``
    current_ssn: str  # synchronous_standby_names in effect
    replica: Optional[Replica]
    peer_record: Optional[Record]
    own_record: Optional[Record]
    peer_in_partition: bool  # the peer node is a member of our cluster partition
    peer_cleanly_down: bool  # the peer node is offline and not unclean (shut down or fenced)


@dataclass(frozen=True)
class Step:
    what: str  # own_record | peer_record | ssn
    value: str


def wanted_ssn(peer_name: str) -> str:
    return '"%s"' % peer_name


def plan_primary(view: PrimaryView, peer_name: str, rep_mode: str, sync_strict: bool,
                 max_lag: int) -> List[Step]:
    """Steps for a running primary, in the order they must run (stop at the first failure).

    The ordering carries the guarantee: a peer record is set STALE *before* synchronous_standby_names is
    cleared (so no commit is acknowledged without the standby while it still looks promotable), and SYNC is
    only recorded once synchronous_standby_names is in effect and the standby has flushed everything."""
    steps: List[Step] = []
    own = Record("PRIMARY", view.timeline)
    if view.own_record != own:
        steps.append(Step("own_record", str(own)))
    synced = Record("SYNC", view.timeline)
    streaming = view.replica is not None and view.replica.state == "streaming"
    peer_sync = view.peer_record == synced

    if rep_mode == "async":
        if view.current_ssn:
            steps.append(Step("ssn", ""))
        lag_ok = streaming and view.replica is not None and (
            max_lag == 0 or view.flush_lsn - view.replica.flush_lsn <= max_lag)
        if lag_ok and not peer_sync:
            steps.append(Step("peer_record", str(synced)))
        elif not lag_ok and peer_sync and max_lag > 0:
            steps.append(Step("peer_record", "STALE"))
        return steps

    want = wanted_ssn(peer_name)
    if sync_strict:
        if view.current_ssn != want:
            steps.append(Step("ssn", want))
        elif _caught_up(view) and not peer_sync:
            steps.append(Step("peer_record", str(synced)))
        return steps

    if streaming:
        if view.current_ssn != want:
            steps.append(Step("ssn", want))
        elif _caught_up(view) and not peer_sync:
            steps.append(Step("peer_record", str(synced)))
        return steps
    if waits_for_fencing(view, rep_mode, sync_strict):
        return steps  # writes wait until fencing resolves the partition
    if view.peer_record is None or view.peer_record.kind != "STALE":
        steps.append(Step("peer_record", "STALE"))
    if view.current_ssn:
        steps.append(Step("ssn", ""))
    return steps


def waits_for_fencing(view: PrimaryView, rep_mode: str, sync_strict: bool) -> bool:
    """True while a sync-mode primary has no streaming standby and must not go on alone: going on alone is
    only safe once the peer cannot be promoted behind its back, that is when the peer is in its partition (it
    sees the STALE record) or cleanly down (shut down or fenced). Until fencing decides a partition, commits
    wait (synchronous_standby_names stays)."""
    streaming = view.replica is not None and view.replica.state == "streaming"
    return (rep_mode == "sync" and not sync_strict and not streaming
            and not (view.peer_in_partition or view.peer_cleanly_down))


def _caught_up(view: PrimaryView) -> bool:
    replica = view.replica
    return (replica is not None and replica.state == "streaming" and replica.sync_state == "sync"
            and replica.flush_lsn >= view.flush_lsn)


class StartKind(Enum):
    START = "start as standby"
    BASEBACKUP = "base backup from the peer"
    REWIND = "pg_rewind from the primary"
    WAIT = "wait for the peer"
    REFUSE = "refuse"


@dataclass(frozen=True)
class LocalData:
    has_data: bool
    cluster_state: str = ""  # pg_controldata "Database cluster state"
    timeline: int = 0  # the newest timeline this node knows: checkpoint or newest history file in pg_wal
    # How far this node's data went, from the control file: the later of the minimum recovery point and the
    # latest checkpoint, with its timeline (0: unknown, then ``timeline`` stands for it).
    position_tli: int = 0
    position_lsn: int = 0


@dataclass(frozen=True)
class PeerState:
    reachable: bool
    in_recovery: bool = True
    timeline: int = 0
    # The primary's timeline history: (timeline, LSN where the next timeline forked off it), oldest first.
    history: Tuple[Tuple[int, int], ...] = ()


def control_position(values: Dict[str, str]) -> Tuple[int, int]:
    """(timeline, LSN) of the later of the minimum recovery point and the latest checkpoint in
    pg_controldata's output; a standby's minimum recovery point is how far its data files may have gone."""
    best = (0, 0)
    for loc_key, tli_key in (("Latest checkpoint location", "Latest checkpoint's TimeLineID"),
                             ("Minimum recovery ending location", "Min recovery ending loc's timeline")):
        try:
            lsn, tli = parse_lsn(values.get(loc_key, "")), int(values.get(tli_key, "0") or 0)
        except ValueError:
            continue
        if tli and (lsn, tli) > (best[1], best[0]):
            best = (tli, lsn)
    return best


def parse_history(lines: Iterable[str]) -> Tuple[Tuple[int, int], ...]:
    """A timeline history file ('3<TAB>0/3000158<TAB>reason' per line) -> ((3, lsn), ...)."""
    entries = []
    for line in lines:
        fields = line.strip().split()
        if len(fields) < 2 or fields[0].startswith("#"):
            continue
        try:
            entries.append((int(fields[0]), parse_lsn(fields[1])))
        except ValueError:
            continue
    return tuple(entries)


def follows_history(position_tli: int, position_lsn: int, history: Tuple[Tuple[int, int], ...]) -> bool:
    """Whether data that went to ``position_lsn`` on timeline ``position_tli`` lies on the primary's history:
    the primary's timelines forked off ``position_tli`` at or after that point."""
    for tli, fork in history:
        if tli == position_tli:
            return position_lsn <= fork
    return False


def plan_start(local: LocalData, peer: PeerState, allow_rewind: bool, allow_basebackup: bool) -> Tuple[StartKind, str]:
    if not local.has_data:
        if not allow_basebackup:
            return StartKind.REFUSE, "the data directory is empty and basebackup=false"
        if peer.reachable:
            return StartKind.BASEBACKUP, "the data directory is empty"
        return StartKind.WAIT, "the data directory is empty and the peer does not answer yet"
    if not (peer.reachable and not peer.in_recovery):
        return StartKind.START, "no running primary to compare with"
    if local.timeline > peer.timeline:
        return StartKind.REFUSE, ("this node's timeline %d is newer than the primary's %d: refusing to "
                                  "discard it; investigate, then wipe one side" % (local.timeline, peer.timeline))
    was_primary = local.cluster_state in ("in production", "shut down")
    position_tli = local.position_tli or local.timeline
    if local.timeline == peer.timeline and not was_primary:
        # A standby fetches the history file of a new primary's timeline before it can follow it: the newest
        # history file alone does not mean its data lies on that timeline (PostgreSQL then refuses with
        # "requested timeline N does not contain minimum recovery point").
        if position_tli == peer.timeline:
            return StartKind.START, "standby on the primary's timeline %d" % peer.timeline
        if follows_history(position_tli, local.position_lsn, peer.history):
            return StartKind.START, "standby on timeline %d before the primary's fork to timeline %d" % (
                position_tli, peer.timeline)
        reason = "its data went to %s on timeline %d, past the primary's fork%s" % (
            format_lsn(local.position_lsn), position_tli,
            "" if peer.history else " (the primary's history could not be read)")
    else:
        reason = "former primary" if was_primary else "timeline %d behind the primary's %d" % (
            local.timeline, peer.timeline)
    if allow_rewind:
        return StartKind.REWIND, reason
    if allow_basebackup:
        return StartKind.BASEBACKUP, reason + " and rewind=false"
    return StartKind.REFUSE, reason + " and both rewind and basebackup are disabled"


def standby_stuck(streaming: bool, peer: PeerState, previous_count: int, limit: int) -> Tuple[int, bool]:
    """Count consecutive monitors in which a standby does not stream from a reachable primary; returns
    (new count, fail now)."""
    if streaming or not peer.reachable or peer.in_recovery:
        return 0, False
    count = previous_count + 1
    return count, count >= limit
