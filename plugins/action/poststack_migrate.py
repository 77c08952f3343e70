# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs poststack.core.poststack_migrate. When the target is the controller itself (a local connection whose Python is
the one running ansible-playbook), the module's work runs here, in Ansible's worker process for this task: no payload
to build, no Python to start (plugin_utils/in_process.py says when and why). Anywhere else the module runs as usual.
The result's ``execution`` says which way was taken."""

from __future__ import annotations

from ansible_collections.poststack.core.plugins.plugin_utils.in_process import InProcessAction, Work


class ActionModule(InProcessAction):
    MODULE = "poststack.core.poststack_migrate"

    def work(self):
        # Imported only here: psycopg and the engine load in the worker of this task, never with the plugin.
        from ansible_collections.poststack.core.plugins.module_utils.database import HAS_PSYCOPG
        from ansible_collections.poststack.core.plugins.module_utils.migrations import task

        if not HAS_PSYCOPG:  # the module's way gives Ansible's message for a missing library
            return None
        return Work(task.run, task.argument_spec(), task.REQUIRED_IF, task.MUTUALLY_EXCLUSIVE)
