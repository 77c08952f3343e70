# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs poststack.core.poststack_migrate_info, in Ansible's worker when the target is the controller itself, as
poststack_migrate does (plugin_utils/in_process.py)."""

from __future__ import annotations

from ansible_collections.poststack.core.plugins.plugin_utils.in_process import InProcessAction, Work


class ActionModule(InProcessAction):
    MODULE = "poststack.core.poststack_migrate_info"

    def work(self):
        from ansible_collections.poststack.core.plugins.module_utils.database import HAS_PSYCOPG
        from ansible_collections.poststack.core.plugins.module_utils.migrations import task

        if not HAS_PSYCOPG:
            return None
        return Work(task.run_info, task.info_argument_spec())
