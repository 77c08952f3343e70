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


@pytest.fixture
def backup_dir(lab):
    """A fresh directory for this test's backups, inside the container's backups mount."""
    path = os.path.join(lab.backups, f"t-{uuid.uuid4().hex[:6]}")
    yield path
    subprocess.run(["rm", "-rf", path], check=False)
