#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_backup_restore
short_description: Restore a logical backup into a database of a PostgreSQL container, validated first
version_added: 0.1.0
description:
  - Picks the backup (O(backup), or the newest good backup of O(database)), compares it with its manifest (size and
    sha256) and refuses a corrupt, truncated or unmanifested backup with a message naming the file and what differs.
  - Restores into a new database next to the target (decrypting on the way when the backup is encrypted), and only
    when C(pg_restore) succeeded swaps it in place of the target (connections to the target are refused and
    terminated, the two databases are renamed in one transaction, the old one is dropped). When anything fails
    (unreadable archive, wrong key, a failing statement) the new database is dropped and the target is untouched.
  - Optionally compares every table (row count and an order-independent checksum of the rows) with another
    database, then drops the restored database (the verify-backup drill).
  - Always reports a change when it restores.
author:
  - poststack contributors (@poststack)
extends_documentation_fragment:
  - poststack.core.attributes
  - poststack.core.backup_target
attributes:
  check_mode:
    support: full
    details: Validates the backup (checksum) and the target, restores nothing.
  diff_mode:
    support: none
options:
  container:
    required: true
  target:
    description:
      - Database to restore into; created, or replaced when O(replace=true).
      - At most 63 bytes (PostgreSQL would truncate a longer name); C(postgres), C(template0) and C(template1) are
        refused.
    type: str
    required: true
  backup:
    description: Backup name, file or manifest path (in O(backup_dir)). Default the newest good backup of O(database).
    type: str
  database:
    description: Database whose newest good backup to restore when O(backup) is not given.
    type: str
  replace:
    description: Replace O(target) when it exists. Without it an existing target is an error.
    type: bool
    default: false
  jobs:
    description: Parallel C(pg_restore) jobs, used when the unencrypted backup lies in the container's backups mount.
    type: int
    default: 2
  age_identity:
    description: The age secret key (C(AGE-SECRET-KEY-1...)) for backups encrypted with age. Written to a 0600
      temporary file for C(age --decrypt) and removed afterwards; never logged.
    type: str
  passphrase:
    description: Passphrase of backups encrypted with openssl; passed through the environment, never logged.
    type: str
  compare_with:
    description:
      - After the restore, compare every table with this database; the module fails when they differ.
      - It must exist (checked before anything is restored) and must not be O(target) itself.
    type: str
  drop_after:
    description: Drop O(target) after the comparison (for a scratch database).
    type: bool
    default: false
seealso:
  - module: poststack.core.poststack_backup
  - module: poststack.core.poststack_backup_info
"""

EXAMPLES = r"""
- name: Restore the newest good backup of poststack into a new database
  poststack.core.poststack_backup_restore:
    container: poststack-postgres
    database: poststack
    target: poststack_restored

- name: Verify the newest backup against the live database in a scratch database
  poststack.core.poststack_backup_restore:
    container: poststack-postgres
    database: poststack
    target: poststack_verify
    replace: true
    compare_with: poststack
    drop_after: true
"""

RETURN = r"""
backup:
  description: The backup restored (name, path, created_at, size, sha256, database, format, encryption, good, problems).
  returned: always
  type: dict
target:
  description: The database restored into.
  returned: always
  type: str
replaced:
  description: Whether an existing target was replaced.
  returned: always
  type: bool
comparison:
  description: With O(compare_with), the source, number of tables and rows, the differing tables and C(equal); else null.
  returned: always
  type: dict
restore_seconds:
  description: Time taken by pg_restore.
  returned: success
  type: float
runtime:
  description: The container runtime binary used.
  returned: always
  type: str
commands:
  description: Commands that ran (argv, rc, seconds, stderr tail); never a secret.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.poststack.core.plugins.module_utils.backup import (
    BackupError, RestoreSettings, run_restore, target_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            **target_argument_spec(container_required=True),
            target=dict(type="str", required=True),
            backup=dict(type="str"),
            database=dict(type="str"),
            replace=dict(type="bool", default=False),
            jobs=dict(type="int", default=2),
            age_identity=dict(type="str", no_log=True),
            passphrase=dict(type="str", no_log=True),
            compare_with=dict(type="str"),
            drop_after=dict(type="bool", default=False),
        ),
        required_one_of=[("backup", "database")],
        supports_check_mode=True,
    )
    params = module.params
    settings = RestoreSettings(
        container=params["container"], target=params["target"], backup_dir=params["backup_dir"] or "",
        backup=params["backup"], database=params["database"], runtime=params["runtime"], replace=params["replace"],
        jobs=params["jobs"], age_identity=params["age_identity"], passphrase=params["passphrase"],
        compare_with=params["compare_with"], drop_after=params["drop_after"],
    )
    try:
        result = run_restore(settings, check_mode=module.check_mode)
    except BackupError as exc:
        module.fail_json(msg=f"restore into database '{params['target']}' failed: {exc}")
    comparison = result.get("comparison")
    if isinstance(comparison, dict) and not comparison["equal"]:
        module.fail_json(msg=f"the restored database '{params['target']}' differs from '{params['compare_with']}' in "
                             f"{len(comparison['differences'])} table(s)", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
