"""Container mode on PostgreSQL 17: the same agent and roles with poststack's image built on Debian 13
("trixie", whose packages this machine's Debian mirror serves), the nodes staying Debian 12 with Pacemaker 2.1.
A shorter run than test_pgtwin_cluster.py: the cluster comes up in sync, cluster.yml is idempotent, kill -9
failovers rejoin through pg_rewind 17, and a planned switchover."""
import os

import pytest

import harness
from harness import assert_no_loss

CYCLES = int(os.environ.get("PGTWIN_HA_PG17_CYCLES", "2"))


@pytest.fixture(scope="module")
def image17():
    """postgres-debian:17 on base-debian:trixie on a local trixie import (built once, then cached)."""
    return harness.build_postgres_image(17)


@pytest.fixture(scope="module")
def cluster17(node_image, image17):  # pylint: disable=unused-argument,redefined-outer-name
    lab = harness.Cluster(container_mode=True, pg_major=17)
    with harness.created(lab, "pg17"):
        yield lab


@pytest.fixture()
def load17(cluster17):  # pylint: disable=redefined-outer-name
    with harness.running_load(cluster17) as load:
        yield load


def test_pg17_cluster_in_sync_and_idempotent(cluster17):
    primary, standby = cluster17.healthy()
    version = primary.sh("psql -XAt -h /run/postgresql -d postgres -c 'SHOW server_version_num'", user="postgres")
    assert version.strip().startswith("17"), version
    assert "postgres-debian:17" in primary.sh("podman ps --format '{{.Image}}'")
    assert cluster17.record(standby.name) == "SYNC:" + cluster17.record(primary.name).split(":")[1]
    recap = cluster17.playbook("cluster.yml")
    assert recap["changed"] == 0 and recap["failures"] == 0, recap


def test_pg17_kill9_failover_rejoins_with_pg_rewind(cluster17, load17):
    writer, sampler = load17
    times = harness.kill9_failovers(cluster17, writer, CYCLES)
    assert_no_loss(cluster17, writer, sampler)
    print("\ncontainer mode, PostgreSQL 17, kill -9: failover %s s" % ", ".join("%.2f" % t for t in times))


def test_pg17_switchover(cluster17, load17):
    writer, sampler = load17
    harness.planned_switchover(cluster17)
    assert_no_loss(cluster17, writer, sampler)
