"""Bad input never changes a running server: each bad value is refused with a message that names it (and
PostgreSQL's or the runtime's reason), and afterwards the same container still runs with the same data and the
same configuration files (real PostgreSQL, on podman and on a real Docker engine: the ``runtime`` fixture and the
``server`` fixture's parameters)."""
import hashlib
import json
import os
import subprocess

import psycopg
import pytest

from ansible_run import run_playbook
from conftest import Project, Runtime

PULL_NEVER = {"podman": ["--pull=never"], "docker": []}  # Docker 20.10's run has no --pull=never
ROLE = [{"hosts": "localhost", "gather_facts": False,
         "tasks": [{"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"}}]}]


@pytest.fixture(scope="module", autouse=True)
def images():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


@pytest.fixture(scope="module", params=["podman", "docker"])
def server(tmp_path_factory, request):
    """One server per runtime, shared by the tests that take it (each leaves it as it found it)."""
    if request.param == "docker":
        request.getfixturevalue("docker_engine_with_images")
    project = Project(tmp_path_factory.mktemp("bad-input"), Runtime(request.param))
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
    container = project.runtime.cli("inspect", "-f", "{{.Id}} {{.State.Status}}", project.container).stdout.strip()
    with connect(project) as conn:
        rows = conn.execute("SELECT v FROM kept").fetchall()
    files = {}
    state_dir = f"/var/lib/poststack/{project.container}"
    for base, dirs, names in os.walk(state_dir):
        if base == state_dir:
            # The server's socket and its lock file (written at each start), not files of the role's.
            dirs[:] = [d for d in dirs if d != "socket"]
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
    # postgres -C does not load libraries: the image is searched for them (the next start would fail).
    ({"postgres_settings": {"shared_preload_libraries": "pg_stat_statements,no_such_lib"}},
     "shared_preload_libraries = pg_stat_statements,no_such_lib: library no_such_lib is not in image "
     "localhost/poststack/postgres-debian:latest, and PostgreSQL would not start without it"),
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


def test_a_replacement_that_does_not_come_up_brings_the_old_container_back(server):
    """A value that PostgreSQL parses but cannot start with (100GB of shared buffers on a 24 GB host) needs a new
    container: the old one is set aside, and when the new one does not come up the old one runs again, the same
    container with the same data and files, and the error has the server's reason."""
    before = snapshot(server)
    run = run_playbook(ROLE, extra_vars=server.vars(postgres_shared_buffers="100GB", postgres_wait_timeout=15))
    assert run.rc != 0
    message = run.results("poststack.core.postgres : Say that the new configuration did not come up and the old "
                          "container runs again")["msg"]
    assert message.startswith(f"The new configuration of {server.container} did not come up, so the container that "
                              "ran before runs again with its settings and data, unchanged"), message
    assert f"PostgreSQL in container {server.container} did not come up" in message
    assert "could not map anonymous shared memory" in message, message
    assert server.password not in run.stdout
    assert snapshot(server) == before
    assert not server.runtime.exists("container", f"{server.container}-previous")
    # A change that does come up replaces the container: new container, same data, nothing set aside; then no-op.
    changed = run_playbook(ROLE, extra_vars=server.vars(postgres_work_mem="8MB"))
    assert changed.rc == 0 and changed.changed > 0, changed.stdout[-3000:]
    after = snapshot(server)
    assert after[0] != before[0] and after[0].endswith(" running") and after[1] == before[1]
    assert not server.runtime.exists("container", f"{server.container}-previous")
    with connect(server) as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("8MB",)
    again = run_playbook(ROLE, extra_vars=server.vars(postgres_work_mem="8MB"))
    changed_tasks = [t["task"]["name"] for t in again.tasks if t["hosts"]["localhost"].get("changed")]
    assert again.rc == 0 and again.changed == 0, changed_tasks


def test_settings_that_postgresql_cannot_start_with_are_taken_back(server):
    """postgres_settings needing a restart that PostgreSQL parses but cannot start with: the previous
    conf.d/10-poststack.conf is put back, the server runs with it again, and the error has the server's reason."""
    converged = run_playbook(ROLE, extra_vars=server.vars())  # whatever the tests before left: the defaults
    assert converged.rc == 0, converged.stdout[-3000:]
    before = snapshot(server)
    run = run_playbook(ROLE, extra_vars=server.vars(postgres_settings={"shared_buffers": "100GB"},
                                                    postgres_wait_timeout=15))
    assert run.rc != 0
    message = run.results("poststack.core.postgres : Say that PostgreSQL did not start with the new settings and "
                          "runs with the previous ones")["msg"]
    assert message.startswith(f"PostgreSQL in {server.container} did not start with the new settings, so the "
                              "previous conf.d/10-poststack.conf was put back and it runs with that again"), message
    assert "could not map anonymous shared memory" in message, message
    after = snapshot(server)
    # The same container runs (restarted twice: with the new settings, then the previous), same data, same files.
    assert after == before


def test_foreign_container_with_the_same_name_is_left_alone(tmp_path, runtime):
    project = Project(tmp_path, runtime)
    base = os.environ.get("POSTSTACK_BASE_IMAGE", "localhost/debian:bookworm-slim")
    runtime.cli("run", "-d", "--name", project.container, *PULL_NEVER[runtime.name], base, "sleep", "infinity")
    try:
        before = runtime.cli("inspect", "-f", "{{.Id}} {{.State.Status}}", project.container).stdout
        run = run_playbook(ROLE, extra_vars=project.vars())
        assert run.rc != 0 and run.changed == 0
        message = run.results("poststack.core.postgres : Refuse to touch a container of that name that poststack did "
                              "not make")["msg"]
        assert message.startswith(f"A container named {project.container} exists (running, image {base}) that "
                                  f"poststack did not create for project {project.name}")
        assert "It is left alone and nothing was changed." in message
        assert runtime.cli("inspect", "-f", "{{.Id}} {{.State.Status}}", project.container).stdout == before
        removed = run_playbook(ROLE, extra_vars=project.vars(postgres_state="absent"))
        assert removed.rc != 0
        assert runtime.cli("inspect", "-f", "{{.Id}} {{.State.Status}}", project.container).stdout == before
    finally:
        runtime.cli("rm", "-f", project.container, check=False)
        project.cleanup()


@pytest.mark.parametrize("state", ["started", "absent"])
def test_a_volume_of_the_roles_name_that_poststack_did_not_make_is_left_alone_with_its_data(
        tmp_path, state, runtime):
    """podman_volume deletes and re-creates a volume whose labels differ, data and all; the role never lets it."""
    project = Project(tmp_path, runtime)
    volume = f"{project.container}-data"
    runtime.cli("volume", "create", "--label", "owner=someone-else", volume)
    try:
        mountpoint = runtime.cli("volume", "inspect", "-f", "{{.Mountpoint}}", volume).stdout.strip()
        with open(os.path.join(mountpoint, "precious"), "w", encoding="utf-8") as handle:
            handle.write("theirs")
        created = runtime.cli("volume", "inspect", "-f", "{{.CreatedAt}}", volume).stdout
        run = run_playbook(ROLE, extra_vars=project.vars(postgres_state=state, postgres_remove_volumes=True))
        assert run.rc != 0 and run.changed == 0
        message = run.results("poststack.core.postgres : Refuse volumes of the role's names that poststack did not "
                              "make for this project (their data is left alone)")["msg"]
        assert message.startswith(f"Volume {volume} exists but poststack did not create it for project {project.name} "
                                  "(its labels io.poststack.project=(none), io.poststack.component=(none)). It is left "
                                  "alone with its data and nothing was changed."), message
        assert runtime.cli("volume", "inspect", "-f", "{{.CreatedAt}}", volume).stdout == created
        with open(os.path.join(mountpoint, "precious"), encoding="utf-8") as handle:
            assert handle.read() == "theirs"
        assert not runtime.exists("container", project.container)
    finally:
        runtime.cli("volume", "rm", "-f", volume, check=False)
        project.cleanup()


def test_a_network_of_the_roles_name_with_strangers_on_it_is_refused_and_left(tmp_path, runtime):
    """A network without poststack's labels with someone else's container on it: PostgreSQL is not put beside that
    container, and remove.yml leaves the network (it removes only networks labelled for the project)."""
    project = Project(tmp_path, runtime)
    network, stranger = f"{project.name}-net", f"{project.name}-stranger"
    base = os.environ.get("POSTSTACK_BASE_IMAGE", "localhost/debian:bookworm-slim")
    runtime.cli("network", "create", network)
    runtime.cli("run", "-d", "--name", stranger, "--network", network, *PULL_NEVER[runtime.name], base, "sleep",
                "infinity")
    try:
        before = runtime.cli("inspect", "-f", "{{.Id}} {{.State.Status}}", stranger).stdout
        run = run_playbook(ROLE, extra_vars=project.vars())
        assert run.rc != 0 and run.changed == 0
        message = run.results("poststack.core.postgres : Refuse a network of the role's name that poststack did not "
                              "make for this project")["msg"]
        assert message.startswith(
            f"Network {network} exists but poststack did not create it for project {project.name} (it has no "
            f"poststack labels and containers that are not this project's are on it: {stranger}). PostgreSQL is "
            "not put on it and nothing was changed."), message
        assert not runtime.exists("container", project.container)
        assert not os.path.exists(f"/var/lib/poststack/{project.container}")
        assert runtime.cli("inspect", "-f", "{{.Id}} {{.State.Status}}", stranger).stdout == before

        runtime.cli("rm", "-f", stranger)
        removed = run_playbook("playbooks/remove.yml", inventory="inventories/local",
                               extra_vars=project.vars(remove_force=True))
        assert removed.rc == 0 and removed.changed == 0, removed.stdout[-3000:]
        note = removed.results("Say why the network of the project's name was left")["msg"]
        assert note.startswith(f"Network {network} was left: poststack did not create it for project "
                               f"{project.name} (it has no poststack labels)."), note
        assert runtime.exists("network", network)
    finally:
        runtime.cli("rm", "-f", stranger, check=False)
        project.cleanup()


def test_the_network_the_role_creates_is_labelled_for_the_project(server):
    labels = server.runtime.cli("network", "inspect", "-f", "{{json .Labels}}", f"{server.name}-net").stdout
    assert json.loads(labels) == {"io.poststack.project": server.name, "io.poststack.component": "postgres"}


@pytest.mark.parametrize("address, message", [
    ("999.1.1.1", "bind address '999.1.1.1' is not an IP address (for example 127.0.0.1, 0.0.0.0 or ::1)"),
    ("192.0.2.254", "bind address 192.0.2.254 is not an address of this host (ip -br addr lists them)"),
])
def test_a_bind_address_that_is_not_this_hosts_is_named_as_such(tmp_path, address, message, runtime):
    project = Project(tmp_path, runtime)
    try:
        run = run_playbook(ROLE, extra_vars=project.vars(postgres_bind_address=address))
        assert run.rc != 0 and run.changed == 0
        result = run.results("poststack.core.postgres : Find the container runtime and what holds the host port")
        assert result["msg"] == message + "; nothing was changed"
        assert not runtime.exists("container", project.container)
    finally:
        project.cleanup()


def test_check_mode_with_a_new_password_reports_the_change_at_once(server):
    run = run_playbook(ROLE, extra_vars=server.vars(postgres_password="a-new-one"), check=True)
    assert run.rc == 0 and run.changed > 0
    assert run.results("poststack.core.postgres : Log in over TCP with the password").get("skipped")
    with connect(server) as conn:  # the old password still works: nothing was rotated
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_check_mode_on_a_new_project_says_what_would_change_and_creates_nothing(tmp_path, runtime):
    project = Project(tmp_path, runtime)
    try:
        run = run_playbook(ROLE, extra_vars=project.vars(), check=True)
        assert run.rc == 0 and run.changed > 0, run.failures()
        assert not runtime.exists("container", project.container)
        assert not os.path.exists(f"/var/lib/poststack/{project.container}")
    finally:
        project.cleanup()


def test_a_restart_on_a_full_disk_fails_with_the_servers_own_reason(tmp_path, runtime):
    """Not bad input but the same promise: when PostgreSQL does not come up, the error says why in the server's
    words (here: its data directory's filesystem is full), not 'Unknown error.' or 'non-zero return code'."""
    project = Project(tmp_path, runtime)
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(data)], check=True)
    try:
        first = run_playbook(ROLE, extra_vars=project.vars(postgres_data_path=str(data / "pg"), postgres_wait_timeout=20))
        assert first.rc == 0, first.stdout[-3000:]
        stopped = run_playbook(ROLE, extra_vars=project.vars(postgres_data_path=str(data / "pg"), postgres_state="stopped"))
        assert stopped.rc == 0, stopped.stdout[-3000:]
        filler = subprocess.run(["dd", "if=/dev/zero", f"of={data}/filler", "bs=1M"], capture_output=True, text=True, check=False)
        assert "No space left on device" in filler.stderr
        run = run_playbook(ROLE, extra_vars=project.vars(postgres_data_path=str(data / "pg"), postgres_wait_timeout=20))
        assert run.rc != 0
        failed = [t for t in run.tasks if t["hosts"]["localhost"].get("failed")]
        message = failed[-1]["hosts"]["localhost"]["msg"]
        assert message.startswith(f"PostgreSQL in container {project.container} did not come up"), message
        assert "No space left on device" in message, message
        assert project.password not in run.stdout
        # Space freed: the next run brings it back, with the data.
        os.unlink(data / "filler")
        again = run_playbook(ROLE, extra_vars=project.vars(postgres_data_path=str(data / "pg"), postgres_wait_timeout=30))
        assert again.rc == 0, again.stdout[-3000:]
        with connect(project) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        project.cleanup()
        subprocess.run(["umount", "-l", str(data)], check=False)
