"""Runs one of the collection's playbooks for the project of the current directory, the way the CLI promises:
the embedded default target (this host) unless an inventory is named, the project's settings from its .env, the
variables in a 0600 file (never in the process arguments), short progress lines (Ansible's own output with -v),
the whole run in the project's logs/main/poststack.log, and Ansible's exit code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional

from . import report
from .commands import Plan, UsageError

HERE = os.path.dirname(os.path.abspath(__file__))
ANSIBLE_CFG = os.path.join(HERE, "ansible.cfg")


class NotFound(Exception):
    """The collection or ansible-playbook cannot be found (an installation problem, exit code 1)."""


@dataclass
class Collection:
    root: str  # .../ansible_collections/poststack/core
    collections_path: Optional[str]  # for a checkout: its .collections; installed: None (found on sys.path)


def find_collection() -> Collection:
    """The collection this command belongs to: beside it in site-packages (the wheel), or the checkout it is in."""
    for entry in sys.path:
        root = os.path.join(entry or ".", "ansible_collections", "poststack", "core")
        if os.path.isfile(os.path.join(root, "galaxy.yml")) or os.path.isfile(os.path.join(root, "MANIFEST.json")):
            if os.path.isdir(os.path.join(root, "playbooks")):
                return Collection(os.path.realpath(root), None)
    checkout = os.path.dirname(os.path.dirname(HERE))  # cli/poststack -> the checkout
    if os.path.isfile(os.path.join(checkout, "galaxy.yml")) and os.path.isdir(os.path.join(checkout, "playbooks")):
        return Collection(checkout, os.path.join(checkout, ".collections"))
    raise NotFound("the poststack.core collection is not installed beside this command (reinstall: pip install "
                   "poststack)")


def ansible_playbook() -> str:
    """ansible-playbook of the same environment as this command."""
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    if os.access(beside, os.X_OK):
        return beside
    raise NotFound("ansible-playbook is not installed in %s (it comes with the poststack package: pip install "
                   "poststack)" % os.path.dirname(sys.executable))


def log_file(project_dir: str) -> str:
    """logs/main/poststack.log of the project (seed 003's log layout), or of POSTSTACK_LOG_DIR."""
    base = os.environ.get("POSTSTACK_LOG_DIR") or os.path.join(project_dir, "logs")
    return os.path.join(base, "main", "poststack.log")


@dataclass
class Options:
    inventory: Optional[str] = None
    config_file: Optional[str] = None
    verbose: int = 0
    log_level: str = "info"
    json: bool = False  # print the verb's data as JSON (report.py) instead of progress lines
    vault_password_file: Optional[str] = None
    ask_vault_pass: bool = False


# The user's Ansible settings that would change what the command runs or prints: its own configuration replaces
# them. Everything else passes (vault, connection, become, SSH, remote user, temporary directories, ...).
OWN_SETTINGS = ("ANSIBLE_CONFIG", "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_",
                "ANSIBLE_LOAD_CALLBACK_PLUGINS", "ANSIBLE_LOG_PATH", "ANSIBLE_COLLECTIONS_", "ANSIBLE_ROLES_PATH",
                "ANSIBLE_INVENTORY", "ANSIBLE_VARS_ENABLED", "ANSIBLE_VARS_PLUGINS", "ANSIBLE_DISPLAY_",
                "ANSIBLE_VERBOSE_TO_STDERR", "ANSIBLE_NOCOLOR", "ANSIBLE_FORCE_COLOR", "ANSIBLE_CHECK_MODE_MARKERS")


def environment(collection: Collection, options: Options, project_dir: str, log_path: str) -> Dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(OWN_SETTINGS)}
    env.update({
        "ANSIBLE_CONFIG": ANSIBLE_CFG,
        "ANSIBLE_LOG_PATH": log_path,
        # -v output to stderr with --json (stdout is the document), to stdout otherwise
        "ANSIBLE_VERBOSE_TO_STDERR": "1" if options.json else "0",
        "ANSIBLE_NOCOLOR": "1" if not sys.stdout.isatty() else "0",
        # ansible-core's ssh-agent module imports DSA, which newer cryptography releases warn about on every run
        "PYTHONWARNINGS": ",".join(filter(None, [env.get("PYTHONWARNINGS"), "ignore:DSA is deprecated"])),
    })
    if options.json:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        del env["ANSIBLE_LOG_PATH"]  # the log would hold the whole document: a --json run is not logged
    elif options.verbose or options.log_level == "debug":
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.default"
    if collection.collections_path:
        env["ANSIBLE_COLLECTIONS_PATH"] = collection.collections_path
        env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "false"
    return env


def argv_for(plan: Plan, collection: Collection, options: Options, vars_file: str) -> List[str]:
    inventory = options.inventory or os.path.join(collection.root, "inventories", "local")
    argv = [ansible_playbook(), "-i", inventory, os.path.join(collection.root, "playbooks", plan.playbook + ".yml")]
    # the config file first: the command's own options (the later -e) win over it
    if options.config_file:
        argv += ["-e", "@" + os.path.abspath(options.config_file)]
    argv += ["-e", "@" + vars_file]
    if options.vault_password_file:
        argv += ["--vault-password-file", os.path.abspath(options.vault_password_file)]
    if options.ask_vault_pass:
        argv.append("--ask-vault-pass")
    if plan.check:
        argv.append("--check")
    verbosity = options.verbose + (2 if options.log_level == "debug" else 0)
    if verbosity:
        argv.append("-" + "v" * min(verbosity, 4))
    return argv


def run(plan: Plan, options: Options, project_dir: Optional[str] = None) -> int:
    """Run the plan's playbook: 0 when it succeeded, else 1."""
    for option, path in (("--config-file", options.config_file), ("--vault-password-file", options.vault_password_file)):
        if path and not os.path.isfile(path):
            raise UsageError("%s %s: no such file" % (option, path))
    collection = find_collection()
    project_dir = os.path.abspath(project_dir or os.getcwd())
    log_path = log_file(project_dir)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="poststack-") as tmp:
        vars_file = os.path.join(tmp, "vars.json")
        with open(os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            json.dump(plan.extra_vars, handle)
        argv = argv_for(plan, collection, options, vars_file)
        env = environment(collection, options, project_dir, log_path)
        if options.json:
            return _run_json(plan, argv, project_dir, env)
        returncode = subprocess.run(argv, cwd=project_dir, env=env, check=False).returncode
    # ansible-playbook says 2 for failed tasks, 4 for unreachable hosts, 5 for bad options: all a failed run here
    # (2 is the command's own usage error)
    if returncode != 0:
        shown = os.path.relpath(log_path, project_dir)
        print("poststack: the whole run is in %s" % (log_path if shown.startswith("..") else shown), file=sys.stderr)
    return 0 if returncode == 0 else 1


def _run_json(plan: Plan, argv: List[str], project_dir: str, env: Dict[str, str]) -> int:
    """Run with the json callback and print {"hosts": {host: data}, "failed": [...]} (one document)."""
    done = subprocess.run(argv, cwd=project_dir, env=env, check=False, stdout=subprocess.PIPE, text=True)
    data, failed = report.extract(plan.playbook, done.stdout)
    if done.returncode != 0 and not failed:
        failed = ["ansible-playbook exited with %d" % done.returncode]
    print(json.dumps({"hosts": data or {}, "failed": failed}, indent=2, sort_keys=True))
    return 0 if done.returncode == 0 else 1
