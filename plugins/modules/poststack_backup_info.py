#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_backup_info
short_description: List logical backups and check them against their manifests
version_added: 0.1.0
description:
  - Lists the backups written by M(poststack.core.poststack_backup) in a directory, newest first, and tells which
    are good, that is whose file (or every file of a directory-format dump) has the size and sha256 recorded in
    its manifest.
  - Files without a manifest and C(.partial) leftovers are listed as not good, with the reason.
  - Changes nothing.
author:
  - poststack contributors (@poststack)
extends_documentation_fragment:
  - poststack.core.attributes
  - poststack.core.attributes.info_module
  - poststack.core.backup_target
options:
  database:
    description: Only list backups of this database.
    type: str
  verify:
    description:
      - V(newest) hashes backups from the newest until a good one is found (what restore relies on).
      - V(all) hashes every backup; V(none) trusts the manifests.
    type: str
    choices: [none, newest, all]
    default: newest
seealso:
  - module: poststack.core.poststack_backup
"""

EXAMPLES = r"""
- name: Check every backup
  poststack.core.poststack_backup_info:
    container: poststack-postgres
    verify: all
  register: backups

- name: Fail when a backup is corrupt
  ansible.builtin.assert:
    that: backups.bad == 0
"""

RETURN = r"""
backups:
  description: Backups, newest first (name, path, created_at, good, checked, problems, database, format, size, sha256, encryption).
  returned: always
  type: list
  elements: dict
newest_good:
  description: The newest good backup, or null.
  returned: always
  type: dict
good:
  description: Number of good backups (unchecked ones count when their manifest is readable).
  returned: always
  type: int
bad:
  description: Number of backups that are not good.
  returned: always
  type: int
backup_dir:
  description: The directory listed.
  returned: always
  type: str
runtime:
  description: The container runtime binary (when O(container) is given), else null.
  returned: always
  type: str
mount_source:
  description: Host path mounted at C(/data/postgres/backups) in O(container), else null.
  returned: always
  type: str
conf_dir:
  description: Host path mounted at C(/etc/postgresql/conf.d) in O(container), else null.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.poststack.core.plugins.module_utils.backup import (
    BackupError, backup_inventory, target_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            **target_argument_spec(container_required=False),
            database=dict(type="str"),
            verify=dict(type="str", default="newest", choices=["none", "newest", "all"]),
        ),
        required_one_of=[("backup_dir", "container")],
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = backup_inventory(params["backup_dir"] or "", params["database"], params["verify"],
                                  params["container"], params["runtime"])
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
