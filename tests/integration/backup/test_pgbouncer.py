"""The pgbouncer role against PostgreSQL run by the postgres role: runs twice (changed, then not changed), lets the
right password through with scram-sha-256 and refuses a wrong one, stores no plaintext password, pools in
transaction mode, follows a password change, refuses a role without a SCRAM password."""
import os
import socket
import subprocess
import uuid

import contextlib

import psycopg
import pytest

import docker_engine
from ansible_run import run_playbook

PASSWORD = "pgb-pw'\"$; secret"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BASE_IMAGE = os.environ.get("POSTSTACK_BASE_IMAGE", "docker.io/library/debian:bookworm-slim")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    """PostgreSQL and PgBouncer of a project, on podman, or on a real Docker engine for a test that asks for it
    (indirect parametrization): there PgBouncer's image is built by Docker, with the host's network (the test
    engine does no NAT)."""
    runtime = getattr(request, "param", "podman")
    project = f"pstest-pgb-{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("pgbouncer")
    variables = dict(postgres_project_name=project, postgres_container_name=f"{project}-postgres",
                     postgres_password=PASSWORD, postgres_host_port=free_port(),
                     postgres_state_dir=str(root / "state"), poststack_container_runtime=runtime,
                     pgbouncer_config_dir=str(root / "pgbouncer"), pgbouncer_publish=f"127.0.0.1:{free_port()}",
                     pgbouncer_default_pool_size=2, poststack_log_dir=str(root / "logs"),
                     # As the local inventory does: hosts without registry access build on a local base image.
                     poststack_base_image=BASE_IMAGE)
    engine = contextlib.nullcontext()
    if runtime == "docker":
        built = run_playbook("playbooks/images.yml", inventory="inventories/local")
        assert built.rc == 0 and built.failed == 0, built.stdout[-3000:]
        engine = docker_engine.running(["localhost/poststack/postgres-debian:latest",
                                        "localhost/poststack/base-debian:latest", BASE_IMAGE])
        variables["pgbouncer_build_network"] = "host"
    with engine:
        try:
            yield variables
        finally:
            teardown = [{"name": "teardown", "hosts": "localhost", "gather_facts": False, "tasks": [
                {"name": "pgbouncer", "ansible.builtin.include_role": {"name": "poststack.core.pgbouncer"},
                 "vars": {"pgbouncer_state": "absent"}},
                {"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"},
                 "vars": {"postgres_state": "absent", "postgres_remove_volumes": True}},
            ]}]
            run_playbook(teardown, extra_vars=variables)
            subprocess.run([runtime, "network", "rm", "-f", f"{project}-net"], capture_output=True, check=False)


def converge(variables, **extra):
    plays = [{"name": "stack", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"}},
        {"name": "pgbouncer", "ansible.builtin.include_role": {"name": "poststack.core.pgbouncer"}},
        {"name": "url", "ansible.builtin.debug": {"msg": "{{ pgbouncer_database_url }} {{ pgbouncer_host_database_url }}"}},
    ]}]
    return run_playbook(plays, extra_vars=dict(variables, **extra))


def connect(variables, password, dbname="poststack"):
    host, port = variables["pgbouncer_publish"].split(":")
    return psycopg.connect(host=host, port=int(port), user="poststack", dbname=dbname, password=password,
                           connect_timeout=5, autocommit=True)


@pytest.mark.parametrize("stack", ["podman", "docker"], indirect=True)
def test_pgbouncer_runs_twice_and_passes_scram_through(stack):
    first = converge(stack)
    assert first.rc == 0, first.stdout[-4000:]
    assert first.changed > 0
    name = stack["postgres_project_name"]
    assert first.results("url")["msg"] == (f"postgresql://poststack@{name}-pgbouncer:6432/poststack "
                                           f"postgresql://poststack@{stack['pgbouncer_publish']}/poststack")
    second = converge(stack)
    assert second.rc == 0 and second.changed == 0, [t["task"]["name"] for t in second.tasks
                                                    if any(h.get("changed") for h in t["hosts"].values())]
    for text in (first.stdout, second.stdout):
        assert PASSWORD not in text and "SCRAM-SHA-256$" not in text

    with connect(stack, PASSWORD) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "poststack"
        # Through the pooler: the server sees PgBouncer's address on the container network, not the client's.
        assert conn.execute("SELECT inet_client_addr() IS NOT NULL").fetchone()[0]
    with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
        connect(stack, "wrong")

    userlist = os.path.join(stack["pgbouncer_config_dir"], "userlist.txt")
    with open(userlist, encoding="utf-8") as handle:
        content = handle.read()
    assert content.startswith('"poststack" "SCRAM-SHA-256$4096:') and PASSWORD not in content
    assert oct(os.stat(userlist).st_mode & 0o777) == "0o600" and os.stat(userlist).st_uid == 999

    # Transaction pooling: 8 clients share the 2 server connections of the pool.
    clients = [connect(stack, PASSWORD) for client in range(8)]
    try:
        backends = {conn.execute("SELECT pg_backend_pid()").fetchone()[0] for conn in clients}
    finally:
        for conn in clients:
            conn.close()
    assert len(backends) <= 2


@pytest.mark.parametrize("stack", ["podman"], indirect=True)  # the podman stack of the test before, not another
def test_password_change_is_followed_and_roles_without_scram_are_refused(stack):
    assert converge(stack).rc == 0
    rotated = converge(stack, postgres_password=PASSWORD + "-2")
    assert rotated.rc == 0, rotated.stdout[-3000:]
    assert rotated.results("poststack.core.pgbouncer : Write userlist.txt (SCRAM verifiers, no passwords)")["changed"]
    with connect(stack, PASSWORD + "-2") as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    refused = converge(stack, postgres_password=PASSWORD + "-2", pgbouncer_users=["poststack", "no_such_role"])
    assert refused.rc != 0
    task = "poststack.core.pgbouncer : Refuse roles that do not exist or have no SCRAM-SHA-256 password"
    assert "cannot pass these roles through with scram-sha-256: no_such_role" in refused.results(task)["msg"]
