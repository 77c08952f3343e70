"""Fixtures for the two-node pgtwin cluster tests (real podman, corosync, pacemaker, PostgreSQL)."""
import os
import time

import pytest

import harness

LOG_DIR = os.path.join(harness.ROOT, "logs", "pgtwin-ha")


# Both modes of the agent run every test (PGTWIN_HA_MODES=host or =container for one).
MODES = [mode for mode in os.environ.get("PGTWIN_HA_MODES", "host,container").split(",") if mode]


@pytest.fixture(scope="session")
def node_image():
    harness.build_image()
    return harness.IMAGE


@pytest.fixture(scope="session")
def postgres_image():
    """poststack's PostgreSQL image, which the nodes' podman runs in container mode (built when missing)."""
    return harness.build_postgres_image()


@pytest.fixture(scope="module", params=MODES)
def cluster(request, node_image):  # pylint: disable=unused-argument,redefined-outer-name
    if request.param == "container":
        request.getfixturevalue("postgres_image")
    lab = harness.Cluster(container_mode=request.param == "container")
    began = time.monotonic()
    try:
        lab.create()
        harness.wait_for("a primary and a streaming sync standby", lab.healthy, 120, 1)
        lab.bring_up_seconds = time.monotonic() - began
        yield lab
    finally:
        harness.save_logs(lab, LOG_DIR)
        lab.destroy()


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
