# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: backup_bundle
short_description: Build the scheduled backup command as one executable file and return its path on the controller
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - Builds the command that scheduled backups run (C(poststack-backup --config FILE [--check])) from the
    collection's own backup code, C(plugins/module_utils/backup/) with the C(runtime.py) and C(command.py) it
    imports, as a C(python3) shebang followed by a zip of those files, which Python runs as a program. The cron job
    or systemd timer of the C(poststack.core.backup) role thus runs the same code as the C(poststack.core.poststack_backup) module.
  - The content depends only on the sources (sorted, uncompressed, fixed timestamps), so copying it to the hosts
    changes nothing when the code did not change.
  - The lookup runs on the controller and writes only its cache directory.
options:
  cache_dir:
    description: Where the built file goes. Default C($XDG_CACHE_HOME/poststack), else C(~/.cache/poststack).
    type: path
"""

EXAMPLES = r"""
- name: Install the backup command
  ansible.builtin.copy:
    src: "{{ lookup('poststack.core.backup_bundle') }}"
    dest: /usr/local/lib/poststack/poststack-backup
    mode: "0755"
"""

RETURN = r"""
_raw:
  description: The path of the built command on the controller.
  type: list
  elements: path
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.poststack.core.plugins.plugin_utils.backup_bundle import BundleError, write
from ansible_collections.poststack.core.plugins.plugin_utils.bundle import default_cache_dir


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [write(self.get_option("cache_dir") or default_cache_dir())[0]]
        except (BundleError, OSError) as exc:
            raise AnsibleLookupError("backup_bundle: %s" % exc) from exc
