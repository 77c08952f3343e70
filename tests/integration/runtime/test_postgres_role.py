"""The postgres role for real: lifecycle, isolation between projects, persistence, rotation, bad input, security."""
import os
import socket

import psycopg
import pytest

from ansible_run import run_playbook
from conftest import podman

BASE = os.environ.get("POSTSTACK_BASE_IMAGE", "localhost/debian:bookworm-slim")


@pytest.fixture(scope="module", autouse=True)
def images():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


def postgres_play(state="started", environment=None):
    task = {"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"},
            "vars": {"postgres_state": state}}
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [task]}
    if environment:
        play["environment"] = environment
    return [play]


def connect(project, password=None):
    return psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                           password=password or project.password, connect_timeout=5)


def container_id(project):
    return project.runtime.cli("inspect", "-f", "{{.Id}}", project.container).stdout.strip()


def test_two_projects_side_by_side_and_idempotent(project, other_project):
    first = run_playbook(postgres_play(), extra_vars=project.vars())
    assert first.rc == 0 and first.changed > 0, first.stdout[-3000:]
    assert run_playbook(postgres_play(), extra_vars=other_project.vars()).rc == 0
    again = run_playbook(postgres_play(), extra_vars=project.vars())
    assert again.rc == 0 and again.changed == 0, [t["task"]["name"] for t in again.tasks
                                                  if t["hosts"]["localhost"].get("changed")]
    with connect(project) as conn:
        conn.execute("CREATE TABLE mine (v int)")
    with connect(other_project) as conn:
        assert conn.execute("SELECT to_regclass('public.mine')").fetchone() == (None,)

    stopped = run_playbook(postgres_play("stopped"), extra_vars=project.vars())
    assert stopped.rc == 0 and stopped.changed == 1
    with pytest.raises(psycopg.OperationalError):
        connect(project)
    with connect(other_project) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert run_playbook(postgres_play("stopped"), extra_vars=project.vars()).changed == 0


def test_data_survives_restart_and_recreation(runtime, project):
    assert run_playbook(postgres_play(), extra_vars=project.vars()).rc == 0
    with connect(project) as conn:
        conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
    before = container_id(project)
    restarted = run_playbook(postgres_play("restarted"), extra_vars=project.vars())
    assert restarted.rc == 0 and restarted.changed >= 1
    assert container_id(project) == before
    with connect(project) as conn:
        assert conn.execute("SELECT answer FROM kept").fetchone() == (42,)
    removed = run_playbook(postgres_play("absent"), extra_vars=project.vars())
    assert removed.rc == 0 and not runtime.exists("container", project.container)
    assert runtime.exists("volume", f"{project.container}-data")
    recreated = run_playbook(postgres_play(), extra_vars=project.vars())
    assert recreated.rc == 0, recreated.failures()
    assert container_id(project) != before
    with connect(project) as conn:
        assert conn.execute("SELECT answer FROM kept").fetchone() == (42,)


def test_password_rotation_without_restart(runtime, project):
    """The password changes in the running server (the secret file, then ALTER ROLE): same container, not
    restarted; the old password no longer opens it."""
    assert run_playbook(postgres_play(), extra_vars=project.vars()).rc == 0
    before = container_id(project)
    started = runtime.cli("inspect", "-f", "{{.State.StartedAt}}", project.container).stdout
    old = project.password
    project.password = "rotated-\u00e9\\'pw"
    rotated = run_playbook(postgres_play(), extra_vars=project.vars())
    assert rotated.rc == 0, rotated.stdout[-3000:]
    assert rotated.results("postgres") is not None
    assert container_id(project) == before
    assert runtime.cli("inspect", "-f", "{{.State.StartedAt}}", project.container).stdout == started
    with pytest.raises(psycopg.OperationalError):
        connect(project, old)
    with connect(project) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("poststack",)
    assert run_playbook(postgres_play(), extra_vars=project.vars()).changed == 0
    # The password is in no log, result, argv or inspect output.
    assert project.password not in rotated.stdout and old not in rotated.stdout
    assert project.password not in runtime.cli("inspect", project.container).stdout


def test_bad_input_is_refused_before_anything_starts(project, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", project.port))
        holder.listen(1)
        busy = run_playbook(postgres_play(), extra_vars=project.vars())
    assert busy.rc != 0 and f"127.0.0.1:{project.port} is already in use by another process" in busy.stdout
    assert podman("container", "exists", project.container, check=False).returncode == 1

    bad_name = run_playbook(postgres_play(), extra_vars=project.vars(postgres_container_name="bad name!"))
    assert bad_name.rc != 0 and "container name 'bad name!' must start with a letter or digit" in bad_name.stdout

    bad_port = run_playbook(postgres_play(), extra_vars=project.vars(postgres_host_port=70000))
    assert bad_port.rc != 0 and "postgres_host_port '70000' must be a port number from 1 to 65535" in bad_port.stdout

    no_password = run_playbook(postgres_play(), extra_vars=project.vars(postgres_password=""))
    assert no_password.rc != 0 and "postgres_password is empty" in no_password.stdout

    no_runtime = run_playbook(postgres_play(environment={"PATH": "/nonexistent"}), extra_vars=project.vars())
    assert no_runtime.rc != 0 and "no container runtime found" in no_runtime.stdout

    env_file = tmp_path / "bad.env"
    env_file.write_text("POSTSTACK_POSTGRES_DB=fine\nthis line is wrong\n")
    bad_env = run_playbook(postgres_play(), extra_vars=project.vars(), env={"POSTSTACK_ENV_FILE": str(env_file)})
    assert bad_env.rc != 0 and f"{env_file} line 2: expected KEY=VALUE" in bad_env.stdout

    assert podman("container", "exists", project.container, check=False).returncode == 1
    assert podman("volume", "exists", f"{project.container}-data", check=False).returncode == 1


def test_settings_from_environment_and_dotenv(project, tmp_path):
    env_file = tmp_path / "project.env"
    env_file.write_text('POSTSTACK_POSTGRES_DB="from_dotenv"\nPOSTSTACK_POSTGRES_USER=dotenv_user\n')
    variables = project.vars()
    run = run_playbook(postgres_play(), extra_vars=variables,
                       env={"POSTSTACK_ENV_FILE": str(env_file), "POSTSTACK_POSTGRES_USER": "env_user"})
    assert run.rc == 0, run.stdout[-3000:]
    # environment beats .env; .env beats the default
    with psycopg.connect(host="127.0.0.1", port=project.port, user="env_user", dbname="from_dotenv",
                         password=project.password, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == ("from_dotenv", "env_user")


def test_security_identity_permissions_and_network_isolation(project, tmp_path):
    assert run_playbook(postgres_play(), extra_vars=project.vars(postgres_read_only_rootfs=True)).rc == 0
    assert podman("exec", project.container, "id", "-u").stdout.strip() == "999"
    assert podman("exec", project.container, "stat", "-c", "%a %u", "/data/postgres/pgdata").stdout.split() == ["700", "999"]
    assert podman("inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", project.container).stdout.strip() == "true"
    assert podman("exec", project.container, "touch", "/usr/local/x", check=False).returncode != 0
    # No capabilities at all (bounding set empty, so not even a setuid program gets one), no new privileges.
    status = dict(line.split(":\t", 1) for line in
                  podman("exec", project.container, "cat", "/proc/1/status").stdout.splitlines() if ":\t" in line)
    assert status["CapBnd"].strip() == "0000000000000000" and status["CapEff"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"
    # Replication only from the container itself (postgres_replication_cidrs is empty by default).
    hba = podman("exec", project.container, "sh", "-c", "grep -v '^#' \"$PGDATA/pg_hba.conf\"").stdout
    replication = sorted(line.split()[3] for line in hba.splitlines() if line.split()[1:2] == ["replication"])
    assert replication == ["127.0.0.1/32", "::1/128"], hba
    # Published on loopback only.
    ports = podman("port", project.container).stdout
    assert f"127.0.0.1:{project.port}" in ports and "0.0.0.0" not in ports

    ip = podman("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{project.name}-net\").IPAddress}}}}",
                project.container).stdout.strip()
    probe = ["bash", "-c", f"timeout 3 bash -c '</dev/tcp/{ip}/5432' && echo open"]
    same = podman("run", "--rm", "--network", f"{project.name}-net", BASE, *probe, check=False)
    assert same.stdout.strip() == "open", same.stderr
    other_net = f"{project.name}-other"
    # Another project's network (poststack creates every project network with isolate=true).
    podman("network", "create", "--opt", "isolate=true", other_net)
    try:
        other = podman("run", "--rm", "--network", other_net, BASE, *probe, check=False)
        assert other.returncode != 0 and "open" not in other.stdout
        by_name = podman("run", "--rm", "--network", other_net, BASE,
                         "bash", "-c", f"timeout 3 bash -c '</dev/tcp/{project.container}/5432'", check=False)
        assert by_name.returncode != 0
    finally:
        podman("network", "rm", "-f", other_net, check=False)


def test_systemd_unit_written_enabled_only_under_systemd(runtime, project, tmp_path):
    """The unit starts and stops the container with the runtime that runs it (podman or docker)."""
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    variables = project.vars(postgres_systemd_unit=True, postgres_systemd_unit_dir=str(unit_dir))
    first = run_playbook(postgres_play(), extra_vars=variables)
    assert first.rc == 0, first.stdout[-3000:]
    unit = unit_dir / f"poststack-{project.container}.service"
    text = unit.read_text()
    assert f"{runtime.name} start --attach {project.container}" in text
    assert f"{runtime.name} stop --time 30 {project.container}" in text
    assert "WantedBy=multi-user.target" in text
    # This host does not run systemd as PID 1: the role says the unit is installed but not enabled.
    assert "is installed but not enabled" in first.stdout
    assert run_playbook(postgres_play(), extra_vars=variables).changed == 0
    assert run_playbook(postgres_play("absent"), extra_vars=variables).rc == 0
    assert not unit.exists()
