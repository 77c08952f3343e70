"""Runs that change nothing skip work, but still repair drift, report it truthfully in check mode and fail on a
database that does not accept the password (the shortcuts of docs/runtime.md, "No-op runs")."""
import hashlib
import os
import stat

import psycopg
import pytest

from ansible_run import run_playbook
from conftest import podman
from ansible_collections.poststack.core.plugins.module_utils.runtime import (
    ContainerRuntime,
    describe,
    detect_runtime,
    find_resources,
    list_containers,
)


@pytest.fixture(scope="module", autouse=True)
def images():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


def role_play(role, **role_vars):
    task = {"name": role, "ansible.builtin.include_role": {"name": f"poststack.core.{role}"}, "vars": role_vars}
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]


def ran(run, name, role="postgres"):
    """Whether the role's task called `name` did something (not skipped, not every loop item skipped)."""
    result = run.results(f"poststack.core.{role} : {name}")
    if result.get("skipped"):
        return False
    return any(not item.get("skipped") for item in result.get("results", [result]))


def changed_tasks(run):
    """Names of the tasks that changed something, without the role prefix."""
    return [t["task"]["name"].split(" : ", 1)[-1] for t in run.tasks if t["hosts"]["localhost"].get("changed")]


def result(run, name, role="postgres"):
    return run.results(f"poststack.core.{role} : {name}")


def test_postgres_noop_skips_work_but_repairs_drift(project):
    first = run_playbook(role_play("postgres"), extra_vars=project.vars())
    assert first.rc == 0 and first.changed > 0, first.stdout[-3000:]
    assert ran(first, "Wait until PostgreSQL accepts connections")

    again = run_playbook(role_play("postgres"), extra_vars=project.vars())
    assert again.rc == 0 and again.changed == 0, changed_tasks(again)
    for skipped in ("Create the state directory and its secrets and conf.d directories (readable by postgres, UID 999)",
                    "Write the password file", "Write extra settings to conf.d/10-poststack.conf",
                    "Create the project network (isolated from other networks)", "Create the named volumes",
                    "Wait until PostgreSQL accepts connections"):
        assert not ran(again, skipped), skipped
    assert ran(again, "Log in over TCP with the password")
    assert result(again, "Share the runtime with later roles (they skip detecting it again)")[
        "ansible_facts"]["postgres_runtime_detected"]["name"] == "podman"

    state = f"/var/lib/poststack/{project.container}"
    os.chmod(f"{state}/secrets/password", 0o644)
    with open(f"{state}/conf.d/10-poststack.conf", "a", encoding="utf-8") as handle:
        handle.write("work_mem = '64MB'\n")

    checked = run_playbook(role_play("postgres"), extra_vars=project.vars(), check=True)
    assert checked.rc == 0 and checked.changed > 0
    assert result(checked, "Write the password file").get("changed")
    assert result(checked, "Write extra settings to conf.d/10-poststack.conf").get("changed")
    assert stat.S_IMODE(os.stat(f"{state}/secrets/password").st_mode) == 0o644  # check mode wrote nothing

    repaired = run_playbook(role_play("postgres"), extra_vars=project.vars())
    assert repaired.rc == 0, repaired.stdout[-3000:]
    assert {"Write the password file", "Write extra settings to conf.d/10-poststack.conf",
            "Reload the configuration"} <= set(changed_tasks(repaired))
    assert stat.S_IMODE(os.stat(f"{state}/secrets/password").st_mode) == 0o400
    with open(f"{state}/conf.d/10-poststack.conf", encoding="utf-8") as handle:
        assert "work_mem" not in handle.read()
    assert run_playbook(role_play("postgres"), extra_vars=project.vars()).changed == 0


def test_postgres_noop_fails_when_the_database_refuses_the_password(project):
    assert run_playbook(role_play("postgres"), extra_vars=project.vars()).rc == 0
    # Behind the role's back: the server no longer accepts the password the role knows.
    podman("exec", project.container, "psql", "-XAtq", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "postgres",
           "-c", "ALTER ROLE poststack PASSWORD 'not-the-one-in-the-file'")
    broken = run_playbook(role_play("postgres", postgres_wait_timeout=2), extra_vars=project.vars())
    assert broken.rc != 0 and broken.changed == 0
    assert result(broken, "Log in over TCP with the password").get("is_available") is False
    # The error says which login failed and why, in PostgreSQL's words, and that the container itself is fine.
    message = result(broken, "Say what is wrong")["msg"]
    assert message.startswith(f"PostgreSQL in container {project.container} does not take the password login as "
                              f"poststack over TCP on port {project.port} ("), message
    assert "password authentication failed" in message, message
    assert "the container runs and its health check passes" in message, message
    assert project.password not in broken.stdout


def test_runtime_info_finds_existing_volumes_and_networks(project):
    runtime = ContainerRuntime(detect_runtime())
    volume, network = f"{project.name}-probe", f"{project.name}-net"
    assert find_resources(runtime, "volume", [volume]) == {}
    podman("volume", "create", "--label", f"io.poststack.project={project.name}", volume)
    podman("network", "create", "--opt", "isolate=true", network)
    volumes = find_resources(runtime, "volume", [volume, f"{project.name}-missing"])
    assert volumes == {volume: {"name": volume, "driver": "local", "labels": {"io.poststack.project": project.name},
                                "options": {}, "project": project.name, "component": ""}}
    podman("network", "create", "--disable-dns", f"{project.name}-nodns")
    try:
        networks = find_resources(runtime, "network", [network, f"{project.name}-nodns"])
    finally:
        podman("network", "rm", f"{project.name}-nodns")
    assert networks[network]["options"].get("isolate") == "true"
    assert networks[network]["dns_enabled"] is True and networks[f"{project.name}-nodns"]["dns_enabled"] is False
    assert "dns_enabled" not in volumes[volume]
    report = describe(runtime, None, [volume], [network])  # what the module returns, looked up side by side
    assert sorted(report) == ["named_containers", "networks", "version", "volumes"]
    assert report["version"].startswith("podman") and report["named_containers"] == {}
    assert list(report["volumes"]) == [volume] and list(report["networks"]) == [network]


def test_postgres_refuses_a_project_network_without_dns(project):
    """Containers on a network without name resolution could not reach PostgreSQL by its name: the role stops
    before it creates anything and says what to do."""
    podman("network", "create", "--disable-dns", f"{project.name}-net")
    run = run_playbook(role_play("postgres"), extra_vars=project.vars())
    assert run.rc != 0
    message = result(run, "Refuse a project network on which containers cannot reach each other by name")["msg"]
    assert f"Network {project.name}-net exists but resolves no container names" in message
    assert f"podman network rm {project.name}-net" in message
    assert podman("ps", "-a", "-q", "--filter", f"name={project.container}").stdout.strip() == ""
    assert podman("volume", "ls", "-q", "--filter", f"label=io.poststack.project={project.name}").stdout.strip() == ""


def test_status_reads_size_and_schema_in_one_session(project):
    assert run_playbook(role_play("postgres"), extra_vars=project.vars()).rc == 0
    runtime = ContainerRuntime(detect_runtime())
    labels = [f"io.poststack.project={project.name}"]
    [untracked] = list_containers(runtime, labels, refresh_health=True)
    assert untracked["database_size"].endswith("kB") and untracked["schema_version"] == ""
    assert untracked["health"] == "healthy"
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=project.password, connect_timeout=5) as conn:
        conn.execute("CREATE SCHEMA poststack")
        conn.execute("CREATE TABLE poststack.schema_migrations (stream text, version int)")
        conn.execute("INSERT INTO poststack.schema_migrations VALUES ('core', 1), ('core', 3), ('project', 2)")
    runtime.history.clear()
    [tracked] = list_containers(runtime, labels)
    assert tracked["schema_version"] == "core 3, project 2"
    assert [r.argv[1] for r in runtime.history] == ["ps", "container", "exec"]  # one psql session, no health check
    assert list_containers(runtime, labels, database_details=False)[0].get("database_size") is None


def test_project_containers_noop_and_env_change(project):
    web = project.dir / "containers" / "web"
    web.mkdir(parents=True)
    (web / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCMD [\"sleep\", \"infinity\"]\n")

    def containers(env, check=False):
        play = role_play("postgres")
        play[0]["tasks"] += role_play("project_containers", project_containers_run=[{"name": "web", "env": env}])[0]["tasks"]
        # Build logs outside the project: the project root is the build context.
        logs = str(project.dir.parent / f"{project.name}-logs")
        return run_playbook(play, extra_vars=project.vars(poststack_log_dir=logs), check=check)

    first = containers({"GREETING": "hello"})
    assert first.rc == 0 and first.changed > 0, first.stdout[-3000:]
    envfile = f"/var/lib/poststack/{project.name}-containers/web.env"
    label = podman("inspect", "-f", '{{index .Config.Labels "io.poststack.env-checksum"}}', f"{project.name}-web")
    with open(envfile, "rb") as handle:
        assert label.stdout.strip() == hashlib.sha1(handle.read()).hexdigest()

    again = containers({"GREETING": "hello"})
    assert again.rc == 0 and again.changed == 0, changed_tasks(again)
    assert not ran(again, "Write each container's environment file (database settings included; mode 0600)",
                   "project_containers")
    assert not ran(again, "Refuse to replace containers that poststack did not make for this project", "project_containers")

    checked = containers({"GREETING": "bye"}, check=True)
    assert checked.rc == 0 and checked.changed > 0
    with open(envfile, encoding="utf-8") as handle:
        assert "GREETING=hello" in handle.read()

    changed = containers({"GREETING": "bye"})
    assert changed.rc == 0
    assert {"Write each container's environment file (database settings included; mode 0600)",
            "Run the containers on the database network"} <= set(changed_tasks(changed))
    assert podman("exec", f"{project.name}-web", "printenv", "GREETING").stdout.strip() == "bye"
    assert containers({"GREETING": "bye"}).changed == 0
