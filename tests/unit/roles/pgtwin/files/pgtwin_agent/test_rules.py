"""Decision logic of the pgtwin agent: scores, promotion safety, the primary's sync plan, start plans."""
import pytest

from pgtwin_agent import ocf, rules
from pgtwin_agent.rules import (Instance, LocalData, PeerState, PrimaryView, Record, Replica, StartKind, Step,
                                plan_primary, plan_start, promotable, standby_score)


def test_lsn_round_trip():
    assert rules.parse_lsn("0/3000060") == 0x3000060
    assert rules.parse_lsn("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert rules.format_lsn(rules.parse_lsn("16/B374D848")) == "16/B374D848"
    with pytest.raises(ValueError):
        rules.parse_lsn("3000060")


def test_newest_history():
    assert rules.newest_history(["000000010000000000000001", "00000002.history", "0000000A.history",
                                 "archive_status", "00000003.history.partial"]) == 10
    assert rules.newest_history(["000000010000000000000001"]) == 0


def test_timeline_of_walfile():
    assert rules.timeline_of_walfile("000000020000000000000003") == 2
    assert rules.timeline_of_walfile("0000000A0000000100000003") == 10


@pytest.mark.parametrize("text,expected", [
    (None, None), ("", None), ("PRIMARY:3", Record("PRIMARY", 3)), ("SYNC:12", Record("SYNC", 12)),
    ("STALE", Record("STALE")), ("SYNC:", Record("STALE")), ("garbage", Record("STALE")),
])
def test_record_parse_never_trusts_unknown_content(text, expected):
    assert Record.parse(text) == expected


def test_record_str_round_trip():
    for record in (Record("PRIMARY", 4), Record("SYNC", 4), Record("STALE")):
        assert Record.parse(str(record)) == record


@pytest.mark.parametrize("instance,was_primary,rc", [
    (Instance.STOPPED, False, ocf.OCF_NOT_RUNNING),
    (Instance.STANDBY, False, ocf.OCF_SUCCESS),
    (Instance.PRIMARY, False, ocf.OCF_RUNNING_PROMOTED),
    (Instance.CRASHED_PRIMARY, False, ocf.OCF_FAILED_PROMOTED),
    (Instance.CRASHED_STANDBY, False, ocf.OCF_ERR_GENERIC),
    (Instance.UNRESPONSIVE, True, ocf.OCF_FAILED_PROMOTED),
    (Instance.UNRESPONSIVE, False, ocf.OCF_ERR_GENERIC),
])
def test_monitor_codes(instance, was_primary, rc):
    assert rules.monitor_rc(instance, was_primary) == rc


class TestPromotable:
    def test_in_sync_standby_of_the_recorded_primary(self):
        assert promotable(Record("SYNC", 3), Record("PRIMARY", 3)).ok

    def test_sync_record_of_an_older_timeline_is_refused(self):
        decision = promotable(Record("SYNC", 2), Record("PRIMARY", 3))
        assert not decision.ok and "PRIMARY:3" in decision.reason

    def test_stale_standby_is_refused(self):
        decision = promotable(Record("STALE"), Record("PRIMARY", 3))
        assert not decision.ok and "STALE" in decision.reason

    def test_running_primary_peer_blocks_promotion(self):
        assert not promotable(Record("SYNC", 3), Record("PRIMARY", 3), peer_is_primary=True).ok

    def test_peer_on_newer_timeline_blocks_promotion(self):
        decision = promotable(Record("PRIMARY", 3), None, local_timeline=3, peer_timeline=4)
        assert not decision.ok and "newer timeline" in decision.reason

    def test_last_primary_may_come_back(self):
        assert promotable(Record("PRIMARY", 3), Record("STALE")).ok

    def test_older_primary_loses_to_newer_primary_record(self):
        assert not promotable(Record("PRIMARY", 3), Record("PRIMARY", 4)).ok

    def test_new_cluster_without_records(self):
        assert promotable(None, None).ok

    def test_missing_own_record_when_peer_has_one(self):
        assert not promotable(None, Record("PRIMARY", 2)).ok


class TestScores:
    ok = rules.Decision(True, "")
    refused = rules.Decision(False, "")

    def test_refused_is_negative(self):
        assert standby_score(self.refused, 100, None, "node1", "node2") < 0

    def test_most_advanced_wins(self):
        ahead = standby_score(self.ok, 200, 100, "node2", "node1")
        behind = standby_score(self.ok, 100, 200, "node1", "node2")
        assert ahead > behind > 0

    def test_tie_breaks_on_name_consistently(self):
        first = standby_score(self.ok, 100, 100, "node1", "node2")
        second = standby_score(self.ok, 100, 100, "node2", "node1")
        assert first > second > 0

    def test_primary_outranks_every_standby(self):
        assert rules.PRIMARY_SCORE > standby_score(self.ok, 10, None, "a", "b")


def view(**overrides):
    base = dict(timeline=3, flush_lsn=1000, current_ssn="", replica=None, peer_record=Record("STALE"),
                own_record=Record("PRIMARY", 3), peer_in_partition=True, peer_cleanly_down=False)
    base.update(overrides)
    return PrimaryView(**base)


STREAMING_ASYNC = Replica("streaming", "async", 1000)
STREAMING_SYNC = Replica("streaming", "sync", 1000)


class TestPrimaryPlanSync:
    def plan(self, strict=False, **overrides):
        return plan_primary(view(**overrides), "node2", "sync", strict, 0)

    def test_own_record_written_first(self):
        steps = self.plan(own_record=None)
        assert steps[0] == Step("own_record", "PRIMARY:3")

    def test_streaming_standby_is_named_before_it_counts_as_sync(self):
        assert self.plan(replica=STREAMING_ASYNC) == [Step("ssn", '"node2"')]

    def test_sync_recorded_once_caught_up(self):
        assert self.plan(replica=STREAMING_SYNC, current_ssn='"node2"') == [Step("peer_record", "SYNC:3")]

    def test_sync_not_recorded_while_behind(self):
        assert self.plan(replica=Replica("streaming", "sync", 999), current_ssn='"node2"') == []

    def test_a_walsender_without_a_flush_position_is_not_caught_up(self):
        # Right after a switchover the new primary's walsender for the old one is in state startup and
        # pg_stat_replication has no flush_lsn yet (read as ''): the monitor once crashed on it (ValueError),
        # which Pacemaker took for a failed primary and demoted the new one.
        assert rules.replica_of("", "", "") is None
        unanswered = rules.replica_of("startup", "async", "")
        assert unanswered == Replica("startup", "async", 0)
        # planned as a standby that does not stream (here: its SYNC record taken back before writes go on)
        assert self.plan(replica=unanswered, current_ssn='"node2"', peer_record=Record("SYNC", 3)) == \
            [Step("peer_record", "STALE"), Step("ssn", "")]
        assert self.plan(replica=rules.replica_of("streaming", "sync", ""), current_ssn='"node2"') == []
        assert rules.replica_of("streaming", "sync", "0/3E8") == STREAMING_SYNC

    def test_catchup_does_not_block_writes(self):
        assert self.plan(replica=Replica("catchup", "async", 10)) == []

    def test_lost_standby_marked_stale_before_writes_go_on(self):
        steps = self.plan(current_ssn='"node2"', peer_record=Record("SYNC", 3))
        assert steps == [Step("peer_record", "STALE"), Step("ssn", "")]

    def test_unclean_peer_keeps_writes_waiting(self):
        steps = self.plan(current_ssn='"node2"', peer_record=Record("SYNC", 3), peer_in_partition=False,
                          peer_cleanly_down=False)
        assert steps == []

    def test_fenced_peer_lets_primary_go_on(self):
        steps = self.plan(current_ssn='"node2"', peer_record=Record("SYNC", 3), peer_in_partition=False,
                          peer_cleanly_down=True)
        assert steps == [Step("peer_record", "STALE"), Step("ssn", "")]

    def test_waits_for_fencing_only_without_standby_and_with_the_peer_unaccounted_for(self):
        partitioned = view(current_ssn='"node2"', peer_in_partition=False, peer_cleanly_down=False)
        assert rules.waits_for_fencing(partitioned, "sync", False)
        assert not rules.waits_for_fencing(view(peer_in_partition=False, peer_cleanly_down=True), "sync", False)
        assert not rules.waits_for_fencing(view(peer_in_partition=True), "sync", False)
        streaming = view(replica=STREAMING_SYNC, peer_in_partition=False, peer_cleanly_down=False)
        assert not rules.waits_for_fencing(streaming, "sync", False)
        assert not rules.waits_for_fencing(partitioned, "sync", True), "strict never goes on alone anyway"
        assert not rules.waits_for_fencing(partitioned, "async", False)

    def test_strict_never_clears(self):
        steps = self.plan(strict=True, current_ssn='"node2"', peer_record=Record("SYNC", 3))
        assert steps == []

    def test_strict_sets_ssn_even_without_standby(self):
        assert self.plan(strict=True) == [Step("ssn", '"node2"')]

    def test_steady_state_is_a_no_op(self):
        assert self.plan(replica=STREAMING_SYNC, current_ssn='"node2"', peer_record=Record("SYNC", 3)) == []


class TestPrimaryPlanAsync:
    def test_async_clears_ssn_and_records_streaming_standby(self):
        steps = plan_primary(view(current_ssn='"node2"', replica=STREAMING_ASYNC), "node2", "async", False, 0)
        assert steps == [Step("ssn", ""), Step("peer_record", "SYNC:3")]

    def test_lag_over_limit_marks_stale(self):
        steps = plan_primary(view(replica=Replica("streaming", "async", 100), peer_record=Record("SYNC", 3)),
                             "node2", "async", False, 500)
        assert steps == [Step("peer_record", "STALE")]

    def test_unlimited_lag_keeps_record(self):
        assert plan_primary(view(peer_record=Record("SYNC", 3)), "node2", "async", False, 0) == []


class TestStartPlan:
    def test_empty_directory_waits_for_then_copies_the_peer(self):
        assert plan_start(LocalData(False), PeerState(False), True, True)[0] is StartKind.WAIT
        assert plan_start(LocalData(False), PeerState(True), True, True)[0] is StartKind.BASEBACKUP
        assert plan_start(LocalData(False), PeerState(True), True, False)[0] is StartKind.REFUSE

    def test_no_primary_starts_as_is(self):
        local = LocalData(True, "shut down", 1)
        assert plan_start(local, PeerState(False), True, True)[0] is StartKind.START
        assert plan_start(local, PeerState(True, True, 1), True, True)[0] is StartKind.START

    def test_standby_on_primary_timeline_starts(self):
        local = LocalData(True, "shut down in recovery", 3)
        assert plan_start(local, PeerState(True, False, 3), True, True)[0] is StartKind.START

    def test_history_file_alone_is_not_the_timeline(self):
        """Seen after both nodes lost power: the former primary restarted as a standby, streamed the new
        primary's history file of timeline 4, and went on to its own WAL past the fork on timeline 3. Its
        newest history file says 4, its control file says 0/183E7E0 on timeline 3: it must be rewound."""
        lsn = rules.parse_lsn
        history = rules.parse_history(["1\t0/3000148\tno recovery target specified",
                                       "2\t0/5000060\tno recovery target specified", "",
                                       "3\t0/1830000\tno recovery target specified"])
        assert history == ((1, lsn("0/3000148")), (2, lsn("0/5000060")), (3, lsn("0/1830000")))
        primary = PeerState(True, False, 4, history)
        diverged = LocalData(True, "shut down in recovery", 4, 3, lsn("0/183E7E0"))
        kind, reason = plan_start(diverged, primary, True, True)
        assert kind is StartKind.REWIND and "0/183E7E0 on timeline 3, past the primary's fork" in reason
        assert plan_start(diverged, primary, False, True)[0] is StartKind.BASEBACKUP
        behind = LocalData(True, "shut down in recovery", 4, 3, lsn("0/1820000"))
        kind, reason = plan_start(behind, primary, True, True)
        assert kind is StartKind.START and "before the primary's fork" in reason
        on_it = LocalData(True, "shut down in recovery", 4, 4, lsn("0/1900000"))
        assert plan_start(on_it, primary, True, True)[0] is StartKind.START
        unknown = PeerState(True, False, 4)  # history unreadable: pg_rewind is safe, a wrong start is not
        kind, reason = plan_start(diverged, unknown, True, True)
        assert kind is StartKind.REWIND and "could not be read" in reason
        foreign = LocalData(True, "shut down in recovery", 4, 7, lsn("0/1000000"))
        assert plan_start(foreign, primary, True, True)[0] is StartKind.REWIND

    def test_control_position_takes_the_later_of_recovery_point_and_checkpoint(self):
        values = {"Latest checkpoint location": "0/1830028", "Latest checkpoint's TimeLineID": "3",
                  "Minimum recovery ending location": "0/183E7E0", "Min recovery ending loc's timeline": "3"}
        assert rules.control_position(values) == (3, rules.parse_lsn("0/183E7E0"))
        values.update({"Minimum recovery ending location": "0/0", "Min recovery ending loc's timeline": "0"})
        assert rules.control_position(values) == (3, rules.parse_lsn("0/1830028"))
        assert rules.control_position({}) == (0, 0)

    def test_former_primary_is_rewound(self):
        local = LocalData(True, "in production", 3)
        assert plan_start(local, PeerState(True, False, 4), True, True)[0] is StartKind.REWIND
        assert plan_start(local, PeerState(True, False, 4), False, True)[0] is StartKind.BASEBACKUP
        assert plan_start(local, PeerState(True, False, 4), False, False)[0] is StartKind.REFUSE

    def test_newer_local_timeline_is_never_discarded(self):
        kind, reason = plan_start(LocalData(True, "shut down", 5), PeerState(True, False, 4), True, True)
        assert kind is StartKind.REFUSE and "newer" in reason


def test_stuck_standby_counts_only_with_a_reachable_primary():
    primary = PeerState(True, False, 3)
    assert rules.standby_stuck(False, primary, 0, 3) == (1, False)
    assert rules.standby_stuck(False, primary, 2, 3) == (3, True)
    assert rules.standby_stuck(True, primary, 2, 3) == (0, False)
    assert rules.standby_stuck(False, PeerState(False), 2, 3) == (0, False)
    assert rules.standby_stuck(False, PeerState(True, True, 3), 2, 3) == (0, False)
