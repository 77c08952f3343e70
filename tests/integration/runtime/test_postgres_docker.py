"""The postgres role's docker path on a real Docker engine (the private one of scripts/docker-engine.sh, or the one
DOCKER_HOST names), driven by community.docker and checked with the docker CLI."""
import psycopg
import pytest

import docker_engine
from ansible_run import run_playbook

IMAGE = "localhost/poststack/postgres-debian:latest"


@pytest.fixture(scope="module")
def docker_host():
    images = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert images.rc == 0 and images.failed == 0, images.stdout[-3000:]
    # the image podman built, in Docker's store (building with Docker is the images' own test)
    with docker_engine.running([IMAGE]) as host:
        yield host


def play(state):
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"},
         "vars": {"postgres_state": state, "postgres_runtime": "docker"}}]}]


@pytest.fixture
def docker_project(project, docker_host):
    yield project
    for volume in (project.container + "-data", project.container + "-backups"):
        docker_engine.docker(docker_host, "volume", "rm", "-f", volume, check=False)
    docker_engine.docker(docker_host, "network", "rm", project.name + "-net", check=False)


def test_lifecycle_with_docker(docker_project, docker_host):
    project = docker_project
    env = {"DOCKER_HOST": docker_host}
    first = run_playbook(play("started"), extra_vars=project.vars(), env=env)
    assert first.rc == 0, first.stdout[-4000:]
    assert first.changed > 0
    inspect = docker_engine.docker(docker_host, "inspect", "-f", "{{.Config.Labels}}", project.container)
    assert "io.poststack.component:postgres" in inspect.stdout
    status = docker_engine.docker(docker_host, "exec", project.container, "grep", "-E", "^(CapBnd|NoNewPrivs)",
                                  "/proc/1/status").stdout.split()
    assert status == ["CapBnd:", "0000000000000000", "NoNewPrivs:", "1"]
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=project.password, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("poststack",)
    again = run_playbook(play("started"), extra_vars=project.vars(), env=env)
    assert again.rc == 0 and again.changed == 0, [t["task"]["name"] for t in again.tasks
                                                  if t["hosts"]["localhost"].get("changed")]
    stopped = run_playbook(play("stopped"), extra_vars=project.vars(), env=env)
    assert stopped.rc == 0 and stopped.changed == 1
    # Stopped, not replaced: the same container, still carrying poststack's labels.
    labels = docker_engine.docker(docker_host, "inspect", "-f", "{{.State.Status}} {{.Config.Labels}}",
                                  project.container).stdout
    assert labels.startswith("exited ") and "io.poststack.component:postgres" in labels
    removed = run_playbook(play("absent"), extra_vars=project.vars(), env=env)
    assert removed.rc == 0 and removed.changed == 1
    assert docker_engine.docker(docker_host, "container", "inspect", project.container, check=False).returncode == 1
    assert docker_engine.docker(docker_host, "volume", "inspect", project.container + "-data").returncode == 0
