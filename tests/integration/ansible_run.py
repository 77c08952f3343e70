"""Run a playbook from a test and get its per-task results (the json stdout callback), for any area's tests."""
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class PlaybookRun:
    rc: int
    stats: Dict[str, dict]
    tasks: List[dict]
    stdout: str
    stderr: str

    def results(self, name: str, host: str = "localhost") -> dict:
        """The result of the (last) task called `name` on `host`."""
        found = [t["hosts"][host] for t in self.tasks if t["task"]["name"] == name and host in t["hosts"]]
        if not found:
            raise KeyError(f"no task named {name!r} ran on {host}; tasks: {[t['task']['name'] for t in self.tasks]}; "
                           f"what failed: {self.failures(host)}")
        return found[-1]

    def failures(self, host: str = "localhost") -> List[str]:
        """What each failed task (or loop item) said: its name, message, and the end of its stderr."""
        said = []
        for task in self.tasks:
            result = task["hosts"].get(host, {})
            for item in result.get("results", [result]) if isinstance(result.get("results"), list) else [result]:
                if item.get("failed") and not result.get("ignore_errors"):
                    said.append("%s: %s %s" % (task["task"]["name"], item.get("msg", ""),
                                               str(item.get("stderr", ""))[-500:]))
        return said

    @property
    def changed(self) -> int:
        return sum(s.get("changed", 0) for s in self.stats.values())

    @property
    def failed(self) -> int:
        return sum(s.get("failures", 0) + s.get("unreachable", 0) for s in self.stats.values())


def run_playbook(plays, extra_vars: Optional[dict] = None, check: bool = False, diff: bool = False,
                 env: Optional[Dict[str, str]] = None, inventory: Optional[str] = None) -> PlaybookRun:
    """`plays` is a path or a list of plays (dicts). Runs against localhost unless `inventory` is given."""
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(plays, str):
            playbook = plays
        else:
            playbook = os.path.join(tmp, "playbook.yml")
            with open(playbook, "w", encoding="utf-8") as handle:
                yaml.safe_dump(plays, handle, sort_keys=False)
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), playbook]
        if inventory:
            argv += ["-i", inventory]
        else:
            argv += ["-i", "localhost,", "-c", "local"]
        variables = {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}
        variables.update(extra_vars or {})
        vars_file = os.path.join(tmp, "vars.json")
        with open(vars_file, "w", encoding="utf-8") as handle:
            json.dump(variables, handle)
        argv += ["-e", "@" + vars_file]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        return run_argv(argv, env)


def ansible_playbook(*args: str, env: Optional[Dict[str, str]] = None) -> PlaybookRun:
    """`ansible-playbook <args>` from the collection root, as the docs show a user, with the json callback."""
    return run_argv([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), *args], env)


def run_argv(argv: List[str], env: Optional[Dict[str, str]] = None) -> PlaybookRun:
    run_env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1")
    if "inventories/local" in argv:  # the demo (tests/conftest.py gives every other run an empty project)
        run_env["POSTSTACK_PROJECT_DIR"] = os.path.join(ROOT, "examples", "project")
    run_env.update(env or {})
    proc = subprocess.run(argv, capture_output=True, text=True, env=run_env, cwd=ROOT, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(f"ansible-playbook did not print JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from exc
    tasks = [task for play in data.get("plays", []) for task in play.get("tasks", [])]
    return PlaybookRun(rc=proc.returncode, stats=data.get("stats", {}), tasks=tasks, stdout=proc.stdout,
                       stderr=proc.stderr)
