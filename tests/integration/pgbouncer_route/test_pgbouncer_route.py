"""The route project container -> PgBouncer -> PostgreSQL, end to end: one playbook runs the roles postgres,
pgbouncer and project_containers (with project_containers_use_pgbouncer) for a throwaway project, configured with
the project-level variables a user sets (poststack_project_name, as the local inventory does); the example web app
(examples/project/containers/web) then answers its health check through the pooler, a query from inside the app
container reaches PostgreSQL from PgBouncer's address, and PgBouncer's admin console lists the app's connection.
"""
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ansible_run import ROOT, run_playbook  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = f"route-{uuid.uuid4().hex[:6]}'\"$;"

# Run inside the app container with its interpreter (/usr/bin/python3, as its CMD): connect with
# POSTSTACK_DATABASE_URL (what the role hands the app), report what the server sees, then keep the connection open
# until stdin closes so that the admin console can be read meanwhile.
APP_QUERY = """
import os, sys, psycopg2
conn = psycopg2.connect(os.environ["POSTSTACK_DATABASE_URL"], connect_timeout=5)
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT host(inet_client_addr()), current_user, current_database(), count(*) FROM pg_class")
print("|".join(str(value) for value in cur.fetchone()), flush=True)
sys.stdin.read()
conn.close()
"""


def podman(*args, check=True, env=None):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check,
                          env=dict(os.environ, **(env or {})))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def role(name, **variables):
    return {"name": name, "ansible.builtin.include_role": {"name": f"poststack.core.{name}"}, "vars": variables}


@pytest.fixture(scope="module")
def route(tmp_path_factory):
    project = f"pstroute{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("pgbouncer-route")
    web_port = free_port()
    variables = {
        "poststack_project_name": project,
        "poststack_project_dir": os.path.join(ROOT, "examples/project"),
        "poststack_log_dir": str(root / "logs"),
        "poststack_container_runtime": "podman",
        "poststack_base_image": os.environ.get("POSTSTACK_BASE_IMAGE", "docker.io/library/debian:bookworm-slim"),
        "postgres_password": PASSWORD,
        "postgres_host_port": free_port(),
        "postgres_state_dir": str(root / "postgres"),
        "pgbouncer_config_dir": str(root / "pgbouncer"),
        "pgbouncer_admin_users": ["poststack"],
        "project_containers_state_dir": str(root / "containers"),
        "project_containers_only": ["web"],
        "project_containers_use_pgbouncer": True,
        "project_containers_run": [{"name": "web", "ports": [f"127.0.0.1:{web_port}:8080"],
                                    "wait_for_port": web_port}],
    }
    plays = [{"name": "route", "hosts": "localhost", "gather_facts": False,
              "tasks": [role("postgres"), role("pgbouncer"), role("project_containers")]}]
    try:
        run = run_playbook(plays, extra_vars=variables)
        yield {"project": project, "run": run, "web_port": web_port, "plays": plays, "vars": variables}
    finally:
        for name in ("web", "pgbouncer", "postgres"):
            podman("rm", "-f", "-t", "0", f"{project}-{name}", check=False)
        for volume in podman("volume", "ls", "-q", "--filter", f"label=io.poststack.project={project}",
                             check=False).stdout.split():
            podman("volume", "rm", "-f", volume, check=False)
        podman("network", "rm", "-f", f"{project}-net", check=False)
        podman("rmi", f"localhost/{project}/web:latest", check=False)
        shutil.rmtree(str(root), ignore_errors=True)


def address(container, network):
    inspected = json.loads(podman("container", "inspect", container).stdout)[0]
    return inspected["NetworkSettings"]["Networks"][network]["IPAddress"]


def admin(route, command):
    """A SHOW command on PgBouncer's admin console, from the PostgreSQL container over the project network (psql
    speaks the simple query protocol the console needs); the password travels in the environment."""
    project = route["project"]
    proc = podman("exec", "-e", "PGPASSWORD", f"{project}-postgres", "psql", "-X", "--csv",
                  f"host={project}-pgbouncer port=6432 dbname=pgbouncer user=poststack", "-c", command,
                  env={"PGPASSWORD": PASSWORD})
    return list(csv.DictReader(io.StringIO(proc.stdout)))


def test_the_route_converges_and_a_second_run_changes_nothing(route):
    run = route["run"]
    assert run.rc == 0 and run.failed == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert PASSWORD not in run.stdout
    again = run_playbook(route["plays"], extra_vars=route["vars"])
    changed = [t["task"]["name"] for t in again.tasks if any(h.get("changed") for h in t["hosts"].values())]
    assert again.rc == 0 and again.changed == 0, changed


def test_the_app_reaches_postgresql_through_pgbouncer(route):
    assert route["run"].rc == 0, route["run"].stdout[-5000:]
    project = route["project"]
    network = f"{project}-net"
    web = f"{project}-web"

    url = podman("exec", web, "printenv", "POSTSTACK_DATABASE_URL").stdout.strip()
    assert url.startswith("postgresql://poststack:") and url.endswith(f"@{project}-pgbouncer:6432/poststack")
    assert f"{project}-postgres" not in url
    env = dict(line.split("=", 1) for line in podman("exec", web, "printenv").stdout.splitlines() if "=" in line)
    assert (env["DB_HOST"], env["DB_PORT"]) == (f"{project}-pgbouncer", "6432")

    # The app's own code path: its health check runs SELECT 1 with the DB_* settings.
    with urllib.request.urlopen(f"http://127.0.0.1:{route['web_port']}/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}

    pgbouncer_ip = address(f"{project}-pgbouncer", network)
    web_ip = address(web, network)
    assert pgbouncer_ip != web_ip
    app = subprocess.Popen(["podman", "exec", "-i", web, "/usr/bin/python3", "-c", APP_QUERY], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = app.stdout.readline().strip()
        if not line:
            app.stdin.close()
            app.wait(30)
            raise AssertionError(f"no answer from the app container (rc={app.returncode}): {app.stderr.read()}")
        seen_from, user, database, relations = line.split("|")
        # PostgreSQL sees PgBouncer's address, not the app's: the connection went through the pooler.
        assert (seen_from, user, database) == (pgbouncer_ip, "poststack", "poststack") and int(relations) > 0

        clients = [c for c in admin(route, "SHOW CLIENTS") if c["database"] == "poststack"]
        assert [(c["user"], c["addr"], c["state"]) for c in clients] == [("poststack", web_ip, "active")], clients
        [pool] = [p for p in admin(route, "SHOW POOLS") if p["database"] == "poststack" and p["user"] == "poststack"]
        assert int(pool["cl_active"]) == 1 and int(pool["sv_active"]) + int(pool["sv_idle"]) >= 1, pool
        servers = [s for s in admin(route, "SHOW SERVERS") if s["database"] == "poststack"]
        assert servers and all(s["addr"] == address(f"{project}-postgres", network) for s in servers), servers
    finally:
        if not app.stdin.closed:
            app.stdin.close()
        app.wait(30)
    assert app.returncode == 0, app.stderr.read()

    # Once the app has closed its connection, PgBouncer no longer lists it.
    assert [c for c in admin(route, "SHOW CLIENTS") if c["database"] == "poststack"] == []
