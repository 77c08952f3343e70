#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: poststack_backup
short_description: Logical backup of a database in a PostgreSQL container, with manifest and retention
version_added: 0.1.0
description:
  - Runs C(pg_dump) inside the PostgreSQL container (C(<runtime> exec --user postgres), peer authentication on the
    local socket, so no password is involved) and writes the dump to a directory on the host.
  - Custom format is streamed out of the container, optionally through C(age) or C(openssl) so that only ciphertext
    touches the disk, and hashed on the way. Directory format (parallel C(pg_dump --jobs)) is written by pg_dump
    inside the container, into the backups mount, then hashed.
  - The manifest C(<name>.manifest.json) is written last (time, duration, size, sha256, database, owner,
    PostgreSQL and pg_dump versions, encryption); a backup without a manifest is never trusted.
  - Then applies retention by count and by age, never deleting the newest good backup (whose contents are hashed
    and compared with its manifest first).
  - Every run with O(create=true) makes a new backup, so it always reports a change.
  - Bad input (a negative retention limit, a prefix that is no file name, an age secret key among the recipients,
    a database that does not exist, O(format=directory) outside the backups mount) is refused before the backup
    directory is created or anything is written or deleted; the message names the option and its value (never a
    secret) and ends with "nothing was changed".
author:
  - poststack contributors (@poststack)
extends_documentation_fragment:
  - poststack.core.attributes
  - poststack.core.backup_target
attributes:
  check_mode:
    support: full
    details: Returns the name the backup would get and the retention plan; writes and deletes nothing.
  diff_mode:
    support: none
options:
  container:
    required: true
  backup_dir:
    description:
      - Host directory for the backups (created with mode 0700).
      - Default C(logical/) in the host directory or volume mounted at C(/data/postgres/backups) in the container.
      - O(format=directory) needs it below that mount.
  database:
    description: Database to back up.
    type: str
    required: true
  format:
    description: C(pg_dump) format, V(custom) (one file) or V(directory) (parallel dump with O(jobs)).
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description: Parallel jobs for O(format=directory).
    type: int
    default: 2
  compression:
    description: pg_dump compression level 0-9.
    type: int
    default: 6
  prefix:
    description: Prefix of backup names (C(<prefix><database>_<UTC time>)); letters, digits, C(_), C(-) and C(.) (not
      first), since it is part of a file name.
    type: str
    default: ""
  encryption:
    description:
      - V(age) encrypts to O(age_recipients) (public keys; the secret key is only needed to restore).
      - V(openssl) uses AES-256-CBC with PBKDF2 and O(passphrase), passed to openssl through the environment.
      - Needs O(format=custom).
    type: str
    choices: [none, age, openssl]
    default: none
  age_recipients:
    description: age public keys (C(age1...)) or SSH public keys for O(encryption=age). An age secret key here is
      refused without being shown.
    type: list
    elements: str
    default: []
  passphrase:
    description: Passphrase for O(encryption=openssl). Never logged, never in argv.
    type: str
  keep_count:
    description: Keep the newest N good backups (0 disables the count limit; a negative value is refused).
    type: int
    default: 7
  keep_days:
    description: Delete backups older than this many days (0 disables the age limit; a negative value is refused).
    type: float
    default: 0
  create:
    description: Make a backup. V(false) only applies retention.
    type: bool
    default: true
  prune:
    description: Apply retention after the backup.
    type: bool
    default: true
notes:
  - Runs on the host of the container; needs C(age) or C(openssl) there for encryption.
seealso:
  - module: poststack.core.poststack_backup_info
  - module: poststack.core.poststack_backup_restore
"""

EXAMPLES = r"""
- name: Back up the application database, keep 14 backups and nothing older than 30 days
  poststack.core.poststack_backup:
    container: poststack-postgres
    database: poststack
    keep_count: 14
    keep_days: 30

- name: Encrypted backup to a host directory
  poststack.core.poststack_backup:
    container: poststack-postgres
    database: poststack
    backup_dir: /srv/backups/poststack
    encryption: age
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
"""

RETURN = r"""
backup:
  description:
    - The manifest of the new backup plus C(path) and C(manifest) (host paths); in check mode only the name and
      path it would have.
    - V(null) when no backup was (or, in check mode, would be) made, that is with O(create=false).
  returned: always
  type: dict
  sample: {"name": "poststack_20261125T124856Z", "database": "poststack", "format": "custom", "size": 7153,
           "sha256": "c863fa3d...", "pg_version": "15.20", "path": "/var/lib/poststack/backups/logical/poststack_20261125T124856Z.dump"}
backup_dir:
  description: The host directory used.
  returned: always
  type: str
created_dir:
  description: Whether the backup directory was created (in check mode, whether it would be).
  returned: always
  type: bool
retention:
  description: One decision per backup found (name, path, created_at, keep, reason).
  returned: always
  type: list
  elements: dict
deleted:
  description: Paths removed by retention (in check mode, what would be removed).
  returned: always
  type: list
  elements: str
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
    BackupError, DumpSettings, run_backup, target_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            **target_argument_spec(container_required=True),
            database=dict(type="str", required=True),
            format=dict(type="str", default="custom", choices=["custom", "directory"]),
            jobs=dict(type="int", default=2),
            compression=dict(type="int", default=6),
            prefix=dict(type="str", default=""),
            encryption=dict(type="str", default="none", choices=["none", "age", "openssl"]),
            age_recipients=dict(type="list", elements="str", default=[]),
            passphrase=dict(type="str", no_log=True),
            keep_count=dict(type="int", default=7),
            keep_days=dict(type="float", default=0),
            create=dict(type="bool", default=True),
            prune=dict(type="bool", default=True),
        ),
        required_if=[("encryption", "openssl", ("passphrase",)), ("encryption", "age", ("age_recipients",))],
        supports_check_mode=True,
    )
    params = module.params
    settings = DumpSettings(
        container=params["container"], database=params["database"], backup_dir=params["backup_dir"] or "",
        runtime=params["runtime"], format=params["format"], jobs=params["jobs"], compression=params["compression"],
        prefix=params["prefix"], encryption=params["encryption"], age_recipients=params["age_recipients"],
        passphrase=params["passphrase"], keep_count=params["keep_count"], keep_days=params["keep_days"],
        create=params["create"], prune=params["prune"],
    )
    try:
        result = run_backup(settings, check_mode=module.check_mode)
    except BackupError as exc:
        module.fail_json(msg=f"backup of database '{params['database']}' failed: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
