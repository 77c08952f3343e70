"""Small helpers the test layers share: the podman CLI and a free TCP port on 127.0.0.1."""
import socket
import subprocess


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
