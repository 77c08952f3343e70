"""Fixtures for tests/integration/backup: one real PostgreSQL container per session, laid out like the postgres
role's (a data volume, a backups host directory at /data/postgres/backups, a conf.d host directory), and a fresh
backup directory per test."""
import os
import subprocess
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for path in (os.path.dirname(HERE), os.path.dirname(os.path.dirname(HERE))):
    if path not in sys.path:
        sys.path.insert(0, path)

import docker_engine  # noqa: E402
from backup_lab import IMAGE, Lab, podman  # noqa: E402  (after the sys.path set-up)

__all__ = ["IMAGE", "Lab", "podman"]


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    podman("image", "exists", IMAGE)
    instance = Lab(str(tmp_path_factory.mktemp("backup-lab")))
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def docker_lab(tmp_path_factory):
    """The same container on a real Docker engine (the image moved there from podman's store)."""
    podman("image", "exists", IMAGE)
    with docker_engine.running([IMAGE]):
        instance = Lab(str(tmp_path_factory.mktemp("backup-lab-docker")), runtime="docker")
        try:
            instance.start()
            yield instance
        finally:
            instance.stop()


@pytest.fixture(params=["podman", "docker"])
def either_lab(request):
    """Each test that takes it runs against the container on podman and on Docker."""
    return request.getfixturevalue("lab" if request.param == "podman" else "docker_lab")


@pytest.fixture
def backup_dir(request):
    """A fresh directory for this test's backups, inside the backups mount of the test's container."""
    lab = request.getfixturevalue("either_lab" if "either_lab" in request.fixturenames else "lab")
    path = os.path.join(lab.backups, f"t-{uuid.uuid4().hex[:6]}")
    yield path
    subprocess.run(["rm", "-rf", path], check=False)
