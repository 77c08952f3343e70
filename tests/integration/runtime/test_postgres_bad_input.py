"""Bad input never changes a running server: each bad value is refused with a message that names it (and
PostgreSQL's or the runtime's reason), and afterwards the same container still runs with the same data and the
same configuration files (real podman, real PostgreSQL)."""
import hashlib
import os

import psycopg
import pytest

from ansible_run import run_playbook
from conftest import Project, podman

ROLE = [{"hosts": "localhost", "gather_facts": False,
         "tasks": [{"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"}}]}]


@pytest.fixture(scope="module", autouse=True)
def images():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("bad-input"))
    try:
        first = run_playbook(ROLE, extra_vars=project.vars())
        assert first.rc == 0, first.stdout[-3000:]
        with connect(project) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        yield project
    finally:
        project.cleanup()


def connect(project):
    return psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                           password=project.password, connect_timeout=5, autocommit=True)


def snapshot(project):
    """What must not change: the container (id, running), the data, the files the role writes."""
    container = podman("inspect", "-f", "{{.Id}} {{.State.Status}}", project.container).stdout.strip()
    with connect(project) as conn:
        rows = conn.execute("SELECT v FROM kept").fetchall()
    files = {}
    state_dir = f"/var/lib/poststack/{project.container}"
    for base, _dirs, names in os.walk(state_dir):
        for name in names:
            with open(os.path.join(base, name), "rb") as handle:
                files[os.path.join(base, name)] = hashlib.sha1(handle.read()).hexdigest()
    return container, rows, files


CASES = [
    ({"postgres_memory": "lots"},
     "postgres_memory 'lots' is not a size: write a number with an optional unit b, k, m or g"),
    ({"postgres_memory": "5m"}, "postgres_memory '5m' is below the 6m that podman and docker accept"),
    ({"postgres_settings": {"work_mem": "notasize"}},
     'work_mem = notasize: invalid value for parameter "work_mem": "notasize"'),
    ({"postgres_max_connections": -5},
     'max_connections = -5: -5 is outside the valid range for parameter "max_connections" (1 .. 262143)'),
    ({"postgres_shared_buffers": "lots", "postgres_settings": {"no_such_setting": 1}},
     'no_such_setting = 1: unrecognized configuration parameter "no_such_setting"; '
     'shared_buffers = lots: invalid value for parameter "shared_buffers": "lots"'),
    ({"postgres_hba_cidrs": ["notacidr"]}, "postgres_hba_cidrs entry 'notacidr' is not a network address"),
    ({"postgres_settings": {"bad name": 1}}, "setting name 'bad name' is not a PostgreSQL parameter name"),
    ({"postgres_image": "localhost/poststack/no-such-image:1"},
     "postgres_image 'localhost/poststack/no-such-image:1' does not exist on this host: build it first"),
]


@pytest.mark.parametrize("bad, message", CASES, ids=[next(iter(c[0])) + "-" + str(i) for i, c in enumerate(CASES)])
def test_bad_value_is_refused_and_nothing_changes(server, bad, message):
    before = snapshot(server)
    run = run_playbook(ROLE, extra_vars=server.vars(**bad))
    assert run.rc != 0 and run.changed == 0
    result = run.results("poststack.core.postgres : Let PostgreSQL check the settings, and check the pg_hba networks "
                         "and the memory limit (before any change)")
    assert result["msg"].startswith(f"Invalid PostgreSQL configuration for {server.container}; nothing was changed: ")
    assert message in result["msg"]
    assert snapshot(server) == before
    assert before[0].endswith(" running") and before[1] == [("still here",)]


def test_good_change_after_refusals_still_applies(server):
    """The check is no obstacle to a valid change: a new setting is written and applied (by reload)."""
    run = run_playbook(ROLE, extra_vars=server.vars(postgres_settings={"work_mem": "8MB"}))
    assert run.rc == 0, run.stdout[-3000:]
    with connect(server) as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("8MB",)


def test_foreign_container_with_the_same_name_is_left_alone(tmp_path):
    project = Project(tmp_path)
    base = os.environ.get("POSTSTACK_BASE_IMAGE", "localhost/debian:bookworm-slim")
    podman("run", "-d", "--name", project.container, "--pull=never", base, "sleep", "infinity")
    try:
        before = podman("inspect", "-f", "{{.Id}} {{.State.Status}}", project.container).stdout
        run = run_playbook(ROLE, extra_vars=project.vars())
        assert run.rc != 0 and run.changed == 0
        message = run.results("poststack.core.postgres : Refuse to touch a container of that name that poststack did "
                              "not make")["msg"]
        assert message.startswith(f"A container named {project.container} exists (running, image {base}) that "
                                  f"poststack did not create for project {project.name}")
        assert "It is left alone and nothing was changed." in message
        assert podman("inspect", "-f", "{{.Id}} {{.State.Status}}", project.container).stdout == before
        removed = run_playbook(ROLE, extra_vars=project.vars(postgres_state="absent"))
        assert removed.rc != 0
        assert podman("inspect", "-f", "{{.Id}} {{.State.Status}}", project.container).stdout == before
    finally:
        podman("rm", "-f", "-t", "0", project.container, check=False)
        project.cleanup()


@pytest.mark.parametrize("address, message", [
    ("999.1.1.1", "bind address '999.1.1.1' is not an IP address (for example 127.0.0.1, 0.0.0.0 or ::1)"),
    ("192.0.2.254", "bind address 192.0.2.254 is not an address of this host (ip -br addr lists them)"),
])
def test_a_bind_address_that_is_not_this_hosts_is_named_as_such(tmp_path, address, message):
    project = Project(tmp_path)
    try:
        run = run_playbook(ROLE, extra_vars=project.vars(postgres_bind_address=address))
        assert run.rc != 0 and run.changed == 0
        result = run.results("poststack.core.postgres : Find the container runtime and what holds the host port")
        assert result["msg"] == message + "; nothing was changed"
        assert podman("container", "exists", project.container, check=False).returncode == 1
    finally:
        project.cleanup()


def test_check_mode_with_a_new_password_reports_the_change_at_once(server):
    run = run_playbook(ROLE, extra_vars=server.vars(postgres_password="a-new-one"), check=True)
    assert run.rc == 0 and run.changed > 0
    assert run.results("poststack.core.postgres : Log in over TCP with the password").get("skipped")
    with connect(server) as conn:  # the old password still works: nothing was rotated
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_check_mode_on_a_new_project_says_what_would_change_and_creates_nothing(tmp_path):
    project = Project(tmp_path)
    try:
        run = run_playbook(ROLE, extra_vars=project.vars(), check=True)
        assert run.rc == 0 and run.changed > 0, [t["task"]["name"] for t in run.tasks if t["hosts"]["localhost"].get("failed")]
        assert podman("container", "exists", project.container, check=False).returncode == 1
        assert not os.path.exists(f"/var/lib/poststack/{project.container}")
    finally:
        project.cleanup()
