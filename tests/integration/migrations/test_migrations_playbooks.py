"""The module, the role and the playbooks through ansible-playbook: each change twice, check mode changes nothing."""
import json
import os

import migration_helpers
import pytest
from migration_helpers import ROOT, playbook, write_files

EXAMPLE = os.path.join(ROOT, "examples", "project", "migrations")


def applied(tasks):
    """What the role's one migration task applied, by stream."""
    return {r["stream"]: r["applied"] for r in tasks[MIGRATE_TASK]["streams"]}


MIGRATE_TASK = "Apply the collection's core schema and the project's migrations"


@pytest.fixture(params=["controller", "module"])
def execution(request, monkeypatch):
    """Both ways poststack_migrate's work runs on a local target: in Ansible's worker (the default) and in a module
    process (as on any other target, or with poststack_in_process=false); the results must be the same."""
    monkeypatch.setattr(migration_helpers, "EXECUTION", request.param)
    return request.param


def test_migrate_status_rollback_playbooks(pg_database, tmp_path, execution):
    db = pg_database
    project = {"migrations_path": EXAMPLE, "migrations_log_file": str(tmp_path / "logs" / "database" / "migrations.log")}
    before = db.dump()

    rc, tasks, stats, out = playbook(db, tmp_path, "playbooks/migrate.yml", extra_vars=project, check=True)
    assert rc == 0 and stats["changed"] == 1, out[-4000:]
    assert applied(tasks) == {"core": [1, 2, 3], "project": [1, 2]}
    assert db.dump() == before, "check mode changed the database"

    rc, tasks, stats, dummy = playbook(db, tmp_path, "playbooks/migrate.yml", extra_vars=project, password_in_vars=True)
    assert rc == 0 and stats["changed"] == 1, stats
    assert applied(tasks) == {"core": [1, 2, 3], "project": [1, 2]}  # one module call for both streams
    assert tasks[MIGRATE_TASK]["execution"] == execution
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.notes").fetchone()[0] == 2
        assert conn.execute("SELECT to_regclass('poststack.containers')").fetchone()[0] is not None
        rows = conn.execute("SELECT stream, version FROM poststack.schema_migrations ORDER BY 1, 2").fetchall()
        assert rows == [("core", 1), ("core", 2), ("core", 3), ("project", 1), ("project", 2)]
    log_text = (tmp_path / "logs" / "database" / "migrations.log").read_text()
    assert "apply version=2 name=notes_created_at_index" in log_text and db.server.password not in log_text
    assert "state=applied connected to" in log_text and "password=********" in log_text

    rc, tasks, stats, dummy = playbook(db, tmp_path, "playbooks/migrate.yml", extra_vars=project)
    assert rc == 0 and stats["changed"] == 0, stats

    rc, tasks, stats, out = playbook(db, tmp_path, "playbooks/migration-status.yml", extra_vars=project)
    assert rc == 0 and stats["changed"] == 0
    shown = tasks["Show the migration status"]["results"]
    assert [item["msg"].split(",")[0] for item in shown] == ["core: version 3", "project: version 2"]

    rc, tasks, stats, out = playbook(db, tmp_path, "playbooks/rollback.yml", extra_vars=project)
    assert rc != 0
    assert "rollback.yml needs the version to end at: add -e migrations_target_version=N" in out

    rollback = dict(project, migrations_target_version=0)
    rc, tasks, stats, dummy = playbook(db, tmp_path, "playbooks/rollback.yml", extra_vars=rollback)
    assert rc == 0 and stats["changed"] == 1
    assert tasks["Roll the project's migrations back to migrations_target_version"]["rolled_back"] == [2, 1]
    rc, tasks, stats, dummy = playbook(db, tmp_path, "playbooks/rollback.yml", extra_vars=rollback)
    assert rc == 0 and stats["changed"] == 0
    with db.connect() as conn:
        assert conn.execute("SELECT to_regclass('public.notes')").fetchone()[0] is None

    # Pointing migrations_path at the collection's own migrations/ runs the core stream only, never twice.
    rc, tasks, stats, dummy = playbook(db, tmp_path, "playbooks/migrate.yml", extra_vars={"migrations_path": os.path.join(ROOT, "migrations")})
    assert rc == 0 and stats["changed"] == 0, stats
    assert applied(tasks) == {"core": []}


def test_a_database_made_before_poststack_is_adopted_with_migration_admin(pg_database, tmp_path):
    """migration-admin.yml with baselined: by a version, or from another tool's history; a baseline that names
    neither or both is refused before anything runs; check mode and a second run change nothing."""
    db = pg_database
    write_files(tmp_path / "migrations", {"001_a.sql": "CREATE TABLE a (id int);\n",
                                          "002_b.sql": "CREATE TABLE b (id int);\n",
                                          "003_c.sql": "CREATE TABLE c (id int);\n"})
    project = {"migrations_path": str(tmp_path / "migrations"), "migrations_admin_state": "baselined"}
    with db.connect() as conn:  # what was there before poststack: 1 and 2, by hand
        conn.execute("CREATE TABLE a (id int); CREATE TABLE b (id int)")
    before = db.dump()
    admin = "playbooks/migration-admin.yml"
    for wrong in ({}, {"migrations_baseline_version": 2, "migrations_baseline_from": "dbmate"}):
        rc, tasks, stats, out = playbook(db, tmp_path, admin, extra_vars=dict(project, **wrong))
        assert rc != 0 and "(-e migrations_baseline_from=schema), one of them; nothing was changed" in " ".join(out.split()), \
            out[-3000:]
    assert db.dump() == before

    rc, tasks, stats, out = playbook(db, tmp_path, admin, extra_vars=dict(project, migrations_baseline_version=2),
                                     check=True)
    assert rc == 0 and db.dump() == before, out[-3000:]
    assert tasks["Show what was found"]["msg"] == "project: would record as applied without running them [1, 2]; version 0"
    rc, tasks, stats, out = playbook(db, tmp_path, admin, extra_vars=dict(project, migrations_baseline_version=2))
    assert rc == 0 and stats["changed"] == 1, out[-3000:]
    assert tasks["Show what was found"]["msg"] == "project: recorded as applied without running them [1, 2]; version 2"
    rc, tasks, stats, out = playbook(db, tmp_path, admin, extra_vars=dict(project, migrations_baseline_version=2))
    assert rc == 0 and stats["changed"] == 0
    assert tasks["Show what was found"]["msg"] == ("project: recorded as applied without running them nothing "
                                                   "(already recorded); version 2")
    rc, tasks, stats, out = playbook(db, tmp_path, "playbooks/migrate.yml", extra_vars=project)
    assert rc == 0 and applied(tasks)["project"] == [3], out[-3000:]
    # the playbook's other two states say what they found the same way
    for state, said in (("verified", "project: version 3, ok; drift []; verify scripts [], failed []"),
                        ("unlocked", "project: lock holders []")):
        rc, tasks, stats, out = playbook(db, tmp_path, admin, extra_vars=dict(project, migrations_admin_state=state))
        assert rc == 0 and tasks["Show what was found"]["msg"] == said, out[-3000:]

    # another stream adopted from golang-migrate's history, through the same playbook
    with db.connect() as conn:
        conn.execute("CREATE TABLE public.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
                     "INSERT INTO public.schema_migrations VALUES (1, false)")
    legacy = dict(project, migrations_stream="legacy", migrations_baseline_from="golang-migrate")
    rc, tasks, stats, out = playbook(db, tmp_path, admin, extra_vars=legacy)
    assert rc == 0 and stats["changed"] == 1, out[-3000:]
    assert tasks["Show what was found"]["msg"] == "legacy: recorded as applied without running them [1]; version 1"


def test_repeatable_migrations_through_the_playbooks(pg_database, tmp_path):
    """A Flyway set with a repeatable migration: migrate.yml says it applied it (check mode first), once;
    migration-status.yml shows its state, changed after an edit."""
    db = pg_database
    write_files(tmp_path / "flyway", {"V1__accounts.sql": "CREATE TABLE accounts (id int, email text);\n",
                                      "R__emails.sql": "CREATE OR REPLACE VIEW emails AS SELECT email FROM accounts;\n"})
    project = {"migrations_path": str(tmp_path / "flyway"), "migrations_include_core": False}
    rc, tasks, stats, out = playbook(db, tmp_path, "playbooks/migrate.yml", extra_vars=project, check=True)
    assert rc == 0 and tasks[MIGRATE_TASK]["streams"][0]["repeated"] == ["emails"], out[-3000:]
    rc, tasks, stats, out = playbook(db, tmp_path, "playbooks/migrate.yml", extra_vars=project)
    assert rc == 0 and stats["changed"] == 1, out[-3000:]
    assert tasks["Report the migration run"]["msg"].endswith("pending [], repeatable migrations applied ['emails']")
    rc, tasks, stats, out = playbook(db, tmp_path, "playbooks/migrate.yml", extra_vars=project)
    assert rc == 0 and stats["changed"] == 0 and tasks["Report the migration run"]["msg"].endswith("pending []")
    write_files(tmp_path / "flyway", {"R__emails.sql": "CREATE OR REPLACE VIEW emails AS SELECT email, id FROM accounts;\n"})
    rc, tasks, stats, out = playbook(db, tmp_path, "playbooks/migration-status.yml", extra_vars=project)
    shown = tasks["Show the migration status"]["results"][0]["msg"]
    assert rc == 0 and shown.endswith("lock free, repeatable migrations ['emails changed']"), shown


MODULE_PLAY = """
- name: poststack_migrate states
  hosts: localhost
  gather_facts: false
  module_defaults:
    poststack.core.poststack_migrate: &conn
      dsn: "{{ dsn }}"
      path: "{{ path }}"
    poststack.core.poststack_migrate_info: *conn
  tasks:
    - name: plan only
      poststack.core.poststack_migrate:
      check_mode: true
      diff: true
      register: planned
    - name: dry run in check mode
      poststack.core.poststack_migrate:
        dry_run: true
      check_mode: true
      register: dry
    - name: apply to 1
      poststack.core.poststack_migrate:
        target_version: 1
      diff: true
      register: apply1
    - name: apply to 1 again
      poststack.core.poststack_migrate:
        target_version: 1
      register: apply1b
    - name: apply all
      poststack.core.poststack_migrate:
      register: apply_all
    - name: apply all again
      poststack.core.poststack_migrate:
      register: apply_all_b
    - name: status
      poststack.core.poststack_migrate_info:
      register: info
    - name: verify
      poststack.core.poststack_migrate:
        state: verified
      register: verified
    - name: edit an applied file
      ansible.builtin.copy:
        dest: "{{ path }}/001_a.sql"
        content: "CREATE TABLE a (id int);\\n-- reviewed\\n"
        mode: "0644"
    - name: migrate refuses drift
      poststack.core.poststack_migrate:
      register: drift
      ignore_errors: true
    - name: repair
      poststack.core.poststack_migrate:
        state: repaired
      register: repaired
    - name: repair again
      poststack.core.poststack_migrate:
        state: repaired
      register: repaired_b
    - name: unlock with nobody holding the lock
      poststack.core.poststack_migrate:
        state: unlocked
        terminate_holder: true
      register: unlocked
    - name: rollback without target
      poststack.core.poststack_migrate:
        state: rolled_back
      register: no_target
      ignore_errors: true
    - name: rollback to 1 in check mode
      poststack.core.poststack_migrate:
        state: rolled_back
        target_version: 1
      check_mode: true
      register: rb_check
    - name: rollback to 1
      poststack.core.poststack_migrate:
        state: rolled_back
        target_version: 1
      register: rb
    - name: rollback to 1 again
      poststack.core.poststack_migrate:
        state: rolled_back
        target_version: 1
      register: rb_b
    - name: baseline another stream
      poststack.core.poststack_migrate:
        state: baselined
        stream: adopted
        target_version: 2
      register: baseline
    - name: baseline another stream again
      poststack.core.poststack_migrate:
        state: baselined
        stream: adopted
        target_version: 2
      register: baseline_b
    - name: results
      ansible.builtin.set_fact:
        outcome: "{{ {'planned': planned, 'dry': dry, 'apply1': apply1, 'apply1b': apply1b, 'apply_all': apply_all,
                      'apply_all_b': apply_all_b, 'info': info, 'verified': verified, 'drift': drift, 'repaired': repaired,
                      'repaired_b': repaired_b, 'unlocked': unlocked, 'no_target': no_target, 'rb_check': rb_check,
                      'rb': rb, 'rb_b': rb_b, 'baseline': baseline, 'baseline_b': baseline_b} }}"
"""


def test_module_states_changed_then_not_changed(pg_database, tmp_path, execution):
    db = pg_database
    path = write_files(tmp_path / "m", {
        "001_a.sql": "CREATE TABLE a (id int);\n", "001_a.rollback.sql": "DROP TABLE a;\n",
        "001_a.verify.sql": "SELECT id FROM a WHERE false;\n",
        "002_b.sql": "CREATE TABLE b (id int);\n", "002_b.rollback.sql": "DROP TABLE b;\n",
    })
    play = tmp_path / "states.yml"
    play.write_text(MODULE_PLAY)
    before = db.dump()
    # The password travels in PGPASSWORD (db.env), the DSN has none.
    rc, tasks, stats, out = playbook(db, tmp_path, play, extra_vars={"dsn": db.dsn, "path": path})
    assert rc == 0, out[-3000:]
    r = tasks["results"]["ansible_facts"]["outcome"]
    assert r["planned"]["changed"] and r["planned"]["applied"] == [1, 2] and r["planned"]["plan"][0]["file"] == "001_a.sql"
    assert r["planned"]["diff"] == {"before": {"current_version": 0, "applied": []}, "after": {"current_version": 2, "applied": [1, 2]}}
    assert r["dry"]["changed"] and r["dry"]["applied"] == [1, 2] and r["dry"]["current_version"] == 0
    assert r["apply1"]["changed"] and r["apply1"]["applied"] == [1] and r["apply1"]["pending"] == [2]
    assert r["apply1"]["diff"]["after"]["applied"] == [1]
    assert not r["apply1b"]["changed"]
    assert r["apply_all"]["changed"] and r["apply_all"]["applied"] == [2] and r["apply_all"]["current_version"] == 2
    assert not r["apply_all_b"]["changed"]
    assert r["info"]["current_version"] == 2 and r["info"]["pending"] == [] and r["info"]["lock_holder"] is None
    assert r["verified"]["verify"]["ok"] and not r["verified"]["changed"]
    assert r["drift"]["failed"] and "001_a.sql changed after it was applied" in r["drift"]["msg"]
    assert r["repaired"]["changed"] and r["repaired"]["repaired"] == [1]
    assert not r["repaired_b"]["changed"]
    assert not r["unlocked"]["changed"]
    assert r["no_target"]["failed"] and "target_version" in r["no_target"]["msg"]
    assert r["rb_check"]["changed"] and r["rb_check"]["rolled_back"] == [2] and r["rb_check"]["current_version"] == 2
    assert r["rb"]["changed"] and r["rb"]["rolled_back"] == [2] and r["rb"]["current_version"] == 1
    assert not r["rb_b"]["changed"]
    assert r["baseline"]["changed"] and r["baseline"]["baselined"] == [1, 2]
    assert not r["baseline_b"]["changed"]
    assert "host=127.0.0.1" in r["info"]["dsn"] and db.server.password not in json.dumps(r)
    assert db.dump() != before


PARTIAL_PLAY = """
- name: poststack_migrate reports a run that failed part-way
  hosts: localhost
  gather_facts: false
  tasks:
    - name: apply
      poststack.core.poststack_migrate:
        dsn: "{{ dsn }}"
        path: "{{ path }}"
        log_file: "{{ log_file }}"
"""


def test_module_result_tells_what_a_failed_run_did(pg_database, tmp_path, execution):
    """001 commits, 002 fails: the result says 001 is applied, version 1 is current and something changed."""
    db = pg_database
    path = write_files(tmp_path / "m", {"001_a.sql": "CREATE TABLE a (id int);\n",
                                        "002_b.sql": "INSERT INTO a VALUES ('x');\n"})
    play = tmp_path / "partial.yml"
    play.write_text(PARTIAL_PLAY)
    log_file = tmp_path / "migrations.log"
    rc, tasks, stats, out = playbook(db, tmp_path, play, extra_vars={"dsn": db.dsn, "path": path,
                                                                     "log_file": str(log_file)})
    assert rc != 0 and stats["failures"] == 1
    result = tasks["apply"]
    assert result["failed"] and "002_b.sql failed at line 1" in result["msg"], out[-2000:]
    assert (result["applied"], result["current_version"], result["previous_version"], result["changed"],
            result["failed_version"]) == ([1], 1, 0, True, 2)
    assert "FAILED apply version=2 name=b after 1 of 2 step(s)" in log_file.read_text()
    with db.connect() as conn:
        assert conn.execute("SELECT version FROM poststack.schema_migrations").fetchall() == [(1,)]


STREAMS_PLAY = """
- name: streams in one call
  hosts: localhost
  gather_facts: false
  tasks:
    - name: apply
      poststack.core.poststack_migrate:
        dsn: "{{ dsn }}"
        streams:
          - {stream: core, path: "{{ core }}"}
          - {stream: shop, path: "{{ path }}", lint: error}
      register: applied
      ignore_errors: true
"""


def test_streams_in_one_call_stop_at_the_stream_that_fails(pg_database, tmp_path, execution):
    """core then a project stream in one module call: a failing project migration fails the call with the stream
    named; core and the project's first migration stay applied, the result says so per stream; fixed, the next
    call applies the rest and a third changes nothing."""
    db = pg_database
    path = write_files(tmp_path / "m", {"001_a.sql": "CREATE TABLE a (id int);\n",
                                        "002_b.sql": "INSERT INTO a VALUES ('x');\n"})
    play = tmp_path / "streams.yml"
    play.write_text(STREAMS_PLAY)
    extra = {"dsn": db.dsn, "path": path, "core": os.path.join(ROOT, "migrations")}
    rc, tasks, stats, out = playbook(db, tmp_path, play, extra_vars=extra)
    result = tasks["apply"]
    assert result["failed"] and result["msg"].startswith("stream shop: 002_b.sql failed at line 1"), out[-3000:]
    assert [(s["stream"], s["applied"], s["current_version"], s.get("failed", False)) for s in result["streams"]] == [
        ("core", [1, 2, 3], 3, False), ("shop", [1], 1, True)]
    assert result["changed"] is True and result["stream"] == "shop" and result["failed_version"] == 2
    with db.connect() as conn:
        assert conn.execute("SELECT stream, version FROM poststack.schema_migrations ORDER BY 1, 2").fetchall() == [
            ("core", 1), ("core", 2), ("core", 3), ("shop", 1)]

    write_files(path, {"002_b.sql": "INSERT INTO a VALUES (2);\n"})
    rc, tasks, stats, out = playbook(db, tmp_path, play, extra_vars=extra)
    result = tasks["apply"]
    assert not result.get("failed") and result["changed"], out[-3000:]
    assert [(s["stream"], s["applied"], s["pending"]) for s in result["streams"]] == [("core", [], []),
                                                                                      ("shop", [2], [])]
    rc, tasks, stats, out = playbook(db, tmp_path, play, extra_vars=extra)
    assert tasks["apply"]["changed"] is False and stats["changed"] == 0


def test_the_checksum_cache_can_be_turned_off(pg_database, tmp_path, monkeypatch):
    """migrations_checksum_cache=false: the runs change nothing of the user's cache (read every file instead)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    project = {"migrations_path": EXAMPLE, "migrations_checksum_cache": False}
    for changed in (1, 0):
        rc, tasks, stats, out = playbook(pg_database, tmp_path, "playbooks/migrate.yml", extra_vars=project)
        assert rc == 0 and stats["changed"] == changed, out[-3000:]
    rc, tasks, stats, out = playbook(pg_database, tmp_path, "playbooks/migration-status.yml", extra_vars=project)
    assert rc == 0, out[-3000:]
    assert not cache.exists()
    rc, tasks, stats, out = playbook(pg_database, tmp_path, "playbooks/migrate.yml",
                                     extra_vars=dict(project, migrations_checksum_cache=True))
    assert rc == 0 and stats["changed"] == 0 and len(os.listdir(str(cache / "poststack" / "migrations"))) == 2
