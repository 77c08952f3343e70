# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module's work run in Ansible's worker process when the target is the controller itself.

A module started the usual way costs a payload built and a Python started with ``ansible.module_utils.basic``
(about half a second here), more than ``poststack_migrate`` needs for a run with nothing to do. When the task's
connection is local and its Python is the very environment running ansible-playbook, the worker (a process forked
for this one task) can do the same work itself: the same argument spec validates the same arguments, check and diff
mode are the task's, and the result has what ``AnsibleModule.exit_json`` makes of it (the values of no_log options
masked everywhere, ``invocation``, plain JSON data).

``refusal()`` says why a task must take the module's usual way (become, async, a task environment, a timeout,
another Python, ``poststack_in_process: false``); there it does, unchanged. ``InProcessAction`` is the action plugin
of such a module: a subclass names the module and gives its work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence

from ansible import constants as C
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

SWITCH = "poststack_in_process"
AUTO_INTERPRETERS = ("", "auto", "auto_legacy", "auto_silent", "auto_legacy_silent")


def same_python(interpreter: Optional[str], controller_python: str) -> bool:
    """Is ``interpreter`` the controller's own Python environment? The same file in the same directory: a venv's
    ``python3`` and ``python3.11`` are, ``/usr/bin/python3`` is not (the venv's links point at it, but its
    packages are not the venv's)."""
    if not interpreter or not os.path.isabs(interpreter):  # also "auto": discovery has not said
        return False
    if os.path.dirname(os.path.abspath(interpreter)) != os.path.dirname(os.path.abspath(controller_python)):
        return False
    try:
        return os.path.samefile(interpreter, controller_python)
    except OSError:
        return False


def refusal(transport: str, interpreter: Optional[str], controller_python: str, become: bool, async_seconds: int,
            environment: Sequence[Any], timeout: int, enabled: bool) -> Optional[str]:
    """None when the task may run in the worker, else why it may not (the module then runs as usual)."""
    reasons = [
        (not enabled, "%s is false" % SWITCH),
        (transport != "local", "the connection is %s, not local" % transport),
        (become, "the task becomes another user"),
        (bool(async_seconds), "the task is async"),
        (any(environment), "the task sets an environment"),
        (bool(timeout), "the task has a timeout"),
        (not same_python(interpreter, controller_python),
         "its Python (%s) is not the one running Ansible (%s)" % (interpreter or "discovered", controller_python)),
    ]
    return next((reason for refused, reason in reasons if refused), None)


@contextlib.contextmanager
def _library_log_to_display(no_log_values) -> Iterator[None]:
    """psycopg logs (e.g. an error ignored in a rollback) with Python's logging: in a module process that goes to a
    stderr nobody reads; in the worker, Python's last-resort handler would write it to the worker's stderr, which
    Ansible shows as a warning about a worker writing to stderr. Here it is shown at -vvv, masked like the result."""
    logger = logging.getLogger("psycopg")
    handler = _DisplayHandler(no_log_values)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class _DisplayHandler(logging.Handler):
    def __init__(self, no_log_values) -> None:
        super().__init__()
        self.no_log_values = no_log_values

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = remove_values(record.getMessage(), self.no_log_values)
            Display().vvv("psycopg %s: %s" % (record.levelname.lower(), message))
        except Exception:  # logging must never fail the work
            pass


def run(name: str, work: Callable[[Dict[str, Any], bool, bool], Dict[str, Any]], spec: Dict[str, Any],
        args: Mapping[str, Any], check_mode: bool, diff: bool, required_if: Optional[List] = None,
        mutually_exclusive: Optional[List] = None) -> Dict[str, Any]:
    """``work(params, check_mode, diff)`` on ``args`` validated by ``spec``, its result as the module would return
    it (a failure carries ``failed`` and ``msg``)."""
    validator = ArgumentSpecValidator(spec, mutually_exclusive=mutually_exclusive, required_if=required_if)
    validation = validator.validate(dict(args))
    no_log_values = validation._no_log_values
    params = validation.validated_parameters
    if validation.errors.errors:
        msg = validation.errors.msg
        if isinstance(validation.errors.errors[0], UnsupportedError):
            msg = "Unsupported parameters for (%s) module: %s" % (name, msg)
        result: Dict[str, Any] = dict(failed=True, msg=msg)
    else:
        with _library_log_to_display(no_log_values):
            try:
                result = work(params, check_mode, diff)
            except Exception as exc:  # masked below like any result, unlike an exception the worker would print
                result = dict(failed=True, msg="unexpected error: %s" % exc, exception=traceback.format_exc())
    result.setdefault("invocation", {"module_args": params})
    preserved = {key: value for key, value in result.items() if value is None or isinstance(value, bool)}
    result = remove_values(result, no_log_values)
    result.update(preserved)
    # What a module's process would have sent: plain JSON (tuples become lists, keys strings).
    return json.loads(json.dumps(result))


class Work(NamedTuple):
    """A module's work as a function of its parameters, and the argument spec the module validates them with."""
    function: Callable[[Dict[str, Any], bool, bool], Dict[str, Any]]
    spec: Dict[str, Any]
    required_if: Optional[List] = None
    mutually_exclusive: Optional[List] = None


class InProcessAction(ActionBase):
    """The action plugin of a module whose work may run in the worker. The result's ``execution`` says where it ran:
    ``controller`` here, ``module`` in the module's own process (the module sets it)."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True
    MODULE = ""  # the module's full name

    def work(self) -> Optional[Work]:
        """The module's work, imported only when it runs here (with psycopg); None when it cannot run here."""
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        work = self.work() if self._refusal(task_vars) is None else None
        if work is not None:
            outcome = run(self.MODULE, work.function, work.spec, self._task.args, check_mode=bool(self._task.check_mode),
                          diff=bool(self._task.diff), required_if=work.required_if,
                          mutually_exclusive=work.mutually_exclusive)
            outcome["execution"] = "controller"
            return merge_hash(result, outcome)
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(module_name=self.MODULE, task_vars=task_vars,
                                                         wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _refusal(self, task_vars) -> Optional[str]:
        """Why this task cannot run in the worker (None: it can)."""
        host_vars = task_vars
        if self._task.delegate_to:
            host_vars = task_vars.get("ansible_delegated_vars", {}).get(self._task.delegate_to, task_vars)
        interpreter = C.config.get_config_value("INTERPRETER_PYTHON", variables=host_vars)
        interpreter = self._templar.template(interpreter) if isinstance(interpreter, str) else None
        if interpreter in AUTO_INTERPRETERS:
            interpreter = host_vars.get("ansible_facts", {}).get("discovered_interpreter_python")
        enabled = self._templar.template(host_vars.get(SWITCH, True))
        environment = [self._templar.template(item) for item in (self._task.environment or [])]
        return refusal(
            transport=self._connection.transport, interpreter=interpreter, controller_python=sys.executable,
            become=bool(self._play_context.become), async_seconds=self._task.async_val or 0,
            environment=environment, timeout=getattr(self._task, "timeout", 0) or 0,
            enabled=boolean(enabled, strict=False),
        )
