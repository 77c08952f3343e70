"""Helpers and fixtures of tests/integration/bad_input: one real stack per session (PostgreSQL from the postgres
role, PgBouncer from the pgbouncer role, one project container from the project_containers role, and good
backups), and the machinery that runs a component's bad cases in ONE playbook, each followed by a snapshot of
what must not change. conftest.py imports the fixtures from here: the tests import from this module, never from
"conftest" (every directory's conftest has that name, and the one loaded last would answer).

Every container, volume and network made here is named bi-<random>... and removed at the end of the session."""
import importlib.util
import os
import shutil
import subprocess
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.dirname(HERE)
for path in (INTEGRATION, os.path.dirname(INTEGRATION), os.path.join(INTEGRATION, "backup"),
             os.path.join(INTEGRATION, "btrfs")):
    if path not in sys.path:
        sys.path.insert(0, path)

from ansible_run import run_playbook  # noqa: E402  (after the sys.path set-up)

# tests/integration/runtime/conftest.py holds Project and free_port; every directory's conftest is called
# "conftest", so it is loaded under a name of its own.
_SPEC = importlib.util.spec_from_file_location("runtime_fixtures", os.path.join(INTEGRATION, "runtime", "conftest.py"))
runtime_fixtures = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(runtime_fixtures)
free_port = runtime_fixtures.free_port

IMAGES = ("localhost/poststack/postgres-debian:latest", "localhost/poststack/base-debian:latest")
APP_IMAGE = "localhost/poststack/base-debian:latest"
PASSWORD = "bi-pw'\"$; never-shown-7f3a"
PASSPHRASE = "bi-passphrase-never-shown-91c2"


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


class Stack(runtime_fixtures.Project):
    """A poststack project named bi-<random> with PostgreSQL, PgBouncer and one project container running."""

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.name = f"bi-{uuid.uuid4().hex[:6]}"
        self.password = PASSWORD
        self.dir = tmp_path / self.name
        self.dir.mkdir()
        self.pgbouncer_port = free_port()
        self.pgbouncer_dir = str(tmp_path / "pgbouncer")
        self.backup_dir = ""
        self.backups = {}

    @property
    def pgbouncer(self):
        return f"{self.name}-pgbouncer"

    @property
    def app(self):
        return f"{self.name}-app"

    @property
    def network(self):
        return f"{self.name}-net"

    @property
    def env_dir(self):
        return f"/var/lib/poststack/{self.name}-containers"

    def vars(self, **extra):
        values = super().vars(
            poststack_container_runtime="podman",
            pgbouncer_config_dir=self.pgbouncer_dir,
            pgbouncer_publish=f"127.0.0.1:{self.pgbouncer_port}",
            pgbouncer_default_pool_size=2,
            project_containers_run=[{"name": "app", "image": APP_IMAGE, "command": ["sleep", "infinity"]}],
        )
        values.update(extra)
        return values

    def psql(self, sql, database="poststack"):
        proc = subprocess.run(["podman", "exec", "-i", "--user", "postgres", self.container, "psql", "-XAtq", "-v",
                               "ON_ERROR_STOP=1", "-d", database, "-f", "-"], input=sql, capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def cleanup(self):
        for name in (self.pgbouncer, self.app):
            podman("rm", "-f", "-t", "0", name, check=False)
        super().cleanup()
        shutil.rmtree(self.pgbouncer_dir, ignore_errors=True)


STACK_PLAY = [{"hosts": "localhost", "gather_facts": False, "tasks": [
    {"name": "postgres", "ansible.builtin.include_role": {"name": "poststack.core.postgres"}},
    {"name": "pgbouncer", "ansible.builtin.include_role": {"name": "poststack.core.pgbouncer"}},
    {"name": "project_containers", "ansible.builtin.include_role": {"name": "poststack.core.project_containers"}},
]}]


@pytest.fixture(scope="session")
def images():
    """The local images (tests/integration/runtime/test_postgres_bad_input.py builds them the same way); never pulled."""
    if any(podman("image", "exists", image, check=False).returncode for image in IMAGES):
        run = run_playbook("playbooks/images.yml", inventory="inventories/local")
        assert run.rc == 0 and run.failed == 0, run.stdout[-3000:]


@pytest.fixture(scope="session")
def stack(tmp_path_factory, images):  # pylint: disable=unused-argument,redefined-outer-name
    created = Stack(tmp_path_factory.mktemp("bad-input"))
    try:
        run = run_playbook(STACK_PLAY, extra_vars=created.vars())
        assert run.rc == 0, [(t["task"]["name"], h.get("msg")) for t in run.tasks for h in t["hosts"].values()
                             if h.get("failed")]
        created.psql("CREATE TABLE kept (v text); INSERT INTO kept SELECT 'row ' || g FROM generate_series(1, 500) g;")
        mount = podman("volume", "inspect", "-f", "{{.Mountpoint}}", f"{created.container}-backups").stdout.strip()
        created.backup_dir = os.path.join(mount, "logical", "bi-cases")
        backups = run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": name, "poststack.core.poststack_backup": dict(
                container=created.container, database="poststack", backup_dir=created.backup_dir, keep_count=0,
                **args)} for name, args in (("plain", {}), ("openssl", {"encryption": "openssl", "passphrase": PASSPHRASE}),
                                            ("corrupt", {"prefix": "corrupt_"}))]}])
        assert backups.rc == 0, backups.stdout[-3000:]
        created.backups = {name: backups.results(name)["backup"] for name in ("plain", "openssl", "corrupt")}
        with open(created.backups["corrupt"]["path"], "r+b") as handle:  # same size, other bytes: corrupt
            handle.seek(100)
            byte = handle.read(1)
            handle.seek(100)
            handle.write(bytes([byte[0] ^ 0xFF]))
        yield created
    finally:
        created.cleanup()


def stack_script(stack, *extra_dirs):
    """The shell script of a stack snapshot: its containers (id, state, ports), volumes and networks, its databases
    and the data of table kept, and every file (mode, owner, sha1) below the directories the roles and modules
    write (the backups volume, the PgBouncer and env file directories, PostgreSQL's state directory)."""
    mount = os.path.dirname(os.path.dirname(stack.backup_dir))
    dirs = [mount, stack.pgbouncer_dir, stack.env_dir, f"/var/lib/poststack/{stack.container}", *extra_dirs]
    psql = f"podman exec --user postgres {stack.container} psql -XAtq"
    lines = [
        "set -e -o pipefail",
        f"podman ps -aq --filter name=^{stack.name} | xargs -r podman inspect -f '{{{{.Name}}}} {{{{.Id}}}} "
        "{{.State.Status}} {{.State.StartedAt}} {{.RestartCount}} {{.HostConfig.PortBindings}}' | sort",
        f"podman volume ls -q --filter name=^{stack.name} | sort; "
        f"podman network ls --format '{{{{.Name}}}}' --filter name=^{stack.name} | sort",
        f"{psql} -d poststack -c \"SELECT (SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database), "
        "count(*), md5(string_agg(v, ',' ORDER BY v)) FROM kept\"",
    ]
    for path in dirs:
        lines.append(f"if [ -e '{path}' ]; then find '{path}' -exec stat -c '%n %a %u:%g %s' {{}} + | sort; "
                     f"find '{path}' -type f -exec sha1sum {{}} + | sort; else echo 'absent {path}'; fi")
    return "{% raw %}" + "\n".join(lines) + "{% endraw %}"


def snapshot_task(case_id, script):
    """The task after each case: a shell script whose output is what must not change."""
    return {"name": f"{case_id} snapshot", "ansible.builtin.shell": {"cmd": script, "executable": "/bin/bash"},
            "changed_when": False}


def role_case(case_id, role, variables):
    """A role run with bad variables; the block stops at the first failure (rescue), so nothing after it runs."""
    return {"name": case_id, "vars": variables,
            "block": [{"name": case_id, "ansible.builtin.include_role": {"name": role}}],
            "rescue": [{"name": f"{case_id} refused", "ansible.builtin.debug": {"msg": "refused"}}]}


def module_case(case_id, module, args):
    return {"name": case_id, module: args, "ignore_errors": True}


class CaseRun:
    """One playbook run of all a component's cases: the failed result of each case and the snapshot after it."""

    def __init__(self, run, ids):
        self.run = run
        self.failures = {}
        self.snapshots = {}
        self.changed = {}
        self.order = []  # snapshot names in the order they ran
        current = None
        for task in run.tasks:
            name = task["task"]["name"]
            result = task["hosts"].get("localhost", {})
            if name.endswith(" snapshot") and name[: -len(" snapshot")] in ids:
                self.snapshots[name[: -len(" snapshot")]] = result.get("stdout", "")
                self.order.append(name[: -len(" snapshot")])
                current = None
                continue
            if name in ids:
                current = name
                self.changed.setdefault(current, False)
            if current is None:
                continue
            if result.get("changed"):
                self.changed[current] = True
            if result.get("failed"):  # the last: a rescue's report of a failed loop says more than the loop
                self.failures[current] = result

    def before(self, case_id):
        """The snapshot taken right before case_id ran."""
        return self.snapshots[self.order[self.order.index(case_id) - 1]]

    def message(self, case_id):
        assert case_id in self.failures, f"{case_id} did not fail (bad input was accepted)"
        return self.failures[case_id].get("msg", "")


def run_cases(cases, play_vars, snapshot_script):
    """cases: (id, task) pairs. Runs them in one playbook, a snapshot after each and one before the first (none
    when snapshot_script is None: for modules that cannot change anything on this host)."""
    snapshot = [snapshot_task("before", snapshot_script)] if snapshot_script else []
    tasks = list(snapshot)
    for case_id, task in cases:
        tasks += [task] + ([snapshot_task(case_id, snapshot_script)] if snapshot_script else [])
    run = run_playbook([{"hosts": "localhost", "gather_facts": False, "vars": play_vars, "tasks": tasks}])
    return CaseRun(run, [case_id for case_id, _task in cases] + ["before"])


def check_case(cases, case_id, fragments, secrets=(PASSWORD, PASSPHRASE), snapshots=True):
    """The promise for one case: it failed with a message holding every fragment (the bad thing, its value, what
    to do), reported no change, left the snapshot as it was right before it, and printed no secret."""
    message = cases.message(case_id)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in message and "Unknown error" not in message, message
    assert not cases.changed[case_id], f"{case_id} reported a change"
    if snapshots:
        assert case_id in cases.snapshots, f"no snapshot after {case_id}"
        assert cases.snapshots[case_id] == cases.before(case_id), f"{case_id} changed something"
        assert cases.snapshots["before"].count("\n") > 3, cases.snapshots["before"]  # the snapshot sees something
    for secret in secrets:
        assert secret not in cases.run.stdout and secret not in message


def fill(value, **names):
    """Case tables are constants with {placeholders} (the stack's names are random): fill them in."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {fill(key, **names): fill(item, **names) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [fill(item, **names) for item in value]
    return value
