"""Container mode with Docker inside the nodes (issue 16): each node runs its own Docker engine, which the pgtwin
agent drives (container_runtime=docker); cluster.yml ships poststack's PostgreSQL image from this host's podman
into each node's engine. A shorter run than test_pgtwin_cluster.py: the cluster comes up in sync with PostgreSQL
in Docker containers, cluster.yml is idempotent, kill -9 failovers rejoin through pg_rewind without a lost
row, and a planned switchover."""
import os
import time

import pytest

import harness
from harness import assert_no_loss, wait_for

CYCLES = int(os.environ.get("PGTWIN_HA_DOCKER_CYCLES", "2"))


@pytest.fixture(scope="module")
def docker_cluster(node_image, postgres_image):  # pylint: disable=unused-argument
    lab = harness.Cluster(container_mode=True, container_runtime="docker", shared_images=False)
    try:
        lab.create()
        wait_for("a primary and a streaming sync standby", lab.healthy, 120, 1)
        yield lab
    finally:
        harness.save_logs(lab, "docker")
        lab.destroy()


@pytest.fixture()
def docker_load(docker_cluster):  # pylint: disable=redefined-outer-name
    writer, sampler = harness.Writer(docker_cluster), harness.Sampler(docker_cluster)
    writer.start()
    sampler.start()
    wait_for("the writer's first commit", lambda: writer.acked, 60, 0.1)
    yield writer, sampler
    writer.stop()
    sampler.stop()


def test_docker_cluster_in_sync_and_idempotent(docker_cluster):
    primary, standby = docker_cluster.healthy()
    for node in (primary, standby):
        running = node.sh("docker ps --filter label=poststack.pgtwin --format '{{.Names}} {{.Image}}'").split()
        assert running == [harness.Cluster.container_name(node), harness.POSTGRES_IMAGE], running
        assert node.sh("podman ps -q").strip() == ""  # the node's podman runs nothing: Docker does
    assert docker_cluster.record(standby.name) == "SYNC:" + docker_cluster.record(primary.name).split(":")[1]
    recap = docker_cluster.playbook("cluster.yml")
    assert recap["changed"] == 0 and recap["failures"] == 0, recap


def test_docker_kill9_failover_rejoins_with_pg_rewind(docker_cluster, docker_load):
    writer, sampler = docker_load
    times = []
    for _cycle in range(CYCLES):
        old, standby = wait_for("a healthy pair", docker_cluster.healthy, 120, 0.5)
        rewinds = docker_cluster.agent_log(old).count("start: pg_rewind from the primary")
        began = time.monotonic()
        docker_cluster.kill_postgres(old)
        wait_for("a commit on the new primary", lambda: writer.first_ack_after(began, standby), 30, 0.05)
        times.append(writer.first_ack_after(began, standby) - began)
        assert docker_cluster.rejoin() == (standby, old)
        assert docker_cluster.agent_log(old).count("start: pg_rewind from the primary") == rewinds + 1
    assert_no_loss(docker_cluster, writer, sampler)
    print("\ncontainer mode on Docker, kill -9: failover %s s" % ", ".join("%.2f" % t for t in times))


def test_docker_switchover(docker_cluster, docker_load):
    writer, sampler = docker_load
    old, standby = wait_for("a healthy pair", docker_cluster.healthy, 120, 0.5)
    result = docker_cluster.resource_module(promoted_node=standby.name)
    assert result["changed"] and result["promoted"] == [standby.name], result
    assert wait_for("the old primary back as sync standby", docker_cluster.healthy, 120, 0.5) == (standby, old)
    assert_no_loss(docker_cluster, writer, sampler)
