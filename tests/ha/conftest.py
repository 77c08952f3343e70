"""Fixtures for the two-node pgtwin cluster tests (real podman, corosync, pacemaker, PostgreSQL)."""
import os
import time

import pytest

import harness

LOG_DIR = os.path.join(harness.ROOT, "logs", "pgtwin-ha")


@pytest.fixture(scope="session")
def node_image():
    harness.build_image()
    return harness.IMAGE


@pytest.fixture(scope="module")
def cluster(node_image):  # pylint: disable=unused-argument,redefined-outer-name
    lab = harness.Cluster()
    began = time.monotonic()
    try:
        lab.create()
        harness.wait_for("a primary and a streaming sync standby", lab.healthy, 120, 1)
        lab.bring_up_seconds = time.monotonic() - began
        yield lab
    finally:
        save_logs(lab)
        lab.destroy()


def save_logs(lab):
    """Agent, PostgreSQL and Pacemaker logs of every node for the post-mortem of a failed run."""
    os.makedirs(LOG_DIR, exist_ok=True)
    for node in lab.nodes:
        sources = ((harness.AGENT_LOG, "agent.log"), ("/var/lib/pgtwin/pgtwin-postgresql.log", "postgresql.log"),
                   ("/var/log/pacemaker/pacemaker.log", "pacemaker.log"))
        for source, name in sources:
            target = os.path.join(LOG_DIR, "%s-%s" % (node.name, name))
            harness.podman("cp", "%s:%s" % (node.container, source), target, check=False)


@pytest.fixture()
def load(cluster):  # pylint: disable=redefined-outer-name
    """A writer committing numbered rows and a sampler watching for two primaries, for one test."""
    writer = harness.Writer(cluster)
    sampler = harness.Sampler(cluster)
    writer.start()
    sampler.start()
    harness.wait_for("the writer's first commit", lambda: writer.acked, 60, 0.1)
    yield writer, sampler
    writer.stop()
    sampler.stop()
