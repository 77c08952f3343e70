"""Container mode with Docker inside the nodes (issue 16): each node runs its own Docker engine, which the pgtwin
agent drives (container_runtime=docker); cluster.yml ships poststack's PostgreSQL image from this host's podman
into each node's engine. A shorter run than test_pgtwin_cluster.py: the cluster comes up in sync with PostgreSQL
in Docker containers, cluster.yml is idempotent, kill -9 failovers rejoin through pg_rewind without a lost
row, and a planned switchover."""
import os

import pytest

import harness
from harness import assert_no_loss

CYCLES = int(os.environ.get("PGTWIN_HA_DOCKER_CYCLES", "2"))


@pytest.fixture(scope="module")
def docker_cluster(node_image, postgres_image):  # pylint: disable=unused-argument
    lab = harness.Cluster(container_mode=True, container_runtime="docker", shared_images=False)
    with harness.created(lab, "docker"):
        yield lab


@pytest.fixture()
def docker_load(docker_cluster):  # pylint: disable=redefined-outer-name
    with harness.running_load(docker_cluster) as load:
        yield load


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
    times = harness.kill9_failovers(docker_cluster, writer, CYCLES)
    assert_no_loss(docker_cluster, writer, sampler)
    print("\ncontainer mode on Docker, kill -9: failover %s s" % ", ".join("%.2f" % t for t in times))


def test_docker_switchover(docker_cluster, docker_load):
    writer, sampler = docker_load
    harness.planned_switchover(docker_cluster)
    assert_no_loss(docker_cluster, writer, sampler)
