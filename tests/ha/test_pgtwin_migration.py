"""The runbook "From host mode to container mode" of docs/pgtwin.md, run step by step on a real host-mode
cluster under a writer: stop the resource, move each node's state directory aside, cluster.yml in container
mode with pgtwin_import_pgdata. Every row acknowledged before and after is there, the same timeline goes on,
and a second cluster.yml changes nothing. A data directory that cannot be imported is refused first."""
import json
import time

import pytest

import harness
from conftest import MODES, running_cluster
from harness import assert_no_loss, wait_for

OLD = "/var/lib/pgtwin.host-mode"
SHIP = ("-e", "pgtwin_image_from_controller=true")  # step 1: the nodes have no image; cluster.yml ships it


@pytest.fixture(scope="module", params=[mode for mode in MODES if mode == "host"])  # from host mode
def cluster(request, node_image, postgres_image):  # pylint: disable=unused-argument
    """A host-mode cluster on nodes that can also run containers (privileged, an empty podman store of their
    own: the runbook ships the image from the controller)."""
    yield from running_cluster(request, nested_podman=True, shared_images=False)


def stop_resource(cluster):
    cluster.live_node().sh("crm_resource --resource %s --meta --set-parameter target-role --parameter-value Stopped"
                           % harness.CLONE)
    wait_for("the resource stopped on both nodes", lambda: not cluster.roles(), 120, 0.5)


def test_container_mode_refused_over_the_host_mode_state_directory(cluster):
    """cluster.yml in container mode before the state directory was moved aside: the Btrfs mount would hide
    it, so btrfs_storage refuses, naming the directory and what to do, before anything changes."""
    wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    cluster.container_mode = True
    cluster.write_inventory()
    try:
        proc, _output = cluster.run_playbook("cluster.yml", "-e", "pgtwin_import_pgdata=%s/data" % OLD, *SHIP)
    finally:
        cluster.container_mode = False
        cluster.write_inventory()
    out = proc.stdout.decode()
    assert proc.returncode != 0
    assert "/var/lib/pgtwin is not empty" in out and "Nothing was made or mounted" in out, out[-3000:]
    assert wait_for("the same healthy host-mode pair", cluster.healthy, 60, 0.5)
    for node in cluster.nodes:
        assert node.sh("findmnt -n -o FSTYPE /var/lib/pgtwin || true").strip() != "btrfs"
        assert node.sh("ls /srv/storage").strip() == "", "a loop file was created"


def test_runbook_host_to_container_mode(cluster, load):
    writer, sampler = load
    primary, _standby = wait_for("a healthy pair", cluster.healthy, 120, 0.5)
    timeline = cluster.record(primary.name).split(":")[1]
    began = time.monotonic()
    # 1. Stop the resource (downtime begins).
    stop_resource(cluster)
    stopped = time.monotonic()  # a commit acknowledged before this was in flight when the stop began
    # 2. Move each node's host-mode state directory aside: it becomes the Btrfs mount point.
    for node in cluster.nodes:
        node.sh("mv /var/lib/pgtwin %s" % OLD)
    # 3. cluster.yml in container mode, importing the old data directory. What cannot be imported is refused
    #    before the pgtwin role changes anything (the storage is laid out by then: step 3 does that anyway).
    cluster.container_mode = True
    cluster.write_inventory()
    first = cluster.nodes[0]
    for source, expected, prepare in (("/nonexistent", "has no PG_VERSION", ""),
                                      (OLD + "/data", "has a postmaster.pid", "touch %s/data/postmaster.pid" % OLD)):
        if prepare:
            first.sh(prepare)
        try:
            proc, _output = cluster.run_playbook("cluster.yml", "-e", "pgtwin_import_pgdata=" + source, *SHIP)
        finally:
            first.sh("rm -f %s/data/postmaster.pid" % OLD)
        assert proc.returncode != 0 and expected in proc.stdout.decode(), proc.stdout.decode()[-3000:]
        assert "Nothing was imported" in proc.stdout.decode()
        assert not cluster.roles(), "the resource was started"
        assert first.sh("ls -A %s" % cluster.pgdata(first)).strip() == ""
    recap = cluster.playbook("cluster.yml", "-e", "pgtwin_import_pgdata=%s/data" % OLD, *SHIP)
    assert {"poststack.core.pgtwin : Copy it into the new data directory",
            "poststack.core.pgtwin : Load the image on the node"} <= set(recap["changed_tasks"]), recap
    new_primary, _new_standby = wait_for("a healthy pair in container mode", cluster.healthy, 240, 1)
    wait_for("a commit after the move", lambda: writer.first_ack_after(stopped), 60, 0.1)
    downtime = writer.first_ack_after(stopped) - began
    for node in cluster.nodes:
        info = json.loads(node.sh("podman inspect --type container %s" % cluster.container_name(node)))[0]
        assert info["State"]["Running"] and info["Config"]["User"] == "999:999"
        assert node.sh("findmnt -n -o FSTYPE /var/lib/pgtwin").strip() == "btrfs"
    # The same cluster went on: the timeline is the one before, or the next after one promotion.
    assert int(cluster.record(new_primary.name).split(":")[1]) in (int(timeline), int(timeline) + 1)
    verdict = assert_no_loss(cluster, writer, sampler)
    recap = cluster.playbook("cluster.yml", *SHIP)
    assert recap["changed"] == 0, recap
    print("\nhost -> container mode: writes stopped for %.1f s; %d rows acknowledged, %d lost"
          % (downtime, verdict["acknowledged"], verdict["lost"]))
