#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_migrate
short_description: Apply, roll back, verify, baseline, repair and unlock SQL migrations
version_added: 0.1.0
description:
  - Runs pure-SQL migration files C(NNN_name.sql) with their rollbacks C(NNN_name.rollback.sql) and optional
    checks C(NNN_name.verify.sql) from O(path) against a PostgreSQL database.
  - Versions are integers. Each migration and its history row commit in one transaction; a file whose first
    line is C(-- poststack:no-transaction) runs statement by statement outside a transaction (for
    C(CREATE INDEX CONCURRENTLY)) and is recorded only when every statement succeeded and no invalid index
    was left behind.
  - Runs are serialised by a session-level advisory lock derived from O(tracking_schema); the server releases
    it when a client dies.
  - A file that wraps its whole body in C(BEGIN; ... COMMIT;) runs as written without those two lines, in the
    migration's own transaction; savepoints inside work. Any other transaction control is refused before
    anything runs, and the pre-flight names every offending file at once.
  - Each migration but the first of a run starts from a clean session (C(RESET ALL), the session user again,
    no temporary tables or LISTENs of the one before), so that C(SET search_path) or C(SET ROLE) in one
    migration never reaches the next; a migration that needs a setting makes it itself.
  - When the ansible-playbook that started the module goes away (killed, even with SIGKILL, on the host it
    runs on), the run stops before the next migration, never inside one; what was applied stays recorded and
    durable.
  - History is kept in C(<tracking_schema>.schema_migrations), one row per O(stream) and version, with the
    sha256 checksums and the rollback SQL itself, so that a rollback works after its file is gone.
  - Use M(poststack.core.poststack_migrate_info) for a read-only status.
author:
  - poststack developers (@poststack)
extends_documentation_fragment:
  - poststack.core.postgres
  - poststack.core.migration_files
  - poststack.core.attributes
  - poststack.core.attributes.actiongroup_poststack
attributes:
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    details:
      - When the target is the controller itself (a local connection whose Python is the one running
        ansible-playbook), the action plugin does the module's work in Ansible's worker process for the task, with
        the same argument checks and the same result; no module payload is built and no Python started (about half a
        second of a run with nothing to do). The result's RV(execution) says which way was taken.
      - It takes the module's usual way for a task with C(become), C(async), C(environment) or C(timeout), another
        Python, another connection, or the variable C(poststack_in_process=false).
  check_mode:
    support: full
    details: Plans without changing anything (and with O(dry_run=true) also executes the plan in a transaction that is rolled back).
  diff_mode:
    support: full
    details: Shows the applied versions before and after.
options:
  path:
    description:
      - Directory holding the migration files.
      - Not needed for O(state=unlocked), nor with O(streams).
    type: path
  streams:
    description:
      - Several streams in one call, in order, on one connection (O(state=applied) only); for example the
        collection's core schema and then a project's migrations. The work that does not depend on the files
        (starting the module, connecting, preparing the session) is done once.
      - A stream that fails stops the call; the streams before it stay applied.
      - Replaces O(path), O(stream), O(format), O(lint) and O(target_version), which each entry gives.
    type: list
    elements: dict
    suboptions:
      stream:
        description: The stream's name (O(stream)).
        type: str
        required: true
      path:
        description: Its migrations directory (O(path)).
        type: path
        required: true
      format:
        description: How its files are named (O(format)).
        type: str
        choices: [auto, poststack, golang-migrate, dbmate, flyway, sqitch]
        default: auto
      lint:
        description: Its safe-DDL lint (O(lint)).
        type: str
        choices: [error, warn, "off"]
        default: warn
      target_version:
        description: Stop at this version (O(target_version)).
        type: int
  state:
    description:
      - V(applied) applies pending migrations (up to O(target_version) when given).
      - V(rolled_back) runs rollbacks newest first down to O(target_version) (required; V(0) removes all). If
        any needed rollback is missing, nothing runs.
      - V(verified) compares the checksums of applied migrations with the files and runs their verify scripts
        (each in a transaction that is rolled back); fails when anything does not match. Never changes anything.
      - V(baselined) records the versions up to O(target_version) as applied without running them, to adopt an
        existing database; or, with O(baseline_from), the versions another tool's history table says are applied.
      - V(repaired) accepts the current files' checksums and rollback SQL for applied migrations whose files changed.
      - V(unlocked) ends the session holding the migration lock, only with O(terminate_holder=true).
    type: str
    choices: [applied, rolled_back, verified, baselined, unlocked, repaired]
    default: applied
  target_version:
    description:
      - Version to migrate up to (V(applied)), to roll back to (V(rolled_back), V(0) for none) or to baseline
        (V(baselined)).
    type: int
  tracking_schema:
    description:
      - Schema of the history table C(schema_migrations); created when the first migration is recorded.
      - The advisory lock key is derived from it.
    type: str
    default: poststack
  stream:
    description:
      - Namespace of the versions in the history table, so that several migration sets share one table
        without their version numbers clashing. The collection's own core schema uses V(core).
    type: str
    default: project
  lint:
    description:
      - The safe-DDL lint of the migrations a run would apply, in check mode too, before anything runs. It
        looks for statements that lock or rewrite a table other sessions use (C(CREATE INDEX) without C(CONCURRENTLY) or C(DROP INDEX)
        without it, C(ADD CONSTRAINT) of a foreign key or check without C(NOT VALID), a unique or primary key
        without C(USING INDEX), C(ALTER COLUMN ... TYPE), C(SET NOT NULL), a column added with a volatile
        default, a serial or a stored generated column, a required column without a default, renames,
        C(VACUUM FULL) and C(CLUSTER), and strong locks while O(lock_timeout) is V(0)). Tables created
        earlier in the same run are exempt.
      - V(warn) reports each finding (file, line, rule, the safer form) as a warning and in RV(lint); V(error)
        refuses the run, naming them all; V(off) skips the lint.
      - A file silences rules for itself with a line C(-- poststack:lint-ignore rule[, rule]).
    type: str
    choices: [error, warn, "off"]
    default: warn
  baseline_from:
    description:
      - With O(state=baselined), adopt a database another tool migrated. Its history table says which versions
        are applied, and those are recorded without running them (each must have a file in O(path)).
      - V(golang-migrate) reads C(version, dirty) and takes every version up to it; a dirty one is refused.
      - V(dbmate) reads one row per applied version.
      - V(flyway) reads C(flyway_schema_history), undo runs included; a failed run or a dotted version is refused.
      - V(sqitch) reads the deployed changes of the registry (C(sqitch.changes)), each the migration of that name.
        A registry shared by several projects is read for the project of the C(sqitch.plan) in O(path). A deployed
        change without a migration of its name is refused.
      - V(schema) adopts a database that has no migration history at all. Its schema, as C(pg_dump --schema-only)
        writes it (no data, owners, privileges, tablespaces, publications or subscriptions; without
        O(tracking_schema)), becomes the stream's first migration in O(path) (C(001_baseline.sql), or the name
        O(format) asks for), recorded as applied without running it. On a new database that migration makes the
        same schema. A stream that has migration files is refused; one whose history holds migrations is left
        alone. pg_dump runs in O(baseline_container), else on the target host (the connection's settings, the
        password among them, in a temporary service file, never in its arguments). pg_dump's session settings
        become the migration's own (C(SET LOCAL)), and the text passes the pre-flight and the lint as a new
        database would run it. Check mode and O(dry_run) run pg_dump and report the file in RV(schema_baseline)
        without writing or recording it, and without taking the migration lock.
      - Mutually exclusive with O(target_version).
    type: str
    choices: [golang-migrate, dbmate, flyway, sqitch, schema]
  baseline_container:
    description:
      - With O(baseline_from=schema), run pg_dump in this PostgreSQL container (C(<runtime> exec --user postgres),
        the server's own pg_dump, over its local socket) instead of on the target host. Its database is the one
        the connection names.
    type: str
  runtime:
    description: The container runtime of O(baseline_container).
    type: str
    choices: [podman, docker]
    default: podman
  baseline_table:
    description:
      - The other tool's history table, C(schema.table). The default is C(public.schema_migrations) for
        golang-migrate and dbmate, C(public.flyway_schema_history) for Flyway, and C(sqitch.changes) for Sqitch
        (another registry schema, C(registry) in C(sqitch.conf), is C(REGISTRY.changes)).
    type: str
  dry_run:
    description:
      - Execute the whole plan in one transaction and roll it back, proving that the SQL works.
      - No-transaction migrations cannot run this way; they and everything after them are listed in RV(dry_run_skipped).
    type: bool
    default: false
  allow_out_of_order:
    description: Apply pending versions lower than the highest applied one instead of refusing.
    type: bool
    default: false
  lock_wait_timeout:
    description: Seconds to wait for the migration lock. The error then names the holder. V(0) does not wait.
    type: float
    default: 60
  lock_timeout:
    description:
      - PostgreSQL C(lock_timeout) for the migration statements (for example V(5s), V(500ms), V(0) for none).
      - A migration that hits it (SQLSTATE 55P03) is rolled back and retried up to O(retries) times.
    type: str
    default: 10s
  statement_timeout:
    description: PostgreSQL C(statement_timeout) for the migration statements (V(0) for none).
    type: str
    default: "0"
  retries:
    description: How many times a migration that hit O(lock_timeout) is retried.
    type: int
    default: 3
  retry_backoff:
    description: Seconds before the first retry; doubled for each further one.
    type: float
    default: 0.5
  terminate_holder:
    description: With O(state=unlocked), terminate the backend holding the lock. Without it, the holder is only reported.
    type: bool
    default: false
  log_file:
    description:
      - Append a line per database operation (lock, each migration with its duration, errors) to this file.
        Connection strings are masked, SQL parameters are not logged.
    type: path
notes:
  - Migration files are executed by the server, not by psql; psql meta-commands (C(\set), C(\i)) are rejected.
  - Transaction control (C(BEGIN), C(COMMIT)...) in a migration is rejected before anything runs.
  - Every commit but the last of a run uses C(synchronous_commit=off); the last one flushes the WAL and so makes
    every earlier one durable as well.
seealso:
  - module: poststack.core.poststack_migrate_info
"""

EXAMPLES = r"""
- name: Apply all pending migrations
  poststack.core.poststack_migrate:
    path: "{{ playbook_dir }}/../migrations"
    host: 127.0.0.1
    port: 5432
    user: app
    password: "{{ vault_app_password }}"
    dbname: app

- name: Show what would run, proving the SQL in a rolled-back transaction
  poststack.core.poststack_migrate:
    path: migrations
    dsn: postgresql://app@db.example.com/app
    dry_run: true
  check_mode: true

- name: Roll back to version 3
  poststack.core.poststack_migrate:
    path: migrations
    dsn: postgresql://app@db.example.com/app
    state: rolled_back
    target_version: 3

- name: Adopt an existing database that already has versions 1-12
  poststack.core.poststack_migrate:
    path: migrations
    dsn: postgresql://app@db.example.com/app
    state: baselined
    target_version: 12

- name: Adopt a database made without migrations, its schema becoming migrations/001_baseline.sql
  poststack.core.poststack_migrate:
    path: migrations
    dsn: postgresql://app@127.0.0.1:5432/app
    state: baselined
    baseline_from: schema
    baseline_container: myapp-postgres

- name: End a stuck migration run
  poststack.core.poststack_migrate:
    dsn: postgresql://app@db.example.com/app
    state: unlocked
    terminate_holder: true

- name: The collection's core schema, then the project's migrations, in one call
  poststack.core.poststack_migrate:
    dsn: "{{ app_dsn }}"
    streams:
      - {stream: core, path: "{{ poststack_core_migrations }}"}
      - {stream: project, path: migrations/, lint: error}
"""

RETURN = r"""
plan:
  description: The steps planned (run, or that would run in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample: [{"action": "apply", "version": 3, "name": "add_index", "no_transaction": true, "file": "003_add_index.sql"}]
applied:
  description: Versions applied by this run (in check mode, those that would be; with O(dry_run), those that ran before the rollback).
  returned: always
  type: list
  elements: int
  sample: [2, 3]
rolled_back:
  description: Versions rolled back by this run, newest first.
  returned: always
  type: list
  elements: int
baselined:
  description: Versions recorded without running them.
  returned: always
  type: list
  elements: int
repaired:
  description: Versions whose recorded checksums were replaced.
  returned: always
  type: list
  elements: int
previous_version:
  description: Highest applied version before the run.
  returned: always
  type: int
current_version:
  description:
    - Highest applied version after the run (unchanged in check mode and for dry runs).
    - When a step fails after others succeeded, those steps stay applied (or rolled back); RV(applied) or
      RV(rolled_back) list them, this is the version recorded after them, and C(changed) is true.
    - V(null) when the connection to the server was lost during a step (RV(connection_lost)), because the recorded
      version cannot be read until the server is back.
  returned: always
  type: int
connection_lost:
  description:
    - True when the connection to the server was lost while a step ran (the server restarted, stopped or ended the
      session). Whether that step's commit reached the server is known only once it is back; see O(state=status).
  returned: when the connection was lost during a step
  type: bool
failed_version:
  description: The version whose step failed (absent when nothing failed, or before any step ran).
  returned: when a step failed
  type: int
schema_baseline:
  description:
    - With O(baseline_from=schema), the migration written from the live schema (or that would be, in check mode
      and dry runs).
    - C(already_at) is the stream's version when its history already held migrations (nothing was done).
  returned: when O(baseline_from=schema)
  type: dict
  sample: {file: /srv/app/migrations/001_baseline.sql, version: 1, written: true, statements: 42, bytes: 5120,
           already_at: null}
commands:
  description: What ran besides SQL (pg_dump of a baseline from the schema), each with C(argv), C(rc), C(seconds)
    and the end of C(stderr). No password is in them.
  returned: when O(baseline_from=schema)
  type: list
  elements: dict
lint:
  description: The lint's findings for the migrations the run applied or would apply (O(lint)).
  returned: when state is applied, rolled_back, baselined or repaired
  type: list
  elements: dict
  sample: [{"file": "004_idx.sql", "line": 2, "rule": "require-concurrent-index-creation",
            "statement": "CREATE INDEX users_email ON users (email)",
            "problem": "blocks every write to the table while the index builds",
            "safer": "CREATE INDEX CONCURRENTLY, alone in a file whose first line is -- poststack:no-transaction"}]
stopped:
  description: True when the run stopped between two migrations because the controller went away.
  returned: when the run stopped so
  type: bool
pending:
  description: Versions with a file but no history row, after the run.
  returned: always
  type: list
  elements: int
timings_ms:
  description: Milliseconds per version run.
  returned: always
  type: dict
  sample: {"2": 14, "3": 220}
total_ms:
  description: Milliseconds for the whole run including locking.
  returned: always
  type: int
repeatables_plan:
  description:
    - The repeatable migrations (Flyway's C(R__description.sql)) the run applies after the versioned ones, by name,
      with the C(reason) V(new) or V(changed). Only a run to the end (no O(target_version)) applies them.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "views", "file": "R__views.sql", "reason": "changed", "no_transaction": false}]
repeated:
  description: The repeatable migrations applied by this run, by name (in check mode, those that would be).
  returned: always
  type: list
  elements: str
dry_run_skipped:
  description:
    - What a dry run could not execute (no-transaction migrations and what follows them), each with its C(reason)
      and its C(version), or C(repeatable) (the name) for a repeatable migration.
  returned: always
  type: list
  elements: dict
verify:
  description: With O(state=verified), the drift found and each verify script's outcome.
  returned: when state is verified
  type: dict
lock_holders:
  description: With O(state=unlocked), the sessions that held the lock.
  returned: when state is unlocked
  type: list
  elements: dict
tracking_table:
  description: The history table.
  returned: always
  type: str
  sample: '"poststack".schema_migrations'
streams:
  description:
    - With O(streams), each stream's result, in the order run, with the keys above (C(stream) names it); the
      top-level keys are those of the last stream run.
    - A stream that failed is the last one, with C(failed=true) and C(msg).
  returned: when O(streams) is given
  type: list
  elements: dict
  sample: [{stream: core, applied: [], current_version: 3, pending: []},
           {stream: project, applied: [4], current_version: 4, pending: []}]
dsn:
  description: The connection target, password masked.
  returned: always
  type: str
  sample: host=127.0.0.1 port=5432 user=app password=******** dbname=app
execution:
  description:
    - Where the work ran. V(controller) is Ansible's worker process for the task (a local target with the
      controller's Python), V(module) a module process of its own on the target.
  returned: always, except when a module process refuses its arguments
  type: str
  sample: controller
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.poststack.core.plugins.module_utils.database import HAS_PSYCOPG, PSYCOPG_IMPORT_ERROR
from ansible_collections.poststack.core.plugins.module_utils.migrations import task


def main() -> None:
    module = AnsibleModule(argument_spec=task.argument_spec(), required_if=task.REQUIRED_IF,
                           mutually_exclusive=task.MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=PSYCOPG_IMPORT_ERROR)
    result = task.run(module.params, check_mode=module.check_mode, diff=module._diff)
    result["execution"] = "module"
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
