"""The postgres role's docker path, against a real Docker engine API: podman's Docker-compatible service (no
Docker engine runs here, so podman stands in for it) driven by the real docker CLI and community.docker."""
import os
import shutil
import subprocess
import time

import psycopg
import pytest

from ansible_run import run_playbook

# podman's compat API reports network mode, bind options and dropped capabilities (the list of capabilities instead
# of ALL) differently from Docker; compare what it reports faithfully and ignore those fields, which real Docker
# reports as they were set.
COMPARISONS = {"network_mode": "ignore", "volumes": "ignore", "cap_drop": "ignore"}


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory):
    if not shutil.which("docker"):
        pytest.skip("no docker CLI on this host (the Docker engine itself is replaced by podman's API service)")
    sock = tmp_path_factory.mktemp("docker") / "docker.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    yield f"unix://{sock}"
    service.terminate()
    service.wait(timeout=20)


def play(state):
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"},
         "vars": {"postgres_state": state, "postgres_runtime": "docker",
                  "postgres_docker_comparisons": COMPARISONS}}]}]


def test_lifecycle_with_docker(project, docker_host):
    env = {"DOCKER_HOST": docker_host}
    first = run_playbook(play("started"), extra_vars=project.vars(), env=env)
    assert first.rc == 0, first.stdout[-4000:]
    assert first.changed > 0
    inspect = subprocess.run(["docker", "inspect", "-f", "{{.Config.Labels}}", project.container],
                             capture_output=True, text=True, env=dict(os.environ, **env), check=True)
    assert "io.poststack.component:postgres" in inspect.stdout
    status = subprocess.run(["docker", "exec", project.container, "grep", "-E", "^(CapBnd|NoNewPrivs)", "/proc/1/status"],
                            capture_output=True, text=True, env=dict(os.environ, **env), check=True).stdout.split()
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
    labels = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}} {{.Config.Labels}}", project.container],
                            capture_output=True, text=True, env=dict(os.environ, **env), check=True).stdout
    assert labels.startswith("exited ") and "io.poststack.component:postgres" in labels
    removed = run_playbook(play("absent"), extra_vars=project.vars(), env=env)
    assert removed.rc == 0 and removed.changed == 1
    assert subprocess.run(["podman", "container", "exists", project.container], check=False).returncode == 1
