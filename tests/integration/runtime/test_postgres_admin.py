"""The admin path: community.postgresql's modules manage roles, databases and privileges as the superuser over the
socket directory the postgres role shares with the host's root (examples/admin/roles-and-databases.yml), which the
application role cannot do; nobody else on the host reaches that socket, and the superuser has no TCP login."""
import os
import subprocess

import psycopg
import pytest

from ansible_run import ROOT, run_playbook

EXAMPLE = os.path.join(ROOT, "examples", "admin", "roles-and-databases.yml")


@pytest.fixture(scope="module", autouse=True)
def images():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


def test_the_admin_example_manages_roles_and_databases_over_the_shared_socket(project):
    reporting_password = "rep-" + project.password[3:11]
    example_vars = project.vars(reporting_password=reporting_password)
    first = run_playbook(EXAMPLE, extra_vars=example_vars)
    assert first.rc == 0, first.stdout[-4000:]
    assert first.changed > 0
    assert reporting_password not in first.stdout + first.stderr

    app = dict(host="127.0.0.1", port=project.port, connect_timeout=5)
    with psycopg.connect(user="poststack", dbname="poststack", password=project.password, **app) as conn:
        # What the example is for: the application role may not do this itself.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE intruder")
    with psycopg.connect(user="poststack", dbname="poststack", password=project.password, autocommit=True,
                         **app) as conn:
        conn.execute("CREATE TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (7)")
    # Privileges on tables that did not exist at the first run: the example's second run grants them...
    second = run_playbook(EXAMPLE, extra_vars=example_vars)
    assert second.rc == 0, second.stdout[-4000:]
    with psycopg.connect(user="reporting", dbname="reports", password=reporting_password, **app) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == ("reports", "reporting")
    with psycopg.connect(user="reporting", dbname="poststack", password=reporting_password, **app) as conn:
        assert conn.execute("SELECT id FROM orders").fetchone() == (7,)
    # ... and a third changes nothing.
    third = run_playbook(EXAMPLE, extra_vars=example_vars)
    assert third.rc == 0 and third.changed == 0, [t["task"]["name"] for t in third.tasks
                                                  if t["hosts"]["localhost"].get("changed")]

    socket_dir = f"/var/lib/poststack/{project.container}/socket"
    assert oct(os.stat(socket_dir).st_mode & 0o777) == "0o700"
    psql = ["psql", "-XAtq", "-h", socket_dir, "-U", "postgres", "-d", "postgres", "-c", "SELECT current_user"]
    as_root = subprocess.run(psql, capture_output=True, text=True, check=False)
    assert as_root.returncode == 0 and as_root.stdout.strip() == "postgres", as_root.stderr
    # Another user of the host does not reach the socket.
    as_nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + psql,
                               capture_output=True, text=True, check=False)
    assert as_nobody.returncode != 0 and "Permission denied" in as_nobody.stderr, as_nobody.stderr
    # The superuser has no password, so no TCP login.
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(user="postgres", dbname="postgres", password="", **app)


def test_the_example_refuses_to_run_without_the_new_roles_password(project):
    run = run_playbook(EXAMPLE, extra_vars=project.vars())
    assert run.rc != 0 and "Give the reporting role's password" in run.stdout
