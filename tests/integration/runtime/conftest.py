"""Fixtures for the runtime roles: unique project names, free ports, cleanup of containers/volumes/networks."""
import shutil
import uuid

import pytest

# The runtime tests import these from here.
from lab import free_port, podman  # noqa: F401  pylint: disable=unused-import


class Project:
    """A throwaway poststack project: name, port, password; removes everything it created."""

    def __init__(self, tmp_path):
        self.name = f"it{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.password = f"pw-{uuid.uuid4().hex[:8]}'\"$;"
        self.dir = tmp_path / self.name
        self.dir.mkdir()

    @property
    def container(self):
        return f"{self.name}-postgres"

    def vars(self, **extra):
        values = {
            "poststack_project_name": self.name,
            "poststack_project_dir": str(self.dir),
            "poststack_log_dir": str(self.dir / "logs"),
            "postgres_host_port": self.port,
            "postgres_password": self.password,
        }
        values.update(extra)
        return values

    def cleanup(self):
        names = podman("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=io.poststack.project={self.name}",
                       check=False).stdout.split()
        for name in names:
            podman("rm", "-f", "-t", "0", name, check=False)
        for volume in podman("volume", "ls", "-q", "--filter", f"label=io.poststack.project={self.name}",
                             check=False).stdout.split():
            podman("volume", "rm", "-f", volume, check=False)
        podman("network", "rm", "-f", f"{self.name}-net", check=False)
        shutil.rmtree(f"/var/lib/poststack/{self.container}", ignore_errors=True)
        shutil.rmtree(f"/var/lib/poststack/{self.name}-containers", ignore_errors=True)
        for image in podman("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                            f"reference=localhost/{self.name}/*", check=False).stdout.split():
            podman("rmi", "-f", image, check=False)


@pytest.fixture
def project(tmp_path):
    created = Project(tmp_path)
    yield created
    created.cleanup()


@pytest.fixture
def other_project(tmp_path):
    created = Project(tmp_path)
    yield created
    created.cleanup()
