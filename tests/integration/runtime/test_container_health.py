"""A run never says ok when the stack does not work: project containers that are unhealthy, or that cannot reach the
database they were given, fail the play with the container's name and what its health check said. The tests that take
the ``runtime`` fixture run on podman and on a real Docker engine."""
import json
import os
import subprocess
import sys
from urllib.parse import quote

import psycopg
import pytest
import yaml

from ansible_run import ROOT, run_playbook
from conftest import podman

HEALTH_TASK = "poststack.core.project_containers : Check that the containers are healthy and reach their database"


@pytest.fixture(scope="module", autouse=True)
def images():
    run = run_playbook("playbooks/images.yml", inventory="inventories/local")
    assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


def write_app(project):
    """The project's one container `app`, whose health check passes when HEALTH=ok."""
    app = project.dir / "containers" / "app"
    if not app.exists():
        app.mkdir(parents=True)
        (app / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
            'HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["sh", "-c", '
            '"echo health is $HEALTH; test \\"$HEALTH\\" = ok"]\n'
            'CMD ["sleep", "infinity"]\n')


def stack(project, run_entry, **role_vars):
    """postgres + project_containers with the container of write_app()."""
    write_app(project)
    tasks = [{"name": role, "ansible.builtin.include_role": {"name": f"poststack.core.{role}"}}
             for role in ("postgres", "project_containers")]
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    logs = str(project.dir.parent / f"{project.name}-logs")
    extra = project.vars(poststack_log_dir=logs, project_containers_run=[run_entry], **role_vars)
    return run_playbook(play, extra_vars=extra)


def test_healthy_container_that_reaches_the_database_passes(runtime, project):
    run = stack(project, {"name": "app", "env": {"HEALTH": "ok"}})
    assert run.rc == 0, run.stdout[-3000:]
    result = run.results(HEALTH_TASK)
    [app] = result["containers"]
    assert app["name"] == f"{project.name}-app" and app["health"] == "healthy" and app["ok"]
    assert result["database"]["ok"] and "accepting connections" in result["database"]["output"]
    assert result["database"]["host"] == project.container
    again = stack(project, {"name": "app", "env": {"HEALTH": "ok"}})
    assert again.rc == 0 and again.changed == 0


def test_a_rebuilt_image_replaces_the_running_container(runtime, project):
    """A forced --no-cache rebuild (containers.yml -e project_containers_force=true -e project_containers_no_cache=true)
    makes a new image: the running container is recreated on it, and the next run changes nothing."""
    entry = {"name": "app", "env": {"HEALTH": "ok"}}
    assert stack(project, entry).rc == 0

    def container_image():
        return runtime.cli("container", "inspect", "--format", "{{.Image}}", f"{project.name}-app").stdout.strip()

    def image_id():
        return runtime.cli("image", "inspect", "--format", "{{.Id}}", f"localhost/{project.name}/app:latest").stdout.strip()

    before = container_image()
    assert before == image_id()
    rebuilt = stack(project, entry, project_containers_force=True, project_containers_no_cache=True)
    assert rebuilt.rc == 0, rebuilt.stdout[-3000:]
    assert image_id() != before, "the forced rebuild made no new image"
    assert container_image() == image_id(), "the container still runs the old image"
    again = stack(project, entry)
    assert again.rc == 0 and again.changed == 0


def test_unhealthy_container_fails_the_run_with_its_name_and_output(runtime, project):
    run = stack(project, {"name": "app", "env": {"HEALTH": "broken"}})
    assert run.rc != 0
    result = run.results(HEALTH_TASK)
    assert result.get("failed")
    assert (f"container {project.name}-app is unhealthy (health check: sh -c echo health is $HEALTH; "
            "test \"$HEALTH\" = ok); it said: health is broken") in result["msg"]
    # Only the health check failed: the database answered the probe.
    assert result["database"]["ok"] is True
    assert project.password not in run.stdout


def test_container_that_cannot_reach_its_database_fails_the_run(runtime, project):
    run = stack(project, {"name": "app", "env": {"HEALTH": "ok"}}, project_containers_db_host="no-such-database")
    assert run.rc != 0
    result = run.results(HEALTH_TASK)
    assert (f"a container on network {project.name}-net cannot reach the database at no-such-database:5432 "
            "(the name no-such-database does not resolve on this network)") in result["msg"]
    assert result["containers"][0]["ok"] is True


def test_container_that_exits_fails_the_run(runtime, project):
    # It prints its database password (as careless apps do) and the reason it stops: the error quotes the end of
    # its log with the password masked.
    run = stack(project, {"name": "app", "env": {"HEALTH": "ok"}, "restart_policy": "no",
                          "command": ["sh", "-c", 'echo "connecting as $DB_USER with $DB_PASS"; echo "cannot open the'
                                                  ' upload directory" >&2; exit 7']})
    assert run.rc != 0
    result = run.results(HEALTH_TASK)
    assert (f"container {project.name}-app is exited (exit code 7; `{runtime.name} logs {project.name}-app` shows its log); "
            "the end of its log: connecting as ") in result["msg"]
    assert " with ********" in result["msg"] and "cannot open the upload directory" in result["msg"]
    assert project.password not in run.stdout


def verbose_run(project, run_entry):
    """The stack of `stack()` through ansible-playbook -vvv with the default (human) output, as a user sees it."""
    write_app(project)
    tasks = [{"name": role, "ansible.builtin.include_role": {"name": f"poststack.core.{role}"}}
             for role in ("postgres", "project_containers")]
    playbook = project.dir.parent / f"{project.name}-verbose.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    extra = project.vars(poststack_log_dir=str(project.dir.parent / f"{project.name}-logs"),
                         project_containers_run=[run_entry],
                         ansible_python_interpreter="{{ ansible_playbook_python }}")
    varsfile = project.dir.parent / f"{project.name}-vars.json"
    varsfile.write_text(json.dumps(extra))
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_STDOUT_CALLBACK"}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-vvv",
                           "-i", "localhost,", "-c", "local", "-e", f"@{varsfile}", str(playbook)],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_password_is_never_shown_at_any_verbosity(runtime, project):
    """The containers' environment holds DB_PASS and POSTSTACK_DATABASE_URL: neither appears at -vvv, when the
    container starts nor when it cannot be run (the error names the container, password masked)."""
    forms = {project.password, quote(project.password, safe="")}
    rc, output = verbose_run(project, {"name": "app", "env": {"HEALTH": "ok"}})
    assert rc == 0, output[-3000:]
    assert not [form for form in forms if form in output]
    rc, output = verbose_run(project, {"name": "app", "env": {"HEALTH": "ok"}, "image": f"localhost/{project.name}/none:1"})
    assert rc != 0
    assert not [form for form in forms if form in output]
    assert f"{project.name}-app:" in output and "Report a container that could not be run" in output


def test_a_container_poststack_did_not_make_is_not_replaced(project):
    """A container of the user's with the name the role would give a project container is refused, untouched."""
    base = os.environ.get("POSTSTACK_BASE_IMAGE", "localhost/debian:bookworm-slim")
    name = f"{project.name}-app"
    podman("run", "-d", "--name", name, "--pull=never", base, "sleep", "infinity")
    try:
        before = podman("inspect", "-f", "{{.Id}} {{.State.Status}}", name).stdout
        run = stack(project, {"name": "app", "env": {"HEALTH": "ok"}})
        assert run.rc != 0
        message = run.results("poststack.core.project_containers : Refuse to replace containers that poststack did "
                              "not make for this project")["msg"]
        assert message.startswith(f"A container named {name} exists (running, image {base}) that poststack did not "
                                  f"create for project {project.name}.")
        assert "They are left alone and nothing was changed." in message
        assert podman("inspect", "-f", "{{.Id}} {{.State.Status}}", name).stdout == before
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_roles_compose_migrations_follow_the_postgres_role(project):
    """postgres then migrations with only postgres_host_port and postgres_password set: the migrations reach the
    PostgreSQL the first role started (its postgres_connection fact), not 127.0.0.1:5432."""
    migrations = project.dir / "migrations"
    migrations.mkdir()
    (migrations / "001_things.sql").write_text("CREATE TABLE public.things (id int);\n")
    tasks = [{"name": role, "ansible.builtin.include_role": {"name": f"poststack.core.{role}"}}
             for role in ("postgres", "migrations")]
    extra = project.vars(poststack_log_dir=str(project.dir.parent / f"{project.name}-logs"),
                         migrations_path=str(migrations))
    run = run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], extra_vars=extra)
    assert run.rc == 0, run.stdout[-3000:]
    with psycopg.connect(host="127.0.0.1", port=project.port, user="poststack", dbname="poststack",
                         password=project.password, connect_timeout=5) as conn:
        assert conn.execute("SELECT to_regclass('public.things') IS NOT NULL").fetchone() == (True,)
