"""Fixtures for the runtime roles: unique project names, free ports, cleanup of containers/volumes/networks."""
import os
import shutil
import uuid

import pytest

import docker_engine
from ansible_run import run_playbook
# The runtime tests import these from here.
from lab import Runtime, free_port, podman  # noqa: F401  pylint: disable=unused-import

# What the runtime tests run: poststack's PostgreSQL image, and the images project containers build on.
IMAGES = ("localhost/poststack/postgres-debian:latest", "localhost/poststack/base-debian:latest",
          os.environ.get("POSTSTACK_BASE_IMAGE", "localhost/debian:bookworm-slim"))


PODMAN = Runtime("podman")


class Project:
    """A throwaway poststack project: name, port, password; removes everything it created."""

    def __init__(self, tmp_path, runtime=PODMAN):
        self.name = f"it{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.password = f"pw-{uuid.uuid4().hex[:8]}'\"$;"
        self.dir = tmp_path / self.name
        self.dir.mkdir()
        self.runtime = runtime

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
        if self.runtime.name != "podman":
            values["poststack_container_runtime"] = self.runtime.name
        values.update(extra)
        return values

    def cleanup(self):
        cli = self.runtime.cli
        names = cli("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=io.poststack.project={self.name}",
                    check=False).stdout.split()
        for name in names:
            cli("rm", "-f", *(["-t", "0"] if self.runtime.name == "podman" else []), name, check=False)
        for volume in cli("volume", "ls", "-q", "--filter", f"label=io.poststack.project={self.name}",
                          check=False).stdout.split():
            cli("volume", "rm", "-f", volume, check=False)
        cli("network", "rm", f"{self.name}-net", check=False)
        shutil.rmtree(f"/var/lib/poststack/{self.container}", ignore_errors=True)
        shutil.rmtree(f"/var/lib/poststack/{self.name}-containers", ignore_errors=True)
        for image in cli("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                         f"reference=localhost/{self.name}/*", check=False).stdout.split():
            cli("rmi", "-f", image, check=False)


@pytest.fixture(scope="module")
def docker_engine_with_images():
    """A Docker engine holding the images podman built: poststack's images are built by images.yml with podman
    once, and moved into Docker's store (building with Docker is poststack_image's own test)."""
    built = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert built.rc == 0 and built.failed == 0, built.stdout[-3000:]
    with docker_engine.running(IMAGES) as host:
        yield host


@pytest.fixture(params=["podman", "docker"])
def runtime(request):
    """Each test that takes it runs on podman and on a real Docker engine."""
    if request.param == "docker":
        request.getfixturevalue("docker_engine_with_images")
    return Runtime(request.param)


def runtime_of(request):
    """The test's runtime: the ``runtime`` fixture's when the test takes it, else podman."""
    return request.getfixturevalue("runtime") if "runtime" in request.fixturenames else PODMAN


@pytest.fixture
def project(tmp_path, request):
    created = Project(tmp_path, runtime_of(request))
    yield created
    created.cleanup()


@pytest.fixture
def other_project(tmp_path, request):
    created = Project(tmp_path, runtime_of(request))
    yield created
    created.cleanup()
