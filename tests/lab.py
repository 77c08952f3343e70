"""Small helpers the test layers share: the podman CLI, a runtime's CLI, and a free TCP port on 127.0.0.1."""
import socket
import subprocess


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Runtime:
    """The container runtime a test runs on (podman, or docker with the engine DOCKER_HOST names): its CLI for the
    checks, which the two spell alike."""

    def __init__(self, name="podman"):
        self.name = name

    def cli(self, *args, check=True):
        return subprocess.run([self.name, *args], capture_output=True, text=True, check=check)

    def exists(self, kind, name):
        """Whether the container, volume, network or image ``name`` exists (``kind`` as the CLI names it)."""
        return self.cli(kind, "inspect", name, check=False).returncode == 0
