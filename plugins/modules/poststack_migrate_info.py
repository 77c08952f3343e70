#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_migrate_info
short_description: Migration status of a PostgreSQL database
version_added: 0.1.0
description:
  - Reads the migration history written by M(poststack.core.poststack_migrate), the session holding the
    migration lock, and, when O(path) is given, the pending versions and the drift between applied migrations
    and their files. Changes nothing; creates nothing (a database without history reports version 0).
author:
  - poststack developers (@poststack)
extends_documentation_fragment:
  - poststack.core.postgres
  - poststack.core.migration_files
  - poststack.core.attributes
  - poststack.core.attributes.info_module
  - poststack.core.attributes.actiongroup_poststack
attributes:
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    details:
      - As for M(poststack.core.poststack_migrate), the work runs in Ansible's worker process when the target is
        the controller itself (RV(execution)), unless C(poststack_in_process=false).
options:
  path:
    description: Directory holding the migration files; without it RV(pending) and RV(drift) are empty.
    type: path
  tracking_schema:
    description: Schema of the history table C(schema_migrations).
    type: str
    default: poststack
  stream:
    description: Namespace of the versions in the history table (V(core) for the collection's own schema).
    type: str
    default: project
seealso:
  - module: poststack.core.poststack_migrate
"""

EXAMPLES = r"""
- name: Read the migration status
  poststack.core.poststack_migrate_info:
    path: migrations
    dsn: postgresql://app@db.example.com/app
  register: status

- name: Fail when migrations are pending
  ansible.builtin.assert:
    that: status.pending | length == 0
"""

RETURN = r"""
current_version:
  description: Highest applied version, 0 when none.
  returned: always
  type: int
  sample: 3
applied:
  description: One entry per applied version.
  returned: always
  type: list
  elements: dict
  sample: [{"version": 1, "name": "notes", "applied_at": "2026-11-25 12:00:00+00", "applied_by": "app",
            "execution_ms": 12, "baselined": false, "checksum": "9f2c...", "has_rollback": true}]
pending:
  description: Versions with a file in O(path) and no history row.
  returned: always
  type: list
  elements: int
drift:
  description: Applied migrations whose file changed (V(changed), V(rollback_changed)) or is gone (V(missing)).
  returned: always
  type: list
  elements: dict
repeatables:
  description:
    - Flyway's repeatable migrations (C(R__description.sql)) in O(path) and in the stream's history, each with its
      C(state) V(applied), V(pending) (never applied), V(changed) (edited since, so the next run applies it again) or
      V(missing) (recorded, its file gone), and C(applied_at).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "views", "file": "R__views.sql", "state": "changed", "applied_at": "2026-11-25 12:00:00+00"}]
lock_holder:
  description: The session holding the migration lock (pid, application_name, client_addr, user, since), or null.
  returned: always
  type: dict
tracking_table:
  description: The history table.
  returned: always
  type: str
stream:
  description: The stream read.
  returned: always
  type: str
dsn:
  description: The connection target, password masked.
  returned: always
  type: str
execution:
  description: Where the work ran, V(controller) (Ansible's worker process) or V(module) (a module process).
  returned: always, except when a module process refuses its arguments
  type: str
  sample: controller
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.poststack.core.plugins.module_utils.database import HAS_PSYCOPG, PSYCOPG_IMPORT_ERROR
from ansible_collections.poststack.core.plugins.module_utils.migrations import task


def main() -> None:
    module = AnsibleModule(argument_spec=task.info_argument_spec(), supports_check_mode=True)
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=PSYCOPG_IMPORT_ERROR)
    result = task.run_info(module.params)
    result["execution"] = "module"
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
