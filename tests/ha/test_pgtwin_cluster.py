"""pgtwin on a real two-node Pacemaker cluster: failover, switchover, rejoin, the sync record, ocf-tester.
The tests run in both modes of the agent (the ``cluster`` fixture is parametrized): PostgreSQL from the
node's packages, and PostgreSQL in a container on the node's Btrfs subvolume (seed 004); the few that test
what the mode does not touch (the fencing device's update) run in host mode only, and the node kill with
fence_dummy runs in host mode only because test_pgtwin_partition.py kills nodes in both modes under a fencing
device that really powers them off and on.

Each failure scenario runs with a writer that records every acknowledged commit and a sampler that asks both
nodes for their role every 0.2 s; after it, the independent checker (checker.py, a process of its own) proves
from their files and the databases that no acknowledged row was lost and there never
were two primaries.
PGTWIN_HA_KILL_CYCLES sets the number of kill -9 cycles: by default 5 in host mode and 2 in container mode,
enough to show a rejoined node failing over and rejoining again (`make test` runs a short version within CI's 90
minutes; benchmarks/failover runs 100 cycles; issue 7 asked for 20 in CI, which the time limit no longer allows)."""
import json
import os
import secrets
import statistics
import time

import pytest

import harness
from harness import assert_no_loss, wait_for

KILL_CYCLES = {mode: int(os.environ.get("PGTWIN_HA_KILL_CYCLES", default))
               for mode, default in (("host", "5"), ("container", "2"))}
FAILOVER_LIMIT = 30.0  # seconds; the measured times are printed, this only catches a stuck cluster


def failover(cluster, writer, kill):
    """Kill the primary with ``kill(node)``; return (old primary, new primary, seconds to the first commit
    on the new primary, seconds to the first commit through the VIP)."""
    old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    began = time.monotonic()
    kill(old)
    wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), FAILOVER_LIMIT, 0.05)
    seconds = writer.first_ack_after(began, standby) - began
    assert cluster.pg_role(standby) == "primary"
    # The VIP moved with the promoted role: clients of the VIP write to the new primary.
    wait_for("a commit through the VIP", lambda: writer.first_ack_after(began, address=cluster.vip),
             FAILOVER_LIMIT, 0.05)
    vip_seconds = writer.first_ack_after(began, address=cluster.vip) - began
    # The address answers as soon as IPaddr2 has added it, before its start operation (gratuitous ARPs) has
    # returned and Pacemaker shows the VIP active: wait for Pacemaker's view too.
    wait_for("Pacemaker's view of the VIP on the new primary", lambda: cluster.vip_node() == standby.name, 30, 0.2)
    assert cluster.address_role(cluster.vip) == "primary"
    return old, standby, seconds, vip_seconds


def test_cluster_up_with_sync_standby(cluster):
    primary, standby = cluster.healthy()
    timeline = cluster.record(primary.name).split(":")[1]
    assert cluster.record(primary.name) == "PRIMARY:" + timeline
    assert cluster.record(standby.name) == "SYNC:" + timeline
    assert cluster.vip_node() == primary.name, "the VIP runs with the promoted instance"
    assert cluster.address_role(cluster.vip) == "primary"
    settings = primary.sh("psql -XAt -h /run/postgresql -d postgres -c \"SELECT current_setting("
                          "'synchronous_standby_names'), current_setting('restart_after_crash'), "
                          "(SELECT string_agg(slot_name, ',') FROM pg_replication_slots)\"", user="postgres")
    assert settings.strip() == '"%s"|off|pgtwin_%s' % (standby.name, standby.name)
    print("\ncluster up (build excluded) in %.1f s" % cluster.bring_up_seconds)


def test_fencing_device_is_updated_in_place(cluster):
    """A changed fencing parameter is applied to the existing device by cluster.yml, and changed back."""
    host_only(cluster)
    query = "cibadmin --query --scope resources --xpath \"//primitive[@id='fencing']\""
    assert "pcmk_reboot_timeout" not in cluster.live_node().sh(query)
    names = " ".join(n.name for n in cluster.nodes)
    changed = json.dumps({"pacemaker_fencing_params": {"pcmk_host_list": names, "pcmk_reboot_timeout": "45s"}})
    recap = cluster.playbook("cluster.yml", "-e", changed)
    assert recap["changed_tasks"] == ["poststack.core.pacemaker : Create or update the fencing device"], recap
    assert 'name="pcmk_reboot_timeout" value="45s"' in cluster.live_node().sh(query)
    recap = cluster.playbook("cluster.yml")
    assert recap["changed_tasks"] == ["poststack.core.pacemaker : Create or update the fencing device"], recap
    device = cluster.live_node().sh(query)
    assert "pcmk_reboot_timeout" not in device and "fence_dummy" in device


def test_replication_password_rotation(cluster, load):
    """cluster.yml with a new replication password: both passfiles, then the primary's verifier; the standby
    reconnects with it, the old one is refused, the password is in no process list or log, and nothing is
    lost. The new password has the characters pgpass needs escaped (colon, backslash) and a quote. The run is at
    -vvv: neither password (nor the application's) is in anything it printed."""
    writer, sampler = load
    primary, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    old = cluster.rep_password
    token = secrets.token_urlsafe(12)
    cluster.set_replication_password("rot:a\\b'" + token)
    recap = cluster.playbook("cluster.yml", "-vvv")
    assert recap["changed_tasks"] == ["poststack.core.pgtwin : Set the new replication password on the primary",
                                      "poststack.core.pgtwin : Write the replication passfile"], recap
    # it was verbose: -vvv prints the commands run on the nodes, and the results carry their module arguments
    assert "ansible-tmp-" in recap["printed"] and '"module_args"' in recap["printed"]
    # in every spelling it could take there: as given, JSON-escaped (the results), the random part alone
    for secret in (old, cluster.rep_password, cluster.app_password, token):
        for form in (secret, json.dumps(secret)[1:-1]):
            assert form not in recap["printed"]
    # New replication connections use the new password: make the standby reconnect.
    standby.sh("pkill -f 'postgres: walreceiver'")
    wait_for("the standby streaming in sync again", cluster.healthy, 60, 0.5)
    login = ("PGPASSWORD=\"$(cat)\" psql -XAtw -h %s -U replicator -d postgres -c 'SELECT 1' 2>&1"
             % primary.ip)
    assert standby.sh(login, stdin=cluster.rep_password.encode(), check=False).strip() == "1"
    assert "password authentication failed" in standby.sh(login, stdin=old.encode(), check=False)
    for node in cluster.nodes:
        seen = node.sh("ps -eo args; cat /var/lib/pgtwin/*.log /var/log/pacemaker/pacemaker.log 2>/dev/null")
        assert cluster.rep_password not in seen
    assert_no_loss(cluster, writer, sampler)


def test_cluster_playbook_is_idempotent(cluster):
    """playbooks/cluster.yml built the cluster (changed); a second run changes nothing."""
    assert cluster.cluster_playbook_recap["changed"] > 0
    recap = cluster.playbook("cluster.yml")
    assert recap["changed"] == 0 and recap["failures"] == 0, recap


def test_resource_module_is_idempotent_with_truthful_check_and_diff(cluster):
    """The pgtwin role created the resource with pgtwin_resource; the same definition changes nothing, and
    a check run of a changed parameter reports the replacement and its diff without doing it."""
    assert cluster.resource_module()["changed"] is False
    changed_params = dict(cluster.resource_params(), diverged_after="5")
    result = cluster.resource_module(check=True, diff=True, params=changed_params)
    assert result["changed"] is True
    assert [(op["action"], op["id"]) for op in result["operations"]] == [("replace", harness.CLONE)]
    assert 'name="diverged_after" value="5"' in result["diff"]["after"]
    assert "diverged_after" not in result["diff"]["before"]
    assert cluster.resource_module()["changed"] is False, "check mode changed the CIB"


def test_cluster_status_playbook_shows_mode_containers_and_replication(cluster):
    primary, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    shown = cluster.playbook_messages("cluster-status.yml", "Show the status")
    assert set(shown) == {n.container for n in cluster.nodes}
    for node in cluster.nodes:
        status = shown[node.container]
        assert status["node"] == node.name
        assert status["mode"] == ("container (podman, %s)" % cluster.postgres_image if cluster.container_mode
                                  else "host")
        if cluster.container_mode:
            assert [line.split()[0] for line in status["containers"]] == [cluster.container_name(node)]
            assert " Up " in " %s " % status["containers"][0]
        else:
            assert status["containers"] == []
        assert any("Promoted: [ %s ]" % primary.name in line for line in status["cluster"]), status["cluster"]
    assert any(line.startswith(standby.name + "|streaming|sync") for line in shown[primary.container]["replication"])
    assert not any("streaming" in line for line in shown[standby.container]["replication"])


def test_meta_data_valid_against_the_ocf_dtd(cluster):
    node = cluster.nodes[0]
    node.sh("/usr/lib/ocf/resource.d/poststack/pgtwin meta-data > /tmp/pgtwin.xml && "
            "xmllint --noout --dtdvalid /usr/share/resource-agents/ra-api-1.dtd /tmp/pgtwin.xml")


def test_no_password_in_process_list_or_logs(cluster):
    for node in cluster.nodes:
        processes = node.sh("ps -eo args")
        assert "postgres" in processes
        assert cluster.rep_password not in processes and cluster.app_password not in processes
        logs = node.sh("cat /var/lib/pgtwin/*.log /var/log/pacemaker/pacemaker.log")
        assert cluster.rep_password not in logs and cluster.app_password not in logs


def test_planned_switchover(cluster, load):
    writer, sampler = load
    old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    rewinds = cluster.agent_log(old).count("start: pg_rewind")
    began = time.monotonic()
    result = cluster.resource_module(promoted_node=standby.name)
    assert result["changed"] and result["promoted"] == [standby.name], result
    assert cluster.pg_role(standby) == "primary", "pgtwin_resource returned before the new primary was writable"
    wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), 60, 0.1)
    print("\nswitchover: pgtwin_resource returned after %.2f s (switchover %.2f s); writes resumed on the new "
          "primary after %.2f s" % (time.monotonic() - began, result["switchover_seconds"],
                                    writer.first_ack_after(began, standby) - began))
    assert cluster.resource_module(promoted_node=standby.name)["changed"] is False
    assert "cli-prefer" not in cluster.live_node().sh("cibadmin --query --scope constraints")
    new_primary, new_standby = wait_for("the old primary back as sync standby", cluster.healthy, 120, 0.5)
    assert (new_primary, new_standby) == (standby, old)
    assert cluster.agent_log(old).count("start: pg_rewind") == rewinds, "a clean demote needs no rewind"
    assert_no_loss(cluster, writer, sampler)


def test_poststack_command_shows_and_switches_the_cluster(cluster, load):
    """`poststack cluster status` and `poststack cluster switchover --to NODE` (issue 15) with --inventory naming
    this cluster: the status shows each node's record, the switchover moves the primary, a node that is not in the
    cluster is refused and the primary stays."""
    writer, sampler = load
    old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    status = cluster.cli("cluster", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for node in cluster.nodes:
        assert "node: %s\nmode: %s" % (node.name, "container (podman, " if cluster.container_mode else "host") \
            in status.stdout, status.stdout
    assert "Promoted: [ %s ]" % old.name in status.stdout and status.stdout.rstrip().endswith("0 failed")
    assert cluster.rep_password not in status.stdout + status.stderr

    unknown = cluster.cli("cluster", "switchover", "--to", "node9")
    assert unknown.returncode == 1 and "node9" in unknown.stdout, unknown.stdout
    assert "the whole run is in logs/main/poststack.log" in unknown.stderr
    assert cluster.primary() == old

    began = time.monotonic()
    switched = cluster.cli("cluster", "switchover", "--to", standby.name)
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert "primary: %s (" % standby.name in switched.stdout, switched.stdout
    assert cluster.pg_role(standby) == "primary"
    wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), 60, 0.1)
    assert wait_for("the old primary back as sync standby", cluster.healthy, 120, 0.5) == (standby, old)
    assert "cli-prefer" not in cluster.live_node().sh("cibadmin --query --scope constraints")
    assert cluster.rep_password not in open(os.path.join(cluster.workdir, "logs", "main", "poststack.log"),
                                            encoding="utf-8").read()
    assert_no_loss(cluster, writer, sampler)


def test_kill9_postgres_cycles(cluster, load):
    """kill -9 of the primary's postmaster: the standby takes over; the old primary rejoins via pg_rewind."""
    writer, sampler = load
    times, vip_times = [], []
    for _cycle in range(KILL_CYCLES[cluster.mode]):
        old, new, seconds, vip_seconds = failover(cluster, writer, cluster.kill_postgres)
        times.append(seconds)
        vip_times.append(vip_seconds)
        rewinds = cluster.agent_log(old).count("start: pg_rewind from the primary")
        assert cluster.rejoin() == (new, old)
        assert cluster.agent_log(old).count("start: pg_rewind from the primary") == rewinds + 1
        assert_no_loss(cluster, writer, sampler)
    print("\n%s mode, kill -9 postgres, %d cycles: failover median %.2f s, max %.2f s (through the VIP: median %.2f s, "
          "max %.2f s); %d rows acknowledged" % (cluster.mode, len(times), statistics.median(times), max(times),
                                                 statistics.median(vip_times), max(vip_times), len(writer.acked)))


def test_kill9_old_primary_rejoins_by_itself(cluster, load):
    """kill -9 of the primary's postmaster and nothing done by hand: once the failure expires
    (failure-timeout 60 s, checked every cluster-recheck-interval, 30 s) Pacemaker starts the old primary
    again, which rewinds and becomes the sync standby."""
    writer, sampler = load
    old, new, seconds, _vip = failover(cluster, writer, cluster.kill_postgres)
    began = time.monotonic()
    assert cluster.rejoin(200, cleanup=False) == (new, old)
    print("\n%s mode, kill -9 without cleanup: failover %.2f s, back as sync standby after %.0f s more"
          % (cluster.mode, seconds, time.monotonic() - began))
    assert_no_loss(cluster, writer, sampler)


def test_node_kill_failover_and_rejoin(cluster, load):
    """podman kill of the primary's node: fencing (fence_dummy), promotion; the node restarts and rejoins."""
    host_only(cluster)
    writer, sampler = load
    old, new, seconds, vip_seconds = failover(cluster, writer, lambda node: harness.podman("kill", node.container))
    print("\npodman kill of the primary node: writes resumed after %.2f s (through the VIP: %.2f s)"
          % (seconds, vip_seconds))
    assert_no_loss(cluster, writer, sampler)
    harness.podman("start", old.container)
    assert wait_for("the killed node back as sync standby", cluster.healthy, 180, 1) == (new, old)
    assert_no_loss(cluster, writer, sampler)


def test_lagging_standby_then_primary_killed(cluster, load):
    """The standby's replay is paused (it still receives, flushes and confirms WAL: in sync mode a commit is
    acknowledged once the standby has flushed it, not applied it) while the writer commits; then the primary's
    postmaster dies. The promotion ends the pause and applies everything received first: no acknowledged row
    is lost, and the old primary rejoins."""
    writer, sampler = load
    old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    psql = "psql -XAt -h /run/postgresql -d postgres -c \"%s\""
    standby.sh(psql % "SELECT pg_wal_replay_pause()", user="postgres")
    mark = len(writer.acked)
    wait_for("commits while the standby does not replay", lambda: len(writer.acked) > mark + 3000, 60, 0.1)
    lag = standby.sh(psql % "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())",
                     user="postgres")
    assert float(lag.strip()) > 0, "replay was not behind"
    assert cluster.record(standby.name).startswith("SYNC:"), "a flushing standby stays in sync"
    began = time.monotonic()
    cluster.kill_postgres(old)
    wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), FAILOVER_LIMIT, 0.05)
    print("\n%s mode, standby %s bytes behind in replay, primary killed: writes resumed after %.2f s"
          % (cluster.mode, lag.strip(), writer.first_ack_after(began, standby) - began))
    assert cluster.rejoin() == (standby, old)
    assert_no_loss(cluster, writer, sampler)


def test_both_nodes_restarted_at_once(cluster, load):
    """Both node containers killed together and started again (a power loss of the whole cluster): the
    cluster comes back with one primary and a sync standby by itself, and no acknowledged row is lost."""
    writer, sampler = load
    wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    mark = len(writer.acked)
    wait_for("some commits", lambda: len(writer.acked) > mark + 100, 30, 0.1)
    harness.podman("kill", *[node.container for node in cluster.nodes])
    began = time.monotonic()  # after the kill: a commit in flight may still be acknowledged during it
    acked_before = len(writer.acked)
    harness.podman("start", *[node.container for node in cluster.nodes])
    primary, _standby = wait_for("one primary and a sync standby after the restart", cluster.healthy, 300, 1)
    wait_for("a commit after the restart", lambda: writer.first_ack_after(began, primary), 60, 0.1)
    print("\n%s mode, both nodes restarted: writes resumed after %.1f s (%d commits acknowledged before)"
          % (cluster.mode, writer.first_ack_after(began, primary) - began, acked_before))
    assert_no_loss(cluster, writer, sampler)


def test_stale_standby_is_never_promoted(cluster, load):
    """A standby that stopped confirming is recorded STALE before the primary acknowledges commits without
    it; when that primary then dies, the stale standby must not become primary: either its promotion score
    (-1) already keeps Pacemaker from trying, or the agent's promote refuses (then Pacemaker stops it)."""
    writer, sampler = load
    primary, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    receiver = standby.sh("pgrep -f 'postgres: walreceiver'").split()[0]
    standby.sh("kill -STOP %s" % receiver)
    try:
        wait_for("the standby recorded STALE", lambda: cluster.record(standby.name) == "STALE", 60, 0.5)
        mark = len(writer.acked)
        wait_for("commits without the standby", lambda: len(writer.acked) > mark + 50, 30, 0.1)
        killed = time.monotonic()
        cluster.kill_postgres(primary)
        time.sleep(15)
        assert cluster.pg_role(standby) != "primary", "a STALE standby was promoted"
        assert "Promoted" not in cluster.roles().values()
        assert writer.first_ack_after(killed, standby) is None
    finally:
        standby.sh("kill -CONT %s" % receiver)
    assert cluster.rejoin() == (primary, standby)
    assert_no_loss(cluster, writer, sampler)


def test_ocf_tester(cluster):
    """resource-agents' ocf-tester against a second, independent instance on one node (in container mode
    its own container, initialised by initdb in a container of the image)."""
    node = cluster.nodes[1]
    other = cluster.nodes[0]
    owner = "999" if cluster.container_mode else "postgres"
    node.sh("rm -rf /var/lib/pgtwin/ocft && install -d -o %s -g %s -m 0700 /var/lib/pgtwin/ocft" % (owner, owner))
    if cluster.container_mode:
        node.sh("podman run --rm --pull=never --user 999:999 -v /var/lib/pgtwin/ocft:/var/lib/pgtwin/ocft:Z "
                "--entrypoint initdb %s -D /var/lib/pgtwin/ocft -U postgres --auth-local=peer >/dev/null"
                % harness.POSTGRES_IMAGE)
        extra = ("-o container_mode=true -o user=999:999 -o container_name=pgtwin-ocft -o container_image=%s"
                 % harness.POSTGRES_IMAGE)
    else:
        node.sh("runuser -u postgres -- initdb -D /var/lib/pgtwin/ocft -U postgres --auth-local=peer >/dev/null")
        extra = ""
    out = node.sh("ocf-tester -n pgtwin-ocft -o pgdata=/var/lib/pgtwin/ocft -o port=5499 "
                  "-o 'node_list=%s=127.0.0.1 %s=127.0.0.2' -o rep_passfile=%s %s "
                  "/usr/lib/ocf/resource.d/poststack/pgtwin 2>&1" % (node.name, other.name, cluster.passfile, extra),
                  check=False, timeout=600)
    assert "passed all tests" in out, out[-3000:]
    if cluster.container_mode:
        assert "pgtwin-ocft" not in node.sh("podman ps -a --format '{{.Names}}'"), "stop left a container"


def container_only(cluster):
    if not cluster.container_mode:
        pytest.skip("container mode only")


def host_only(cluster):
    if cluster.container_mode:
        pytest.skip("host mode only: what it tests does not depend on the mode, or test_pgtwin_partition.py "
                    "covers it in container mode")


def test_container_mode_layout(cluster):
    """Each node runs PostgreSQL in its own container from poststack's image, on the host network, as
    999:999, with the data in the node's Btrfs subvolume; no password in the container's definition."""
    container_only(cluster)
    for node in cluster.nodes:
        name = cluster.container_name(node)
        assert name in node.sh("podman ps --format '{{.Names}}'").split()
        info = json.loads(node.sh("podman inspect --type container %s" % name))[0]
        assert info["HostConfig"]["NetworkMode"] == "host" and info["Config"]["User"] == "999:999"
        assert info["ImageName"] == cluster.postgres_image
        assert cluster.rep_password not in json.dumps(info) and cluster.app_password not in json.dumps(info)
        assert node.sh("findmnt -n -o FSTYPE /var/lib/pgtwin").strip() == "btrfs"
        assert "Name:" in node.sh("btrfs subvolume show /var/lib/pgtwin/@postgres-%s" % node.name)
        pid = cluster.postmaster_pid(node)
        assert node.sh("cat /proc/%s/comm" % pid).strip() == "postgres"
        assert node.sh("readlink /proc/%s/cwd" % pid).strip() == cluster.pgdata(node)
        assert node.sh("stat -c %%u:%%g %s" % cluster.pgdata(node)).strip() == "999:999"


@pytest.mark.parametrize("how", ["kill", "rm -f -t 0"])
def test_container_killed_or_removed_under_pacemaker(cluster, load, how):
    """The primary's PostgreSQL container killed (podman kill), or removed while Pacemaker thinks it runs
    (podman rm -f): failover, and the old primary rejoins."""
    container_only(cluster)
    writer, sampler = load
    old, new, seconds, _vip = failover(
        cluster, writer, lambda node: node.sh("podman %s %s" % (how, cluster.container_name(node))))
    print("\npodman %s of the primary's container: writes resumed after %.2f s" % (how, seconds))
    assert cluster.rejoin() == (new, old)
    assert_no_loss(cluster, writer, sampler)


def test_full_data_subvolume(cluster, load):
    """The primary's subvolume runs out of space (a qgroup limit just above its use, then a file filling it):
    PostgreSQL cannot write WAL and stops; the standby takes over with every acknowledged row. Once the
    space is freed, the old primary rejoins by itself (no cleanup)."""
    container_only(cluster)
    writer, sampler = load
    old, standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    mount = "/var/lib/pgtwin"
    subvolume = "%s/@postgres-%s" % (mount, old.name)
    old.sh("btrfs quota enable %s && btrfs quota rescan -w %s >/dev/null" % (mount, mount))
    used = int(old.sh("btrfs qgroup show -r --raw -f %s | tail -1" % subvolume).split()[1])
    old.sh("btrfs qgroup limit %d %s" % (used + 64 * 1024 * 1024, subvolume))
    began = time.monotonic()
    try:
        old.sh("dd if=/dev/zero of=%s/filler bs=1M count=256 conv=fsync status=none" % subvolume, check=False)
        wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), 120, 0.05)
        seconds = writer.first_ack_after(began, standby) - began
        postgres_log = old.sh("cat /var/lib/pgtwin/pgtwin-postgresql.log")
        assert "Disk quota exceeded" in postgres_log or "No space left" in postgres_log, postgres_log[-2000:]
    finally:
        old.sh("rm -f %s/filler; btrfs qgroup limit none %s; btrfs quota disable %s" % (subvolume, subvolume, mount),
               check=False)
    freed = time.monotonic()
    assert cluster.rejoin(240, cleanup=False) == (standby, old)
    assert_no_loss(cluster, writer, sampler)
    print("\n%s mode, the primary's subvolume full: writes resumed on the standby after %.2f s; the old primary "
          "back %.0f s after the space was freed" % (cluster.mode, seconds, time.monotonic() - freed))
