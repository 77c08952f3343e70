# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs poststack.core.pgtwin_resource after one check on the controller: an attribute in params, meta or
clone_meta whose name looks like a secret is refused here, so that its value never reaches the target. (A module
logs its arguments to the target's syslog before it can check them.)"""

from __future__ import annotations

from ansible.module_utils.common.validation import check_type_dict
from ansible.plugins.action import ActionBase

from ansible_collections.poststack.core.plugins.module_utils.cib import CibError, refuse_secret_name


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        for option in ("params", "meta", "clone_meta"):
            values = self._task.args.get(option)
            if isinstance(values, str):  # the argument spec turns a JSON or k=v string into a dict: so do we
                try:
                    values = check_type_dict(values)
                except TypeError:
                    continue  # not a dict at all: the module's argument spec answers it (without the value)
            if not isinstance(values, dict):
                continue
            try:
                for key in values:
                    refuse_secret_name(option, str(key))
            except CibError as exc:
                result.update(failed=True, changed=False, msg=str(exc))
                return result
        result.update(self._execute_module(module_name=self._task.resolved_action or "poststack.core.pgtwin_resource",
                                           module_args=self._task.args, task_vars=task_vars))
        return result
