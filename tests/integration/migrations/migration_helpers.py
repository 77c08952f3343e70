"""Helpers and fixtures for the migration engine's integration tests (real PostgreSQL from tests/pg_server.py)."""
import json
import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from ansible_collections.poststack.core.plugins.module_utils import migrations as m  # noqa: E402
from ansible_collections.poststack.core.plugins.module_utils.database import ConnectionSettings, connect  # noqa: E402

ROOT = os.path.dirname(TESTS)
COLLECTIONS = os.path.join(ROOT, ".collections")


def write_files(directory, files):
    """Create/replace (text) or delete (None) files in ``directory``; returns it as str."""
    os.makedirs(str(directory), exist_ok=True)
    for name, text in files.items():
        path = os.path.join(str(directory), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)  # names may hold directories (deploy/x.sql)
        if text is None:
            os.unlink(path)
        elif isinstance(text, bytes):
            with open(path, "wb") as handle:
                handle.write(text)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
    return str(directory)


class Runner:
    """Opens engines against one database; each ``engine()`` gets its own connection (closed at teardown)."""

    def __init__(self, db, directory):
        self.db = db
        self.directory = str(directory)
        self.connections = []

    def connection(self, **overrides):
        settings = ConnectionSettings(dsn=self.db.dsn, password=self.db.server.password, application_name="poststack_test")
        for key, value in overrides.items():
            setattr(settings, key, value)
        conn = connect(settings)
        self.connections.append(conn)
        return conn

    def engine(self, directory=None, **settings):
        settings.setdefault("lock_wait_timeout", 5)
        return m.Engine(self.connection(), m.Settings(directory or self.directory, **settings))

    def run(self, action="apply", target=None, directory=None, dry_run=False, **settings):
        return self.engine(directory, **settings).run(action, target, dry_run)

    def snapshot(self):
        """Full dump (schema + data, history rows included): equal snapshots mean an unchanged database."""
        return self.db.dump()

    def close(self):
        for conn in self.connections:
            conn.close()


@pytest.fixture
def runner(pg_database, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    item = Runner(pg_database, directory)
    try:
        yield item
    finally:
        item.close()


def cli_env(db):
    env = db.env
    env["PYTHONPATH"] = COLLECTIONS + os.pathsep + env.get("PYTHONPATH", "")
    return env


CLI = [sys.executable, "-m", "ansible_collections.poststack.core.plugins.module_utils.migrations"]


# Where poststack_migrate's work runs on this local target: "controller" (Ansible's worker, the default here) or
# "module" (a module process, as on any other target). The `execution` fixture of a test module sets it.
EXECUTION = "controller"


def playbook(db, tmp_path, path, *args, extra_vars=None, password_in_vars=False, check=False):
    """Run ansible-playbook on localhost; returns (rc, per-task results, stats, stdout). Secrets only in files/env.
    Every poststack_migrate result must say it ran where EXECUTION says."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    variables = {"migrations_db_host": db.server.host, "migrations_db_port": db.server.port,
                 "migrations_db_name": db.name, "migrations_db_user": db.server.user,
                 "poststack_in_process": EXECUTION == "controller"}
    variables.update(extra_vars or {})
    env = dict(db.env)
    if password_in_vars:
        variables["migrations_db_password"] = db.server.password
        env.pop("PGPASSWORD")
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(variables))
    env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.junit", JUNIT_OUTPUT_DIR=str(tmp_path / "junit"))
    cmd = ["ansible-playbook", "-i", str(inventory), "-e", "@%s" % vars_file, str(path), *args]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert db.server.password not in proc.stdout + proc.stderr
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("ansible-playbook printed no JSON (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    tasks = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            tasks[name.split(" : ", 1)[-1]] = task["hosts"].get("localhost", {})
            result = task["hosts"].get("localhost", {})
            if "dsn" in result:  # the migration modules' results (set before they connect)
                assert result.get("execution") == EXECUTION, "%s ran in the %s, not the %s" % (
                    name, result.get("execution"), EXECUTION)
    return proc.returncode, tasks, report["stats"].get("localhost", {}), proc.stdout
