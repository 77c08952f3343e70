# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs poststack.core.poststack_migrate. When the target is the controller itself (a local connection whose Python is
the one running ansible-playbook), the module's work runs here, in Ansible's worker process for this task: no payload
to build, no Python to start (plugin_utils/in_process.py says when and why). Anywhere else the module runs as usual.
The result's ``execution`` says which way was taken."""

from __future__ import annotations

import sys

from ansible import constants as C
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.poststack.core.plugins.plugin_utils import in_process

MODULE = "poststack.core.poststack_migrate"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        refused = self._refusal(task_vars)
        if refused is None:
            # Imported only here: psycopg and the engine load in the worker of this task, never with the plugin.
            from ansible_collections.poststack.core.plugins.module_utils.database import HAS_PSYCOPG
            from ansible_collections.poststack.core.plugins.module_utils.migrations import task

            if HAS_PSYCOPG:  # else the module's way gives Ansible's message for a missing library
                outcome = in_process.run(MODULE, task.run, task.argument_spec(), self._task.args,
                                         check_mode=bool(self._task.check_mode), diff=bool(self._task.diff),
                                         required_if=task.REQUIRED_IF, mutually_exclusive=task.MUTUALLY_EXCLUSIVE)
                outcome["execution"] = "controller"
                return merge_hash(result, outcome)
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(module_name=MODULE, task_vars=task_vars,
                                                         wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _refusal(self, task_vars):
        """Why this task cannot run in the worker (None: it can)."""
        host_vars = task_vars
        if self._task.delegate_to:
            host_vars = task_vars.get("ansible_delegated_vars", {}).get(self._task.delegate_to, task_vars)
        interpreter = C.config.get_config_value("INTERPRETER_PYTHON", variables=host_vars)
        interpreter = self._templar.template(interpreter) if isinstance(interpreter, str) else None
        if interpreter in in_process.AUTO_INTERPRETERS:
            interpreter = host_vars.get("ansible_facts", {}).get("discovered_interpreter_python")
        enabled = self._templar.template(host_vars.get(in_process.SWITCH, True))
        environment = [self._templar.template(item) for item in (self._task.environment or [])]
        return in_process.refusal(
            transport=self._connection.transport, interpreter=interpreter, controller_python=sys.executable,
            become=bool(self._play_context.become), async_seconds=self._task.async_val or 0,
            environment=environment, timeout=getattr(self._task, "timeout", 0) or 0,
            enabled=boolean(enabled, strict=False),
        )
