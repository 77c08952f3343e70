"""The Docker engine the tests use: the one DOCKER_HOST names when it answers, else the private engine of
scripts/docker-engine.sh (its own data, sockets and no firewall rules; see that script). `make test` starts the
private engine for the integration layer and stops it afterwards; a test run outside it starts the engine when
needed and, unless its workers share it (pytest-xdist), stops it at the end."""
import contextlib
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "docker-engine.sh")


def answers(env):
    try:
        return subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=env,
                              capture_output=True, check=False, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start():
    """(DOCKER_HOST, whether this call started the engine)."""
    if os.environ.get("DOCKER_HOST") and answers(os.environ):
        return os.environ["DOCKER_HOST"], False
    running = subprocess.run([SCRIPT, "status"], capture_output=True, check=False, timeout=60).returncode == 0
    done = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError("no Docker engine: %s" % (done.stderr or done.stdout).strip())
    host = done.stdout.strip().splitlines()[-1].split("=", 1)[1]
    return host, not running and "PYTEST_XDIST_WORKER" not in os.environ


def stop():
    subprocess.run([SCRIPT, "stop"], capture_output=True, check=False, timeout=60)


def docker(host, *args, check=True, **kwargs):
    return subprocess.run(["docker", *args], env=dict(os.environ, DOCKER_HOST=host), capture_output=True,
                          text=True, check=check, **kwargs)


def load_from_podman(host, image):
    """Put an image podman built into the engine's store (as a node without a registry gets it)."""
    saved = subprocess.Popen(["podman", "save", "--format", "docker-archive", image], stdout=subprocess.PIPE)
    try:
        loaded = subprocess.run(["docker", "load"], stdin=saved.stdout, capture_output=True, text=True,
                                env=dict(os.environ, DOCKER_HOST=host), check=False, timeout=300)
    finally:
        saved.stdout.close()  # podman save gets EPIPE instead of blocking when docker load gave up
        saved.wait(timeout=300)
    if loaded.returncode != 0 or saved.returncode != 0:
        raise RuntimeError("podman save %s | docker load failed: %s" % (image, loaded.stderr.strip()))


def same_image(host, image):
    """Whether Docker's store has podman's image of that name, the same one (a rebuilt image keeps its name; the
    engine's store outlives test runs). A docker-archive keeps the image's ID."""
    ids = [subprocess.run(command, capture_output=True, text=True, check=False,
                          env=dict(os.environ, DOCKER_HOST=host)).stdout.strip().replace("sha256:", "")
           for command in (["podman", "image", "inspect", "--format", "{{.Id}}", image],
                           ["docker", "image", "inspect", "--format", "{{.Id}}", image])]
    return bool(ids[0]) and ids[0] == ids[1]


@contextlib.contextmanager
def running(images=()):
    """The engine for a test module: DOCKER_HOST set while it runs (the code under test inherits it, as on a host
    with a Docker engine), the images podman built moved into its store, and everything as it was afterwards (the
    engine stopped when this call started it)."""
    host, started = start()
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    try:
        for image in images:
            if not same_image(host, image):
                load_from_podman(host, image)
        yield host
    finally:
        if before is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = before
        if started:
            stop()
