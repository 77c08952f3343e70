"""Point-in-time recovery as a user runs it: playbooks/backup.yml, then playbooks/restore.yml with the very
command line of docs/backup.md, against a PostgreSQL container of its own (recovery rewinds the whole cluster, so
it must not share the session container of the other backup tests).

The tests of this module run in order on one cluster per runtime (podman, then a real Docker engine): the refused
targets first, then the recovery itself.
"""
import contextlib
import json
import os
import time
import uuid

import pytest

import docker_engine
from ansible_run import ansible_playbook
from backup_lab import Lab, podman

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NOW_SQL = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"


def failure_messages(run):
    return [result.get("msg", "") for task in run.tasks for result in task["hosts"].values() if result.get("failed")]


class PitrLab:
    def __init__(self, lab):
        self.lab = lab
        self.name = lab.name
        self.before_backup = ""
        self.noted = ""

    def cli(self, *args):
        return self.lab.cli(*args)

    def started_at(self):
        return self.cli("container", "inspect", "--format", "{{.State.StartedAt}}", self.name).stdout

    def info(self):
        return json.loads(self.cli("exec", "--user", "postgres", self.name, "pgbackrest",
                                   "--config=/etc/postgresql/conf.d/pgbackrest/pgbackrest.conf", "--stanza=main",
                                   "info", "--output=json").stdout)

    def sql(self, statement, database="poststack"):
        return self.lab.psql(database, statement)

    def rows(self):
        return self.sql("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM pitr")

    def restore(self, target):
        # docs/backup.md, "Point-in-time recovery", plus the name of this test's container.
        return ansible_playbook("-i", "inventories/local", "playbooks/restore.yml", "-e", "restore_confirm=true",
                                "-e", "restore_mode=pitr", "-e", "backup_pgbackrest_enabled=true",
                                "-e", f"backup_pitr_target='{target}'", "-e", f"backup_container_name={self.name}",
                                "-e", f"backup_runtime={self.lab.runtime}")


@pytest.fixture(scope="module", params=["podman", "docker"])
def pitr(tmp_path_factory, request):
    image = "localhost/poststack/postgres-debian:latest"
    podman("image", "exists", image)
    with contextlib.ExitStack() as stack:
        if request.param == "docker":
            stack.enter_context(docker_engine.running([image]))  # DOCKER_HOST for the playbooks, the image moved
        yield from recovery_lab(tmp_path_factory, request.param)


def recovery_lab(tmp_path_factory, runtime):
    lab = Lab(str(tmp_path_factory.mktemp("pitr-lab")), runtime=runtime)
    lab.name = f"pstest-pitr-{uuid.uuid4().hex[:8]}"
    lab.volume = f"{lab.name}-data"
    state = PitrLab(lab)
    try:
        lab.start()
        state.sql("CREATE TABLE pitr (id int PRIMARY KEY)")
        state.before_backup = state.sql(NOW_SQL, "postgres")
        time.sleep(1.1)
        # docs/backup.md: playbooks/backup.yml configures pgBackRest and archiving and takes a backup now.
        run = ansible_playbook("-i", "inventories/local", "playbooks/backup.yml", "-e", "backup_pgbackrest_enabled=true",
                               "-e", "backup_pgbackrest_type=full", "-e", "backup_scheduler=none",
                               "-e", f"backup_container_name={lab.name}", "-e", f"backup_runtime={runtime}")
        assert run.rc == 0 and run.failed == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert [backup["type"] for backup in state.info()[0]["backup"]] == ["full"]
        assert state.sql("SHOW archive_mode") == "on"

        # pgBackRest counts a backup's end in whole seconds: a target must lie in a later second than that.
        time.sleep(1.1)
        state.sql("INSERT INTO pitr SELECT generate_series(1, 10)")
        state.noted = state.sql(NOW_SQL, "postgres")
        state.sql("INSERT INTO pitr SELECT generate_series(11, 20)")
        yield state
    finally:
        lab.stop()


def test_a_target_before_the_backup_is_refused_and_nothing_changes(pitr):
    started = pitr.started_at()
    run = pitr.restore(pitr.before_backup)
    assert run.rc != 0
    messages = " ".join(failure_messages(run))
    assert f"Cannot recover to {pitr.before_backup}: no pgBackRest backup of stanza main finished before it" in messages
    assert "Nothing was stopped or changed." in messages
    assert run.changed == 0
    assert pitr.started_at() == started
    assert pitr.rows() == ",".join(str(i) for i in range(1, 21))


def test_a_target_in_the_second_the_backup_ended_is_refused_as_pgbackrest_would(pitr):
    """pgBackRest records a backup's end in whole seconds and wants a target in a later second; the check before
    anything stops must agree (it once rounded the target up, and pgBackRest then failed with the server down)."""
    stop = pitr.info()[0]["backup"][-1]["timestamp"]["stop"]
    target = pitr.sql(f"SELECT to_timestamp({stop} + 0.7)::text", "postgres")
    started = pitr.started_at()
    run = pitr.restore(target)
    assert run.rc != 0 and run.changed == 0
    assert f"Cannot recover to {target}: no pgBackRest backup of stanza main finished before it" in " ".join(
        failure_messages(run))
    assert pitr.started_at() == started


def test_recovery_to_the_noted_time_keeps_exactly_the_first_rows_and_accepts_writes(pitr):
    run = pitr.restore(pitr.noted)
    assert run.rc == 0 and run.failed == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert pitr.rows() == ",".join(str(i) for i in range(1, 11))
    assert pitr.sql("SELECT pg_is_in_recovery()") == "f"
    pitr.sql("INSERT INTO pitr VALUES (21)")
    assert pitr.rows() == ",".join(str(i) for i in [*range(1, 11), 21])
    # The new timeline keeps archiving to the same stanza.
    pitr.cli("exec", "--user", "postgres", pitr.name, "pgbackrest",
             "--config=/etc/postgresql/conf.d/pgbackrest/pgbackrest.conf", "--stanza=main", "check",
             "--log-level-console=warn")
