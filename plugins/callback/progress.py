# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: progress
type: stdout
short_description: Short progress lines, as the poststack command shows them
version_added: 0.1.0
author:
  - poststack contributors (@poststack)
description:
  - One line for each task that changed something, the message of each C(debug) task (status tables, reports), a
    failure as one paragraph with the task's name and its message, and a last line with the counts.
  - Tasks that changed nothing are not shown; on a terminal, one status line that is rewritten in place counts the
    tasks and names the one that runs (never written to the log). The C(poststack) command uses it;
    C(poststack -v) uses Ansible's own output instead.
  - A task with C(no_log) shows only its name, as with every callback.
requirements:
  - set as the stdout callback (C(ANSIBLE_STDOUT_CALLBACK=poststack.core.progress))
"""

import re
import sys

from ansible.plugins.callback import CallbackBase

DEBUG_ACTIONS = ("debug", "ansible.builtin.debug", "ansible.legacy.debug")


# Ansible wraps what one of this collection's lookups or filters refused in the story of how it got there
# ("Validating arguments against arg spec 'main' - ...: Task failed: Finalization of task args for 'x' failed: Error
# while resolving value for 'y': The lookup plugin 'poststack.core.project' failed: <the message>"). The message is
# written for the user; the story is not.
OWN_PLUGIN_FAILED = re.compile(r"^.*The (?:lookup|filter|test) plugin 'poststack\.core\.[a-z_]+' failed: ", re.DOTALL)


def _message(result):
    """The readable part of a failed result: its msg, else the end of its stderr or stdout."""
    for key in ("msg", "stderr", "stdout"):
        value = result.get(key)
        if value:
            return OWN_PLUGIN_FAILED.sub("", str(value).strip())
    return "failed (no message)"


def _render(message):
    """A debug message as lines: a list one item a line, a mapping (a status record) one key a line with its lists
    indented below it."""
    if isinstance(message, (list, tuple)):
        return "\n".join(str(line) for line in message)
    if isinstance(message, dict):
        lines = []
        for key, value in message.items():
            if isinstance(value, (list, tuple)):
                lines.append("%s:%s" % (key, "" if value else " (none)"))
                lines.extend("  %s" % line for line in value)
            else:
                lines.append("%s: %s" % (key, value))
        return "\n".join(lines)
    return str(message)


def _task_name(result):
    """``poststack.core.postgres : Run the container`` -> ``postgres: Run the container``."""
    name = result._task.get_name().strip()
    role, sep, task = name.partition(" : ")
    return "%s: %s" % (role.rsplit(".", 1)[-1], task) if sep else name


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "poststack.core.progress"

    def __init__(self):
        super().__init__()
        self._tasks = 0
        self._status_shown = False
        self._tty = sys.stdout.isatty()

    def _clear_status(self):
        if self._status_shown:
            self._display.display("\r\033[K", newline=False, screen_only=True)
            self._status_shown = False

    def _line(self, text, color=None):
        self._clear_status()
        self._display.display(text, color=color)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._tasks += 1
        if self._tty:
            self._clear_status()
            self._display.display("[%d] %s" % (self._tasks, task.get_name().strip())[:100], newline=False,
                                  screen_only=True)
            self._status_shown = True

    def _shown(self, result, item=None):
        task = _task_name(result)
        label = " (%s)" % item if item is not None else ""
        result_data = result._result
        if result._task.action in DEBUG_ACTIONS and "msg" in result_data:
            self._line(_render(result_data["msg"]))
        elif result_data.get("changed"):
            self._line("changed: %s%s" % (task, label), color="yellow")

    def v2_runner_on_ok(self, result):
        if not result._result.get("results"):  # a loop's items were shown one by one
            self._shown(result)

    def v2_runner_item_on_ok(self, result):
        self._shown(result, None if result._result.get("_ansible_no_log") else self._get_item_label(result._result))

    def _failure(self, result, item=None):
        label = " (%s)" % item if item is not None else ""
        self._line("FAILED: %s%s: %s" % (_task_name(result), label, _message(result._result)),
                   color="red")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors and not result._result.get("results"):
            self._failure(result)

    def v2_runner_item_on_failed(self, result):
        if not result._task.ignore_errors:
            self._failure(result, self._get_item_label(result._result))

    def v2_runner_on_unreachable(self, result):
        self._line("UNREACHABLE: %s: %s" % (result._host.get_name(), _message(result._result)), color="red")

    def v2_playbook_on_stats(self, stats):
        totals = [stats.summarize(host) for host in stats.processed]
        failures = sum(t["failures"] + t["unreachable"] for t in totals)
        changed = sum(t["changed"] for t in totals)
        self._line("%s: %d changed, %d failed" % ("failed" if failures else "done", changed, failures),
                   color="red" if failures else None)
