"""A user's own project run the documented way (docs/projects.md): from its directory, with a .env and no inventory
of its own, through the checkout's environment. The project is that directory; its password is generated into a
state directory of its own and is never the demo's."""
import json
import os
import re
import shutil
import subprocess
import sys

import psycopg
import pytest

from conftest import podman

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def run(cwd, state, *args, env_extra=None):
    """ansible-playbook as a user types it in ``cwd`` (no -i: the checkout's ansible.cfg and embedded inventory)."""
    env = {k: v for k, v in os.environ.items() if k != "POSTSTACK_PROJECT_DIR"}
    env.update(XDG_STATE_HOME=str(state), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1")
    env.update(env_extra or {})
    proc = subprocess.run([PLAYBOOK, *args], cwd=str(cwd), env=env, capture_output=True, text=True, check=False,
                          timeout=900)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("ansible-playbook printed no JSON (rc %d):\n%s\n%s"
                    % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc, report


def changed(report):
    return sum(host.get("changed", 0) for host in report["stats"].values())


def login(port, password):
    return psycopg.connect(host="127.0.0.1", port=port, user="poststack", dbname="poststack", password=password,
                           connect_timeout=5)


def test_the_current_directory_is_the_project(project, tmp_path):
    state = tmp_path / "state"
    (project.dir / ".env").write_text("POSTSTACK_PROJECT_NAME=%s\nPOSTSTACK_POSTGRES_HOST_PORT=%d\n"
                                      % (project.name, project.port))
    (project.dir / "migrations").mkdir()
    (project.dir / "migrations" / "001_items.sql").write_text("CREATE TABLE items (id int PRIMARY KEY, name text);\n")
    (project.dir / "migrations" / "001_items.rollback.sql").write_text("DROP TABLE items;\n")
    # a container built with the project as its context (COPY . copies what a build sees), run through the
    # project's poststack.yml (the vars plugin)
    (project.dir / "containers" / "app").mkdir(parents=True)
    (project.dir / "containers" / "app" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /ctx\nCMD [\"sleep\", \"infinity\"]\n")
    (project.dir / "poststack.yml").write_text("---\nproject_containers_run:\n  - name: app\n")

    # The demo's generated password, on the same machine (same state home), made first. The demo project under a
    # name of this test's: config.yml looks at a running container of the project's name, and this machine's own
    # demo, if it runs, is no part of this test.
    demo = "demo-%s" % project.name
    shown, _report = run(ROOT, state, "playbooks/config.yml", env_extra={"POSTSTACK_PROJECT_NAME": demo})
    assert shown.returncode == 0, shown.stdout[-2000:]
    demo_files = list((state / "poststack" / "projects").glob("%s-*/postgres-password" % demo))
    assert len(demo_files) == 1
    demo_password = demo_files[0].read_text().strip()

    first, report = run(project.dir, state, "poststack.core.site")
    assert first.returncode == 0, first.stdout[-4000:]
    own = list((state / "poststack" / "projects").glob("%s-*/postgres-password" % project.name))
    assert len(own) == 1 and oct(own[0].stat().st_mode & 0o777) == "0o600"
    password = own[0].read_text().strip()
    assert password and password != demo_password

    assert podman("container", "inspect", "--format", "{{.State.Running}}", project.container).stdout.strip() == "true"
    with login(project.port, password) as conn:
        assert conn.execute("SELECT to_regclass('items') IS NOT NULL").fetchone()[0]
        assert conn.execute("SELECT max(version) FROM poststack.schema_migrations WHERE stream = 'project'"
                            ).fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(project.port, demo_password).close()
    assert (project.dir / "logs" / "database" / "migrations.log").is_file()
    assert podman("container", "inspect", "--format", "{{.State.Running}}", "%s-app" % project.name
                  ).stdout.strip() == "true"
    seen = podman("run", "--rm", "localhost/%s/app:latest" % project.name, "ls", "-A", "/ctx").stdout.split()
    assert "migrations" in seen and "poststack.yml" in seen
    assert ".env" not in seen and "logs" not in seen, "the build saw the .env or the logs: %s" % seen

    # config.yml names the .env as the source of the port and the generated file as that of the password
    shown, _report = run(project.dir, state, "poststack.core.config")
    assert shown.returncode == 0, shown.stdout[-3000:]
    assert re.search(r"postgres_host_port +%d +\.env \(%s/\.env\)" % (project.port, re.escape(str(project.dir))),
                     shown.stdout), shown.stdout[-3000:]
    assert re.search(r"postgres_password +\S+ +generated \(%s" % re.escape(str(own[0])), shown.stdout), \
        shown.stdout[-3000:]
    assert password not in shown.stdout

    # a second run changes nothing, though the first one wrote logs into the project
    second, report = run(project.dir, state, "poststack.core.site")
    assert second.returncode == 0 and changed(report) == 0, second.stdout[-4000:]
    assert demo_files[0].read_text().strip() == demo_password, "the demo's password changed"

    gone, _report = run(project.dir, state, "poststack.core.remove", "-e", "remove_force=true",
                        "-e", "remove_volumes=true", "-e", "remove_confirm=%s" % project.name)
    assert gone.returncode == 0, gone.stdout[-3000:]
    assert podman("container", "exists", project.container, check=False).returncode == 1
    # What the roles made for it went too: the network, the env files that held the password, the state directory.
    assert podman("network", "exists", "%s-net" % project.name, check=False).returncode == 1
    assert not os.path.exists("/var/lib/poststack/%s-containers" % project.name)
    assert not os.path.exists("/var/lib/poststack/%s" % project.container)


def test_a_directory_that_is_not_a_project_is_refused_and_nothing_is_made(tmp_path):
    empty = tmp_path / "not-a-project"
    empty.mkdir()
    proc, report = run(empty, tmp_path / "state", "poststack.core.site")
    assert proc.returncode != 0
    assert "is not a poststack project" in proc.stdout and "POSTSTACK_PROJECT_DIR" in proc.stdout
    assert changed(report) == 0
    assert list(empty.iterdir()) == []
    assert podman("container", "exists", "not-a-project-postgres", check=False).returncode == 1


def test_a_project_of_the_same_name_in_another_directory_is_refused(project, tmp_path):
    """Two directories called the same are two projects with one name: the second is refused before it touches
    the first one's container, password or data (rename it with POSTSTACK_PROJECT_NAME)."""
    state = tmp_path / "state"
    first_dir, second_dir = tmp_path / "a" / project.name, tmp_path / "b" / project.name
    for where in (first_dir, second_dir):
        (where / "migrations").mkdir(parents=True)
        (where / ".env").write_text("POSTSTACK_POSTGRES_HOST_PORT=%d\n" % project.port)
    (second_dir / "migrations" / "001_other.sql").write_text("CREATE TABLE other (id int);\n")
    first, _report = run(first_dir, state, "poststack.core.site")
    assert first.returncode == 0, first.stdout[-4000:]
    [password_file] = (state / "poststack" / "projects").glob("%s-*/postgres-password" % project.name)
    password = password_file.read_text().strip()

    second, report = run(second_dir, state, "poststack.core.site")
    assert second.returncode != 0
    assert ("%s belongs to project %s in %s" % (project.container, project.name, first_dir)) in second.stdout
    assert "nothing was" in second.stdout and changed(report) == 0
    with login(project.port, password) as conn:  # the first project's password still opens it
        assert conn.execute("SELECT to_regclass('other')").fetchone()[0] is None


def test_containers_alone_follow_the_projects_postgres_container_name(project, tmp_path):
    """containers.yml run on its own (seed 003's `container build-project` and start) finds PostgreSQL under the
    name the project's .env gives it, as site.yml made it: the app keeps DB_HOST and is not re-created."""
    state = tmp_path / "state"
    database = "%s-db" % project.name
    (project.dir / ".env").write_text("POSTSTACK_PROJECT_NAME=%s\nPOSTSTACK_POSTGRES_HOST_PORT=%d\n"
                                      "POSTSTACK_POSTGRES_CONTAINER_NAME=%s\n" % (project.name, project.port, database))
    (project.dir / "containers" / "app").mkdir(parents=True)
    (project.dir / "containers" / "app" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCMD [\"sleep\", \"infinity\"]\n")
    (project.dir / "poststack.yml").write_text("---\nproject_containers_run:\n  - name: app\n")
    first, _report = run(project.dir, state, "poststack.core.site")
    assert first.returncode == 0, first.stdout[-4000:]
    app = "%s-app" % project.name
    assert podman("container", "exists", database, check=False).returncode == 0
    assert podman("container", "exists", project.container, check=False).returncode == 1
    made = podman("inspect", "-f", "{{.Id}}", app).stdout.strip()

    alone, report = run(project.dir, state, "poststack.core.containers")
    assert alone.returncode == 0 and changed(report) == 0, alone.stdout[-4000:]
    assert podman("inspect", "-f", "{{.Id}}", app).stdout.strip() == made
    assert "DB_HOST=%s" % database in podman("exec", app, "env").stdout.splitlines()
    podman("rm", "-f", "-t", "0", database, check=False)
    shutil.rmtree("/var/lib/poststack/%s" % database, ignore_errors=True)
