# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: scram_verifier
short_description: The SCRAM-SHA-256 verifier PostgreSQL stores for a password
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - Returns the string PostgreSQL keeps in C(pg_authid.rolpassword) for a password
    (C(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)), with SASLprep applied as PostgreSQL does.
    C(CREATE ROLE ... PASSWORD '<verifier>') then sets the password without the password reaching the server.
  - With O(stored), the salt and iteration count of that verifier are reused, so the result equals O(stored)
    exactly when the password is unchanged; that detects a rotation without logging in. Without it (or when it is
    not a SCRAM verifier) a random salt is used.
  - The result is a secret-equivalent for offline guessing; keep tasks that show it under C(no_log).
options:
  _input:
    description: The password.
    type: str
    required: true
  stored:
    description: The current verifier, to reuse its salt and iteration count.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Rotate the password of a role only when it changed
  ansible.builtin.command:
    argv: [psql, -X, -q, -v, ON_ERROR_STOP=1, -d, postgres]
    stdin: "ALTER ROLE app PASSWORD '{{ app_password | poststack.core.scram_verifier(stored=current.stdout) }}';"
  when: (app_password | poststack.core.scram_verifier(stored=current.stdout)) != current.stdout
  changed_when: true
  no_log: true
"""

RETURN = r"""
_value:
  description: The verifier.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.poststack.core.plugins.plugin_utils.scram import verifier_like


def scram_verifier(password, stored=""):
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("scram_verifier: the password must be a non-empty string")
    return verifier_like(password, (stored or "").strip())


class FilterModule:
    def filters(self):
        return {"scram_verifier": scram_verifier}
