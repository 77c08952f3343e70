"""The `poststack` command as a user gets it (issue 15): the wheel built from this checkout, installed with pip into
a fresh venv, and run in a project directory of the user's (a .env and migrations/) with a user's environment:
none of the checkout's ANSIBLE_* settings or venv, only the host's container settings. Seed 003's quick start
(build, start on a port, migrate), the migration verbs, status, a bad password through --url, usage errors (exit
code 2), a second start that changes nothing, and the log in logs/main/."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid

import pytest

from lab import free_port, podman

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CACHE = os.environ.get("POSTSTACK_CACHE", os.path.expanduser("~/.cache/poststack"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the checkout's files (git's view of them: no venv, caches or logs), installed
    into a new venv; the ansible wheel the toolchain keeps is offered to pip so that it is not downloaded again."""
    work = tmp_path_factory.mktemp("cli-install")
    source, wheels, venv = work / "source", work / "wheels", work / "venv"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout
    subprocess.run(["rsync", "-a", "--from0", "--files-from=-", "./", str(source) + "/"], cwd=ROOT, input=listed,
                   check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
                   check=True, capture_output=True)
    built = [name for name in os.listdir(wheels) if name.startswith("poststack-")]
    assert len(built) == 1, built
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--find-links",
                    os.path.join(CACHE, "wheels"), str(wheels / built[0])], check=True, capture_output=True)
    return venv / "bin" / "poststack"


def user_env():
    keep = ("HOME", "PATH", "LANG", "CONTAINERS_CONF", "POSTSTACK_BASE_IMAGE", "PODMAN_IGNORE_CGROUPSV1_WARNING")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    # the checkout's venv is not on the user's PATH
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(CACHE) and p != os.path.dirname(sys.executable))
    return env


def poststack(command, project, *args):
    return subprocess.run([str(command), *args], cwd=project, env=user_env(), capture_output=True, text=True,
                          check=False, timeout=900)


@pytest.fixture
def project(tmp_path):
    name = "cli%s" % uuid.uuid4().hex[:6]
    directory = tmp_path / name
    (directory / "migrations").mkdir(parents=True)
    (directory / "migrations" / "001_items.sql").write_text("CREATE TABLE items (id int PRIMARY KEY, name text);\n")
    (directory / "migrations" / "001_items.rollback.sql").write_text("DROP TABLE items;\n")
    (directory / "migrations" / "002_seed.sql").write_text("INSERT INTO items VALUES (1, 'first');\n")
    (directory / "migrations" / "002_seed.rollback.sql").write_text("DELETE FROM items WHERE id = 1;\n")
    (directory / ".env").write_text("POSTSTACK_PROJECT_NAME=%s\n" % name)
    yield directory
    remove_project(name)


def remove_project(name):
    for container in podman("ps", "-a", "-q", "--filter", "label=io.poststack.project=%s" % name,
                            check=False).stdout.split():
        podman("rm", "-f", "-t", "0", container, check=False)
    for volume in podman("volume", "ls", "-q", "--filter", "label=io.poststack.project=%s" % name,
                         check=False).stdout.split():
        podman("volume", "rm", "-f", volume, check=False)
    podman("network", "rm", "-f", "%s-net" % name, check=False)
    shutil.rmtree("/var/lib/poststack/%s-postgres" % name, ignore_errors=True)
    shutil.rmtree("/var/lib/poststack/%s-containers" % name, ignore_errors=True)
    for image in podman("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                        "reference=localhost/%s/*" % name, check=False).stdout.split():
        podman("rmi", "-f", image, check=False)
    state = os.path.join(os.path.expanduser("~/.local/state/poststack/projects"))
    for entry in (os.listdir(state) if os.path.isdir(state) else []):
        if entry.startswith(name + "-"):
            shutil.rmtree(os.path.join(state, entry), ignore_errors=True)


def test_usage_errors_exit_2_without_running_anything(installed, tmp_path):
    unknown = poststack(installed, tmp_path, "contianer", "start")
    assert unknown.returncode == 2 and "invalid choice: 'contianer'" in unknown.stderr, unknown.stderr
    port = poststack(installed, tmp_path, "container", "start", "--postgres-port", "70000")
    assert port.returncode == 2 and "'70000' is not a port number from 1 to 65535" in port.stderr
    drop = poststack(installed, tmp_path, "database", "drop-schema")
    assert drop.returncode == 2 and "add --yes to confirm" in drop.stderr
    assert not os.path.exists(tmp_path / "logs")  # nothing ran
    helped = poststack(installed, tmp_path, "database", "--help")
    assert helped.returncode == 0 and "verify-migrations" in helped.stdout
    completion = poststack(installed, tmp_path, "completion", "bash")
    assert completion.returncode == 0 and "complete -F _poststack poststack" in completion.stdout
    version = poststack(installed, tmp_path, "version")
    assert version.returncode == 0 and "poststack.core 0.1.0" in version.stdout
    assert "site-packages/ansible_collections/poststack/core" in version.stdout  # the wheel's, not the checkout's


def test_seed_003_quick_start_and_migration_verbs(installed, project):
    port = str(free_port())
    built = poststack(installed, project, "container", "build")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "postgres-debian:latest" in built.stdout

    started = poststack(installed, project, "container", "start", "--postgres-port", port)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "changed: postgres: Run the PostgreSQL container" in started.stdout
    assert "project: 2 applied, version 2" in started.stdout
    assert started.stdout.rstrip().endswith("0 failed")

    again = poststack(installed, project, "container", "start", "--postgres-port", port)
    assert again.returncode == 0 and "done: 0 changed, 0 failed" in again.stdout, again.stdout

    # seed 003's step 4 as it is written, with this server's port and password in the URL
    password = project_password(project.name)
    url = "postgresql://poststack:%s@localhost:%s/poststack" % (password, port)
    schema = poststack(installed, project, "database", "create-schema", "--url", url)
    assert schema.returncode == 0 and "core: 0 applied, version 3; project: 0 applied, version 2" in schema.stdout, \
        schema.stdout + schema.stderr
    assert poststack(installed, project, "database", "migrate", "--url", url).returncode == 0
    assert password not in schema.stdout + schema.stderr

    status = poststack(installed, project, "database", "migration-status")
    assert "project: version 2, 2 applied, pending []" in status.stdout, status.stdout
    rolled = poststack(installed, project, "database", "rollback", "--target-version", "1")
    assert rolled.returncode == 0 and "rolled back [2]; version 2 -> 1" in rolled.stdout, rolled.stdout
    migrated = poststack(installed, project, "database", "migrate")
    assert migrated.returncode == 0 and "project: 1 applied, version 2" in migrated.stdout, migrated.stdout
    verified = poststack(installed, project, "database", "verify-migrations")
    assert verified.returncode == 0 and "project: version 2, ok" in verified.stdout, verified.stdout

    shown = poststack(installed, project, "container", "status")
    assert "%s-postgres" % project.name in shown.stdout and "running" in shown.stdout, shown.stdout
    as_json = json.loads(poststack(installed, project, "container", "status", "--json").stdout)
    assert [(c["name"], c["state"], c["ports"]) for c in as_json["hosts"]["localhost"]] == [
        ("%s-postgres" % project.name, "running", ["127.0.0.1:%s->5432/tcp" % port])] and as_json["failed"] == []
    versions = json.loads(poststack(installed, project, "database", "migration-status", "--json").stdout)
    assert [(s["stream"], s["current_version"]) for s in versions["hosts"]["localhost"]] == [("core", 3), ("project", 2)]
    connected = poststack(installed, project, "database", "test-connection")
    assert connected.returncode == 0 and "connected: 15" in connected.stdout, connected.stdout

    wrong = poststack(installed, project, "database", "test-connection", "--url",
                      "postgresql://poststack:not-the-Pw-9@127.0.0.1:%s/poststack" % port)
    assert wrong.returncode == 1, wrong.stdout
    assert 'password authentication failed for user "poststack"' in wrong.stdout
    assert "not-the-Pw-9" not in wrong.stdout + wrong.stderr

    # a URL without the password, from a directory that is another project: the password tried is named, never shown
    elsewhere = project.parent / ("other" + project.name)
    (elsewhere / "migrations").mkdir(parents=True)
    nopassword = poststack(installed, elsewhere, "database", "test-connection", "--url",
                           "postgresql://poststack@127.0.0.1:%s/poststack" % port)
    remove_project(elsewhere.name)  # the password poststack generated for that project
    assert nopassword.returncode == 1, nopassword.stdout
    assert ("password authentication failed for user \"poststack\". The password tried was this project's"
            in nopassword.stdout), nopassword.stdout
    assert "Give the server's password in the URL" in nopassword.stdout
    assert "the whole run is in logs/main/poststack.log" in nopassword.stderr
    nouser = poststack(installed, elsewhere, "database", "test-connection", "--url",
                       "postgresql://127.0.0.1:%s/poststack" % port)
    assert nouser.returncode == 2 and "--url names no user: write it as postgresql://USER[:PASSWORD]@" in nouser.stderr

    log = (project / "logs" / "main" / "poststack.log").read_text()
    assert "done: 0 changed, 0 failed" in log and "rolled back [2]" in log
    everything = started.stdout + started.stderr + again.stdout + log
    assert password and password not in everything

    # The database adopted from its live schema as another stream (a --config-file names it and its empty
    # directory): pg_dump runs in the project's container; the file holds the project's table, not the history.
    adopted = project / "adopted"
    adopted.mkdir()
    config = project / "adopt.yml"
    config.write_text("migrations_stream: adopted\nmigrations_path: %s\n" % adopted)
    baseline = poststack(installed, project, "-v", "--config-file", str(config), "database", "baseline", "--from",
                         "schema")
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    assert "written to %s/001_baseline.sql" % adopted in baseline.stdout, baseline.stdout
    text = (adopted / "001_baseline.sql").read_text()
    assert "CREATE TABLE public.items" in text and "schema_migrations" not in text
    # -v shows the module's result: the pg_dump that ran, in the container
    assert re.search(r"exec\W+--user\W+postgres\W+%s-postgres\W+pg_dump" % re.escape(project.name), baseline.stdout), \
        baseline.stdout[-3000:]
    assert password not in baseline.stdout + baseline.stderr
    again = poststack(installed, project, "--config-file", str(config), "database", "baseline", "--from", "schema")
    assert again.returncode == 0 and "nothing (already recorded)" in again.stdout, again.stdout
    assert os.listdir(adopted) == ["001_baseline.sql"]

    stopped = poststack(installed, project, "container", "stop")
    assert stopped.returncode == 0 and "changed: Stop them (%s-postgres)" % project.name in stopped.stdout


def project_password(name):
    """The password poststack generated for the project (its state directory)."""
    password_files = [os.path.join(base, "postgres-password")
                      for base, _dirs, files in os.walk(os.path.expanduser("~/.local/state/poststack/projects"))
                      if os.path.basename(base).startswith(name + "-") and "postgres-password" in files]
    assert len(password_files) == 1
    with open(password_files[0], encoding="utf-8") as handle:
        return handle.read().strip()


def project_objects(name):
    """The project's containers, volumes, networks and state directories on the host: what a refused command must
    not have created."""
    label = "label=io.poststack.project=%s" % name
    return (podman("ps", "-a", "-q", "--filter", label).stdout.split(),
            podman("volume", "ls", "-q", "--filter", label).stdout.split(),
            [n for n in podman("network", "ls", "--format", "{{.Name}}").stdout.split() if n.startswith(name)]
            + [d for d in os.listdir("/var/lib/poststack") if d.startswith(name)]
            if os.path.isdir("/var/lib/poststack") else [])


def test_bad_input_is_refused_and_creates_nothing(installed, project):
    """A bad .env line, a port something else holds, a runtime whose engine does not answer: each one message
    (exit code 1) that says what to do, the log named, and no container, volume or network made."""
    name = project.name
    (project / ".env").write_text("POSTSTACK_PROJECT_NAME=%s\nnot a setting Hush-Secret-1\n" % name)
    bad_env = poststack(installed, project, "container", "start", "--postgres-port", str(free_port()))
    assert bad_env.returncode == 1
    assert ("FAILED: postgres: Validating arguments against arg spec 'main' - Run PostgreSQL in a container per "
            "project: %s/.env line 2: expected KEY=VALUE but the line has no '='" % project) in bad_env.stdout, \
        bad_env.stdout
    assert "write it as KEY=VALUE or start it with #" in bad_env.stdout
    assert "lookup plugin" not in bad_env.stdout and "Hush-Secret-1" not in bad_env.stdout + bad_env.stderr
    assert "the whole run is in logs/main/poststack.log" in bad_env.stderr
    assert "Hush-Secret-1" not in (project / "logs" / "main" / "poststack.log").read_text()
    assert project_objects(name) == ([], [], [])
    (project / ".env").write_text("POSTSTACK_PROJECT_NAME=%s\n" % name)

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        held = holder.getsockname()[1]
        busy = poststack(installed, project, "container", "start", "--postgres-port", str(held))
    assert busy.returncode == 1
    assert ("Host port 127.0.0.1:%d is already in use by another process. Choose another postgres_host_port (or "
            "POSTSTACK_POSTGRES_HOST_PORT) for %s-postgres." % (held, name)) in busy.stdout, busy.stdout
    assert project_objects(name) == ([], [], [])

    no_engine = subprocess.run([str(installed), "container", "start", "--postgres-port", str(free_port())],
                               cwd=project, capture_output=True, text=True, check=False, timeout=600,
                               env=dict(user_env(), POSTSTACK_CONTAINER_RUNTIME="docker",
                                        DOCKER_HOST="unix://%s/no-engine.sock" % project))
    assert no_engine.returncode == 1
    assert ("the Docker engine does not answer at DOCKER_HOST=unix://%s/no-engine.sock" % project) in no_engine.stdout
    assert "point DOCKER_HOST at an engine that answers, or run with podman" in no_engine.stdout, no_engine.stdout
    assert project_objects(name) == ([], [], [])


@pytest.fixture
def web_stack(tmp_path):
    """A copy of examples/apache-php (seed 003's Apache + PHP stack) as a user's project, with its own name and
    ports in its .env."""
    name = "cliweb%s" % uuid.uuid4().hex[:6]
    directory = tmp_path / name
    shutil.copytree(os.path.join(ROOT, "examples", "apache-php"), directory,
                    ignore=shutil.ignore_patterns(".env", "logs"))
    web_port = free_port()
    (directory / ".env").write_text("POSTSTACK_PROJECT_NAME=%s\nPOSTSTACK_POSTGRES_HOST_PORT=%d\n"
                                    "POSTSTACK_WEB_PORT=%d\n" % (name, free_port(), web_port))
    yield directory, web_port
    remove_project(name)


def test_seed_003_web_stack_beside_another_project(installed, web_stack, project):
    """Seed 003's steps for its web stack (build, build-project, start) in one directory, while another project
    runs from another directory on its own port: the page shows the row the migration wrote, and each directory's
    status shows its own containers only."""
    directory, web_port = web_stack
    other = poststack(installed, project, "container", "start", "--postgres-port", str(free_port()))
    assert other.returncode == 0, other.stdout + other.stderr
    for step in (["container", "build"], ["container", "build-project"], ["container", "start"]):
        done = poststack(installed, directory, *step)
        assert done.returncode == 0, "%s: %s%s" % (" ".join(step), done.stdout[-3000:], done.stderr[-2000:])
    assert "changed: project_containers: Run the containers on the database network" in done.stdout
    with urllib.request.urlopen("http://127.0.0.1:%d/" % web_port, timeout=10) as page:
        assert page.read().decode().strip() == "Hello from PostgreSQL, migrated by poststack"
    mine = json.loads(poststack(installed, directory, "container", "status", "--json").stdout)["hosts"]["localhost"]
    theirs = json.loads(poststack(installed, project, "container", "status", "--json").stdout)["hosts"]["localhost"]
    assert sorted(c["name"] for c in mine) == ["%s-apache" % directory.name, "%s-postgres" % directory.name]
    assert [c["name"] for c in theirs] == ["%s-postgres" % project.name]
