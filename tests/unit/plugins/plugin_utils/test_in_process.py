"""A module's work in Ansible's worker: when it may (refusal, same_python) and what the result looks like (run), which
must be what AnsibleModule would have returned for the same arguments."""
import contextlib
import io
import json
import logging
import os
import re
import sys
from types import SimpleNamespace

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.poststack.core.plugins.module_utils.migrations import task
from ansible_collections.poststack.core.plugins.plugin_utils import in_process


@pytest.fixture
def venv(tmp_path):
    """A venv's bin: python3 and python3.11 link to a base Python elsewhere (its own bin has python3 too)."""
    base = tmp_path / "base" / "bin"
    base.mkdir(parents=True)
    (base / "python3.11").write_text("#!/bin/true\n")
    (base / "python3").symlink_to("python3.11")
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3.11").symlink_to(base / "python3.11")
    (bin_dir / "python3").symlink_to("python3.11")
    return {"venv": str(bin_dir / "python3"), "venv311": str(bin_dir / "python3.11"), "base": str(base / "python3")}


def test_the_same_environment_is_the_same_python(venv):
    assert in_process.same_python(venv["venv"], venv["venv"])
    assert in_process.same_python(venv["venv311"], venv["venv"])


@pytest.mark.parametrize("interpreter", [None, "", "auto", "auto_silent", "python3", "base", "missing"])
def test_anything_else_is_not(venv, interpreter):
    interpreter = {"base": venv["base"], "missing": os.path.join(os.path.dirname(venv["venv"]), "python9")}.get(
        interpreter, interpreter)
    # the base Python is the same file as the venv's, but not its packages
    assert not in_process.same_python(interpreter, venv["venv"])


ALLOWED = dict(transport="local", become=False, async_seconds=0, environment=[], timeout=0, enabled=True)


def test_a_local_task_with_the_controllers_python_runs_in_the_worker(venv):
    assert in_process.refusal(interpreter=venv["venv311"], controller_python=venv["venv"], **ALLOWED) is None


@pytest.mark.parametrize("change, reason", [
    (dict(enabled=False), "poststack_in_process is false"),
    (dict(transport="ssh"), "the connection is ssh, not local"),
    (dict(become=True), "the task becomes another user"),
    (dict(async_seconds=60), "the task is async"),
    (dict(environment=[{"PGPASSWORD": "x"}]), "the task sets an environment"),
    (dict(timeout=30), "the task has a timeout"),
    (dict(interpreter="/usr/bin/python3"), "its Python (/usr/bin/python3) is not the one running Ansible"),
    (dict(interpreter=None), "its Python (discovered) is not the one running Ansible"),
])
def test_what_sends_a_task_to_a_module_process(venv, change, reason):
    arguments = dict(ALLOWED, interpreter=venv["venv"], controller_python=venv["venv"])
    arguments.update(change)
    assert in_process.refusal(**arguments).startswith(reason)


def test_an_empty_environment_entry_is_no_environment(venv):
    arguments = dict(ALLOWED, interpreter=venv["venv"], controller_python=venv["venv"])
    arguments["environment"] = [{}, None]
    assert in_process.refusal(**arguments) is None


def module_result(args):
    """What AnsibleModule itself answers for ``args`` with poststack_migrate's spec (argument errors only)."""
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        AnsibleModule(argument_spec=task.argument_spec(), required_if=task.REQUIRED_IF,
                      mutually_exclusive=task.MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    return json.loads(out.getvalue())


def in_worker(args, work=None):
    calls = []

    def record(params, check_mode, diff):
        calls.append((params, check_mode, diff))
        return work(params) if work else {"changed": False}

    result = in_process.run("poststack.core.poststack_migrate", record, task.argument_spec(), args, check_mode=True,
                            diff=False, required_if=task.REQUIRED_IF, mutually_exclusive=task.MUTUALLY_EXCLUSIVE)
    return result, calls


@pytest.mark.parametrize("args", [
    {"state": "rolled_back", "path": "/m"},                      # required_if
    {"state": "gone", "path": "/m"},                             # choices
    {"path": "/m", "streams": [{"stream": "a", "path": "/b"}]},  # mutually exclusive
    {"path": "/m", "retries": "many"},                           # type
    {"path": "/m", "colour": "red"},                             # unsupported
    {"streams": [{"path": "/b"}]},                               # a suboption's required
])
def test_bad_arguments_get_the_modules_message_and_no_work(args):
    result, calls = in_worker(args)
    assert calls == []
    expected = module_result(args)
    assert result["failed"] is True
    # the module names itself after its file here, after the task's action under Ansible
    assert result["msg"] == re.sub(r"^Unsupported parameters for \([^)]*\)", "Unsupported parameters for "
                                   "(poststack.core.poststack_migrate)", expected["msg"]), result


def test_the_work_gets_validated_parameters_with_defaults():
    result, calls = in_worker({"path": "/m", "port": "5433", "retries": "2"})
    params, check_mode, diff = calls[0]
    assert (params["port"], params["retries"], params["state"], params["lock_wait_timeout"]) == (5433, 2, "applied", 60.0)
    assert (check_mode, diff) == (True, False)
    assert result == {"changed": False, "invocation": {"module_args": json.loads(json.dumps(params))}}


def test_no_log_values_are_masked_everywhere_but_booleans_stay():
    secret = "s3cr3t-pass"
    result, dummy = in_worker({"path": "/m", "password": secret, "dsn": "postgresql://u:%s@h/db" % secret},
                              work=lambda params: {"changed": True, "failed": True,
                                                   "msg": "login with %s failed" % secret,
                                                   "nested": [{"text": secret}], "versions": (1, 2)})
    text = json.dumps(result)
    assert secret not in text
    assert result["msg"] == "login with ******** failed"
    assert result["invocation"]["module_args"]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert result["changed"] is True and result["failed"] is True
    assert result["versions"] == [1, 2]  # plain JSON, as from a module's process


def test_the_info_modules_arguments_get_its_message_too():
    args = {"path": "/m", "format": "liquibase"}
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        AnsibleModule(argument_spec=task.info_argument_spec(), supports_check_mode=True)
    result = in_process.run("poststack.core.poststack_migrate_info", task.run_info, task.info_argument_spec(), args,
                            check_mode=False, diff=False)
    assert result["failed"] is True and result["msg"] == json.loads(out.getvalue())["msg"]
    assert "liquibase" in result["msg"]


def test_an_exception_in_the_work_is_a_masked_failure():
    secret = "s3cr3t-pass"

    def work(params):
        raise RuntimeError("boom with %s" % secret)

    result, dummy = in_worker({"path": "/m", "password": secret}, work=work)
    assert result["failed"] is True
    assert result["msg"] == "unexpected error: boom with ********"
    assert "RuntimeError" in result["exception"] and secret not in json.dumps(result)


def test_what_psycopg_logs_goes_to_the_display_at_vvv_masked(monkeypatch, capsys):
    secret = "s3cr3t-pass"
    shown = []

    class Recorder:
        def vvv(self, message):
            shown.append(message)

    monkeypatch.setattr(in_process, "Display", Recorder)

    def work(params):
        logging.getLogger("psycopg").warning("error ignored in rollback for %s", secret)
        return {"changed": False}

    result, dummy = in_worker({"path": "/m", "password": secret}, work=work)
    assert result == {"changed": False, "invocation": result["invocation"]}
    assert shown == ["psycopg warning: error ignored in rollback for ********"]
    assert capsys.readouterr().err == ""  # not Python's last-resort handler on the worker's stderr
    assert logging.getLogger("psycopg").propagate is True and not logging.getLogger("psycopg").handlers


class Action(in_process.InProcessAction):
    MODULE = "poststack.core.poststack_migrate"


def refusal_of(task_vars, delegate_to=None, environment=(), become=False, transport="local"):
    """The action plugin's decision for these host variables (the interpreter templated as Ansible does)."""
    action = object.__new__(Action)
    action._task = SimpleNamespace(delegate_to=delegate_to, environment=list(environment), async_val=0, timeout=0)
    action._connection = SimpleNamespace(transport=transport)
    action._play_context = SimpleNamespace(become=become)
    action._templar = Templar(loader=DataLoader(), variables=task_vars)
    return action._refusal(task_vars)


PLAYBOOK_PYTHON = {"ansible_playbook_python": sys.executable}


@pytest.mark.parametrize("task_vars", [
    dict(PLAYBOOK_PYTHON, ansible_python_interpreter=sys.executable),             # Ansible's implicit localhost
    # inventories/local (an inventory's strings are trusted as templates)
    dict(PLAYBOOK_PYTHON, ansible_python_interpreter=trust_as_template("{{ ansible_playbook_python }}")),
    dict(PLAYBOOK_PYTHON, ansible_facts={"discovered_interpreter_python": sys.executable}),
], ids=["implicit-localhost", "templated", "discovered-is-ours"])
def test_the_action_plugin_runs_a_local_task_with_our_python_here(task_vars):
    assert refusal_of(task_vars) is None


@pytest.mark.parametrize("task_vars, options, reason", [
    (dict(PLAYBOOK_PYTHON), {}, "its Python (discovered) is not"),
    (dict(PLAYBOOK_PYTHON, ansible_python_interpreter="/usr/bin/python3"), {}, "its Python (/usr/bin/python3) is not"),
    (dict(PLAYBOOK_PYTHON, ansible_python_interpreter=sys.executable, poststack_in_process=trust_as_template("{{ 'no' }}")), {},
     "poststack_in_process is false"),
    (dict(PLAYBOOK_PYTHON, ansible_python_interpreter=sys.executable), {"environment": [{"PGHOST": "db"}]},
     "the task sets an environment"),
    (dict(PLAYBOOK_PYTHON, ansible_python_interpreter=sys.executable), {"become": True}, "the task becomes"),
    (dict(PLAYBOOK_PYTHON, ansible_python_interpreter=sys.executable), {"transport": "ssh"}, "the connection is ssh"),
    # delegated: the delegated host's variables count, not the task host's
    (dict(PLAYBOOK_PYTHON, ansible_python_interpreter=sys.executable,
          ansible_delegated_vars={"db1": {"ansible_python_interpreter": "/usr/bin/python3"}}), {"delegate_to": "db1"},
     "its Python (/usr/bin/python3) is not"),
], ids=["no-interpreter", "another-python", "switched-off", "environment", "become", "ssh", "delegated"])
def test_the_action_plugin_sends_other_tasks_to_a_module_process(task_vars, options, reason):
    assert refusal_of(task_vars, **options).startswith(reason)


def test_a_delegated_task_to_a_host_with_our_python_runs_here():
    task_vars = dict(PLAYBOOK_PYTHON, ansible_python_interpreter="/usr/bin/python3",
                     ansible_delegated_vars={"localhost": dict(PLAYBOOK_PYTHON,
                                                               ansible_python_interpreter=sys.executable)})
    assert refusal_of(task_vars, delegate_to="localhost") is None
